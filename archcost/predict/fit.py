"""Per-kind latency rules fitted to calibration points: the roofline form, and its additive variant.

The roofline (Williams, Waterman and Patterson, "Roofline: an insightful visual performance model for
multicore architectures", CACM 2009) bounds a kernel's time by the larger of its work at the peak compute
rate and its traffic at the peak bandwidth. A kernel also pays a fixed cost per call (dispatch, a Python
module call, thread wake-up), so each kind gets

* ``"max"``: ``t = max(flops * a, bytes * b) + c`` (the roofline plus an overhead), or
* ``"sum"``: ``t = flops * a + bytes * b + c`` (compute and traffic that do not overlap),

with ``a = 1 / peak FLOP/s``, ``b = 1 / bandwidth`` (both >= 0) and ``c`` >= 0 seconds, whichever fits the
kind's points better. Both are fitted in relative error, ``sum(((pred - t) / t) ** 2)``, since latencies span
orders of magnitude: for ``"sum"`` a non-negative least squares solved exactly over the active sets of the
three columns; for ``"max"`` the same for each split of the points by arithmetic intensity (in the max form
the compute-bound points are exactly those with ``flops / bytes`` above ``b / a``, so the ``n + 1`` splits
hold the optimum's), each candidate scored by the max form's own error. numpy only.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

FORMS = ("max", "sum")


@dataclass(frozen=True)
class Rule:
    """One kind's fitted latency rule (see the module docstring): ``form``, seconds per FLOP (``a``), seconds
    per byte (``b``) and seconds of overhead per call (``c``), paid once per dispatched op (a row whose
    module runs three ops, ``x * tanh(s * x)``, pays it three times)."""

    form: str
    seconds_per_flop: float
    seconds_per_byte: float
    overhead_s: float
    #: seconds per byte of the call's large tensors (``kinds.row_large_bytes``), added to either form; 0 in
    #: ``fit_rule`` and in profiles of schema 3 and older
    seconds_per_large_byte: float = 0.0

    def seconds(self, flops: float, nbytes: float, dispatches: float = 1.0, large_bytes: float = 0.0) -> float:
        """Predicted seconds of one call that does ``flops`` FLOPs and moves ``nbytes`` bytes in ``dispatches``
        ops, ``large_bytes`` of them in large tensors."""
        compute, traffic = flops * self.seconds_per_flop, nbytes * self.seconds_per_byte
        body = max(compute, traffic) if self.form == "max" else compute + traffic
        return body + large_bytes * self.seconds_per_large_byte + self.overhead_s * dispatches

    def bound(self, flops: float, nbytes: float, dispatches: float = 1.0, large_bytes: float = 0.0) -> str:
        """Which term dominates the prediction: ``"compute"``, ``"memory"`` (traffic, large tensors' included)
        or ``"overhead"``."""
        compute = flops * self.seconds_per_flop
        traffic = nbytes * self.seconds_per_byte + large_bytes * self.seconds_per_large_byte
        overhead = self.overhead_s * dispatches
        if overhead >= max(compute, traffic) and overhead >= (compute + traffic) / 2:
            return "overhead"
        return "compute" if compute >= traffic else "memory"


@dataclass(frozen=True)
class FitError:
    """How well a rule reproduces the points it was fitted to, in percent of the measured time."""

    points: int
    median_abs_pct: float
    max_abs_pct: float
    rms_pct: float
    within_10pct: float  # share of points, 0..1
    within_20pct: float


def errors(rule: Rule, flops: Sequence[float], nbytes: Sequence[float], times: Sequence[float]) -> FitError:
    """``FitError`` of ``rule`` on points (``flops``, ``nbytes``, measured ``times`` in seconds, > 0)."""
    return prediction_errors([rule.seconds(f, b) for f, b in zip(flops, nbytes, strict=True)], times)


def prediction_errors(predicted: Sequence[float], times: Sequence[float]) -> FitError:
    """``FitError`` of ``predicted`` seconds against measured ``times`` (seconds, > 0), point by point:
    the relative error ``100 * (predicted - measured) / measured`` summarised."""
    pct = [100 * (p - t) / t for p, t in zip(predicted, times, strict=True)]
    if not pct:
        return FitError(0, math.nan, math.nan, math.nan, math.nan, math.nan)
    absolute = sorted(float(abs(p)) for p in pct)
    return FitError(
        points=len(pct),
        median_abs_pct=float(np.median(absolute)),
        max_abs_pct=absolute[-1],
        rms_pct=math.sqrt(sum(float(p) ** 2 for p in pct) / len(pct)),
        within_10pct=sum(1 for p in absolute if p <= 10) / len(pct),
        within_20pct=sum(1 for p in absolute if p <= 20) / len(pct),
    )


def _nnls(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative least squares ``min |a x - y|``, ``x >= 0``, exactly, for a handful of columns: the best
    unconstrained solution over every subset of the non-zero columns whose coefficients are all >= 0."""
    n = a.shape[1]
    best, best_res = np.zeros(n), float(np.sum(y * y))
    usable = [j for j in range(n) if np.any(a[:, j])]
    for size in range(1, len(usable) + 1):
        for cols in itertools.combinations(usable, size):
            sub = a[:, cols]
            x, *_ = np.linalg.lstsq(sub, y, rcond=None)
            if np.any(x < 0):
                continue
            res = float(np.sum((sub @ x - y) ** 2))
            if res < best_res:
                best_res = res
                best = np.zeros(n)
                best[list(cols)] = x
    return best


def _relative_sse(rule: Rule, f: np.ndarray, b: np.ndarray, t: np.ndarray) -> float:
    pred = np.array([rule.seconds(x, y) for x, y in zip(f, b, strict=True)])
    return float(np.sum(((pred - t) / t) ** 2))


def fit_rule(
    flops: Sequence[float], nbytes: Sequence[float], times: Sequence[float], forms: Sequence[str] = FORMS
) -> Rule:
    """The rule of ``forms`` that best fits the points in relative error (module docstring).

    ``flops``, ``nbytes``: each point's FLOPs and bytes; ``times``: its measured seconds (> 0). Raises
    ``ValueError`` for no points, lengths that differ, a time <= 0 or an unknown form.
    """
    f, b, t = (np.asarray(v, dtype=float) for v in (flops, nbytes, times))
    if not len(t) or not (len(f) == len(b) == len(t)):
        raise ValueError("fit_rule needs one or more points, with flops, bytes and times of equal length")
    if np.any(t <= 0) or not np.all(np.isfinite(t)):
        raise ValueError("fit_rule: every time must be a positive number of seconds")
    if unknown := set(forms) - set(FORMS):
        raise ValueError(f"unknown forms {sorted(unknown)}: use {FORMS}")
    ones = np.ones_like(t)
    candidates: list[Rule] = []
    if "sum" in forms:
        x = _nnls(np.column_stack([f, b, ones]) / t[:, None], ones)
        candidates.append(Rule("sum", *map(float, x)))
    if "max" in forms:
        intensity = np.where(b > 0, f / np.where(b > 0, b, 1), np.inf)
        order = np.argsort(intensity, kind="stable")
        for split in range(len(t) + 1):
            compute = np.zeros(len(t), dtype=bool)
            compute[order[split:]] = True
            cols = np.column_stack([f * compute, b * ~compute, ones]) / t[:, None]
            x = _nnls(cols, ones)
            candidates.append(Rule("max", *map(float, x)))
    return min(candidates, key=lambda r: (_relative_sse(r, f, b, t), FORMS.index(r.form)))


#: weight of a single kernel's log-ratio error against a block's in ``fit_joint``: the leave-one-motif-out error of
#: the blocks on this project's CPU (an AMD EPYC, session 9's measurements) was lowest at 0.2 (median 12.1%; 0.1:
#: 12.4%, 0.5: 13.6%) (benchmarks/predict_check.py --refit; the notes on issue 28)
SINGLE_WEIGHT = 0.2


def fit_joint(
    parts: Sequence[Sequence[tuple]],
    times: Sequence[float],
    weights: Sequence[float] | None = None,
    min_seconds_per_flop: float = 0.0,
) -> dict[str, Rule]:
    """One ``"sum"`` rule per kind, fitted to every point at once: a point's predicted time is the sum of its
    rows' rules, ``sum(flops * a_k + bytes * b_k + dispatches * c_k + large_bytes * d_k)`` over its rows
    ``(kind, flops, bytes[, dispatches[, large_bytes]])`` (one dispatch and no large bytes where left out).

    A single kernel is a point of one row; a designed block (``archcost.predict.blocks``) one of many, so each
    kind's rule is asked to price its layers as they run after other kernels, not only alone in a loop. The
    loss is the weighted squared log-ratio ``sum(w * log(pred / t) ** 2)`` (``weights``, default 1), minimised
    with every coefficient >= 0: a prediction twice the time costs what one half of it costs. (The relative
    error ``((pred - t) / t) ** 2`` does not: it costs at most 1 below the time and without bound above, so its
    optimum under-predicts noisy points; on session 9's measurements its held-out models ran 9% low in the
    median, the log-ratio's 5%.) Solved from the relative-error optimum, a linear non-negative least squares
    (Lawson and Hanson 1974, ``scipy.optimize.nnls``), by bounded trust-region least squares
    (``scipy.optimize.least_squares``, ``"trf"``), on columns scaled to a largest entry of 1; a coefficient
    whose column is all zero (a kind that never has FLOPs) is 0.

    ``min_seconds_per_flop``: no kind's seconds per FLOP below it (the fastest FLOP rate any timed point reached,
    ``peak_seconds_per_flop``), so that no rule claims a compute rate the device never showed: without it, a kind
    whose points tie FLOPs to bytes can trade one for the other (session 11, 2 threads: ``conv_pointwise`` fitted
    at 614 GFLOP/s on two cores whose fastest kernel ran at 440, and mobilenet_v2 predicted 3x faster at 2 threads
    than at 1). Raises ``ValueError`` for no points, lengths that differ, a time <= 0 or a negative bound.
    """
    from scipy.optimize import least_squares, nnls

    t = np.asarray(times, dtype=float)
    w = np.ones_like(t) if weights is None else np.asarray(weights, dtype=float)
    if not len(t) or not (len(parts) == len(t) == len(w)):
        raise ValueError("fit_joint needs one or more points, with parts, times and weights of equal length")
    if np.any(t <= 0) or not np.all(np.isfinite(t)):
        raise ValueError("fit_joint: every time must be a positive number of seconds")
    if min_seconds_per_flop < 0:
        raise ValueError("fit_joint: min_seconds_per_flop must be >= 0")
    kinds = sorted({r[0] for rows in parts for r in rows})
    index = {k: i for i, k in enumerate(kinds)}
    a = np.zeros((len(t), 4 * len(kinds)))
    for j, rows in enumerate(parts):
        for kind, flops, nbytes, *rest in rows:
            i = 4 * index[kind]
            a[j, i : i + 4] += (flops, nbytes, rest[0] if rest else 1.0, rest[1] if len(rest) > 1 else 0.0)
    column_max = np.abs(a).max(axis=0)
    used = column_max > 0
    scaled = a[:, used] / column_max[used]
    root_w = np.sqrt(w)
    x0, _ = nnls(scaled / t[:, None] * root_w[:, None], root_w, maxiter=50 * scaled.shape[1])
    floor = 1e-30  # a point that no coefficient prices yet: its log-ratio stays finite

    def residuals(x: np.ndarray) -> np.ndarray:
        return root_w * np.log(np.maximum(scaled @ x, floor) / t)

    def jacobian(x: np.ndarray) -> np.ndarray:
        return (root_w / np.maximum(scaled @ x, floor))[:, None] * scaled

    # the lower bounds, scaled as the columns: each used FLOP column (every fourth, from the first) at the bound
    lower = np.zeros(a.shape[1])
    lower[0::4] = min_seconds_per_flop
    lower = (lower * column_max)[used]
    inside = np.maximum(x0, lower * (1 + 1e-9) + 1e-12 * max(float(x0.max()), 1e-30))  # strictly inside the bounds
    found = least_squares(residuals, inside, jac=jacobian, bounds=(lower, np.inf), method="trf", x_scale="jac")
    # "trf" keeps every coefficient strictly inside its bound: one that adds less than 0.01% to every point's time
    # is the bound itself, 0 (else a rule that prices no FLOPs would read as a peta-FLOP/s one)
    share = (scaled * found.x / t[:, None]).max(axis=0)
    xs = np.where((share < 1e-4) & (lower == 0), 0.0, found.x)
    x = np.zeros(a.shape[1])
    x[used] = xs / column_max[used]
    return {k: Rule("sum", *(float(v) for v in x[4 * i : 4 * i + 4])) for k, i in index.items()}


def peak_seconds_per_flop(flops: Sequence[float], times: Sequence[float]) -> float:
    """The least seconds per FLOP of any point (``flops`` and its measured ``times``, seconds): the inverse of the
    fastest FLOP rate the device showed; 0 when no point has FLOPs."""
    rates = [f / t for f, t in zip(flops, times, strict=True) if f > 0 and t > 0]
    return 1 / max(rates) if rates else 0.0


def sum_errors(rules: dict[str, Rule], parts: Sequence[Sequence[tuple]], times: Sequence[float]) -> FitError:
    """``FitError`` of points whose predicted time is the sum of their rows' ``rules`` (rows as ``fit_joint``
    takes them; a kind missing from ``rules`` prices nothing), against measured ``times``."""
    pred = [sum(rules[r[0]].seconds(*r[1:]) for r in rows if r[0] in rules) for rows in parts]
    return prediction_errors(pred, times)
