"""archcost maxbatch: the largest batch whose estimated peak fits, consistent with the peak at N and N + 1."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import archcost
from archcost.cli import main
from archcost.cost.training import estimated_peak, max_batch, simulate_step
from archcost.errors import InputError


def test_search_on_known_curves():
    found = max_batch(lambda n: 1000 + 300 * n, 10_000)
    assert found.batch_size == (10_000 - 1000) // 300  # 30: 1000 + 300 * 30 = 10,000 fits exactly
    convex = max_batch(lambda n: max(5000, 100 + 50 * n * n), 100_000)
    assert 100 + 50 * 44**2 <= 100_000 < 100 + 50 * 45**2 and convex.batch_size == 44
    with pytest.raises(InputError, match="one sample needs an estimated 1,300 bytes"):
        max_batch(lambda n: 1000 + 300 * n, 1200)


@pytest.mark.parametrize("mode", ["train", "infer"])
def test_maxbatch_agrees_with_the_peak_at_n_and_n_plus_1(mode, capsys):
    model = archcost.get_model("resnet20_cifar")
    limit = 50_000_000
    assert main(["maxbatch", "resnet20_cifar", "--memory", "50MB", "--mode", mode, "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    n = out["batch_size"]
    assert out["memory_limit_bytes"] == limit
    peak_n = estimated_peak(model, (3, 32, 32), n, mode=mode)
    assert out["estimated_peak_bytes"] == peak_n <= limit
    assert estimated_peak(model, (3, 32, 32), n + 1, mode=mode) > limit
    if mode == "train":
        assert peak_n == simulate_step(model, (3, 32, 32), n).peak_bytes  # the figure table --mode train shows


def test_bad_input_exits_2_without_traceback(capsys):
    assert main(["maxbatch", "resnet20_cifar", "--memory", "1KB"]) == 2
    err = capsys.readouterr().err
    assert "one sample needs an estimated" in err and "1,000 bytes" in err and "Traceback" not in err
    assert main(["maxbatch", "resnet20_cifar", "--memory", "1GB", "--optimizer", "lamb"]) == 2
    assert "use one of sgd, momentum, adam, adamw" in capsys.readouterr().err


def test_model_without_trainable_parameters(tmp_path, capsys):
    path = tmp_path / "frozen.py"
    path.write_text(
        "import torch\n"
        "def build():\n"
        "    m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))\n"
        "    m.requires_grad_(False)\n"
        "    return m\n"
    )
    assert main(["maxbatch", f"{path}:build", "--memory", "1GB", "--input-size", "3x8x8"]) == 2
    assert "no trainable parameters" in capsys.readouterr().err
    assert main(["maxbatch", f"{path}:build", "--memory", "1GB", "--input-size", "3x8x8", "--mode", "infer"]) == 0


def test_table_train_mode_json(capsys):
    assert main(["table", "resnet20_cifar", "--mode", "train", "--optimizer", "sgd", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["mode"] == "train" and doc["optimizer"] == "sgd"
    assert doc["totals"]["optimizer_flops"] == 2 * doc["totals"]["params"]
    assert doc["totals"]["backward_macs"] == 2 * doc["totals"]["macs"] - doc["layers"][0]["macs"]  # first conv
    assert doc["training_peak_bytes"] >= doc["training_memory"]["param_bytes"] * 2


@pytest.mark.slow
def test_cpu_training_step_timed_and_measured():
    from archcost.profiling.train_step import measured_training_peak, time_train_step

    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 30 * 30, 10))
    before = [p.detach().clone() for p in model.parameters()]
    x = torch.randn(4, 3, 32, 32)
    r = time_train_step(model, x, "adam", warmup_s=0.0, min_time_s=0.0, repeats=3)
    assert r["mode"] == "train" and r["timing"].stats.samples == 3
    for key in ("forward_median_s", "backward_median_s", "optimizer_median_s", "latency_median_s"):
        assert r[key] > 0
    assert r["forward_median_s"] < r["latency_median_s"]
    amp = time_train_step(model, x, "sgd", amp=True, warmup_s=0.0, min_time_s=0.0, repeats=2)
    assert amp["amp"] and amp["latency_median_s"] > 0
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))  # the caller's model
    measured = measured_training_peak(model, x, "adam")
    estimated = simulate_step(model, (3, 32, 32), 4).peak_bytes
    assert abs(estimated / measured - 1) < 0.15
