"""The crawler: rows, attribution, parameters, bytes, errors, and leaving the caller's model alone."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archcost.cost import analyze
from archcost.errors import AnalysisError, InputError
from tests.fixtures.usermodels import RaisesInForward, TinyResNet, Unsupported


def flop_counter_macs(model: nn.Module, size, batch=1) -> int:
    """torch's own count (2 per MAC of conv/linear/matmul), halved."""
    state = {k: torch.empty_like(v, device="meta") for k, v in [*model.named_parameters(), *model.named_buffers()]}
    was = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            torch.func.functional_call(model, state, (torch.empty(batch, *size, device="meta"),))
    finally:
        model.train(was)
    return counter.get_total_flops() // 2


def test_rows_for_functional_ops_are_attributed_to_their_module():
    report = analyze(TinyResNet(), (3, 8, 8))
    names = [r.name for r in report.layers]
    assert names == ["stem", "relu", "conv_a", "bn_a", "add", "branch", "cat", "adaptive_avg_pool2d", "flatten", "fc"]
    by_name = {r.name: r for r in report.layers}
    assert by_name["add"].kind == "op" and by_name["add"].flops == 16 * 8 * 8
    assert by_name["cat"].output_shape == (1, 24, 8, 8)
    assert by_name["cat"].flops == 0
    # the concat consumed the add's output and the branch conv's output
    assert {report.layers[i].name for i in by_name["cat"].sources} == {"add", "branch"}


def test_params_total_equals_numel_and_macs_equal_flop_counter():
    model = TinyResNet()
    report = analyze(model, (3, 16, 16), batch_size=3)
    assert report.totals["params"] == sum(p.numel() for p in model.parameters())
    assert report.totals["macs"] == flop_counter_macs(model, (3, 16, 16), batch=3)


def test_model_is_left_untouched_even_when_forward_raises():
    for model in (TinyResNet(), RaisesInForward()):
        model.train()
        model.bn_a.eval() if hasattr(model, "bn_a") else None
        before = {k: v.clone() for k, v in model.state_dict().items()}
        flags = {n: m.training for n, m in model.named_modules()}
        try:
            analyze(model, (3, 16, 16))
        except AnalysisError:
            pass
        after = model.state_dict()
        assert before.keys() == after.keys()
        assert all(torch.equal(before[k], after[k]) and after[k].device.type == "cpu" for k in before)
        assert flags == {n: m.training for n, m in model.named_modules()}
        for m in model.modules():
            assert not m._forward_hooks and not m._forward_pre_hooks


def test_forward_error_names_the_layer_and_shapes():
    with pytest.raises(AnalysisError) as err:
        analyze(TinyResNet(), (1, 16, 16))  # wrong channel count
    assert "stem (Conv2d)" in str(err.value) and "[1, 1, 16, 16]" in str(err.value)
    with pytest.raises(AnalysisError, match="refuses to run"):
        analyze(RaisesInForward(), (3, 16, 16))


def test_input_too_small_names_the_layer():
    net = nn.Sequential(nn.Conv2d(3, 4, 5), nn.MaxPool2d(2), nn.Conv2d(4, 4, 5))
    with pytest.raises(AnalysisError, match=r"2 \(Conv2d\)"):
        analyze(net, (3, 8, 8))


def test_bad_sizes_and_dtype():
    with pytest.raises(InputError):
        analyze(nn.Conv2d(3, 3, 1), (3, 0, 8))
    with pytest.raises(InputError):
        analyze(nn.Conv2d(3, 3, 1), (3, 8, 8), batch_size=0)
    with pytest.raises(InputError, match="unknown dtype"):
        analyze(nn.Conv2d(3, 3, 1), (3, 8, 8), dtype="float13")


def test_unsupported_op_is_listed_never_silently_zero():
    report = analyze(Unsupported(), (3, 8, 8))
    assert [(u.layer, u.op) for u in report.unsupported] == [("special_i0", "special_i0")]
    assert not next(r for r in report.layers if r.name == "special_i0").supported


def test_custom_leaf_module_is_costed_from_its_ops():
    class ScaledConv(nn.Module):  # a leaf with its own parameters used functionally
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(8, 3, 3, 3))
            self.scale = nn.Parameter(torch.ones(1))

        def forward(self, x):
            return F.conv2d(x, self.weight * self.scale)

    report = analyze(ScaledConv(), (3, 10, 10))
    (row,) = report.layers
    assert row.params == 8 * 3 * 3 * 3 + 1
    assert row.macs == 8 * 8 * 8 * (3 * 3 * 3)
    assert row.flops == 2 * row.macs + 8 * 3 * 3 * 3  # plus the weight scaling multiply


