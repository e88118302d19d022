"""One model's analysis at several batch sizes, analysing it twice however many sizes a sweep has.

A sweep (``archcost profile --batch-sizes 1,2,4,...,256``) needs the cost at every batch size. Analysing
the model once per size repeats the same work: for almost every network each figure of the report is
either the same at every batch size (parameters, kernel sizes, receptive fields) or proportional to it
(MACs, FLOPs, activation bytes, the batch dimension of every shape). ``analyze_batches`` analyses the
smallest and the largest size and derives each size between from the two, **exactly** (integer
arithmetic), only where that is provably what an analysis would give; otherwise it analyses that size too.

Why two analyses decide it. A figure of a meta analysis is a function f(B) of the batch B. For the ops
archcost costs, f is a polynomial in B with non-negative coefficients (a convolution's MACs are B x ...,
a product over the batch B^2 x ...; a shape dimension B, 2B or B x heads). If f(lo) / lo = f(hi) / hi for
lo < hi, every coefficient above the first is zero (f(B) / B = c1 + c2 B + ... grows strictly with B as
soon as one of c2, c3, ... is positive) and f is c0 + c1 B with c0 = 0, so f(B) = f(lo) x B / lo for every B;
if f(lo) = f(hi), f is the constant c0. A figure that is neither (an affine B + 1, a B^2 term) makes the
whole report "not proportional" and every size is analysed. A report analysed on the CPU (the forward
needed data: its costs may depend on the values) is never used to derive another.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from archcost.errors import ArchcostError

__all__ = ["analyze_batches", "derive"]


class NotProportional(Exception):
    """A figure of the two reports is neither the same nor proportional to the batch."""


def derive(lo_value: object, hi_value: object, lo: int, hi: int, batch: int) -> object:
    """The value an analysis at ``batch`` gives, from the values of analyses at batch sizes ``lo`` < ``hi``.

    Walks both values in parallel (dataclasses, lists, tuples, dicts): integers equal in both stay;
    integers proportional to the batch (``lo_value * hi == hi_value * lo``) become ``lo_value * batch / lo``
    (exact, else ``NotProportional``); anything else must be equal in both. Raises ``NotProportional``
    where the two differ in any other way.
    """
    if type(lo_value) is not type(hi_value):
        raise NotProportional(f"{lo_value!r} / {hi_value!r}")
    # both of one type from here: each isinstance of hi_value below only tells the type checker so
    if isinstance(lo_value, int) and isinstance(hi_value, int) and not isinstance(lo_value, bool):
        if lo_value == hi_value:
            return lo_value
        if lo_value * hi != hi_value * lo or (lo_value * batch) % lo:
            raise NotProportional(f"{lo_value} at batch {lo}, {hi_value} at batch {hi}")
        return lo_value * batch // lo
    if dataclasses.is_dataclass(lo_value) and not isinstance(lo_value, type):
        changes = {}
        for f in dataclasses.fields(lo_value):
            a, b = getattr(lo_value, f.name), getattr(hi_value, f.name)
            value = derive(a, b, lo, hi, batch)
            if value is not a:
                changes[f.name] = value
        return dataclasses.replace(lo_value, **changes) if changes else lo_value
    if isinstance(lo_value, (list, tuple)) and isinstance(hi_value, (list, tuple)):
        if len(lo_value) != len(hi_value):
            raise NotProportional(f"{len(lo_value)} items at batch {lo}, {len(hi_value)} at batch {hi}")
        items = [derive(a, b, lo, hi, batch) for a, b in zip(lo_value, hi_value, strict=True)]
        if all(x is a for x, a in zip(items, lo_value, strict=True)):
            return lo_value
        return type(lo_value)(items) if isinstance(lo_value, list) else tuple(items)
    if isinstance(lo_value, dict) and isinstance(hi_value, dict):
        if lo_value.keys() != hi_value.keys():
            raise NotProportional("different keys")
        return {k: derive(v, hi_value[k], lo, hi, batch) for k, v in lo_value.items()}
    if lo_value != hi_value:
        raise NotProportional(f"{lo_value!r} at batch {lo}, {hi_value!r} at batch {hi}")
    return lo_value


def analyze_batches(analyse: Callable[[int], object], batch_sizes: Sequence[int]) -> dict[int, object]:
    """``{batch: CostReport or the ArchcostError its analysis raised}`` for every size in ``batch_sizes``.

    ``analyse(batch)`` is the analysis at one batch size (``archcost.cost.analyze`` with the model, input
    and dtype bound). It runs at the smallest and the largest size; each size between is derived from
    those two (``derive``) when both ran on the meta device and every figure is the same or proportional
    to the batch, and analysed on its own otherwise. A derived report equals what ``analyse`` returns at
    that size (tests/cost/test_batch.py checks it against real analyses).
    """
    sizes = sorted(set(batch_sizes))
    out: dict[int, object] = {}

    def run(batch: int) -> object:
        try:
            return analyse(batch)
        except ArchcostError as exc:
            return exc

    if not sizes:
        return out
    lo, hi = sizes[0], sizes[-1]
    out[lo] = run(lo)
    if hi != lo:
        out[hi] = run(hi)
    a, b = out[lo], out.get(hi)
    usable = (
        hi != lo
        and not isinstance(a, ArchcostError)
        and not isinstance(b, ArchcostError)
        and getattr(a, "analysed_on", None) == "meta"
        and getattr(b, "analysed_on", None) == "meta"
    )
    for batch in sizes[1:-1]:
        if usable:
            try:
                out[batch] = derive(a, b, lo, hi, batch)
                continue
            except NotProportional:
                usable = False
        out[batch] = run(batch)
    return out
