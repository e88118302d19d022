"""One name per setting: ProfileConfig, profile()'s keywords, the --isolate child's request and bench's keys."""

import dataclasses
import json

import pytest
import torch

from archcost.bench.collect import BENCH_SETS, PROFILE_KEYS
from archcost.profiling import ProfileConfig, profile
from archcost.profiling.config import DEPRECATED, SETTINGS, from_json, settings
from archcost.profiling.isolated import child_request
from archcost.profiling.steps import RunContext

FAST = {"device": "cpu", "warmup_s": 0.0, "min_time_s": 0.001, "repeats": 2, "roofline": False, "power": False}


def test_every_name_is_a_field_of_the_config():
    fields = [f.name for f in dataclasses.fields(ProfileConfig)]
    assert list(SETTINGS) == fields
    assert set(PROFILE_KEYS) | set(BENCH_SETS) == set(fields) and not set(PROFILE_KEYS) & set(BENCH_SETS)
    assert set(DEPRECATED.values()) <= set(fields) and not set(DEPRECATED) & set(fields)


def test_keywords_replace_the_configs_settings():
    base = ProfileConfig(device="cpu", repeats=7, threads=2)
    config = settings(base, repeats=3, min_time_s=0.5)
    assert (config.device, config.threads, config.repeats, config.min_time_s) == ("cpu", 2, 3, 0.5)
    assert base.repeats == 7  # the caller's config is not changed


def test_old_names_warn_naming_the_new_one():
    with pytest.warns(DeprecationWarning, match=r"use warmup_s="):
        config = settings(warmup=0.25)
    assert config.warmup_s == 0.25
    with pytest.raises(TypeError, match="both min_time= and min_time_s="):
        settings(min_time=0.1, min_time_s=0.2)


def test_a_name_that_is_no_setting_is_a_type_error():
    with pytest.raises(TypeError, match="warmup_seconds"):
        settings(warmup_seconds=1)
    with pytest.raises(TypeError, match="warmup_seconds"):
        profile("lenet5", warmup_seconds=1)


def test_profile_takes_a_config_and_keywords_of_the_same_names():
    config = ProfileConfig(batch_sizes=(1, 2), memory=False, **FAST)
    df = profile("tests.profile.models:TwoLayer", config, batch_sizes=[2])
    assert list(df["batch_size"]) == [2] and list(df["status"]) == ["ok"]
    assert df.iloc[0]["min_time_s"] == FAST["min_time_s"]
    with pytest.warns(DeprecationWarning, match="min_time_s"):
        old = profile("tests.profile.models:TwoLayer", config, min_time=0.002)
    assert old.iloc[0]["min_time_s"] == 0.002


def test_the_childs_request_is_the_config_as_asdict_writes_it():
    config = ProfileConfig(dtype="bfloat16", threads=1, quantized_engine="qnnpack", mode="train", amp=False)
    ctx = RunContext(config, torch.device("cpu"), (1, 4), torch.bfloat16, {}, None, "roofline off", "run")
    request = json.loads(json.dumps(child_request("lenet5", ctx)))
    assert set(request["config"]) == set(SETTINGS)
    back = from_json(request["config"])
    assert back == dataclasses.replace(config, batch_sizes=(1, 4), device="cpu", isolate=False)
    assert back.quantized_engine == "qnnpack"


def test_the_quantized_engine_reaches_the_isolated_child():
    engine = next(
        e for e in torch.backends.quantized.supported_engines if e not in ("none", torch.backends.quantized.engine)
    )
    df = profile("tests.profile.models:TwoLayer", isolate=True, quantized_engine=engine, memory=False, **FAST)
    assert list(df["status"]) == ["ok"]
    assert list(df["env_quantized_engine"]) == [engine]


def test_the_huge_page_setting_is_recorded(tmp_path, monkeypatch):
    """Large CPU outputs are faulted in page by page: the kernel's THP mode and torch's THP_MEM_ALLOC_ENABLE
    change latency several times over on a VM, so every record says which were in force."""
    from archcost.profiling.environment import environment, huge_pages

    mode_file = tmp_path / "enabled"
    mode_file.write_text("always [madvise] never\n")
    monkeypatch.setenv("THP_MEM_ALLOC_ENABLE", "1")
    assert huge_pages(mode_file) == ("madvise", True)
    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE")
    assert huge_pages(tmp_path / "missing") == (None, False)
    env = environment(torch.device("cpu"), threads=1, dtype="float32", cudnn_benchmark=None)
    assert env["env_torch_thp"] is False and "env_thp" in env
