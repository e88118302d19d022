"""The one measured peak-memory method: CUDA's allocator statistics, or torch.profiler's allocation events on the CPU.

Every measured peak in archcost (``profile``'s records, ``maxbatch --verify``, the memory benchmarks, the
tests that compare an estimate with a measurement) comes from ``peak_above`` here:

- **CUDA**: ``torch.cuda.reset_peak_memory_stats`` before the call, ``torch.cuda.max_memory_allocated``
  after it, minus ``torch.cuda.memory_allocated`` before it (public allocator statistics).
- **CPU**: torch has no public allocator statistics for the CPU. ``torch.profiler.profile(profile_memory=True)``
  has the CPU allocator report every allocation (+bytes) and free (-bytes) as a ``[memory]`` event; the
  peak is the highest running total of those events in time order (``peak_of_deltas``). The events are read
  from the profiler's raw results (``prof.profiler.kineto_results.events()``, feature-tested), not from
  ``prof.events()``, which folds an allocation made inside an op into that op's ``self_cpu_memory_usage``:
  summing those in start order puts the frees done inside an enclosing range (``Optimizer.step``) at the
  range's start, before the allocations they follow, and reads low. (``prof._memory_profile()``, the
  timeline behind ``export_memory_timeline``, is built from the same events but is private and needs
  ``record_shapes`` and ``with_stack``, which slow the measured call.) One limit: the CPU allocator reports
  no size for a block allocated before the profiler started, so a call that frees memory it did not
  allocate reads high by that much (an upper bound; the first step of a fresh copy frees nothing of that
  kind, and CUDA's statistics have no such limit).

Two figures per measurement (``MemoryPeak``): ``above_bytes``, the most the call allocated above what was
held before it, and ``peak_bytes``, that plus the bytes already held (parameters, buffers, inputs:
``held_bytes``), which is what ``archcost.cost.memory`` and ``archcost.cost.training`` estimate.
``measure_inference_peak`` and ``measure_training_peak`` measure a model on a deep copy: the caller's
model never changes.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from archcost.errors import InternalError

#: ``MemoryPeak.method`` of each device type.
METHODS = {
    "cuda": "torch.cuda.max_memory_allocated",
    "cpu": "torch.profiler memory events",
}


@dataclass(frozen=True)
class MemoryPeak:
    """A measured peak, in bytes: ``peak_bytes`` = ``held_bytes`` (alive before the call: weights, buffers,
    inputs) + ``above_bytes`` (the most the call allocated above that); ``method`` names the source."""

    peak_bytes: int
    above_bytes: int
    held_bytes: int
    input_bytes: int
    method: str

    @property
    def activation_peak_bytes(self) -> int:
        """The input plus the most the call allocated above what was held (``inference_peak_bytes``'s figure)."""
        return self.input_bytes + self.above_bytes


def peak_of_deltas(deltas: Iterable[int]) -> int:
    """The highest running total of allocation (+) and free (-) sizes, in time order, starting from 0."""
    running = peak = 0
    for d in deltas:
        running += d
        peak = max(peak, running)
    return peak


def held_bytes(*objects: object) -> int:
    """Bytes of the tensors ``objects`` hold (a module's parameters and buffers, tensors, or lists, tuples
    and dicts of them), each storage once."""
    seen: set[int] = set()
    total = 0
    stack = list(objects)
    while stack:
        obj = stack.pop()
        if isinstance(obj, nn.Module):
            stack.extend([*obj.parameters(), *obj.buffers()])
        elif isinstance(obj, (list, tuple)):
            stack.extend(obj)
        elif isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, torch.Tensor) and obj.device.type != "meta":
            storage = obj.untyped_storage()
            if storage.data_ptr() in seen:
                continue
            seen.add(storage.data_ptr())
            total += storage.nbytes()
    return total


def _cpu_events(prof) -> list:
    """The profiler's raw ``[memory]`` events (``InternalError`` naming the torch version if it has none)."""
    results = getattr(getattr(prof, "profiler", None), "kineto_results", None)
    if results is None or not hasattr(results, "events"):
        raise InternalError(
            f"torch {torch.__version__}'s profiler has no kineto results to read allocations from",
            "report this with your torch version; measure on CUDA or with --no-memory meanwhile",
        )
    return [e for e in results.events() if e.name() == "[memory]"]


def cpu_peak_above(fn: Callable[[], object]) -> int:
    """Bytes: the most ``fn()`` allocated on the CPU above what was alive before it (its output is freed
    inside the measurement). The running total of the CPU allocator's ``[memory]`` events, in time order."""
    from torch.profiler import ProfilerActivity, profile

    # Kineto logs "profiler_start/stop" lines to stderr at its USDT level (5) on every run; 6 silences them.
    # It reads the variable when the profiler first starts; a value the user set is kept.
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = fn()
        del out
    events = _cpu_events(prof)
    events.sort(key=lambda e: e.start_ns())  # sort is stable: events at the same nanosecond keep their order
    cpu = torch.autograd.DeviceType.CPU
    return peak_of_deltas(int(e.nbytes()) for e in events if e.device_type() == cpu)


