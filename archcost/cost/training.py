"""Training-mode entry points: a model and its inputs in, one training step out (``simulate_step``,
``analyze_training``, ``training_peak_bytes``), and the largest batch that fits a memory limit
(``max_batch``, ``estimated_peak``). How the step is costed and its memory followed: ``archcost.cost.step``,
whose public names this module also exports (``OPTIMIZERS``, ``optimizer_rule``, ``backward_op_cost``,
``loss_tensors``, ``TrainingStep``...)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from archcost.cost.analysis import analyze
from archcost.cost.memory import estimate
from archcost.cost.record import CostReport
from archcost.cost.step import (
    BACKWARD_FLOPS_PER_ELEMENT,
    NO_ARITHMETIC,
    OPTIMIZERS,
    STEP_OPTIONS,
    OptimizerRule,
    StepOptions,
    StepPlan,
    TrainingStep,
    backward_op_cost,
    loss_tensors,
    optimizer_rule,
    train_step,
    with_training,
)
from archcost.cost.workload import Workload
from archcost.errors import InputError, InternalError

__all__ = [
    "BACKWARD_FLOPS_PER_ELEMENT", "NO_ARITHMETIC", "OPTIMIZERS", "STEP_OPTIONS", "MaxBatch", "OptimizerRule",
    "StepOptions", "StepPlan", "TrainingStep", "analyze_training", "backward_op_cost", "estimated_peak",
    "loss_tensors", "max_batch", "optimizer_rule", "simulate_step", "train_step", "training_peak_bytes",
    "with_training",
]  # fmt: skip


def simulate_step(
    model: nn.Module | Workload,
    input_size: object = None,
    batch_size: int = 1,
    dtype: torch.dtype | str = torch.float32,
    *,
    inputs: object = None,
    kwargs: dict | None = None,
    optimizer: str = "adam",
    foreach: bool = False,
    cost: bool = True,
    device: str = "auto",
) -> TrainingStep:
    """Forward, backward of the sum of the output's tensors and the first ``optimizer`` step of ``model``,
    as ``analyze(..., mode="train")`` runs it (the inputs as ``analyze`` takes them, on the meta device, on
    the CPU where forward or backward needs values), with its ``TrainingStep``.

    The caller's model is not changed (``analyze``'s guards). Raises ``InputError`` for a non-float dtype,
    an unknown optimizer or a model with nothing to train, ``AnalysisError`` when the step fails."""
    optimizer_rule(optimizer)
    options = StepOptions(foreach=foreach, cost=cost)
    token = STEP_OPTIONS.set(options)
    try:
        analyze(model, input_size, batch_size, dtype, inputs=inputs, kwargs=kwargs, mode="train",
                optimizer=optimizer, device=device)  # fmt: skip
    finally:
        STEP_OPTIONS.reset(token)
    if options.result is None:
        raise InternalError("analyze(mode='train') gave no training step")
    return options.result


def analyze_training(
    model: nn.Module,
    input_size: object = None,
    batch_size: int = 1,
    dtype: torch.dtype | str = torch.float32,
    *,
    inputs: object = None,
    kwargs: dict | None = None,
    name: str | None = None,
    optimizer: str = "adam",
    device: str = "auto",
) -> CostReport:
    """``analyze(..., mode="train")``: the training-mode forward, with backward MACs/FLOPs and optimizer
    FLOPs per row and ``training_peak_bytes`` (inputs as ``analyze`` takes them)."""
    return analyze(model, input_size, batch_size, dtype, inputs=inputs, kwargs=kwargs, name=name, mode="train",
                   optimizer=optimizer, device=device)  # fmt: skip


def training_peak_bytes(
    model: nn.Module,
    input_size: object,
    batch_size: int,
    dtype: torch.dtype | str = torch.float32,
    *,
    optimizer: str = "adam",
    foreach: bool = False,
) -> int:
    """Peak bytes of one training step (``simulate_step``, memory only)."""
    sim = simulate_step(model, input_size, batch_size, dtype, optimizer=optimizer, foreach=foreach, cost=False)
    return sim.peak_bytes


# -- the largest batch that fits ---------------------------------------------------------------------------
@dataclass(frozen=True)
class MaxBatch:
    batch_size: int
    memory_limit_bytes: int
    estimated_peak_bytes: int  # at batch_size
    next_peak_bytes: int  # at batch_size + 1: over the limit
    evaluations: int


def max_batch(peak: Callable[[int], int], limit: int, *, cap: int = 1 << 24) -> MaxBatch:
    """The largest batch size ``n`` with ``peak(n) <= limit`` (``peak``: bytes at a batch size, increasing).

    The peak is a sum of tensor sizes that are each constant or proportional to the batch, taken at the
    worst moment, so it is convex in the batch size: the line through ``peak(1)`` and ``peak(2)`` is a lower
    bound beyond 2, and where it crosses the limit bounds the answer from above. Bisection between a size
    that fits and one that does not finds it; the answer is confirmed by ``peak(n + 1) > limit``.
    Raises ``InputError`` when one sample does not fit (with both figures).
    """
    seen: dict[int, int] = {}

    def p(n: int) -> int:
        if n not in seen:
            seen[n] = peak(n)
        return seen[n]

    if p(1) > limit:
        raise InputError(
            f"one sample needs an estimated {p(1):,} bytes ({p(1) / 1e9:.3f} GB), over the limit of {limit:,} bytes",
            "raise --memory, or choose a smaller input size or a lower-precision --dtype",
        )
    lo, hi = 1, None  # lo fits; hi (when known) does not
    if p(2) <= limit:
        lo = 2
        slope = p(2) - p(1)
        if slope > 0:
            guess = min(1 + (limit - p(1)) // slope, cap)
            if p(guess) <= limit:
                lo = guess
            else:
                hi = guess
            if hi is None and p(guess + 1) > limit:
                hi = guess + 1
    else:
        hi = 2
    while hi is None:  # the bound failed (the peak is not convex here): grow until a size does not fit
        nxt = min(lo * 2, cap + 1)
        if nxt > cap:
            hi = cap + 1
            break
        if p(nxt) <= limit:
            lo = nxt
        else:
            hi = nxt
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if p(mid) <= limit:
            lo = mid
        else:
            hi = mid
    return MaxBatch(lo, limit, p(lo), p(lo + 1) if lo + 1 <= cap else p(lo), len(seen))


def estimated_peak(
    model: nn.Module | Workload,
    input_size: tuple[int, ...] | None,
    batch_size: int,
    dtype: torch.dtype | str = torch.float32,
    *,
    mode: str = "train",
    optimizer: str = "adam",
    foreach: bool = False,
) -> int:
    """Estimated peak bytes at ``batch_size``: a training step (``simulate_step``) or an inference forward
    (parameters + ``analyze``'s peak of live activations, input included)."""
    if mode == "train":
        return simulate_step(
            model, input_size, batch_size, dtype, optimizer=optimizer, foreach=foreach, cost=False
        ).peak_bytes
    return estimate(analyze(model, input_size, batch_size, dtype)).inference_total_bytes  # meta; CPU where it must
