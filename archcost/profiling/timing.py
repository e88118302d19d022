"""Timing one callable on one device: warm-up until settled, calibrated iterations, several samples.

CPU blocks are timed with ``time.perf_counter_ns``. CUDA blocks are timed with CUDA events recorded on
the current stream around the block, after a ``torch.cuda.synchronize()``, and read after
``end.synchronize()`` (PyTorch's documented way to time asynchronous kernels; ``torch.utils.benchmark``
does the same). The decisions (when warm-up has settled, how many iterations a sample needs, the
statistics) are the pure functions of ``archcost.profiling.stats``.

Around the timed samples ``measure`` also reads what the machine took from the process: the CPUs' steal time
(``/proc/stat``, proc(5): ticks in which a virtual CPU wanted to run and the hypervisor ran something else) and
the process's CPU time. On a cloud VM stolen time lengthens a sample without the model doing more work; in this
project's CI VM a 0.2 s CPU sample's wall time followed the steal during it (Pearson +0.65, 1 thread). It reads
the process's minor page faults as well (getrusage(2)): memory mapped afresh and zeroed by the kernel on every
call, which made efficientnet_b0 30-50% slower at batch 1 in a fresh process (``environment.steady_heap``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from archcost.profiling.stats import LatencyStats, calibrate, iterations_for, settled, summarize


class CpuTimer:
    """Wall-clock seconds of ``n`` calls, with ``time.perf_counter_ns``."""

    method = "time.perf_counter_ns"

    def block(self, fn: Callable[[], object], n: int) -> float:
        start = time.perf_counter_ns()
        for _ in range(n):
            fn()
        return (time.perf_counter_ns() - start) / 1e9


class CudaTimer:
    """GPU seconds of ``n`` calls between two CUDA events on the current stream."""

    method = "torch.cuda.Event"

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def block(self, fn: Callable[[], object], n: int) -> float:
        torch.cuda.synchronize(self.device)
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(n):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3  # elapsed_time is in milliseconds


def timer_for(device: torch.device) -> CpuTimer | CudaTimer:
    return CudaTimer(device) if device.type == "cuda" else CpuTimer()


@dataclass(frozen=True)
class Timing:
    """What ``measure`` found: the statistics and how they were taken."""

    stats: LatencyStats
    iterations: int  # per sample
    warmup_iterations: int
    warmup_s: float
    warmup_settled: bool
    method: str
    block_spans: tuple[tuple[float, float], ...]  # perf_counter seconds at the start and end of each sample
    # the share of all CPUs' clock ticks during the timed samples that the hypervisor stole (``cpu_ticks``); None
    # where /proc/stat cannot be read (not Linux) or no tick passed
    steal_fraction: float | None = None
    # the process's CPU seconds (every thread's, ``time.process_time``) per wall second of the timed samples: about
    # the thread count while the process ran undisturbed, less while it waited or its CPU time was stolen
    process_cpu_per_wall: float | None = None
    # the process's minor page faults (getrusage(2) ``ru_minflt``) during the timed samples, per call: pages mapped
    # afresh and zeroed by the kernel on every call (``environment.steady_heap``); None without ``resource``
    minor_faults_per_call: float | None = None


def cpu_ticks() -> tuple[int, int] | None:
    """``(steal, all)`` clock ticks of every CPU since boot, from the first line of ``/proc/stat`` (proc(5): the
    eighth number is steal, the first eight together all ticks); ``None`` where it cannot be read."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
        ticks = [int(x) for x in fields[1:9]]
    except (OSError, ValueError):
        return None
    if fields[0] != "cpu" or len(ticks) < 8:
        return None
    return ticks[7], sum(ticks)


def steal_between(start: tuple[int, int] | None, end: tuple[int, int] | None) -> float | None:
    """The stolen share of the ticks between two ``cpu_ticks`` readings (0 to 1), or None without both or a tick."""
    if start is None or end is None or end[1] <= start[1]:
        return None
    return (end[0] - start[0]) / (end[1] - start[1])


