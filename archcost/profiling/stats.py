"""Pure statistics of timing samples: percentiles, spread, warm-up settling and iteration calibration.

No clocks and no tensors here: every function takes numbers, so the tests pin them exactly.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation between order statistics.

    The same definition as ``numpy.percentile``'s default ("linear"): position ``(n - 1) * q / 100``.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def coefficient_of_variation(values: Sequence[float]) -> float:
    """Sample standard deviation over mean (0 for a single value or a zero mean)."""
    if len(values) < 2:
        return 0.0
    mean = statistics.fmean(values)
    return statistics.stdev(values) / mean if mean else 0.0


@dataclass(frozen=True)
class LatencyStats:
    """Summary of per-iteration latencies in seconds, one value per sample."""

    median_s: float
    p10_s: float
    p90_s: float
    mean_s: float
    min_s: float
    max_s: float
    cv: float
    samples: int

    def throughput(self, batch_size: int) -> float:
        """Images per second: batch over median latency."""
        return batch_size / self.median_s

    def to_dict(self) -> dict:
        return asdict(self)


def summarize(per_iteration_s: Sequence[float]) -> LatencyStats:
    """Median, p10, p90, mean, min, max and coefficient of variation of per-iteration latencies."""
    if not per_iteration_s:
        raise ValueError("no samples to summarize")
    xs = [float(v) for v in per_iteration_s]
    return LatencyStats(
        median_s=statistics.median(xs),
        p10_s=percentile(xs, 10),
        p90_s=percentile(xs, 90),
        mean_s=statistics.fmean(xs),
        min_s=min(xs),
        max_s=max(xs),
        cv=coefficient_of_variation(xs),
        samples=len(xs),
    )


def settled(times: Sequence[float], window: int = 5, tolerance: float = 0.05) -> bool:
    """Whether the last two windows of single-call timings agree: medians within ``tolerance`` of each other.

    Warm-up goes on until this holds (and the warm-up time has passed): the first calls of a model pay
    for allocator growth, kernel selection (cuDNN benchmark), lazy initialisation or compilation.
    """
    if len(times) < 2 * window:
        return False
    recent = statistics.median(times[-window:])
    before = statistics.median(times[-2 * window : -window])
    if before <= 0:
        return recent <= 0
    return abs(recent - before) / before <= tolerance


def iterations_for(per_iteration_s: float, min_time_s: float, *, max_iterations: int = 1_000_000) -> int:
    """Iterations per sample so that one sample lasts at least ``min_time_s``: ceil(min_time / per-iteration)."""
    if min_time_s <= 0:
        return 1
    if per_iteration_s <= 0:
        return max_iterations
    return max(1, min(max_iterations, math.ceil(min_time_s / per_iteration_s)))


def calibrate(
    time_block: Callable[[int], float],
    min_time_s: float,
    first_guess: int = 1,
    *,
    max_rounds: int = 20,
    max_iterations: int = 1_000_000,
) -> tuple[int, float]:
    """The number of iterations ``n`` whose block ``time_block(n)`` (seconds) lasts at least ``min_time_s``.

    Starts at ``first_guess``; while a block is too short, re-estimates the per-iteration time from it and
    asks for 10% more than that estimate says is needed (at least twice as many once the block is under a
    tenth of the target, so timer resolution cannot stall it). Returns ``(n, seconds of the last block)``.
    """
    n = max(1, first_guess)
    elapsed = time_block(n)
    rounds = 1
    while elapsed < min_time_s and n < max_iterations and rounds < max_rounds:
        if elapsed <= 0 or elapsed < min_time_s / 10:
            target = n * 10 if elapsed <= 0 else max(2 * n, iterations_for(elapsed / n, min_time_s))
        else:
            target = math.ceil(iterations_for(elapsed / n, min_time_s) * 1.1)
        n = min(max_iterations, max(n + 1, target))
        elapsed = time_block(n)
        rounds += 1
    return n, elapsed


def spread(medians: Sequence[float]) -> float:
    """max / min of repeated runs' medians (1.0 is perfectly repeatable)."""
    if not medians:
        raise ValueError("spread of no values")
    return max(medians) / min(medians)
