"""One smoke calibration for the whole package's tests (seconds, 1 thread)."""

import pytest

from archcost.predict import calibrate


@pytest.fixture(scope="session")
def smoke_profile_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("profiles") / "cpu-1t.json"
    calibrate("cpu", threads=1, mode="smoke").save(path)
    return path


@pytest.fixture()
def smoke_profile(smoke_profile_path):
    from archcost.predict import load_profile

    return load_profile(smoke_profile_path)