def test_shared_module_counts_params_once_and_rows_per_call():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            return self.conv(self.conv(x))

    report = analyze(Twice(), (4, 6, 6))
    assert [r.name for r in report.layers] == ["conv", "conv#2"]
    assert [r.params for r in report.layers] == [4 * 4 * 9 + 4, 0]
    assert report.layers[0].macs == report.layers[1].macs


def test_unused_parameters_get_a_row():
    class WithUnused(nn.Module):
        def __init__(self):
            super().__init__()
            self.used = nn.Linear(4, 4)
            self.aux = nn.Linear(4, 100)

        def forward(self, x):
            return self.used(x)

    report = analyze(WithUnused(), (4,))
    assert report.totals["params"] == 20 + 500
    assert any(r.type == "unused parameters" and r.params == 500 for r in report.layers)


def test_batch_scales_work_not_params_and_dtype_scales_bytes():
    model = TinyResNet()
    one, many = analyze(model, (3, 8, 8)), analyze(model, (3, 8, 8), batch_size=8)
    assert many.totals["macs"] == 8 * one.totals["macs"]
    assert many.totals["activation_bytes"] == 8 * one.totals["activation_bytes"]
    assert many.totals["params"] == one.totals["params"]
    half = analyze(model, (3, 8, 8), dtype="float16")
    int8 = analyze(model, (3, 8, 8), dtype="int8")
    assert half.totals["param_bytes"] * 2 == one.totals["param_bytes"] == 4 * int8.totals["param_bytes"]
    assert half.totals["activation_bytes"] * 2 == one.totals["activation_bytes"]
    assert one.totals["param_bytes"] == 4 * one.totals["params"]


def test_huge_input_is_cheap_on_meta():
    net = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1))
    report = analyze(net, (3, 1024, 1024), batch_size=4096)
    assert report.totals["macs"] == 4096 * 1024 * 1024 * (64 * 27 + 64 * 64 * 9)
    assert report.totals["activation_bytes"] == 3 * 4096 * 64 * 1024 * 1024 * 4  # 3 TB, never allocated


def test_rollup_adds_children_into_their_ancestor():
    report = analyze(TinyResNet(), (3, 8, 8))
    top = report.rollup(1)
    assert top["macs"].sum() == report.totals["macs"]
    assert top["params"].sum() == report.totals["params"]
    with pytest.raises(ValueError):
        report.rollup(0)


def test_meta_shape_rules_match_torch():
    """The crawler computes a few ops' meta outputs by their shape rule (to avoid torch's slow first
    call); each must give what torch's own meta kernel gives, in place ops must return their input."""
    from archcost.cost.meta_shapes import META_SHAPE as _META_SHAPE

    a = torch.empty(2, 3, 4, 4, device="meta")
    b = torch.empty(3, 1, 1, device="meta", dtype=torch.float16)
    for func in (torch.add, torch.Tensor.__add__, torch.Tensor.__rsub__, torch.mul, torch.Tensor.__mul__):
        for other in (b, 2, 0.5):
            expected = func(a, other)
            got = _META_SHAPE[func.__name__.strip("_").removeprefix("r")](func, a, other)
            assert (got.shape, got.dtype) == (expected.shape, expected.dtype)
    assert _META_SHAPE["add"](torch.Tensor.add_, a, b) is a
    assert _META_SHAPE["add"](torch.Tensor.__iadd__, a, 1) is a
    w = torch.empty(5, 4, device="meta")
    assert _META_SHAPE["linear"](F.linear, torch.empty(7, 2, 4, device="meta"), w).shape == (7, 2, 5)
    pooled = _META_SHAPE["adaptive_avg_pool2d"](F.adaptive_avg_pool2d, a, (None, 1))
    assert pooled.shape == F.adaptive_avg_pool2d(a, (None, 1)).shape == (2, 3, 4, 1)
    with pytest.raises(RuntimeError):
        _META_SHAPE["linear"](F.linear, torch.empty(2, 3, device="meta"), w)  # torch's own error


def test_analyze_takes_a_model_spec_string_as_the_commands_do():
    import archcost
    from archcost.errors import UnknownModelError

    by_name = archcost.analyze("resnet20_cifar")
    built = archcost.analyze(archcost.get_model("resnet20_cifar"), (3, 32, 32))
    assert by_name.totals == built.totals and by_name.input_shape == (1, 3, 32, 32)  # the model's own input
    assert archcost.analyze("resnet20_cifar", (3, 16, 16), batch_size=2).input_shape == (2, 3, 16, 16)
    with pytest.raises(UnknownModelError, match="unknown model 'no_such_net'"):
        archcost.analyze("no_such_net")
