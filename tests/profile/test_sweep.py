"""The sweep on the CPU with tiny models: structure of the records, OOM, unsupported dtypes, errors, Ctrl-C.

Nothing here depends on how fast the machine is: settings are tiny (min-time 0.01 s) and the assertions
are about which fields are filled and how, never about the timings' values.
"""

import json
import re

import pytest
import torch

from archcost.errors import InputError, UnknownModelError
from archcost.profiling import profile
from archcost.profiling.environment import cpu_name
from archcost.profiling.results import FIELDS, SCHEMA, read_results
from archcost.profiling.roofline import DevicePeaks, peaks_key, store
from archcost.profiling.sweep import (
    DeviceError,
    carry_over,
    classify_failure,
    is_oom,
    parse_batch_sizes,
    resolve_device,
)
from tests.profile.models import Broken, CtrlC, NoHalf, OomAbove, TwoLayer

FAST = {"device": "cpu", "warmup_s": 0.0, "min_time_s": 0.01, "repeats": 3, "roofline": False}


# -- pure decisions -------------------------------------------------------------------------------------


def test_device_auto_picks_cuda_only_when_available():
    assert resolve_device("auto", cuda_available=False) == torch.device("cpu")
    assert resolve_device("auto", cuda_available=True, cuda_count=1) == torch.device("cuda", 0)
    assert resolve_device("cuda:1", cuda_available=True, cuda_count=2) == torch.device("cuda", 1)
    assert resolve_device("CPU") == torch.device("cpu")


def test_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(DeviceError, match="CUDA is not available") as info:
        resolve_device("cuda", cuda_available=False)
    assert info.value.exit_code == 2 and "--device cpu" in info.value.hint
    with pytest.raises(DeviceError, match="1 CUDA device"):
        resolve_device("cuda:1", cuda_available=True, cuda_count=1)
    with pytest.raises(InputError, match="unknown device"):
        resolve_device("tpu")


def test_batch_sizes_are_sorted_and_checked():
    assert parse_batch_sizes("8, 1,4,4") == [1, 4, 8]
    assert parse_batch_sizes([2, 1]) == [1, 2]
    for bad in ("1,x", "0", "", "1,-2"):
        with pytest.raises(InputError):
            parse_batch_sizes(bad)


@pytest.mark.parametrize(
    ("exc", "dtype", "status"),
    [
        (torch.cuda.OutOfMemoryError("CUDA out of memory"), "float32", "oom"),
        (MemoryError(), "float32", "oom"),
        (
            RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1e12 bytes"),
            "float32",
            "oom",
        ),
        (RuntimeError("CUDNN_STATUS_ALLOC_FAILED"), "float16", "oom"),
        (RuntimeError("\"addmm_impl_cpu_\" not implemented for 'Half'"), "float16", "unsupported"),
        (RuntimeError("bfloat16 is not supported on this device"), "bfloat16", "unsupported"),
        (
            RuntimeError("\"addmm_impl_cpu_\" not implemented for 'Half'"),
            "float32",
            "error",
        ),  # float32 is no dtype issue
        (ValueError("shapes do not match"), "float16", "error"),
    ],
)
def test_failures_are_classified(exc, dtype, status):
    assert classify_failure(exc, dtype) == status
    assert is_oom(exc) == (status == "oom")


def test_what_larger_batches_get_after_a_failure():
    assert carry_over("oom", 16, "x") == ("oom", "not run: batch 16 already ran out of memory")
    assert carry_over("unsupported", 1, "no Half kernel") == ("unsupported", "no Half kernel")
    assert carry_over("error", 1, "x") is None and carry_over("ok", 1, "") is None


# -- runs on the CPU ----------------------------------------------------------------------------------------


def test_a_tiny_cpu_run_fills_every_field_it_should():
    model = TwoLayer()
    df = profile(model, batch_sizes="1,2", **FAST)
    assert list(df.columns) == list(FIELDS)
    assert list(df["batch_size"]) == [1, 2] and set(df["status"]) == {"ok"}
    assert df.attrs["interrupted"] is False
    for r in df.to_dict(orient="records"):
        assert r["schema"] == SCHEMA and r["model"] == "TwoLayer" and r["input_shape"] == "3x8x8"
        assert r["device"] == "cpu" and r["dtype"] == "float32" and r["threads"] == torch.get_num_threads()
        assert r["samples"] == 3 and r["iterations_per_sample"] >= 1 and r["timer"] == "time.perf_counter_ns"
        assert r["latency_p10_s"] <= r["latency_median_s"] <= r["latency_p90_s"]
        assert r["throughput_ips"] == pytest.approx(r["batch_size"] / r["latency_median_s"])
        assert r["latency_cv"] >= 0
        # analytic columns: a 3x3 conv of 3 -> 4 channels on 8x8, plus the relu
        macs = r["batch_size"] * (3 * 3 * 3) * 8 * 8 * 4
        assert r["macs"] == macs
        assert r["flops"] == 2 * macs + r["batch_size"] * 4 * 8 * 8 * 2  # + bias and relu, 1 each per output
        assert r["achieved_flops_per_s"] == pytest.approx(r["flops"] / r["latency_median_s"])
        assert r["percent_of_peak"] is None or r["percent_of_peak"] != r["percent_of_peak"]  # roofline off
        # memory: measured through the profiler, with the input counted in the activation peak
        input_bytes = r["batch_size"] * 3 * 8 * 8 * 4
        assert r["memory_method"] == "torch.profiler memory events"
        assert r["memory_activation_peak_bytes"] >= input_bytes
        assert r["memory_peak_bytes"] == r["memory_activation_peak_bytes"] + (4 * 3 * 3 * 3 + 4) * 4  # + weights
        # power: absent on the CPU, with the reason
        assert r["power_mean_w"] != r["power_mean_w"] or r["power_mean_w"] is None
        assert "CPU" in r["power_note"]
        # environment
        assert r["env_torch"] == torch.__version__ and r["env_device_name"] and r["env_archcost"]
        assert r["env_cudnn_benchmark"] is None  # only set (and recorded) on CUDA
    assert next(model.parameters()).device.type == "cpu" and model.conv.weight.dtype == torch.float32


