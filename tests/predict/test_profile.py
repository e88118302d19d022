"""The device profile file: written by a smoke calibration, read back, refused when damaged or mismatched."""

import dataclasses
import importlib
import json

import pytest
import torch

from archcost.errors import InputError
from archcost.predict import (
    SCHEMA_VERSION,
    DeviceProfile,
    ProfileError,
    ProfileMismatchError,
    calibrate,
    check_matches,
    kernels,
    load_profile,
)
from archcost.predict.calibrate import read_partial


def test_smoke_calibration_writes_a_valid_profile(smoke_profile_path):
    data = json.loads(smoke_profile_path.read_text())
    assert data["schema"] == "archcost.device_profile" and data["schema_version"] == SCHEMA_VERSION
    assert data["machine"]["device"] == "cpu" and data["machine"]["device_name"]
    assert data["machine"]["heap"] == "steady"  # calibrate measures with the default heap (environment.steady_heap)
    assert data["threads"] == 1 and data["dtype"] == "float32" and data["mode"] == "smoke"
    assert data["torch"]["version"] == torch.__version__
    smoke = kernels("smoke")
    assert len(data["points"]) == len(smoke)
    singles = [p for p in data["points"] if p["kind"] != "block"]
    blocks = [p for p in data["points"] if p["kind"] == "block"]
    assert {p["kind"] for p in singles} == {k.kind for k in smoke if not k.block}
    assert len(blocks) == 3 and all(len(p["rows"]) >= 3 for p in blocks) and all(p["rows"] == [] for p in singles)
    assert set(data["kinds"]) == {p["kind"] for p in singles} | {r[0] for p in blocks for r in p["rows"]}
    assert data["block_fit_error"]["points"] == 3 and data["block_fit_error"]["median_abs_pct"] >= 0
    for kind, entry in data["kinds"].items():
        assert entry["form"] in ("max", "sum"), kind
        assert min(entry["seconds_per_flop"], entry["seconds_per_byte"], entry["overhead_s"]) >= 0, kind
        assert entry["fit_error"]["points"] == sum(p["kind"] == kind for p in data["points"])
    assert all(p["time_s"] > 0 and p["p10_s"] <= p["time_s"] <= p["p90_s"] for p in data["points"])


def test_load_round_trips(smoke_profile_path, tmp_path):
    profile = load_profile(smoke_profile_path)
    assert isinstance(profile, DeviceProfile) and profile.path == str(smoke_profile_path)
    again = tmp_path / "again.json"
    profile.save(again)
    assert load_profile(again) == profile
    assert json.loads(again.read_text()) == json.loads(smoke_profile_path.read_text())


