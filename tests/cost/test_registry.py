"""The cost registry: op names and module classes, looked up along the MRO; duplicates raise."""

import pytest
import torch
from torch import nn

from archcost.cost import Cost, analyze, register_cost
from archcost.cost._registry import op_name, registered_ops


class OpaqueLayer(nn.Module):
    """A layer whose forward torch cannot see into (as a custom CUDA kernel would be)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(4, 4))

    def forward(self, x):
        return torch.cumsum(x, dim=-1)  # stands for the kernel; the module formula costs the call


class OpaqueChild(OpaqueLayer):
    pass


@register_cost(OpaqueLayer)
def _opaque(module: nn.Module, inputs: tuple, out) -> Cost:
    # the layer's own documented cost: a 4x4 matrix applied to every row
    return Cost(macs=out.numel() * 4, flops=2 * out.numel() * 4)


def test_a_module_formula_replaces_the_ops_inside_and_subclasses_inherit_it():
    for layer in (OpaqueLayer(), OpaqueChild()):
        report = analyze(layer, (3, 4))
        (row,) = report.layers
        assert row.macs == 3 * 4 * 4 and row.flops == 2 * 3 * 4 * 4 and row.params == 16
        assert not report.unsupported  # cumsum inside is covered by the module's formula


def test_registering_twice_raises_and_keys_are_checked():
    with pytest.raises(ValueError, match="already registered"):
        register_cost("conv2d")(lambda a, k, o: Cost())
    with pytest.raises(ValueError, match="already registered"):
        register_cost(OpaqueLayer)(lambda m, i, o: Cost())
    with pytest.raises(TypeError):
        register_cost(42)
    with pytest.raises(TypeError):
        register_cost()


def test_op_names_are_canonical():
    assert op_name(torch.Tensor.__iadd__) == "add"
    assert op_name(torch.Tensor.__radd__) == "add"
    assert op_name(torch.Tensor.add_) == "add"
    assert op_name(torch.Tensor.__truediv__) == "div"
    assert op_name(torch.Tensor.__getitem__) == "getitem"
    assert {"conv2d", "linear", "batch_norm", "add", "cat"} <= set(registered_ops())


# -- the catalogue: keys resolved and checked, arguments bound by name, overrides per call -------------------
def test_a_key_that_names_no_torch_op_is_refused_with_the_nearest_names():
    with pytest.raises(ValueError, match="'conv_2d' names no torch function.*did you mean 'conv2d'"):
        register_cost("conv_2d")
    with pytest.raises(ValueError, match="library 'aten'|aten has no operator"):
        register_cost("aten::conv_2d")


def test_callables_resolve_to_one_op_and_override_replaces_an_entry():
    from archcost.cost._registry import _OPS, op_entry, resolve

    assert resolve(torch.nn.functional.batch_norm) == resolve(torch.batch_norm) == "batch_norm"
    assert resolve(torch.Tensor.add_) == resolve(torch.add) == "add"
    assert resolve("torchvision::roi_align") == "roi_align"
    before = op_entry("special_i0e")
    try:
        register_cost(torch.special.i0e)(lambda a, k, o: Cost(flops=o.numel()))
        with pytest.raises(ValueError, match="already registered"):
            register_cost("special_i0e")(lambda a, k, o: Cost())
        register_cost("special_i0e", override=True)(lambda a, k, o: Cost(flops=2 * o.numel()))
        report = analyze(nn.Sequential(nn.Conv2d(3, 4, 1)), (3, 2, 2))  # the conv alone: unaffected
        assert report.totals["flops"] == 2 * 16 * 3 + 16
    finally:
        if before is None:
            _OPS.pop("special_i0e", None)
        else:
            _OPS["special_i0e"] = before


def test_arguments_are_bound_by_name_whichever_callable_ran():
    """torch.batch_norm(input, weight, bias, running_mean, running_var, training, ...) and F.batch_norm(input,
    running_mean, running_var, weight, bias, training): the same affine training-mode batch norm, 7 per
    element both ways (5 for the statistics and normalising, 1 for the weight, 1 for the bias)."""

    class Direct(nn.Module):
        def __init__(self, functional: bool) -> None:
            super().__init__()
            self.w, self.b = nn.Parameter(torch.ones(4)), nn.Parameter(torch.zeros(4))
            self.functional = functional

        def forward(self, x):
            if self.functional:
                return torch.nn.functional.batch_norm(x, None, None, self.w, self.b, True)
            return torch.batch_norm(x, self.w, self.b, None, None, True, 0.1, 1e-5, False)

    for functional in (True, False):
        report = analyze(Direct(functional), (4, 3, 3), 2)
        assert report.totals["flops"] == 2 * 4 * 3 * 3 * (5 + 1 + 1), functional


def test_formulas_override_one_call_only():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU())
    mine = analyze(model, (3, 2, 2), formulas={torch.relu: lambda a, k, o: Cost(flops=10 * o.numel())})
    assert mine.layers[1].flops == 10 * 16
    assert analyze(model, (3, 2, 2)).layers[1].flops == 16  # the registry is unchanged
    opaque = analyze(OpaqueLayer(), (3, 4), formulas={OpaqueLayer: lambda m, i, o: Cost(macs=1, flops=2)})
    assert opaque.layers[0].macs == 1


def test_by_operator_splits_a_row_into_its_ops():
    attn = nn.MultiheadAttention(8, 2, batch_first=True)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = attn

        def forward(self, x):
            return self.attn(x, x, x, need_weights=False)[0]

    report = analyze(Net().eval(), (5, 8))
    ops = report.by_operator()
    assert sum(o.macs for o in ops.values()) == report.totals["macs"]
    assert sum(o.flops for o in ops.values()) == report.totals["flops"]
    # in-projection 5 x 8 -> 24, out-projection 5 x 8 -> 8 (linear); without weights, attention runs as one
    # scaled_dot_product_attention: Q K^T and scores V, 2 heads x 5 x 5 x 4 MACs each
    assert ops["linear"].macs == 5 * 8 * 24 + 5 * 8 * 8 and ops["linear"].calls == 2
    assert ops["scaled_dot_product_attention"].macs == 2 * (2 * 5 * 5 * 4)
    assert list(ops)[0] == "linear"  # costliest first


def test_the_readmes_adding_an_op_example_works():
    """The README's example, run as written: one entry, and the op is costed, explained and seen through."""
    import re
    from pathlib import Path

    from archcost.cost._registry import _OPS
    from archcost.crosscheck import check_model

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    code = re.search(r"<!-- adding-an-op -->\n```python\n(.*?)```", readme, re.S).group(1)
    assert "hypot" not in _OPS  # the example adds an op archcost does not cost by itself
    try:
        exec(compile(code, "README.md", "exec"), {})

        class Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.a, self.b = nn.Conv2d(3, 4, 3), nn.Conv2d(3, 4, 3)

            def forward(self, x):
                return torch.hypot(self.a(x), self.b(x))

        report = analyze(Net(), (3, 6, 6))
        row = next(r for r in report.layers if r.type == "hypot")
        assert row.flops == 4 * 4 * 4 * 4 and not report.unsupported
        assert report.layers[-1].rf == (3.0, 3.0)  # the field goes through the new op
        assert check_model(Net(), (3, 6, 6)).ok
    finally:
        _OPS.pop("hypot", None)


def test_registering_the_zoo_formulas_does_not_walk_torchs_override_lists(monkeypatch):
    """Every key of archcost's own formulas is found by the cheap checks (torch's attributes, aten's schemas):
    known_names, whose first call costs about 0.25 s of every command, is for typos and their suggestions."""
    import archcost.cost._registry as registry

    calls = []
    monkeypatch.setattr(registry, "known_names", lambda: calls.append(1) or frozenset())
    for entry in registry.entries():
        for key in entry.keys:
            if isinstance(key, str) and "::" not in key:
                assert registry.resolve(key) == key
    assert calls == []
