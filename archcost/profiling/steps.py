"""The one measured step protocol: ``measure_step`` measures a step (an inference forward, or a training step:
forward, backward, optimizer step) and fills the record's measured fields, the same way for both.

What every record does once, here: the analytic fields of its batch size (``outcome.analysis_fields``), the
inputs on the device (channels-last where asked), the power sampler started before the timed calls and stopped,
then closed, whatever happens, the measured peak, the model's own failures as ``status`` and ``error`` (never
exceptions) with the memory released, the timing, power and trust fields (``flags`` / ``warnings``). What
differs is the ``Step``: ``Inference`` (the forward under ``torch.inference_mode``, the roofline, per-layer
times) or ``Training`` (``train_step.time_train_step``, the training estimate, the step's phases).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from archcost.errors import ArchcostError
from archcost.profiling.config import ProfileConfig
from archcost.profiling.memory import held_bytes, measure_peak, measure_training_peak
from archcost.profiling.nvml import PowerSampler, power_fields
from archcost.profiling.outcome import (
    analysis_fields,
    channels_last,
    classify_failure,
    first_line,
    flags_and_warnings,
    release,
)
from archcost.profiling.roofline import DevicePeaks, roofline_fields
from archcost.profiling.timing import Timing, measure, timing_fields


@dataclass(frozen=True)
class RunContext:
    """What every (model, configuration) measurement of one sweep shares: the resolved device and settings."""

    config: ProfileConfig
    device: torch.device
    batch_sizes: tuple[int, ...]
    dtype: torch.dtype
    env: dict
    peaks: DevicePeaks | None
    peaks_note: str | None
    run_id: str


Args = tuple[list[Any], dict[str, Any]]


class Step(Protocol):
    """One kind of measured step; ``measure_step`` calls these in this order (the three middle ones inside
    ``context()``, the power sampler running around ``time``)."""

    def estimate(self, out: dict, work: Any, batch: int, ctx: RunContext) -> None:
        """Adjust the analytic fields ``out`` (the inference ones) for this step."""

    def context(self) -> contextlib.AbstractContextManager[Any]:
        """The context the step runs in."""

    def time(self, x: Args, ctx: RunContext, on_timed: Callable[[bool], None] | None) -> tuple[Timing, dict]:
        """Time the step on the inputs ``x``; the ``Timing`` of the whole step and the step's own fields."""

    def peak(self, x: Args, ctx: RunContext) -> dict:
        """The measured peak's fields (``config.memory`` only)."""

    def finish(self, out: dict, timing: Timing, x: Args | None, ctx: RunContext) -> None:
        """Add what follows from the timing (``x``: the inputs, while they are alive; None once freed)."""


def inputs(work: Any, batch: int, ctx: RunContext) -> Args:
    """Forward's ``(args, kwargs)`` at ``batch`` on the device, in the sweep's dtype (channels-last where asked)."""
    args, kwargs = work.tensors(ctx.device, batch_size=batch, dtype=ctx.dtype)
    if ctx.config.channels_last:
        args = [channels_last(a) for a in args]
    return list(args), kwargs


def measure_step(step: Step, work: Any, batch: int, ctx: RunContext, report: Any) -> dict:
    """The measured fields of one record: ``step`` timed on the ``Workload`` ``work``'s inputs at ``batch``.

    ``report``: the model's ``CostReport`` at this batch size, or the ``ArchcostError`` of its analysis. The
    model's own failures are ``status`` (``oom``, ``unsupported``, ``error``) and ``error``, never exceptions."""
    config, device = ctx.config, ctx.device
    out = analysis_fields(report, config.dtype)
    step.estimate(out, work, batch, ctx)
    sampler = PowerSampler(device) if config.power else None
    failure: tuple[str, str] | None = None
    x: Args | None = None
    try:
        x = inputs(work, batch, ctx)
        with step.context():
            if sampler is not None:
                sampler.start()
            timing, fields = step.time(x, ctx, sampler.mark if sampler is not None else None)
            samples = sampler.stop() if sampler is not None else []
            if config.memory:
                out.update(step.peak(x, ctx))
            step.finish(fields, timing, x, ctx)
    except Exception as exc:
        failure = (classify_failure(exc, config.dtype), first_line(exc))
    finally:
        if sampler is not None:
            sampler.close()
        x = None  # the inputs go before anything else is measured
    if failure is not None:
        release(device)
        return {**out, "status": failure[0], "error": failure[1]}
    out.update(status="ok", **timing_fields(timing, batch))
    out.update(fields)
    out.update(power_fields(sampler, samples, timing, batch))
    out["flags"], out["warnings"] = flags_and_warnings(out)
    return out


