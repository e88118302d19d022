"""profile(mode="train") and `archcost profile --mode train`: a timed CPU training step on a tiny model."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from archcost.cli import main
from archcost.cost.training import training_peak_bytes
from archcost.errors import InputError
from archcost.profiling import FIELDS, profile

FAST = dict(device="cpu", warmup_s=0.0, min_time_s=0.0, repeats=3, roofline=False, power=False)


def _tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))


def test_training_step_record_has_the_mode_and_phase_medians():
    model = _tiny().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    df = profile(model, mode="train", optimizer="momentum", input_size=(3, 8, 8), batch_sizes=[2], **FAST)
    assert {"mode", "optimizer", "amp", "forward_median_s", "backward_median_s", "optimizer_median_s"} <= set(FIELDS)
    r = df.to_dict(orient="records")[0]
    assert r["status"] == "ok", r["error"]
    assert (r["mode"], r["optimizer"], r["amp"], r["samples"]) == ("train", "momentum", False, 3)
    for phase in ("forward_median_s", "backward_median_s", "optimizer_median_s"):
        # each sample's step time holds its three phases (same clock on the CPU), so every phase's median
        # is at most the step's median
        assert 0 < r[phase] <= r["latency_median_s"]
    assert r["throughput_ips"] == pytest.approx(2 / r["latency_median_s"])
    assert r["memory_estimate_bytes"] == training_peak_bytes(model, (3, 8, 8), 2, optimizer="momentum")
    assert r["memory_peak_bytes"] > sum(p.numel() for p in model.parameters()) * 4 * 3  # weights, grads, momentum
    assert "no roofline" in r["roofline_note"]
    # the caller's model: weights and flag as they were (the sweep trains its own copy)
    assert not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_inference_stays_the_default_and_says_so():
    df = profile(_tiny(), input_size=(3, 8, 8), **FAST)
    r = df.to_dict(orient="records")[0]
    assert r["status"] == "ok" and r["mode"] == "infer"
    assert r["optimizer"] is None and r["forward_median_s"] is None


def test_amp_on_the_cpu_is_bfloat16_autocast():
    from archcost.profiling.train_step import TrainStep, time_train_step

    step = TrainStep(_tiny(), torch.randn(2, 3, 8, 8), "sgd", amp=True)
    seen = []
    handle = step.model[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    step.run()
    handle.remove()
    assert seen == [torch.bfloat16] and step.scaler is None  # a GradScaler on CUDA only
    assert next(step.model.parameters()).dtype == torch.float32  # float32 weights
    r = time_train_step(_tiny(), torch.randn(2, 3, 8, 8), "sgd", amp=True, warmup_s=0.0, min_time_s=0.0, repeats=2)
    assert r["amp"] and r["timing"].stats.samples == 2 and r["latency_median_s"] > 0


def test_bad_training_settings_fail_before_measuring():
    model = _tiny()
    with pytest.raises(InputError, match="sgd, momentum, adam, adamw"):
        profile(model, mode="train", optimizer="lamb", **FAST)
    with pytest.raises(InputError, match="--amp is for --mode train"):
        profile(model, amp=True, **FAST)
    with pytest.raises(InputError, match="float32 weights"):
        profile(model, mode="train", amp=True, dtype="bfloat16", **FAST)
    with pytest.raises(InputError, match="--layers"):
        profile(model, mode="train", layers=True, **FAST)
    with pytest.raises(InputError, match="unknown mode"):
        profile(model, mode="training", **FAST)
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(InputError, match="no trainable parameters"):
        profile(model, mode="train", **FAST)


def test_cli_profile_mode_train_json(capsys, tmp_path):
    results = tmp_path / "r.jsonl"
    args = ["profile", "lenet5", "--mode", "train", "--optimizer", "sgd", "--device", "cpu", "--warmup", "0"]
    args += ["--min-time", "0", "--repeats", "2", "--no-roofline", "--no-power", "--format", "json"]
    assert main([*args, "--append", str(results)]) == 0
    (r,) = json.loads(capsys.readouterr().out)
    assert (r["mode"], r["optimizer"], r["status"]) == ("train", "sgd", "ok")
    assert json.loads(results.read_text())["mode"] == "train"
    assert main(["profile", "lenet5", "--amp", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "--amp is for --mode train" in err and "Traceback" not in err
