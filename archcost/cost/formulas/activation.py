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
    """Free at inference; in training, one multiply per element by the scaled mask. ``p = 0`` is free in
    training too: ATen's ``dropout`` returns its input untouched when ``p == 0 || !train`` (``_dropout_impl``
    in ``aten/src/ATen/native/Dropout.cpp``; the fused kernel is used only for ``0 < p < 1``)."""
    training = arg(args, kwargs, 2, "training", None)
    if training is None:
        training = kwargs.get("train", True)  # torch.dropout(input, p, train)
    p = arg(args, kwargs, 1, "p", 0.5)
    if not training or p == 0:
        return Cost()
    return Cost(flops=out_numel(out) * per_element("dropout_train"))
