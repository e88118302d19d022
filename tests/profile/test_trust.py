"""Timings a user can trust: the caller's model never changes, flags and warnings, output paths checked first."""

import importlib
import json

import pytest
import torch
from torch import nn

from archcost.cli import main
from archcost.errors import InputError
from archcost.profiling import profile, render
from archcost.profiling.outcome import flags_and_warnings
from archcost.profiling.roofline import STALE_PEAKS, roofline_fields
from archcost.profiling.sweep import check_writable

FAST = {"device": "cpu", "warmup_s": 0.0, "min_time_s": 0.01, "repeats": 3, "roofline": False}


class Caching(nn.Module):
    """Caches a grid tensor on itself in forward (YOLO-style), counts its calls, and has a BN buffer."""

    input_size = (3, 8, 8)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.grid = None
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.grid is None or self.grid.shape[-2:] != x.shape[-2:]:
            self.grid = torch.zeros(x.shape[-2:], dtype=x.dtype, device=x.device)
        return self.bn(self.conv(x)) + self.grid


def snapshot(model: nn.Module) -> dict:
    """Everything a measurement could change: tensors (values, dtype, device, layout), attributes, flags."""

    def value(v):
        if isinstance(v, torch.Tensor):
            return ("tensor", v.detach().clone(), v.dtype, v.device, v.stride(), v.is_contiguous())
        return ("value", repr(v))

    out = {}
    for path, m in model.named_modules():
        for key, v in vars(m).items():
            if key in ("_parameters", "_buffers"):
                for name, t in v.items():
                    out[f"{path}.{key}.{name}"] = value(t)
            elif key not in ("_modules",) and not key.startswith("_forward") and not key.startswith("_backward"):
                out[f"{path}.{key}"] = value(v)
        out[f"{path}.training"] = ("value", m.training)
        out[f"{path}.hooks"] = ("value", (len(m._forward_hooks), len(m._forward_pre_hooks)))
    return out


def assert_same(before: dict, after: dict) -> None:
    assert before.keys() == after.keys()
    for key in before:
        a, b = before[key], after[key]
        if a[0] == "tensor":
            assert b[0] == "tensor", key
            assert a[2:] == b[2:], key  # dtype, device, strides, contiguity
            assert torch.equal(a[1], b[1]), key  # bit for bit: no rounding through bfloat16
        else:
            assert a == b, key


@pytest.mark.parametrize(
    "settings",
    [
        {"dtype": "bfloat16"},
        {"channels_last": True},
        {"dtype": "bfloat16", "channels_last": True, "layers": True},
    ],
)
def test_the_callers_model_never_changes(settings):
    model = Caching()
    model.train()  # in training mode, with a cached grid from an earlier forward
    with torch.no_grad():
        model(torch.randn(2, 3, 8, 8))
    model.conv.weight.data += 1e-3 * torch.randn_like(model.conv.weight)  # values bfloat16 cannot hold exactly
    before = snapshot(model)
    df = profile(model, batch_sizes="1,2", **FAST, **settings)
    assert set(df["status"]) == {"ok"}, df["error"].tolist()
    assert_same(before, snapshot(model))
    assert model.training and model.conv.training and model.calls == 1
    assert model.grid.dtype == torch.float32 and model.grid.device.type == "cpu"


# -- flags and warnings -------------------------------------------------------------------------------------


def test_flags_say_what_to_do():
    out = {"latency_cv": 0.59, "warmup_settled": False, "percent_of_peak": 156.7, "layer_time_sum_ratio": 0.7}
    flags, warnings = flags_and_warnings({**out, "cpu_steal_fraction": 0.12})
    assert flags == ["cv_high", "warmup_unsettled", "peaks_stale", "layer_sum_off", "cpu_stolen"]
    assert "12%" in warnings[4] and "steal" in warnings[4]
    assert "59%" in warnings[0] and "--warmup" in warnings[1] and "--recalibrate" in warnings[2]
    assert "70%" in warnings[3]
    assert flags_and_warnings({"latency_cv": 0.05, "warmup_settled": True, "percent_of_peak": 99.0}) == ([], [])
    assert flags_and_warnings({"layer_time_sum_ratio": 1.14})[0] == []  # within 15%
    assert flags_and_warnings({"cpu_steal_fraction": 0.05})[0] == []  # 5% stolen is not flagged
    assert flags_and_warnings({"layers": [{"percent_of_peak": 130.0}]})[0] == ["peaks_stale"]


