"""A real training step, timed and measured: forward, loss on random targets, backward, optimizer step.

``time_train_step`` times the three phases separately (CUDA: synchronised before and after each phase,
so the phase boundaries are true; CPU: ``time.perf_counter_ns``) with the warm-up and sample count of
inference profiling, and reports medians per phase and for the whole step. ``measured_training_peak`` and
``measured_inference_peak`` give the peak bytes of one step or one forward: on CUDA the allocator's
``max_memory_allocated``, on the CPU ``torch.profiler``'s memory timeline (every allocation and free, in
time order, from ``profile_memory=True``), both with the parameters, their gradients and state, and the
input included, comparable with ``archcost.cost.training``'s ``training_peak_bytes``.

Every function works on a copy of the model: the caller's weights, flags and device are untouched.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from archcost.cost.training import optimizer_rule


def random_loss(out: object) -> torch.Tensor:
    """A loss on random targets: cross-entropy against random classes for ``(N, C)`` logits, else the mean
    squared error against a random tensor of the output's shape. Several outputs: the first."""
    y = out if isinstance(out, torch.Tensor) else next(t for t in _flat(out) if isinstance(t, torch.Tensor))
    if y.dim() == 2 and y.is_floating_point():
        target = torch.randint(0, y.shape[1], (y.shape[0],), device=y.device)
        return nn.functional.cross_entropy(y.float(), target)
    return nn.functional.mse_loss(y.float(), torch.randn(y.shape, device=y.device))


def _flat(value):
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _flat(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _flat(v)]
    return [value]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device, amp: bool):
    """Autocast on CUDA (float16) or the CPU (bfloat16) when ``amp``; a no-op context otherwise."""
    if not amp:
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=torch.float16 if device.type == "cuda" else torch.bfloat16)


class TrainStep:
    """One model copy, its optimizer and a fixed input; ``run()`` does one step and returns phase seconds."""

    def __init__(self, model: nn.Module, x: torch.Tensor, optimizer: str = "adam", *, amp: bool = False) -> None:
        self.device = x.device
        self.model = copy.deepcopy(model).to(x.device).train()
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = optimizer_rule(optimizer).make(params)
        self.x = x
        self.amp = amp
        self.scaler = torch.amp.GradScaler("cuda") if amp and x.device.type == "cuda" else None

    def run(self) -> tuple[float, float, float]:
        dev = self.device
        _sync(dev)
        t0 = time.perf_counter_ns()
        with _autocast(dev, self.amp):
            loss = random_loss(self.model(self.x))
        _sync(dev)
        t1 = time.perf_counter_ns()
        (self.scaler.scale(loss) if self.scaler else loss).backward()
        _sync(dev)
        t2 = time.perf_counter_ns()
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        _sync(dev)
        t3 = time.perf_counter_ns()
        return (t1 - t0) / 1e9, (t2 - t1) / 1e9, (t3 - t2) / 1e9


def time_train_step(
    model: nn.Module,
    x: torch.Tensor,
    optimizer: str = "adam",
    *,
    amp: bool = False,
    warmup_s: float = 1.0,
    min_time_s: float = 0.2,
    repeats: int = 10,
    clock: Callable[[], float] = time.perf_counter,
) -> dict:
    """Medians of ``repeats`` samples of the training step of a copy of ``model`` on ``x``.

    Warm-up: steps for at least ``warmup_s`` seconds (at least 2). Each sample averages as many steps as
    fill ``min_time_s``. Returns ``forward_median_s``, ``backward_median_s``, ``optimizer_median_s`` and
    ``latency_median_s`` (the whole step), seconds per step, and the per-sample step times."""
    step = TrainStep(model, x, optimizer, amp=amp)
    start, n = clock(), 0
    per_step = 0.0
    while n < 2 or clock() - start < warmup_s:
        per_step = sum(step.run())
        n += 1
    iters = max(1, int(min_time_s / per_step) + 1) if per_step > 0 else 1
    samples = []
    for _ in range(repeats):
        phases = [step.run() for _ in range(iters)]
        samples.append([sum(p[i] for p in phases) / iters for i in range(3)])
    totals = [sum(s) for s in samples]
    return {
        "mode": "train",
        "optimizer": optimizer,
        "amp": amp,
        "forward_median_s": statistics.median(s[0] for s in samples),
        "backward_median_s": statistics.median(s[1] for s in samples),
        "optimizer_median_s": statistics.median(s[2] for s in samples),
        "latency_median_s": statistics.median(totals),
        "iterations_per_sample": iters,
        "samples_s": totals,
    }


def _cpu_timeline_peak(fn: Callable[[], object]) -> int:
    """Peak bytes ``fn()`` allocated beyond what was alive before it, from torch.profiler's memory timeline.

    ``prof._memory_profile()`` is the timeline behind torch's public ``export_memory_timeline``: every
    tensor's creation and destruction in time order. (Summing each op event's ``self_cpu_memory_usage`` in
    start order instead puts the frees done inside an enclosing range, such as ``Optimizer.step``, at the
    range's start, before the allocations they follow, and reads low.)"""
    from torch.profiler import ProfilerActivity, profile
    from torch.profiler._memory_profiler import Action

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True) as prof:
        fn()
    live = peak = 0
    for _, action, _, size in prof._memory_profile().timeline:
        if action == Action.CREATE:  # PREEXISTING tensors (weights, input) are the caller's to add
            live += size
        elif action == Action.DESTROY:
            live -= size
        peak = max(peak, live)
    return peak


def measured_training_peak(model: nn.Module, x: torch.Tensor, optimizer: str = "adam") -> int:
    """Peak bytes of the first training step of a copy of ``model`` on ``x``: parameters, input, activations,
    gradients and optimizer state (loss ``output.sum()``, as ``archcost.cost.training`` assumes)."""
    m = copy.deepcopy(model).to(x.device).train()
    opt = optimizer_rule(optimizer).make([p for p in m.parameters() if p.requires_grad])
    held = sum(t.untyped_storage().nbytes() for t in [*m.parameters(), x])

    def step() -> None:
        out = m(x)
        sum(t.sum() for t in _flat(out) if isinstance(t, torch.Tensor) and t.requires_grad).backward()
        opt.step()

    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
        torch.cuda.reset_peak_memory_stats(x.device)
        base = torch.cuda.memory_allocated(x.device)
        step()
        torch.cuda.synchronize(x.device)
        return torch.cuda.max_memory_allocated(x.device) - base + held
    return _cpu_timeline_peak(step) + held


def measured_inference_peak(model: nn.Module, x: torch.Tensor) -> int:
    """Peak bytes of one inference forward of a copy of ``model`` on ``x``, parameters and input included."""
    m = copy.deepcopy(model).to(x.device).eval()
    held = sum(t.untyped_storage().nbytes() for t in [*m.parameters(), *m.buffers(), x])
    with torch.inference_mode():
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
            torch.cuda.reset_peak_memory_stats(x.device)
            base = torch.cuda.memory_allocated(x.device)
            m(x)
            torch.cuda.synchronize(x.device)
            return torch.cuda.max_memory_allocated(x.device) - base + held
        return _cpu_timeline_peak(lambda: m(x)) + held
