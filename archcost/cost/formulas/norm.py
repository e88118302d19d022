"""Normalisation layers: batch, group, layer, instance and RMS norm, local response normalisation, and the
weight normalisation of ``torch.nn.utils.weight_norm`` (``torch._weight_norm``)."""

from __future__ import annotations

from archcost.cost._registry import Cost, register_cost
from archcost.cost.formulas._args import arg, int_arg, tensor_arg
from archcost.cost.formulas._tools import FV_BATCH_NORM, FV_GROUP_NORM, FV_INSTANCE_NORM, FV_LAYER_NORM
from archcost.units import per_element


def batch_norm_flops(
    elements: int, *, training: bool, weight: bool = False, bias: bool = False, affine: bool | None = None
) -> int:
    """Inference folds normalisation and affine into ``x * a + b`` (2 per element); training computes
    the batch statistics at run time like the other norms (``norm_flops``)."""
    if not training:
        return elements * per_element("batch_norm_eval")
    return norm_flops(elements, weight=weight, bias=bias, affine=affine)


def norm_flops(elements: int, *, weight: bool = False, bias: bool = False, affine: bool | None = None) -> int:
    """Norms with run-time statistics: 5 per element (``units``'s ``norm_train``), plus one multiply per
    element for a weight and one add for a bias. That is how torch computes them: its decompositions
    (``torch/_decomp/decompositions.py``: ``native_batch_norm_helper``, ``native_layer_norm``,
    ``native_group_norm``) normalise ``(x - mean) * rstd``, then ``out * weight`` if there is a weight and
    ``out + bias`` if there is a bias, each on its own. So an affine batch norm in training is 7 per
    element however it is called (``F.batch_norm``, ``torch.batch_norm``), and ``LayerNorm(bias=False)``
    is 6. ``affine``: weight and bias both (True) or neither (False)."""
    if affine is not None:
        weight = bias = affine
    return elements * (
        per_element("norm_train") + (per_element("mul") if weight else 0) + (per_element("add") if bias else 0)
    )


def lrn_flops(elements: int, size: int) -> int:
    """Local response normalisation, per element: square the ``size`` inputs of the window (size),
    sum them (size - 1), scale by alpha/n and add k (2), raise to beta (1), divide (1)."""
    return elements * (2 * size + 3)


def _affine(args: tuple, kwargs: dict, index: int) -> tuple[bool, bool]:
    """Whether the call has a weight and a bias (by name; ``index``: the weight's position)."""
    return arg(args, kwargs, index, "weight") is not None, arg(args, kwargs, index + 1, "bias") is not None


@register_cost("batch_norm", fvcore=FV_BATCH_NORM)
def _batch_norm(args: tuple, kwargs: dict, out) -> Cost:
    # F.batch_norm(input, running_mean, running_var, weight, bias, training, ...) and
    # torch.batch_norm(input, weight, bias, running_mean, running_var, training, ...): read by name
    weight, bias = _affine(args, kwargs, 3)
    training = bool(arg(args, kwargs, 5, "training", False))
    return Cost(flops=batch_norm_flops(out.numel(), training=training, weight=weight, bias=bias))


@register_cost("group_norm", fvcore=FV_GROUP_NORM)
def _group_norm(args: tuple, kwargs: dict, out) -> Cost:
    weight, bias = _affine(args, kwargs, 2)
    return Cost(flops=norm_flops(out.numel(), weight=weight, bias=bias))


@register_cost("layer_norm", fvcore=FV_LAYER_NORM)
def _layer_norm(args: tuple, kwargs: dict, out) -> Cost:
    weight, bias = _affine(args, kwargs, 2)
    return Cost(flops=norm_flops(out.numel(), weight=weight, bias=bias))


@register_cost("instance_norm", fvcore=FV_INSTANCE_NORM)
def _instance_norm(args: tuple, kwargs: dict, out) -> Cost:
    weight, bias = _affine(args, kwargs, 3)
    return Cost(flops=norm_flops(out.numel(), weight=weight, bias=bias))


@register_cost(
    "local_response_norm",
    workspace=(
        2,
        "torch.nn.functional.local_response_norm squares the input, pads it, average-pools it, then "
        "scales, shifts and raises it in new tensors: two input-sized temporaries are alive at its peak "
        "(measured: AlexNet and GoogLeNet peak inside their LRN layers at input + output + 2 temporaries)",
    ),
)
def _lrn(args: tuple, kwargs: dict, out) -> Cost:
    return Cost(flops=lrn_flops(out.numel(), int_arg(args, kwargs, 1, "size")))


def rms_norm_flops(elements: int, *, weight: bool) -> int:
    """RMS norm, ``x / sqrt(mean(x^2) + eps) * weight``: 3 per element (``units``'s ``rms_norm``), plus one
    multiply per element for the weight."""
    return elements * (per_element("rms_norm") + (per_element("mul") if weight else 0))


@register_cost("rms_norm")
def _rms_norm(args: tuple, kwargs: dict, out) -> Cost:
    return Cost(flops=rms_norm_flops(out.numel(), weight=arg(args, kwargs, 2, "weight") is not None))


def weight_norm_flops(v_elements: int, g_elements: int) -> int:
    """``w = v * (g / ||v||)``, the norm taken over every dimension but ``dim`` (ATen's ``_weight_norm``:
    ``v * (g / at::norm_except_dim(v, 2, dim))``; its fused CPU/CUDA kernel computes the same): per element
    of ``v`` square and accumulate (2, the root per group replacing one add) and the multiply (1); per
    element of ``g`` one divide."""
    return v_elements * (per_element("vector_norm_p2") + per_element("mul")) + g_elements * per_element("div")


@register_cost("_weight_norm")
def _weight_norm(args: tuple, kwargs: dict, out) -> Cost:
    v = tensor_arg(args, kwargs, 0, "v")
    g = tensor_arg(args, kwargs, 1, "g")
    return Cost(flops=weight_norm_flops(v.numel(), g.numel()))
