"""Fully connected layers and matrix products: linear, bilinear, matmul, mm, bmm, addmm, baddbmm."""

from __future__ import annotations

import math

import torch

from archcost.cost._registry import Cost, Counted, register_cost
from archcost.cost.formulas._args import arg, tensor_arg
from archcost.cost.formulas._tools import (
    FC_MATMUL,
    FC_TORCH_MATMUL,
    FV_ADDMM,
    FV_BMM,
    FV_LINEAR,
    FV_MATMUL,
    FV_MM,
    TORCH,
)
from archcost.cost.formulas.conv import with_bias

FC_INNER = Counted(
    lambda args, kwargs, out, cost: 0 if kwargs["input"].dim() == kwargs["other"].dim() == 1 else 2 * cost.macs,
    "matmul",
    "2 per MAC where an operand has 2 or more dimensions (torch.inner runs as aten.mm); two vectors: aten.dot, 0",
    f"{TORCH} mm_flop: 2 * m * k * n; flop_registry has no aten.dot",
)


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


@register_cost("linear", fvcore=FV_LINEAR, flop_counter=FC_MATMUL)
def _linear(args: tuple, kwargs: dict, out) -> Cost:
    weight = tensor_arg(args, kwargs, 1, "weight")
    bias = arg(args, kwargs, 2, "bias")
    in_features = weight.shape[-1]
    return with_bias(linear_macs(tuple(out.shape), in_features), out.numel(), bias is not None)


@register_cost("bilinear")
def _bilinear(args: tuple, kwargs: dict, out) -> Cost:
    weight = tensor_arg(args, kwargs, 2, "weight")
    bias = arg(args, kwargs, 3, "bias")
    macs = bilinear_macs(tuple(out.shape), weight.shape[1], weight.shape[2])
    return with_bias(macs, out.numel(), bias is not None)


def _matmul(args: tuple, kwargs: dict, out) -> Cost:
    """Any rank: 1-D @ 1-D is a dot product (``n`` MACs), matrix @ vector ``m * n``, batched products
    broadcast; the contracted dimension is always the last of the first operand."""
    a = tensor_arg(args, kwargs, 0, "input")
    macs = matmul_macs(tuple(a.shape), tuple(out.shape))
    return Cost(macs=macs, flops=2 * macs)


register_cost("matmul", fvcore=FV_MATMUL, flop_counter=FC_TORCH_MATMUL)(_matmul)
register_cost("mm", fvcore=FV_MM, flop_counter=FC_MATMUL)(_matmul)
register_cost("bmm", fvcore=FV_BMM, flop_counter=FC_MATMUL)(_matmul)
register_cost("inner", flop_counter=FC_INNER)(_matmul)
register_cost("mv", "dot", "vdot")(_matmul)  # aten.mv / dot: neither tool has a formula


def _scaled_sum(macs: int, out_elements: int) -> Cost:
    """``beta * input + alpha * product``: 2 FLOPs per MAC plus one add per output element (the default
    alpha = beta = 1 needs no multiply), like a bias."""
    return with_bias(macs, out_elements, True)


def _addmm(args: tuple, kwargs: dict, out) -> Cost:
    """``input + mat1 @ mat2`` (addmm), ``input + mat @ vec`` (addmv), ``input + batch1 @ batch2`` (baddbmm)."""
    a = arg(args, kwargs, 1, "mat1")
    if a is None:
        a = kwargs.get("batch1", kwargs.get("mat"))
    if not isinstance(a, torch.Tensor):
        raise TypeError(f"the product's first matrix is {type(a).__name__}, not a tensor")
    return _scaled_sum(matmul_macs(tuple(a.shape), tuple(out.shape)), out.numel())


register_cost("addmm", fvcore=FV_ADDMM, flop_counter=FC_MATMUL)(_addmm)
register_cost("baddbmm", flop_counter=FC_MATMUL)(_addmm)  # fvcore has no aten::baddbmm handle
register_cost("addmv")(_addmm)


@register_cost("addbmm")
def _addbmm(args: tuple, kwargs: dict, out) -> Cost:
    """``input + sum_b batch1[b] @ batch2[b]``: the sum over the batch is part of the contraction, so each
    output element takes ``b * m`` MACs."""
    b1 = tensor_arg(args, kwargs, 1, "batch1")
    return _scaled_sum(out.numel() * b1.shape[0] * b1.shape[-1], out.numel())


@register_cost("outer", "ger")
def _outer(args: tuple, kwargs: dict, out) -> Cost:
    """An outer product multiplies without accumulating: one multiply per output element, no MACs (as
    torch runs it: a broadcast ``mul``)."""
    return Cost(flops=out.numel())