def test_percent_of_peak_above_100_says_the_peaks_are_stale():
    over = roofline_fields(2e9, 1e8, 1.0, peak_flops_per_s=1e9, peak_bytes_per_s=1e9)
    assert over["percent_of_peak"] == 200 and STALE_PEAKS in over["roofline_note"]
    assert "--recalibrate" in STALE_PEAKS
    under = roofline_fields(5e8, 1e8, 1.0, peak_flops_per_s=1e9, peak_bytes_per_s=1e9)
    assert under["roofline_note"] is None


def test_a_noisy_run_is_flagged_in_every_output(monkeypatch):
    outcome = importlib.import_module("archcost.profiling.outcome")  # flags_and_warnings reads its CV_LIMIT
    monkeypatch.setattr(outcome, "CV_LIMIT", -1.0)  # any spread is "too much": the flag must reach the outputs
    df = profile(Caching(), **FAST)
    r = df.iloc[0]
    assert "cv_high" in r["flags"] and r["warnings"]
    assert "WARNING Caching@1: latency CV" in render(df, "text")
    assert json.loads(render(df, "json"))[0]["flags"][0] == "cv_high"
    assert "cv_high" in render(df, "csv")


def test_the_text_output_shows_input_dtype_device_and_threads():
    text = render(profile(Caching(), threads=1, **FAST), "text")
    assert "3x8x8" in text and "dtype float32" in text and "device cpu" in text and "threads 1" in text


# -- output paths are checked before anything is measured ----------------------------------------------------


def test_check_writable(tmp_path):
    check_writable(tmp_path / "new.json")
    with pytest.raises(InputError, match="does not exist") as info:
        check_writable(tmp_path / "no_such_folder" / "r.jsonl", "results file")
    assert "nothing was measured" in info.value.hint
    with pytest.raises(InputError, match="is a folder"):
        check_writable(tmp_path)


def test_a_typo_in_the_results_folder_fails_before_measuring(tmp_path):
    model = Caching()
    with pytest.raises(InputError, match="does not exist"):
        profile(model, results_file=tmp_path / "typo" / "r.jsonl", **FAST)
    assert model.calls == 0  # the model never ran


@pytest.mark.parametrize("flag", ["--output", "--append"])
def test_cli_checks_output_paths_first(capsys, tmp_path, flag, monkeypatch):
    api = importlib.import_module("archcost.profiling")  # the package (archcost.profile is also the function)

    def must_not_run(*args, **kwargs):
        raise AssertionError("measured before checking the output path")

    monkeypatch.setattr(api, "profile", must_not_run)
    code = main(["profile", "tests.profile.models:TwoLayer", flag, str(tmp_path / "typo" / "out.json")])
    out, err = capsys.readouterr()
    assert code == 2 and "does not exist" in err and "Traceback" not in err


# -- --isolate: each model in a fresh process ---------------------------------------------------------------


def test_isolate_measures_in_a_fresh_process_and_survives_a_crash():
    df = profile(
        ["tests.profile.models:TwoLayer", "tests.profile.models:Crashes"], isolate=True, batch_sizes="1,2", **FAST
    )
    assert list(zip(df["model"], df["batch_size"], df["status"], strict=True)) == [
        ("TwoLayer", 1, "ok"),
        ("TwoLayer", 2, "ok"),
        ("tests.profile.models:Crashes", 1, "error"),
        ("tests.profile.models:Crashes", 2, "error"),
    ]
    assert df["latency_median_s"][0] > 0 and df["macs"][0] == 3 * 3 * 3 * 8 * 8 * 4
    assert "exited with code 3" in df["error"][2]


def test_isolate_needs_a_spec_not_a_module():
    with pytest.raises(InputError, match="fresh process"):
        profile(Caching(), isolate=True, **FAST)
