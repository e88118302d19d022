"""Training cost: backward MACs against torch's FlopCounterMode, the depthwise rule, optimizer arithmetic."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import archcost
from archcost.cost.training import OPTIMIZERS, analyze_training, backward_op_cost, simulate_step
from archcost.errors import InputError


def _flop_counter_backward(model: nn.Module, size: tuple[int, ...], batch: int) -> int:
    """FlopCounterMode's FLOPs of backward alone (2 per MAC), on meta tensors."""
    names = {k for k, _ in model.named_parameters()}
    state = {
        k: torch.empty(t.shape, device="meta", dtype=t.dtype, requires_grad=k in names)
        for k, t in [*model.named_parameters(), *model.named_buffers()]
    }
    flags = {m: m.training for m in model.modules()}
    try:
        model.train()
        out = torch.func.functional_call(model, state, (torch.empty((batch, *size), device="meta"),))
        with FlopCounterMode(display=False) as counter:
            out.sum().backward()
    finally:
        for m, flag in flags.items():
            m.training = flag
    return counter.get_total_flops()


@pytest.mark.parametrize("name", ["resnet18", "vgg11", "googlenet"])
def test_backward_macs_equal_flop_counter_without_grouped_convs(name):
    model = archcost.get_model(name)
    size = archcost.get_meta(name).input_size
    sim = simulate_step(model, size, 2)
    assert not sim.unsupported
    assert 2 * sum(c.macs for c in sim.backward) == _flop_counter_backward(model, size, 2)


def test_first_conv_pays_no_grad_input_and_others_pay_both():
    report = analyze_training(archcost.get_model("resnet18"), (3, 224, 224), 2)
    rows = {r.name: r for r in report.layers}
    assert rows["conv1"].backward_macs == rows["conv1"].macs  # weight gradient only: the image needs none
    conv = rows["conv2_x.0.conv2"]
    assert conv.backward_macs == 2 * conv.macs  # grad of input + grad of weight
    assert conv.backward_flops == 2 * conv.backward_macs  # no bias
    fc = rows["fc"]
    assert fc.backward_macs == 2 * (2 * 512 * 1000)  # grad input (2x1000 @ 1000x512) + grad weight (1000x2 @ 2x512)
    assert fc.backward_flops == 2 * fc.backward_macs + (2 - 1) * 1000  # bias gradient: sum over the batch of 2


def test_depthwise_rule_on_mobilenet_v2():
    """A depthwise conv's backward is twice its forward (groups counted), where FlopCounterMode, which
    ignores groups in convolution_backward, counts each channel against every other."""
    model = archcost.get_model("mobilenet_v2")
    report = analyze_training(model, (3, 224, 224), 1)
    depthwise = [r for r in report.layers if r.type == "Conv2d" and r.name.endswith("depthwise.conv")]
    assert depthwise, [r.name for r in report.layers][:20]
    for r in depthwise:
        c, h, w = r.output_shape[1:]
        k = 3
        assert r.macs == c * h * w * k * k  # one 3x3 filter per channel
        assert r.backward_macs == 2 * r.macs
    total = report.totals
    assert total["backward_macs"] < 2 * total["macs"]
    assert _flop_counter_backward(model, (3, 224, 224), 1) > 10 * 2 * total["backward_macs"] // 2


def test_backward_op_formulas_as_arithmetic():
    g = torch.empty(2, 64, 56, 56, device="meta")
    x = torch.empty(2, 32, 56, 56, device="meta")
    w = torch.empty(64, 32, 3, 3, device="meta")
    args = (g, x, w, [64], [1, 1], [1, 1], [1, 1], False, [0, 0], 1, [True, True, True])
    cost = backward_op_cost("convolution_backward", args, {}, (x, w, torch.empty(64, device="meta")))
    one = 2 * 56 * 56 * 64 * 32 * 3 * 3  # the forward's MACs
    assert cost.macs == 2 * one
    assert cost.flops == 2 * 2 * one + 2 * 64 * 56 * 56
    dw = torch.empty(32, 1, 3, 3, device="meta")
    g32 = torch.empty(2, 32, 56, 56, device="meta")
    args = (g32, x, dw, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 32, [False, True, False])
    assert backward_op_cost("convolution_backward", args, {}, (None, dw, None)).macs == 2 * 56 * 56 * 32 * 9
    a, b = torch.empty(8, 512, device="meta"), torch.empty(512, 1000, device="meta")
    assert backward_op_cost("mm", (a, b), {}, torch.empty(8, 1000, device="meta")).macs == 8 * 512 * 1000
    y = torch.empty(4, 10, device="meta")
    assert backward_op_cost("threshold_backward", (y, y, 0), {}, y).flops == 40
    assert backward_op_cost("some_new_op", (y,), {}, y) is None


