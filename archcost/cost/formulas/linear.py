"""Fully connected layers and matrix products: linear, bilinear, matmul, mm, bmm, addmm, baddbmm."""

from __future__ import annotations

import math

from archcost.cost._registry import Cost, register_cost
from archcost.cost.formulas._args import arg
from archcost.cost.formulas.conv import with_bias


def linear_macs(out_shape: tuple[int, ...], in_features: int) -> int:
    """MACs of ``y = x W^T + b``: each output element is a dot product of length ``in_features``."""
    return math.prod(out_shape) * in_features


def bilinear_macs(out_shape: tuple[int, ...], in1: int, in2: int) -> int:
    """MACs of ``y_k = x1^T A_k x2 + b_k``: ``x1^T A_k`` costs in1*in2, the dot with x2 another in2."""
    return math.prod(out_shape) * (in1 * in2 + in2)


def matmul_macs(a_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> int:
    """MACs of a (batched, broadcast) matrix product: each output element is a dot product over the
    contracted dimension, the last one of ``a``."""
    return math.prod(out_shape) * a_shape[-1]


@register_cost("linear")
def _linear(args: tuple, kwargs: dict, out) -> Cost:
    weight = arg(args, kwargs, 1, "weight")
    bias = arg(args, kwargs, 2, "bias")
    in_features = weight.shape[-1]
    return with_bias(linear_macs(tuple(out.shape), in_features), out.numel(), bias is not None)


@register_cost("bilinear")
def _bilinear(args: tuple, kwargs: dict, out) -> Cost:
    weight = arg(args, kwargs, 2, "weight")
    bias = arg(args, kwargs, 3, "bias")
    macs = bilinear_macs(tuple(out.shape), weight.shape[1], weight.shape[2])
    return with_bias(macs, out.numel(), bias is not None)


@register_cost("matmul", "mm", "bmm")
def _matmul(args: tuple, kwargs: dict, out) -> Cost:
    a = arg(args, kwargs, 0, "input")
    macs = matmul_macs(tuple(a.shape), tuple(out.shape))
    return Cost(macs=macs, flops=2 * macs)


@register_cost("addmm", "baddbmm")
def _addmm(args: tuple, kwargs: dict, out) -> Cost:
    a = arg(args, kwargs, 1, "mat1" if len(args) < 2 else "batch1")
    if a is None:
        a = kwargs.get("batch1")
    macs = matmul_macs(tuple(a.shape), tuple(out.shape))
    return with_bias(macs, out.numel(), True)
