"""``torch.einsum``: the MACs of the pairwise contractions torch runs, in the order torch runs them.

How torch evaluates an einsum (``torch.functional.einsum`` and ATen's ``einsum`` in ``Linear.cpp``):
operands are contracted two at a time, left to right, or along the path opt_einsum finds when there are
more than two operands and ``torch.backends.opt_einsum`` is available and enabled. Before each pair is
contracted, a label that only one of the two carries and that nothing later needs (not the output, not a
remaining operand) is summed out of it (additions, no MACs). The pair is then a batched matrix product
(``bmm``) over the labels they share and nothing later needs: ``prod(size of every label of the pair)``
MACs. A pair that shares no such label is an elementwise broadcast multiply (1 FLOP per output element,
no MACs), as torch runs it with ``mul``. FlopCounterMode sees the same ``bmm`` calls, so the MACs agree.
"""

from __future__ import annotations

import functools
import math

import torch

from archcost.cost._registry import Cost, Counted, register_cost
from archcost.cost.formulas._tools import FC_EINSUM, FV, FV_HANDLES


def parse_equation(equation: str, ndims: list[int]) -> tuple[list[tuple], tuple]:
    """Operand and output labels of ``equation`` for operands of ``ndims`` dimensions. Ellipsis dimensions
    become the labels ``-1, -2, ...`` counted from the right (they broadcast); letters stay letters."""
    equation = equation.replace(" ", "")
    lhs, arrow, rhs = equation.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ndims):
        raise ValueError(f"einsum equation {equation!r} has {len(terms)} operands, got {len(ndims)}")
    operands = [_labels(term, nd) for term, nd in zip(terms, ndims, strict=True)]
    ellipsis = max((sum(1 for x in op if isinstance(x, int)) for op in operands), default=0)
    if arrow:
        output = _labels(rhs, None, ellipsis)
    else:  # implicit output: the broadcast ellipsis dims, then the letters used once, in alphabetical order
        counts = [x for op in operands for x in dict.fromkeys(op) if isinstance(x, str)]
        output = (*range(-ellipsis, 0), *sorted(x for x in set(counts) if counts.count(x) == 1))
    return operands, tuple(output)


def _labels(term: str, ndim: int | None, ellipsis: int = 0) -> tuple:
    """The labels of ``term``: of an operand of ``ndim`` dimensions, or (``ndim`` None) of the output, whose
    ``...`` stands for ``ellipsis`` dimensions."""
    if "..." not in term:
        return tuple(term)
    head, _, tail = term.partition("...")
    n = ndim - len(head) - len(tail) if ndim is not None else ellipsis
    return (*head, *range(-n, 0), *tail)


def einsum_cost(equation: str, shapes: list[tuple[int, ...]], path: list[tuple[int, int]] | None = None) -> Cost:
    """MACs and FLOPs of ``torch.einsum(equation, *operands)`` on operands of ``shapes``.

    ``path``: the pairs of positions opt_einsum chose (each pair is removed and its result appended at the
    end, opt_einsum's convention); ``None`` contracts left to right. FLOPs: 2 per MAC, 1 per element of a
    broadcast multiply, and 1 per addition of each label summed out of a single operand.
    """
    operands, output = parse_equation(equation, [len(s) for s in shapes])
    sizes: dict = {}
    ops: list[dict] = []
    for labels, shape in zip(operands, shapes, strict=True):
        own: dict = {}
        for label, size in zip(labels, shape, strict=True):
            own[label] = size  # a repeated label is a diagonal: a view
            sizes[label] = max(sizes.get(label, 1), size)
        ops.append(own)
    macs = flops = 0
    if len(ops) == 1:
        before = math.prod(ops[0].values())
        after = math.prod(ops[0][x] for x in ops[0] if x in output)
        return Cost(flops=before - after)
    pairs = list(path) if path else [(0, 1)] * (len(ops) - 1)
    left_to_right = not path
    for i, j in pairs:
        if left_to_right:
            a, b, rest = ops[0], ops[1], ops[2:]
        else:
            a, b = ops[i], ops[j]
            rest = [op for k, op in enumerate(ops) if k not in (i, j)]
        later = set(output).union(*(op.keys() for op in rest))
        a, b, summed = _sum_out(a, b, later)
        flops += summed
        shared = [x for x in a if x in b and a[x] > 1 and b[x] > 1 and x not in later]
        union = {x: max(a.get(x, 1), b.get(x, 1)) for x in {**a, **b}}
        if shared:  # a bmm over the shared labels
            macs += math.prod(union.values())
        else:  # nothing to sum: torch multiplies (a broadcast mul)
            flops += math.prod(union.values())
        result = {x: s for x, s in union.items() if x not in shared}
        ops = [result, *rest] if left_to_right else [*rest, result]
    final = ops[0]
    extra = [x for x in final if x not in output]
    if extra:
        flops += math.prod(final.values()) - math.prod(s for x, s in final.items() if x in output)
    return Cost(macs=macs, flops=2 * macs + flops)