def warm_up(
    fn: Callable[[], object],
    timer,
    warmup_s: float,
    *,
    window: int = 5,
    tolerance: float = 0.05,
    max_factor: float = 5.0,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[list[float], bool]:
    """Single calls for at least ``warmup_s`` seconds and until ``settled``; gives up settling at
    ``max_factor * warmup_s`` (and says so). The first call (lazy initialisation, ``torch.compile``'s
    compilation) is always made and not counted in that time. Returns the call times and whether they settled.
    """
    times = [timer.block(fn, 1)]
    start = clock()
    while True:
        spent = clock() - start
        ok = settled(times, window, tolerance)
        if spent >= warmup_s and ok:
            return times, True
        if spent >= warmup_s * max_factor:
            return times, ok
        times.append(timer.block(fn, 1))


def minor_faults() -> int | None:
    """This process's minor page faults so far (getrusage(2) ``ru_minflt``), or None where ``resource`` is
    missing (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def measure(
    fn: Callable[[], object],
    device: torch.device,
    *,
    warmup_s: float = 1.0,
    min_time_s: float = 0.2,
    repeats: int = 10,
    on_timed: Callable[[bool], None] | None = None,
    warmup_window: int = 5,
    iterations: int | None = None,
) -> Timing:
    """Time ``fn`` on ``device``: warm-up, then ``repeats`` samples of ``n`` calls each lasting >= ``min_time_s``.

    Each sample gives one per-iteration latency (block time / n). ``on_timed(True)`` is called just before
    the timed samples and ``on_timed(False)`` just after (the power sampler marks its window with it).
    Warm-up settles over two windows of ``warmup_window`` single calls (``warm_up``). ``iterations`` fixes ``n``
    (a ``Timing.iterations`` of an earlier ``measure`` of the same call) instead of calibrating it: timing a
    warm call again, as ``benchmarks/predict_check.py`` does in its later passes, with ``warmup_s=0``.
    """
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    if iterations is not None and iterations < 1:
        raise ValueError("iterations must be >= 1")
    timer = timer_for(device)
    t0 = time.perf_counter()
    warm, ok = warm_up(fn, timer, warmup_s, window=warmup_window)
    warm_spent = time.perf_counter() - t0
    if iterations is None:
        recent = sorted(warm[-5:])[len(warm[-5:]) // 2]
        first_guess = iterations_for(recent, min_time_s, max_iterations=100_000)
        n, _ = calibrate(lambda k: timer.block(fn, k), min_time_s, first_guess=first_guess)
    else:
        n = iterations
    samples: list[float] = []
    spans: list[tuple[float, float]] = []
    if on_timed:
        on_timed(True)
    ticks0, cpu0, faults0 = cpu_ticks(), time.process_time(), minor_faults()
    try:
        for _ in range(repeats):
            a = time.perf_counter()
            elapsed = timer.block(fn, n)
            spans.append((a, time.perf_counter()))
            samples.append(elapsed / n)
    finally:
        cpu1, ticks1, faults1 = time.process_time(), cpu_ticks(), minor_faults()
        if on_timed:
            on_timed(False)
    wall = sum(b - a for a, b in spans)
    per_wall = (cpu1 - cpu0) / wall if wall > 0 else None
    calls = len(samples) * n
    faults = (faults1 - faults0) / calls if faults0 is not None and faults1 is not None and calls else None
    return Timing(summarize(samples), n, len(warm), warm_spent, ok, timer.method, tuple(spans),
                  steal_between(ticks0, ticks1), per_wall, faults)  # fmt: skip


def timing_fields(timing: Timing, batch: int) -> dict:
    """A record's latency fields from one ``measure`` run: median, p10, p90, mean, min, max (seconds), CV,
    samples, iterations per sample, warm-up, the timer used, throughput (images per second), and what the machine
    took meanwhile: the CPUs' stolen share of ticks, the process's CPU seconds per wall second and its minor page faults
    per call (``Timing``)."""
    s = timing.stats
    return {
        "latency_median_s": s.median_s,
        "latency_p10_s": s.p10_s,
        "latency_p90_s": s.p90_s,
        "latency_mean_s": s.mean_s,
        "latency_min_s": s.min_s,
        "latency_max_s": s.max_s,
        "latency_cv": s.cv,
        "samples": s.samples,
        "iterations_per_sample": timing.iterations,
        "warmup_iterations": timing.warmup_iterations,
        "warmup_s": timing.warmup_s,
        "warmup_settled": timing.warmup_settled,
        "timer": timing.method,
        "throughput_ips": s.throughput(batch),
        "cpu_steal_fraction": timing.steal_fraction,
        "process_cpu_per_wall": timing.process_cpu_per_wall,
        "minor_faults_per_call": timing.minor_faults_per_call,
    }