def test_roofline_fields_with_cached_peaks(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHCOST_CACHE_DIR", str(tmp_path))
    key = peaks_key(cpu_name(), "cpu", "float32", torch.get_num_threads(), torch.__version__)
    store(DevicePeaks(key, flops_per_s=1e11, bytes_per_s=1e10, gemm_n=2048, copy_bytes=256 * 10**6))
    df = profile(TwoLayer(), batch_sizes=[1], **{**FAST, "roofline": True})
    r = df.iloc[0]
    assert r["peak_flops_per_s"] == 1e11 and r["peak_bytes_per_s"] == 1e10 and r["ridge_point"] == 10
    assert r["percent_of_peak"] == pytest.approx(100 * r["achieved_flops_per_s"] / 1e11)
    assert r["arithmetic_intensity"] == pytest.approx(r["flops"] / r["traffic_bytes"])
    assert r["bound"] == ("compute" if r["arithmetic_intensity"] >= 10 else "memory")


def test_oom_marks_that_batch_and_larger_ones_and_the_next_model_still_runs(tmp_path):
    oom = OomAbove(limit=2)
    results = tmp_path / "results.jsonl"
    df = profile([oom, TwoLayer()], batch_sizes="1,2,4,8", results_file=results, **FAST)
    got = [(m, b, s) for m, b, s in zip(df["model"], df["batch_size"], df["status"], strict=True)]
    assert got == [
        ("OomAbove", 1, "ok"),
        ("OomAbove", 2, "ok"),
        ("OomAbove", 4, "oom"),
        ("OomAbove", 8, "oom"),
        ("TwoLayer", 1, "ok"),
        ("TwoLayer", 2, "ok"),
        ("TwoLayer", 4, "ok"),
        ("TwoLayer", 8, "ok"),
    ]
    assert 8 not in oom.calls  # batch 8 was not tried after batch 4 ran out
    assert "out of memory" in df["error"][2] and "batch 4 already ran out" in df["error"][3]
    assert df["latency_median_s"].isna()[2:4].all()
    # every record went to the results file as it was measured
    assert len(read_results(results)) == 8


def test_unsupported_dtype_is_recorded_and_the_rest_is_measured():
    df = profile([NoHalf(), TwoLayer()], batch_sizes="1,2", dtype="float16", **FAST)
    assert list(df["status"]) == ["unsupported", "unsupported", "ok", "ok"]
    assert "not implemented for 'Half'" in df["error"][0]
    assert set(df["dtype"]) == {"float16"}


def test_a_forward_that_raises_is_an_error_record_not_a_crash():
    df = profile([Broken(), TwoLayer()], batch_sizes=[1], **FAST)
    assert list(df["status"]) == ["error", "ok"]
    assert df["error"][0] == "ValueError: shapes do not match"


def test_ctrl_c_keeps_what_was_measured(tmp_path):
    results = tmp_path / "r.jsonl"
    df = profile([TwoLayer(), CtrlC(at=4), TwoLayer()], batch_sizes="1,4", results_file=results, **FAST)
    assert df.attrs["interrupted"] is True
    measured = list(zip(df["model"], df["batch_size"], strict=True))
    assert measured == [("TwoLayer", 1), ("TwoLayer", 4), ("CtrlC", 1)]
    assert [json.loads(line)["model"] for line in results.read_text().splitlines()] == ["TwoLayer", "TwoLayer", "CtrlC"]
    assert torch.get_num_threads() >= 1


def test_threads_are_set_for_the_run_and_restored():
    before = torch.get_num_threads()
    df = profile(TwoLayer(), threads=1, **FAST)
    assert df["threads"][0] == 1 and df["env_threads"][0] == 1
    assert torch.get_num_threads() == before


def test_channels_last_and_a_zoo_model_by_name():
    df = profile("lenet5", channels_last=True, **FAST)
    r = df.iloc[0]
    assert r["status"] == "ok" and r["channels_last"] and r["model_source"] == "zoo"
    assert r["model_file"].endswith("lenet.py")
    assert r["macs"] > 0 and r["memory_estimate_bytes"] > 0


def test_bad_settings_fail_before_anything_runs():
    with pytest.raises(InputError):
        profile(TwoLayer(), **{**FAST, "dtype": "int8"})
    with pytest.raises(InputError):
        profile(TwoLayer(), **{**FAST, "repeats": 0})
    with pytest.raises(UnknownModelError, match="no_such_model"):
        profile(["lenet5", "no_such_model"], **FAST)


def test_progress_bar_names_the_model_and_batch_on_stderr(capsys):
    profile(TwoLayer(), batch_sizes="1,2", progress=True, **FAST)
    out, err = capsys.readouterr()
    assert out == "" and "TwoLayer batch 2" in err


def test_the_model_file_and_its_commit_are_recorded():
    r = profile("lenet5", **FAST).iloc[0]
    assert r["model_file"].endswith("archcost/zoo/lenet.py")
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", r["model_commit"])  # this checkout is a git repository