def _sum_out(a: dict, b: dict, later: set) -> tuple[dict, dict, int]:
    """Sum out of each operand the labels that only it carries and nothing later needs."""
    flops = 0
    out = []
    for this, other in ((a, b), (b, a)):
        drop = [x for x in this if x not in later and this[x] > 1 and other.get(x, 1) == 1]
        if drop:
            kept = {x: s for x, s in this.items() if x not in drop}
            flops += math.prod(this.values()) - math.prod(kept.values())
            this = kept
        out.append(this)
    return out[0], out[1], flops


def _sublist_equation(args: tuple) -> tuple[str, list]:
    """``einsum(a, [0, 1], b, [1, 2], [0, 2])`` -> ('ab,bc->ac', [a, b])."""

    def term(sub) -> str:
        return "".join("..." if s is Ellipsis else chr(ord("a") + s) if s < 26 else chr(ord("A") + s - 26) for s in sub)

    operands = list(args[0::2][: len(args) // 2])
    subs = list(args[1::2][: len(args) // 2])
    equation = ",".join(term(s) for s in subs)
    if len(args) % 2:
        equation += "->" + term(args[-1])
    return equation, operands


def torch_path(equation: str, shapes: list[tuple[int, ...]]) -> list[tuple[int, int]] | None:
    """The contraction path ``torch.einsum`` would pass to ATen: opt_einsum's, for more than two operands
    when ``torch.backends.opt_einsum`` is available and enabled; else None (left to right)."""
    import torch.backends.opt_einsum as opt

    if len(shapes) <= 2 or not opt.enabled or not opt.is_available():
        return None
    path, _ = opt.get_opt_einsum().contract_path(equation, *shapes, shapes=True, optimize=opt.strategy)
    return [tuple(p) for p in path]


@functools.lru_cache(maxsize=512)
def fvcore_einsum(equation: str, shapes: tuple[tuple[int, ...], ...]) -> int:
    """fvcore's einsum count: the MACs of ``abc,abd->acd`` and ``abc,adc->adb`` (letters renamed in order of
    appearance), else numpy's ``einsum_path(optimize="optimal")`` "Optimized FLOP count" halved, floored."""
    import numpy as np

    equation = equation.replace(" ", "")
    order = dict.fromkeys(c for c in equation if c.isalpha())
    equation = equation.translate({ord(c): 97 + i for i, c in enumerate(order)})
    if equation == "abc,abd->acd":
        n, c, t = shapes[0]
        return n * c * t * shapes[-1][-1]
    if equation == "abc,adc->adb":
        n, t, g = shapes[0]
        return n * t * g * shapes[-1][1]
    arrays = [np.broadcast_to(np.zeros(()), s) for s in shapes]  # shapes only, no memory
    text = np.einsum_path(equation, *arrays, optimize="optimal")[1]
    line = next(x for x in text.split("\n") if "optimized flop" in x.lower())
    return int(math.floor(float(line.split(":")[-1]) / 2))


def _fv_einsum(args: tuple, kwargs: dict, out, cost: Cost) -> int | None:
    equation, operands = _equation(args)
    shapes = tuple(tuple(t.shape) for t in operands)
    try:
        return fvcore_einsum(equation, tuple(shapes))
    except ImportError:
        return None


FV_EINSUM = Counted(
    _fv_einsum,
    "einsum",
    "MACs for 'abc,abd->acd' and 'abc,adc->adb'; any other equation: numpy's optimal einsum_path FLOP count / 2",
    f"{FV}['aten::einsum'] -> {FV_HANDLES} einsum_flop_jit",
)


def _equation(args: tuple) -> tuple[str, list]:
    """The equation and operands of an ``einsum`` call, in either of its forms."""
    if isinstance(args[0], torch.Tensor):
        return _sublist_equation(args)
    operands = list(args[1]) if len(args) == 2 and isinstance(args[1], (list, tuple)) else list(args[1:])
    return args[0], operands


@register_cost(torch.einsum, fvcore=FV_EINSUM, flop_counter=FC_EINSUM)
def _einsum(args: tuple, kwargs: dict, out) -> Cost:
    equation, operands = _equation(args)
    shapes = [tuple(t.shape) for t in operands]
    return einsum_cost(equation, shapes, torch_path(equation, shapes))
