"""Activations, softmax and dropout: a fixed number of FLOPs per output element (units.FLOPS_PER_ELEMENT)."""

from __future__ import annotations

from archcost.cost._registry import Cost, register_cost
from archcost.cost.formulas._args import arg, out_numel
from archcost.units import per_element

_ACTIVATIONS = (
    "relu", "relu6", "hardtanh", "leaky_relu", "prelu", "elu", "selu", "threshold", "tanh", "sigmoid",
    "hardsigmoid", "hardswish", "silu", "mish", "gelu", "softplus", "softmax", "log_softmax",
)  # fmt: skip


def _per_element(op: str):
    def cost(args: tuple, kwargs: dict, out) -> Cost:
        return Cost(flops=out_numel(out) * per_element(op))

    return cost


for _op in _ACTIVATIONS:
    register_cost(_op)(_per_element(_op))


@register_cost("dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout")
def _dropout(args: tuple, kwargs: dict, out) -> Cost:
    """Free at inference; in training, one multiply per element by the scaled mask."""
    training = bool(arg(args, kwargs, 2, "training", True))
    return Cost(flops=out_numel(out) * per_element("dropout_train") if training else 0)
