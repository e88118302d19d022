"""Statistics and orderings: variance and standard deviation, vector norms, cumulative sums and products,
argmax/argmin, sort, topk and their kin.

Comparisons count as FLOPs, as archcost counts them elsewhere (ReLU 1, max pooling ``k - 1``): an argmax over
``n`` values takes ``n - 1`` comparisons per group, like ``max``.
"""

from __future__ import annotations

import math
from typing import SupportsFloat

from archcost.cost._registry import Cost, register_cost
from archcost.cost.formulas._args import arg, float_arg, int_arg, tensor_arg, tensors
from archcost.units import per_element


def _first(out):
    ts = tensors(out)
    return ts[0]


def var_flops(in_elements: int, out_elements: int, *, std: bool) -> int:
    """Variance over groups: 4 per input element (``units``'s ``var``); a standard deviation adds one
    square root per output element."""
    return in_elements * per_element("var") + (out_elements if std else 0)


@register_cost("var", "var_mean")
def _var(args: tuple, kwargs: dict, out) -> Cost:
    x = tensor_arg(args, kwargs, 0, "input")
    return Cost(flops=var_flops(x.numel(), _first(out).numel(), std=False))


@register_cost("std", "std_mean")
def _std(args: tuple, kwargs: dict, out) -> Cost:
    x = tensor_arg(args, kwargs, 0, "input")
    return Cost(flops=var_flops(x.numel(), _first(out).numel(), std=True))


def vector_norm_flops(in_elements: int, out_elements: int, p: float) -> int:
    """``||x||_p`` over groups: per input element 2 for p = 2 (square, accumulate; the root per output
    replaces one add), 2 for p in (1, inf, -inf, 0) (abs or compare, accumulate: ``n - 1`` per group), 3 for
    any other p (abs, power, accumulate; the root per output replaces one add)."""
    if p == 2:
        return in_elements * per_element("vector_norm_p2")
    if p in (1, 0) or math.isinf(p):
        return in_elements * per_element("vector_norm_p1") - out_elements
    return in_elements * per_element("vector_norm_p")


@register_cost("linalg_vector_norm")
def _vector_norm(args: tuple, kwargs: dict, out) -> Cost:
    x = tensor_arg(args, kwargs, 0, "input")
    p = float_arg(args, kwargs, 1, "ord", 2)
    return Cost(flops=vector_norm_flops(x.numel(), out.numel(), p))


@register_cost("linalg_norm")
def _linalg_norm(args: tuple, kwargs: dict, out) -> Cost:
    """``torch.linalg.norm``: a vector norm, or the Frobenius norm of matrices (a 2-norm over both axes).
    Other matrix norms (nuclear, spectral: an SVD) have no formula here."""
    x = tensor_arg(args, kwargs, 0, "input")
    p = arg(args, kwargs, 1, "ord", None)
    if p is None or p == "fro":
        p = 2
    if isinstance(p, str):
        raise ValueError(f"no formula for the {p!r} matrix norm")
    if not isinstance(p, SupportsFloat):
        raise TypeError(f"ord is {type(p).__name__}, not a number or a norm's name")
    return Cost(flops=vector_norm_flops(x.numel(), out.numel(), float(p)))


@register_cost("cumsum", "cumprod", "logcumsumexp", "cummax", "cummin")
def _cumulative(args: tuple, kwargs: dict, out) -> Cost:
    """A scan along ``dim``: one add (multiply, compare) per element after the first of each line."""
    x = tensor_arg(args, kwargs, 0, "input")
    length = x.shape[int_arg(args, kwargs, 1, "dim")] if x.dim() else 1
    lines = x.numel() // length if length else 0
    return Cost(flops=(x.numel() - lines) * per_element("cumsum"))


@register_cost("argmax", "argmin")
def _arg_extreme(args: tuple, kwargs: dict, out) -> Cost:
    """``n - 1`` comparisons per group of ``n`` values (``dim=None``: one group of every element)."""
    x = tensor_arg(args, kwargs, 0, "input")
    return Cost(flops=x.numel() - out.numel())


def _group(args: tuple, kwargs: dict) -> tuple[int, int]:
    """(groups, values per group) of an op along ``dim`` (default the last)."""
    x = tensor_arg(args, kwargs, 0, "input")
    dim = arg(args, kwargs, 1, "dim", -1)
    if not isinstance(dim, int):
        dim = -1
    n = x.shape[dim] if x.dim() else 1
    return (x.numel() // n if n else 0), n


def sort_flops(groups: int, n: int) -> int:
    """A comparison sort of ``n`` values: ``n * ceil(log2 n)`` comparisons (merge sort's bound) per group."""
    return groups * n * math.ceil(math.log2(n)) if n > 1 else 0


def topk_flops(groups: int, n: int, k: int) -> int:
    """The ``k`` largest of ``n`` through a binary heap of ``k``: ``n * ceil(log2(k + 1))`` comparisons per
    group (``k = 1``: ``n``, the ``n - 1`` of a max plus one)."""
    return groups * n * math.ceil(math.log2(k + 1)) if n > 1 else 0


@register_cost("sort", "argsort", "msort")
def _sort(args: tuple, kwargs: dict, out) -> Cost:
    if arg(args, kwargs, 1, "dim", -1) is None:
        x = tensor_arg(args, kwargs, 0, "input")
        return Cost(flops=sort_flops(1, x.numel()))
    groups, n = _group(args, kwargs)
    return Cost(flops=sort_flops(groups, n))


@register_cost("topk")
def _topk(args: tuple, kwargs: dict, out) -> Cost:
    x = tensor_arg(args, kwargs, 0, "input")
    k = int_arg(args, kwargs, 1, "k")
    n = x.shape[int_arg(args, kwargs, 2, "dim", -1)] if x.dim() else 1
    return Cost(flops=topk_flops(x.numel() // n if n else 0, n, k))


@register_cost("kthvalue", "median", "nanmedian", "mode")
def _select(args: tuple, kwargs: dict, out) -> Cost:
    """Selecting one order statistic: quickselect's expected ``2 n`` comparisons per group, bounded here by
    the sort (``n * ceil(log2 n)``) where that is smaller."""
    x = tensor_arg(args, kwargs, 0, "input")
    groups = _first(out).numel()
    n = x.numel() // groups if groups else 0
    return Cost(flops=groups * min(2 * n, n * math.ceil(math.log2(n))) if n > 1 else 0)
