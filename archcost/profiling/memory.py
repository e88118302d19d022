"""Measured peak memory of one forward: CUDA's allocator statistics, or torch.profiler's memory events on the CPU.

Two figures: ``activation_peak_bytes``, the input plus the most the forward allocated above what was held
before it (activations, workspaces), which is what ``archcost.cost.memory.inference_peak_bytes`` estimates;
and ``peak_bytes``, that plus the weights and buffers, the process's total for the model.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MemoryPeak:
    peak_bytes: int
    activation_peak_bytes: int
    method: str


def peak_of_deltas(deltas: Iterable[int]) -> int:
    """The highest running total of allocation (+) and free (-) sizes, in time order, starting from 0."""
    running = peak = 0
    for d in deltas:
        running += d
        peak = max(peak, running)
    return peak


def held_bytes(*objects: object) -> int:
    """Bytes of the tensors (a module's parameters and buffers, or tensors) ``objects`` hold, each storage once."""
    seen: set[int] = set()
    total = 0
    for obj in objects:
        tensors = [*obj.parameters(), *obj.buffers()] if isinstance(obj, torch.nn.Module) else [obj]
        for t in tensors:
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage()
            if storage.data_ptr() in seen:
                continue
            seen.add(storage.data_ptr())
            total += storage.nbytes()
    return total


def cpu_peak(fn: Callable[[], object], model_bytes: int, input_bytes: int) -> MemoryPeak:
    """One call of ``fn`` under ``torch.profiler`` with ``profile_memory=True``: the peak of its allocations."""
    from torch.profiler import ProfilerActivity, profile

    # Kineto logs "profiler_start/stop" lines to stderr at its USDT level (5) on every run; 6 silences them.
    # It reads the variable when the profiler first starts; a value the user set is kept.
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = fn()
        del out
    # Every allocation (+bytes) and free (-bytes) is a "[memory]" event of the profiler's kineto results;
    # ``prof.events()`` folds the ones made inside an op into that op, so the timeline needs these.
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events.sort(key=lambda e: e.start_ns())  # sort is stable: events at the same nanosecond keep their order
    peak = peak_of_deltas(int(e.nbytes()) for e in events if e.device_type() == torch.autograd.DeviceType.CPU)
    return MemoryPeak(model_bytes + input_bytes + peak, input_bytes + peak, "torch.profiler memory events")


def cuda_peak(fn: Callable[[], object], device: torch.device, input_bytes: int) -> MemoryPeak:
    """One call of ``fn`` between ``reset_peak_memory_stats`` and ``max_memory_allocated``."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    out = fn()
    torch.cuda.synchronize(device)
    del out
    peak = torch.cuda.max_memory_allocated(device)
    return MemoryPeak(peak, input_bytes + peak - before, "torch.cuda.max_memory_allocated")


def measure_peak(fn: Callable[[], object], device: torch.device, model_bytes: int, input_bytes: int) -> MemoryPeak:
    if device.type == "cuda":
        return cuda_peak(fn, device, input_bytes)
    return cpu_peak(fn, model_bytes, input_bytes)
