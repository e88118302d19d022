"""Convolutions and transposed convolutions (1d/2d/3d, grouped, depthwise, dilated)."""

from __future__ import annotations

import math

from archcost.cost._registry import Cost, register_cost
from archcost.cost.formulas._args import arg, tensor_arg
from archcost.cost.formulas._tools import FC_CONV, FV_CONV


def conv_macs(out_shape: tuple[int, ...], weight_shape: tuple[int, ...]) -> int:
    """MACs of a convolution: every output element sums ``C_in / groups * prod(kernel)`` products.

    ``weight_shape`` is ``(C_out, C_in / groups, *kernel)``, so groups, depthwise convolution and any
    stride, padding or dilation are already in the shapes.
    """
    return math.prod(out_shape) * math.prod(weight_shape[1:])


def conv_transpose_macs(in_shape: tuple[int, ...], weight_shape: tuple[int, ...]) -> int:
    """MACs of a transposed convolution: every input element is scattered to
    ``C_out / groups * prod(kernel)`` outputs. ``weight_shape`` is ``(C_in, C_out / groups, *kernel)``."""
    return math.prod(in_shape) * math.prod(weight_shape[1:])


def with_bias(macs: int, out_elements: int, has_bias: bool) -> Cost:
    """2 FLOPs per MAC, plus one add per output element when there is a bias."""
    return Cost(macs=macs, flops=2 * macs + (out_elements if has_bias else 0))


@register_cost("conv1d", "conv2d", "conv3d", fvcore=FV_CONV, flop_counter=FC_CONV)
def _conv(args: tuple, kwargs: dict, out) -> Cost:
    weight = tensor_arg(args, kwargs, 1, "weight")
    bias = arg(args, kwargs, 2, "bias")
    return with_bias(conv_macs(tuple(out.shape), tuple(weight.shape)), out.numel(), bias is not None)


@register_cost("conv_transpose1d", "conv_transpose2d", "conv_transpose3d", fvcore=FV_CONV, flop_counter=FC_CONV)
def _conv_transpose(args: tuple, kwargs: dict, out) -> Cost:
    x = tensor_arg(args, kwargs, 0, "input")
    weight = tensor_arg(args, kwargs, 1, "weight")
    bias = arg(args, kwargs, 2, "bias")
    macs = conv_transpose_macs(tuple(x.shape), tuple(weight.shape))
    return with_bias(macs, out.numel(), bias is not None)