def _write(tmp_path, data) -> str:
    path = tmp_path / "p.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d | {"schema_version": SCHEMA_VERSION + 1}, "newer than this archcost reads"),
        (lambda d: d | {"schema": "archcost.bench"}, "its schema is 'archcost.bench'"),
        (lambda d: {k: v for k, v in d.items() if k != "threads"}, "field 'threads' is missing"),
        (lambda d: d | {"machine": {"device_name": "x"}}, "field 'machine.device' is missing"),
        (lambda d: d | {"threads": "two"}, "field 'threads' should be int"),
        (lambda d: d | {"kinds": {"conv": {"form": "cubic"}}}, "kinds.conv.form is 'cubic'"),
        (lambda d: [d], "holds a JSON list"),
        (
            lambda d: d | {"points": [d["points"][-1] | {"rows": [["conv", "many"]]}]},
            "should be .kind, flops, bytes, dispatches.",
        ),
    ],
)
def test_damaged_profiles_are_refused_by_field(smoke_profile_path, tmp_path, change, message):
    data = json.loads(smoke_profile_path.read_text())
    with pytest.raises(ProfileError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        load_profile(_write(tmp_path, change(data)))
    assert err.value.exit_code == 2


def test_a_schema_1_profile_is_still_read(smoke_profile_path, tmp_path):
    data = json.loads(smoke_profile_path.read_text())
    data["schema_version"] = 1
    del data["block_fit_error"]
    data["points"] = [{k: v for k, v in p.items() if k != "rows"} for p in data["points"] if p["kind"] != "block"]
    old = load_profile(_write(tmp_path, data))
    assert old.block_error is None and old.schema_version == 1 and all(p.rows == () for p in old.points)
    assert old.kinds == load_profile(smoke_profile_path).kinds


def test_a_profile_without_its_heap_is_read_as_not_recorded(smoke_profile_path, tmp_path):
    from archcost.predict.calibrate import refit

    data = json.loads(smoke_profile_path.read_text())
    del data["machine"]["heap"]  # a file written before session 15
    old = load_profile(_write(tmp_path, data))
    assert old.heap is None and old.kinds == load_profile(smoke_profile_path).kinds
    assert refit(load_profile(smoke_profile_path)).heap == "steady"  # a refit keeps the heap it was timed with


def test_a_schema_2_profile_is_still_read(smoke_profile_path, tmp_path):
    data = json.loads(smoke_profile_path.read_text())
    data["schema_version"] = 2  # rows of three, no dispatches: one each
    for p in data["points"]:
        p.pop("dispatches")
        p["rows"] = [r[:3] for r in p["rows"]]
    old = load_profile(_write(tmp_path, data))
    assert old.schema_version == 2 and all(len(r) == 5 and r[3:] == (1.0, 0.0) for p in old.points for r in p.rows)
    assert all(p.dispatches == 1.0 for p in old.points) and old.kinds == load_profile(smoke_profile_path).kinds


def test_a_schema_3_profile_prices_no_large_bytes(smoke_profile_path, tmp_path):
    data = json.loads(smoke_profile_path.read_text())
    data["schema_version"] = 3  # rows of four, no large bytes, no seconds_per_large_byte
    data["kinds"]["conv"]["seconds_per_large_byte"] = 1e-9
    for p in data["points"]:
        p.pop("large_bytes")
        p["rows"] = [r[:4] for r in p["rows"]]
    for k in data["kinds"].values():
        k.pop("seconds_per_large_byte")
    old = load_profile(_write(tmp_path, data))
    assert old.schema_version == 3 and all(len(r) == 5 and r[4] == 0.0 for p in old.points for r in p.rows)
    assert all(k.rule.seconds_per_large_byte == 0.0 for k in old.kinds.values())
    data["schema_version"] = 4
    data["kinds"]["conv"]["seconds_per_large_byte"] = -1.0
    with pytest.raises(ProfileError, match="negative"):
        load_profile(_write(tmp_path, data))


def test_not_json_and_missing_files(tmp_path):
    with pytest.raises(ProfileError, match="not JSON"):
        load_profile(_write(tmp_path, '{"schema": "archcost.device_profile", "kinds": {'))
    with pytest.raises(ProfileError, match="no such"):
        load_profile(tmp_path / "nowhere.json")


def test_mismatches_are_refused_or_warned_by_name(smoke_profile):
    assert check_matches(smoke_profile, device="cpu", threads=1, dtype="float32", torch=torch.__version__) == []
    with pytest.raises(ProfileMismatchError, match=r"^device: .* calibrated on cpu"):
        check_matches(smoke_profile, device="cuda:0")
    with pytest.raises(ProfileMismatchError, match=r"^dtype: .* in float32.* for float16"):
        check_matches(smoke_profile, dtype="float16")
    warned = check_matches(smoke_profile, threads=4, torch="2.99.0", device_name="Some Other CPU")
    assert sorted(w.split(":")[0] for w in warned) == ["device_name", "threads", "torch"]
    assert any("1 torch thread(s)" in w and "for 4" in w for w in warned)
    with pytest.raises(ProfileMismatchError, match="threads"):
        check_matches(smoke_profile, threads=4, strict=True)


def test_resume_skips_the_points_kept(tmp_path):
    partial = tmp_path / "p.json.partial.jsonl"
    chosen = kernels("smoke")[:3]
    seen = []
    first = calibrate("cpu", threads=1, mode="smoke", partial=partial, kernel_set=chosen[:2])
    assert len(partial.read_text().splitlines()) == 3  # the header and two points
    second = calibrate(
        "cpu", threads=1, mode="smoke", partial=partial, kernel_set=chosen, on_point=lambda *a: seen.append(a)
    )
    assert [s[3] for s in seen] == [True, True, False]  # two came from the file, one was timed
    assert second.points[:2] == first.points  # the very same measurements
    assert len(read_partial(partial, _identity_of(second))) == 3


def _identity_of(profile):
    return {
        "device": profile.device,
        "device_name": profile.device_name,
        "threads": profile.threads,
        "dtype": profile.dtype,
        "mode": profile.mode,
        "torch": profile.torch_version,
    }


def test_a_partial_file_of_another_setup_is_refused(tmp_path):
    partial = tmp_path / "p.partial.jsonl"
    one = kernels("smoke")[:1]
    profile = calibrate("cpu", threads=1, mode="smoke", partial=partial, kernel_set=one)
    other = _identity_of(dataclasses.replace(profile, threads=2))
    with pytest.raises(InputError, match="threads 1 there, 2 now"):
        read_partial(partial, other)
    (tmp_path / "junk.jsonl").write_text("hello\n")
    with pytest.raises(InputError, match="not a partial calibration file"):
        read_partial(tmp_path / "junk.jsonl", other)


def test_bad_calibration_settings():
    with pytest.raises(InputError, match="not a float dtype"):
        calibrate("cpu", dtype="int8", mode="smoke")
    with pytest.raises(InputError, match="unknown calibration mode"):
        calibrate("cpu", mode="huge")


def test_heavy_layers_are_timed_with_cold_weights(monkeypatch):
    from functools import partial

    from torch import nn

    cal = importlib.import_module("archcost.predict.calibrate")  # the package's `calibrate` is the function

    seen = []

    class Seen(nn.Linear):
        def forward(self, x):
            seen.append(id(self))
            return super().forward(x)

    kernel = cal.Kernel("linear seen", "linear", partial(Seen, 64, 64), ((64,),))
    monkeypatch.setattr(cal, "COLD_WEIGHT_BYTES", 1000)  # a 64x64 Linear holds 16,640 bytes of weights
    monkeypatch.setattr(cal, "COLD_TOTAL_BYTES", 10**9)
    monkeypatch.setattr(cal, "MAX_COPIES", 5)
    cal.time_kernel(kernel, torch.device("cpu"), torch.float32, "smoke")
    assert len(set(seen)) == 5  # cycled through five instances
    seen.clear()
    monkeypatch.setattr(cal, "COLD_WEIGHT_BYTES", 10**9)
    cal.time_kernel(kernel, torch.device("cpu"), torch.float32, "smoke")
    assert len(set(seen)) == 1
