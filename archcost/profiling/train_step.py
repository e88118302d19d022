"""A real training step, timed and measured: forward, loss on random targets, backward, optimizer step.

``time_train_step`` times whole steps with inference profiling's own ``timing.measure`` (warm-up until
settled, calibrated steps per sample, the same statistics) and, inside each step, the three phases
(``time.perf_counter_ns`` between device synchronisations, so the phase boundaries are true on CUDA),
and reports medians per phase and for the whole step. The measured peak of a step is
``archcost.profiling.memory.measure_training_peak`` (the one peak-memory method; ``measured_training_peak``
and ``measured_inference_peak`` are re-exported from there), comparable with ``archcost.cost.training``'s
``training_peak_bytes``.

Every function works on a copy of the model (the caller's weights, flags and device are untouched), except
where ``copy_model=False`` asks to train the module given (the profile sweep's own working copy).
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from archcost.cost.training import optimizer_rule
from archcost.errors import InputError
from archcost.profiling.memory import (  # the one measured peak-memory method; re-exported for older callers
    call_args,
    flat_values,
    measured_inference_peak,
    measured_training_peak,
)

__all__ = [
    "TrainStep",
    "measured_inference_peak",
    "measured_training_peak",
    "random_loss",
    "time_train_step",
]


def random_loss(out: object) -> torch.Tensor:
    """A loss on random targets: cross-entropy against random classes for ``(N, C)`` logits, else the mean
    squared error against a random tensor of the output's shape. Several outputs: the first."""
    y = out if isinstance(out, torch.Tensor) else next(t for t in flat_values(out) if isinstance(t, torch.Tensor))
    if y.dim() == 2 and y.is_floating_point():
        target = torch.randint(0, y.shape[1], (y.shape[0],), device=y.device)
        return nn.functional.cross_entropy(y.float(), target)
    return nn.functional.mse_loss(y.float(), torch.randn(y.shape, device=y.device))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device, amp: bool):
    """Autocast on CUDA (float16) or the CPU (bfloat16) when ``amp``; a no-op context otherwise."""
    if not amp:
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=torch.float16 if device.type == "cuda" else torch.bfloat16)


class TrainStep:
    """A model, its optimizer and a fixed input; ``run()`` does one step and returns its phase seconds.

    ``copy_model=False`` trains ``model`` itself (the profile sweep passes its own working copy, already on
    the device); the default trains a deep copy, so the caller's weights never change."""

    def __init__(
        self, model: nn.Module, x, optimizer: str = "adam", *, amp: bool = False, copy_model: bool = True
    ) -> None:
        self.args, self.kwargs, _, self.device = call_args(x)  # one tensor, or forward's (args, kwargs)
        self.model = (copy.deepcopy(model) if copy_model else model).to(self.device).train()
        require_trainable(model)
        params: list[torch.Tensor] = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = optimizer_rule(optimizer).make(params)
        self.amp = amp
        self.scaler = torch.amp.GradScaler("cuda") if amp and self.device.type == "cuda" else None

    def run(self) -> tuple[float, float, float]:
        dev = self.device
        _sync(dev)
        t0 = time.perf_counter_ns()
        with _autocast(dev, self.amp):
            loss = random_loss(self.model(*self.args, **self.kwargs))
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
    x,
    optimizer: str = "adam",
    *,
    amp: bool = False,
    warmup_s: float = 1.0,
    min_time_s: float = 0.2,
    repeats: int = 10,
    on_timed: Callable[[bool], None] | None = None,
    copy_model: bool = True,
) -> dict:
    """The training step of (a copy of) ``model`` on ``x``, timed as inference is: ``timing.measure``.

    The warm-up (until the single-step times settle), the calibration of steps per sample (each sample
    lasts at least ``min_time_s``) and the statistics over ``repeats`` samples are the inference ones;
    the timed callable is one whole step (forward and loss, backward, ``optimizer.step`` and
    ``zero_grad``), so the whole-step latency has the same timer (CUDA events, ``perf_counter_ns`` on the
    CPU). Each step also times its three phases with ``perf_counter_ns`` between device synchronisations;
    a sample's phase time is the mean over its steps, and each phase's median is over the samples.

    Returns ``mode`` ("train"), ``optimizer``, ``amp``, ``forward_median_s``, ``backward_median_s``,
    ``optimizer_median_s``, ``latency_median_s`` (the whole step), ``iterations_per_sample`` and ``timing``
    (the ``timing.Timing`` of the whole step: p10, p90, CV, samples, warm-up, the samples' time spans).
    Raises ``InputError`` for an unknown optimizer or a model with nothing to train.
    """
    from archcost.profiling.timing import measure

    step = TrainStep(model, x, optimizer, amp=amp, copy_model=copy_model)
    phases: list[tuple[float, float, float]] = []
    timing = measure(
        lambda: phases.append(step.run()),
        step.device,
        warmup_s=warmup_s,
        min_time_s=min_time_s,
        repeats=repeats,
        on_timed=on_timed,
    )
    n = timing.iterations
    timed = phases[len(phases) - repeats * n :]  # the last calls are the timed samples, in order
    samples = [[statistics.fmean(p[i] for p in timed[k * n : (k + 1) * n]) for i in range(3)] for k in range(repeats)]
    return {
        "mode": "train",
        "optimizer": optimizer,
        "amp": amp,
        "forward_median_s": statistics.median(s[0] for s in samples),
        "backward_median_s": statistics.median(s[1] for s in samples),
        "optimizer_median_s": statistics.median(s[2] for s in samples),
        "latency_median_s": timing.stats.median_s,
        "iterations_per_sample": n,
        "timing": timing,
    }


def require_trainable(model: nn.Module) -> None:
    """``InputError`` when ``model`` is quantized (no backward: ``environment.refuse_quantized_training``) or has
    no parameter with ``requires_grad=True``: a step has nothing to train."""
    from archcost.profiling.environment import refuse_quantized_training

    refuse_quantized_training(model)
    if not any(p.requires_grad for p in model.parameters()):
        raise InputError(
            f"{type(model).__name__} has no trainable parameters (every requires_grad is False): a training "
            "step has nothing to update",
            "set requires_grad=True on the parameters to train, or profile the inference mode (drop --mode train)",
        )


def check_train_config(config) -> None:
    """``InputError`` for a ``mode="train"`` profile setting that cannot be measured (``sweep.ProfileConfig``)."""
    optimizer_rule(config.optimizer)
    if config.amp and config.dtype != "float32":
        raise InputError(
            f"--amp keeps float32 weights and autocasts the step; --dtype {config.dtype} casts the weights",
            "use --amp with the default --dtype float32, or --dtype without --amp",
        )
    for flag, on in (("--layers", config.layers), ("--compile", config.compile)):
        if on:
            raise InputError(
                f"{flag} times the inference forward; --mode train times a whole training step",
                f"drop {flag}, or drop --mode train",
            )