class Inference:
    """The forward of ``runner`` (``module``, compiled or not) under ``torch.inference_mode``: its latency, the
    peak of one call (``memory.measure_peak``), the roofline against the device peaks, and with ``--layers``
    every layer's time under ``torch.profiler`` (``archcost.profiling.layers``)."""

    def __init__(self, runner: Callable[..., Any], module: nn.Module, report: Any) -> None:
        self.runner = runner
        self.module = module
        self.report = None if isinstance(report, ArchcostError) else report
        self.flops: float | None = None
        self.traffic_bytes: float | None = None
        self.analysis_note: str | None = None

    def estimate(self, out: dict, work: Any, batch: int, ctx: RunContext) -> None:
        self.flops, self.traffic_bytes = out.get("flops"), out.get("traffic_bytes")
        self.analysis_note = out.get("analysis_note")

    def context(self) -> contextlib.AbstractContextManager[Any]:
        return torch.inference_mode()

    def _forward(self, x: Args) -> Callable[[], Any]:
        args, kwargs = x
        return lambda: self.runner(*args, **kwargs)

    def time(self, x: Args, ctx: RunContext, on_timed: Callable[[bool], None] | None) -> tuple[Timing, dict]:
        config = ctx.config
        timing = measure(
            self._forward(x),
            ctx.device,
            warmup_s=config.warmup_s,
            min_time_s=config.min_time_s,
            repeats=config.repeats,
            on_timed=on_timed,
        )
        return timing, {}

    def peak(self, x: Args, ctx: RunContext) -> dict:
        tensors = [a for a in [*x[0], *x[1].values()] if isinstance(a, torch.Tensor)]
        mem = measure_peak(self._forward(x), ctx.device, held_bytes(self.module), held_bytes(*tensors))
        return {
            "memory_peak_bytes": mem.peak_bytes,
            "memory_activation_peak_bytes": mem.activation_peak_bytes,
            "memory_method": mem.method,
        }

    def finish(self, out: dict, timing: Timing, x: Args | None, ctx: RunContext) -> None:
        config, peaks = ctx.config, ctx.peaks
        median = timing.stats.median_s
        flops_per_s = peaks.flops_per_s if peaks else None
        bytes_per_s = peaks.bytes_per_s if peaks else None
        roof = roofline_fields(self.flops, self.traffic_bytes, median, flops_per_s, bytes_per_s)
        if ctx.peaks_note:
            roof["roofline_note"] = "; ".join(n for n in (roof["roofline_note"], ctx.peaks_note) if n)
        out.update(roof)
        if not config.layers:
            return
        if self.report is None or x is None:
            out["layers_note"] = "no layer times: " + (self.analysis_note or "the analysis failed")
            return
        from archcost.profiling.layers import layer_rows, profiled_iterations, summary, time_layers

        n = profiled_iterations(median, config.repeats, config.min_time_s)
        layer_timing = time_layers(self.module, self._forward(x), self.report.layers, ctx.device, n)
        element = torch.empty((), dtype=ctx.dtype).element_size()
        rows = layer_rows(self.report.layers, layer_timing, element, flops_per_s, bytes_per_s)
        out["layers"] = rows
        out.update(summary(layer_timing, rows, median))


class Training:
    """A training step of ``module`` (the sweep's working copy, trained in place): forward and a loss on random
    targets, backward, the optimizer step (``train_step.time_train_step``), its phases, the first step's peak
    (``memory.measure_training_peak``, which steps a copy) beside ``archcost.cost.training``'s estimate with the
    same optimizer; no roofline (the traffic estimate is the forward's)."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def estimate(self, out: dict, work: Any, batch: int, ctx: RunContext) -> None:
        from archcost.cost.training import training_peak_bytes

        config = ctx.config
        out.pop("memory_estimate_bytes", None)
        try:  # on the meta device, in the caller's dtype (with --amp: float32 weights)
            out["memory_estimate_bytes"] = training_peak_bytes(
                work.with_batch(batch),  # a Workload in the model's place: analyze takes the inputs from it
                None,
                batch,
                config.dtype,
                optimizer=config.optimizer,
                foreach=ctx.device.type == "cuda",
            )
            out["memory_estimate_note"] = None
        except Exception as exc:  # a comparison column: its failure must not stop a measurement
            out["memory_estimate_note"] = f"training estimate failed: {first_line(exc)}"

    def context(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def time(self, x: Args, ctx: RunContext, on_timed: Callable[[bool], None] | None) -> tuple[Timing, dict]:
        from archcost.profiling.train_step import time_train_step

        config = ctx.config
        result = time_train_step(
            self.module,
            x,
            config.optimizer,
            amp=config.amp,
            warmup_s=config.warmup_s,
            min_time_s=config.min_time_s,
            repeats=config.repeats,
            on_timed=on_timed,
            copy_model=False,
        )
        phases = {k: result[k] for k in ("forward_median_s", "backward_median_s", "optimizer_median_s")}
        return result["timing"], phases

    def peak(self, x: Args, ctx: RunContext) -> dict:
        mem = measure_training_peak(self.module, x, ctx.config.optimizer)  # steps a copy of the working module
        return {"memory_peak_bytes": mem.peak_bytes, "memory_method": f"{mem.method}, first training step"}

    def finish(self, out: dict, timing: Timing, x: Args | None, ctx: RunContext) -> None:
        out["roofline_note"] = "training step: no roofline (archcost estimates the memory traffic of the forward only)"


def step_for(runner: Callable[..., Any], module: nn.Module, ctx: RunContext, report: Any) -> Step:
    """The step that ``ctx.config.mode`` asks for: ``Training`` for ``"train"``, else ``Inference``."""
    if ctx.config.mode == "train":
        return Training(module)
    return Inference(runner, module, report)
