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