def cuda_peak_above(fn: Callable[[], object], device: torch.device) -> int:
    """Bytes: ``max_memory_allocated`` during ``fn()`` minus ``memory_allocated`` before it, on ``device``."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    out = fn()
    torch.cuda.synchronize(device)
    del out
    return int(torch.cuda.max_memory_allocated(device) - before)


def peak_above(fn: Callable[[], object], device: torch.device) -> int:
    """Bytes ``fn()`` allocated at most above what was alive before it, on ``device`` (CUDA or the CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        return cuda_peak_above(fn, device)
    return cpu_peak_above(fn)


def measure_peak(fn: Callable[[], object], device: torch.device, model_bytes: int, input_bytes: int) -> MemoryPeak:
    """One call of ``fn`` measured by ``peak_above``; ``model_bytes`` and ``input_bytes`` are what was held."""
    device = torch.device(device)
    above = peak_above(fn, device)
    held = model_bytes + input_bytes
    return MemoryPeak(held + above, above, held, input_bytes, METHODS["cuda" if device.type == "cuda" else "cpu"])


def flat_values(value: object) -> list:
    """The leaves of nested lists, tuples and dicts (an output, or forward's arguments), in order."""
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in flat_values(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in flat_values(v)]
    return [value]


def call_args(x: object) -> tuple[list, dict, list[torch.Tensor], torch.device]:
    """``x``: one input tensor, or forward's ``(args, kwargs)`` (``Workload.tensors``) -> args, kwargs, every
    input tensor, and their device (the CPU when there is no tensor)."""
    if isinstance(x, torch.Tensor):
        return [x], {}, [x], x.device
    if not (isinstance(x, (tuple, list)) and len(x) == 2 and isinstance(x[1], dict)):
        raise TypeError(f"expected a tensor or forward's (args, kwargs), got {type(x).__name__}")
    args: list = list(x[0])
    kwargs: dict = dict(x[1])
    flat = [t for t in flat_values([*args, *kwargs.values()]) if isinstance(t, torch.Tensor)]
    return args, kwargs, flat, flat[0].device if flat else torch.device("cpu")


def measure_inference_peak(model: nn.Module, x: object, *, copy_model: bool = True) -> MemoryPeak:
    """The peak of one inference forward (under ``torch.inference_mode``) of a deep copy of ``model`` on ``x``
    (one tensor, or forward's ``(args, kwargs)``), after one warm-up forward; held: the copy's parameters and
    buffers and the inputs. The caller's model is not touched. ``copy_model=False``: measure ``model``
    itself, for a caller that built it for this (``maxbatch --verify``: no second copy of the weights on
    a device filled to its limit)."""
    args, kwargs, ins, device = call_args(x)
    m = (copy.deepcopy(model) if copy_model else model).to(device).eval()
    with torch.inference_mode():
        m(*args, **kwargs)  # warm-up: one-time allocations (kernel caches, lazy state) are not the model's peak
        return measure_peak(lambda: m(*args, **kwargs), device, held_bytes(m), held_bytes(ins))


def measure_training_peak(
    model: nn.Module, x: object, optimizer: str = "adam", *, copy_model: bool = True
) -> MemoryPeak:
    """The peak of the first training step of a deep copy of ``model`` on ``x`` (one tensor, or forward's
    ``(args, kwargs)``): forward, backward of the sum of the output's tensors (the loss
    ``archcost.cost.training`` assumes), one step of ``optimizer`` (sgd, momentum, adam, adamw: the rule
    ``archcost.cost.step.optimizer_rule`` builds, so each is the optimizer named). Gradients and optimizer
    state are created inside the step; held: the copy's parameters and buffers and the inputs. The caller's
    model is not touched (``copy_model=False``: ``model`` itself is stepped, for a caller that built it for
    this). ``InputError`` for an unknown optimizer."""
    from archcost.cost.step import optimizer_rule

    rule = optimizer_rule(optimizer)
    args, kwargs, ins, device = call_args(x)
    m = (copy.deepcopy(model) if copy_model else model).to(device).train()
    opt = rule.make([p for p in m.parameters() if p.requires_grad])

    def step() -> None:
        out = m(*args, **kwargs)
        losses = [t.sum() for t in flat_values(out) if isinstance(t, torch.Tensor) and t.requires_grad]
        if losses:
            sum(losses).backward()  # type: ignore[union-attr]
        opt.step()

    return measure_peak(step, device, held_bytes(m), held_bytes(ins))


def measured_inference_peak(model: nn.Module, x: object) -> int:
    """Bytes: ``measure_inference_peak(model, x).peak_bytes`` (parameters, buffers and inputs included)."""
    return measure_inference_peak(model, x).peak_bytes


def measured_training_peak(model: nn.Module, x: object, optimizer: str = "adam") -> int:
    """Bytes: ``measure_training_peak(model, x, optimizer).peak_bytes`` (parameters, buffers, inputs,
    gradients and optimizer state included)."""
    return measure_training_peak(model, x, optimizer).peak_bytes
