"""Normalisation layers: batch, group, layer and instance norm, and local response normalisation."""

from __future__ import annotations

from archcost.cost._registry import Cost, register_cost
from archcost.cost.formulas._args import arg
from archcost.units import per_element


def batch_norm_flops(elements: int, *, training: bool, affine: bool) -> int:
    """Inference folds normalisation and affine into ``x * a + b`` (2 per element); training computes
    the batch statistics at run time like the other norms."""
    if not training:
        return elements * per_element("batch_norm_eval")
    return norm_flops(elements, affine=affine)


def norm_flops(elements: int, *, affine: bool) -> int:
    """Norms with run-time statistics: 5 per element, plus 2 for the affine scale and shift."""
    return elements * (per_element("norm_train") + (per_element("norm_affine") if affine else 0))


def lrn_flops(elements: int, size: int) -> int:
    """Local response normalisation, per element: square the ``size`` inputs of the window (size),
    sum them (size - 1), scale by alpha/n and add k (2), raise to beta (1), divide (1)."""
    return elements * (2 * size + 3)


@register_cost("batch_norm")
def _batch_norm(args: tuple, kwargs: dict, out) -> Cost:
    weight = arg(args, kwargs, 3, "weight")
    training = bool(arg(args, kwargs, 5, "training", False))
    return Cost(flops=batch_norm_flops(out.numel(), training=training, affine=weight is not None))


@register_cost("group_norm")
def _group_norm(args: tuple, kwargs: dict, out) -> Cost:
    return Cost(flops=norm_flops(out.numel(), affine=arg(args, kwargs, 2, "weight") is not None))


@register_cost("layer_norm")
def _layer_norm(args: tuple, kwargs: dict, out) -> Cost:
    return Cost(flops=norm_flops(out.numel(), affine=arg(args, kwargs, 2, "weight") is not None))


@register_cost("instance_norm")
def _instance_norm(args: tuple, kwargs: dict, out) -> Cost:
    return Cost(flops=norm_flops(out.numel(), affine=arg(args, kwargs, 3, "weight") is not None))


@register_cost("local_response_norm")
def _lrn(args: tuple, kwargs: dict, out) -> Cost:
    return Cost(flops=lrn_flops(out.numel(), int(arg(args, kwargs, 1, "size"))))


def rms_norm_flops(elements: int, *, weight: bool) -> int:
    """RMS norm, ``x / sqrt(mean(x^2) + eps) * weight``: 3 per element (``units``'s ``rms_norm``), plus one
    multiply per element for the weight."""
    return elements * (per_element("rms_norm") + (per_element("mul") if weight else 0))


@register_cost("rms_norm")
def _rms_norm(args: tuple, kwargs: dict, out) -> Cost:
    return Cost(flops=rms_norm_flops(out.numel(), weight=arg(args, kwargs, 2, "weight") is not None))