def test_optimizer_flops_per_parameter():
    assert {k: (r.flops_per_param, r.states) for k, r in OPTIMIZERS.items()} == {
        "sgd": (1 + 1, 0),  # multiply by -lr, add
        "momentum": (1 + 2 + 2, 1),  # buf * momentum, + grad * (1 - dampening), param + buf * -lr
        "adam": (3 + 1 + 3 + 3 + 3, 2),  # lerp, mul, addcmul, sqrt/div/add, addcdiv
        "adamw": (1 + 13, 2),  # decoupled weight decay, then Adam
    }
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
    report = analyze_training(model, (3, 8, 8), 1, optimizer="momentum")
    assert report.totals["optimizer_flops"] == 5 * (8 * 3 * 9 + 8 + 288 * 10 + 10)
    # LeNet-5's output RBF centres are fixed (no gradient): the optimizer skips them
    lenet = analyze_training(archcost.get_model("lenet5"), (1, 32, 32), 1, optimizer="sgd")
    assert lenet.totals["optimizer_flops"] == 2 * (lenet.totals["params"] - 84 * 10)


def test_optimizer_state_and_gradients_in_the_peak():
    model = archcost.get_model("resnet20_cifar")
    sim = {o: simulate_step(model, (3, 32, 32), 1, optimizer=o) for o in ("sgd", "momentum", "adam")}
    param_bytes = sum(p.numel() for p in model.parameters()) * 4  # every parameter gets a gradient
    assert sim["adam"].param_bytes == param_bytes
    assert sim["adam"].gradient_bytes == param_bytes
    assert [sim[o].optimizer_state_bytes for o in ("sgd", "momentum", "adam")] == [0, param_bytes, 2 * param_bytes]
    assert sim["sgd"].peak_bytes <= sim["momentum"].peak_bytes <= sim["adam"].peak_bytes


def test_frozen_parameters_get_no_gradient_and_no_step():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3))
    model[0].weight.requires_grad_(False)
    model[0].bias.requires_grad_(False)
    report = analyze_training(model, (3, 16, 16), 1)
    first, last = report.layers[0], report.layers[-1]
    assert first.backward_macs == 0 and first.optimizer_flops == 0  # nothing upstream needs a gradient
    assert last.backward_macs == last.macs  # its weight's gradient only: no layer before it trains
    assert report.training_memory["gradient_bytes"] == (8 * 4 * 9 + 4) * 4
    assert model[0].weight.requires_grad is False and model.training  # the caller's model is as it was


def test_bad_input():
    model = nn.Sequential(nn.Conv2d(3, 8, 3))
    with pytest.raises(InputError, match="sgd, momentum, adam, adamw"):
        simulate_step(model, (3, 8, 8), optimizer="lamb")
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(InputError, match="no trainable parameters"):
        simulate_step(model, (3, 8, 8))
    with pytest.raises(InputError, match="floating-point"):
        simulate_step(nn.Conv2d(3, 8, 3), (3, 8, 8), dtype="int8")


def test_inference_json_has_no_training_keys_and_training_json_has_them():
    model = archcost.get_model("lenet5")
    infer = archcost.analyze(model, (1, 32, 32)).to_dict()
    assert "training_peak_bytes" not in infer and "backward_macs" not in infer["totals"]
    assert all("backward_macs" not in r for r in infer["layers"])
    train = analyze_training(model, (1, 32, 32), 1).to_dict()
    assert train["mode"] == "train" and train["optimizer"] == "adam"
    assert {"backward_macs", "backward_flops", "optimizer_flops"} <= set(train["totals"])
    assert train["training_peak_bytes"] > train["training_memory"]["param_bytes"] * 4


def test_analyze_mode_train_is_the_training_analysis():
    from archcost import analyze, get_model
    from archcost.cost.training import analyze_training

    model = get_model("resnet20_cifar")
    via_mode = analyze(model, (3, 32, 32), mode="train", optimizer="sgd")
    direct = analyze_training(model, (3, 32, 32), optimizer="sgd")
    assert via_mode.totals == direct.totals and via_mode.training_peak_bytes == direct.training_peak_bytes
    assert via_mode.totals["optimizer_flops"] == 2 * via_mode.totals["params"]  # SGD: w -= lr * g, 2 per parameter
