"""Measured time per layer beside its analytic cost: torch.profiler ranges per module, matched to the cost table.

How a layer is timed. For the layer run only, every module of the measured copy gets a forward pre-hook that
opens a ``torch.profiler.record_function`` range named ``archcost.module::<path>`` and a forward hook that
closes it (they neither synchronise nor copy anything), and each forward is wrapped in an
``archcost.iteration`` range. ``torch.profiler.profile`` records those ranges and every aten op under them
(CPU activity; on CUDA also the kernels, which the profiler links to the op that launched them). Then, per
iteration:

* a **module row** of the cost table (``conv1``, ``layer1.0.relu#2``) gets the time of that call's range: on the
  CPU its wall time, on CUDA the device time of the kernels launched inside it;
* an **op row** (``layer1.0/add``: an op run directly in a container's ``forward``) gets the time of the aten op
  run directly in that container (not inside a child module) whose name matches the row's op, in order
  (``aten::add`` / ``aten::add_`` for ``add``);
* what no row takes (Python between layers, ops the cost table has no row for) is ``unattributed``.

A layer's ``time_s`` is the median of its per-iteration times; the layer times of one run are compared with
the model's median latency of the same run (``layer_time_sum_ratio``), and the profiled iterations with the
unprofiled ones (``profiler_overhead``). The attribution itself (``attribute``) is a pure function over
``Call`` records, so its rules are tested without a profiler.

The range-per-module idea is DeepSpeed's flops profiler and torch's own ``record_function``; module
hierarchy from hooks rather than ``with_stack=True`` keeps the profiler's overhead to one range per call.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

MODULE_PREFIX = "archcost.module::"
ITERATION = "archcost.iteration"

#: Fields of one layer row (``record["layers"]`` items).
LAYER_FIELDS = (
    "name",
    "type",
    "kind",
    "macs",
    "flops",
    "bytes",
    "time_s",
    "time_share",
    "flops_per_s",
    "arithmetic_intensity",
    "percent_of_peak",
    "bound",
)

#: aten names (without ``aten::`` and a trailing ``_``) that a cost-table op name also covers.
_ALIASES = {
    "getitem": {"select", "slice", "index", "unsqueeze", "squeeze", "alias", "view", "expand"},
    "div": {"div", "true_divide"},
    "sub": {"sub", "rsub"},
    "flatten": {"flatten", "view", "reshape", "_unsafe_view"},
    "reshape": {"reshape", "view", "_unsafe_view"},
    "view": {"view", "reshape", "_unsafe_view"},
    "linear": {"linear", "addmm", "matmul", "mm"},
    "matmul": {"matmul", "mm", "bmm"},
    "softmax": {"softmax", "_softmax"},
}


@dataclass(frozen=True)
class Call:
    """One unit of time in one iteration: a call of a module that has a row, or an op run directly in a module.

    ``path`` is the module path ("" for the model itself); ``op`` is the aten name for an op, "" for a module.
    """

    path: str
    op: str
    cpu_s: float
    device_s: float = 0.0


@dataclass(frozen=True)
class RowKey:
    """What a cost-table row is, for matching: a module row (``op`` "") or an op row run in ``path``."""

    path: str
    op: str


def canonical(aten_name: str) -> str:
    """``aten::add_`` -> ``add``; ``aten::_softmax`` -> ``_softmax``."""
    name = aten_name.split("::", 1)[-1]
    return name.rstrip("_") or name


def op_matches(row_op: str, aten_name: str) -> bool:
    """Whether a profiler op is the one a cost-table op row names (``add`` <- ``aten::add_``)."""
    name = canonical(aten_name)
    if name == row_op or name in _ALIASES.get(row_op, ()):
        return True
    from archcost.cost._registry import op_entry  # the op catalogue's profiler names for the op

    entry = op_entry(row_op)
    return entry is not None and name in entry.profiler


def row_keys(rows: Sequence) -> list[RowKey]:
    """``RowKey`` of each ``LayerCost`` row (``kind`` "module" or "op", ``module`` path, ``type`` the op)."""
    return [RowKey(r.module, "" if r.kind == "module" else r.type) for r in rows]


def attribute(calls: Sequence[Call], keys: Sequence[RowKey], *, device: bool = False) -> tuple[list, float]:
    """Seconds per row for one iteration's ``calls`` (in time order), and the seconds no row took.

    The k-th call of module path P goes to the k-th module row of P; an op call in P goes to the next op row
    of P (in row order, after the last one matched) whose op it matches. A row nothing matched is ``None``.
    ``device``: use each call's device time (CUDA kernels) instead of its CPU wall time.
    """
    module_rows: dict[str, list[int]] = {}
    op_rows: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        (op_rows if key.op else module_rows).setdefault(key.path, []).append(i)
    seen_modules: dict[str, int] = {}
    op_pointer: dict[str, int] = {}
    times: list[float | None] = [None] * len(keys)
    unattributed = 0.0
    for c in calls:
        t = c.device_s if device else c.cpu_s
        target = None
        if not c.op:
            k = seen_modules.get(c.path, 0)
            seen_modules[c.path] = k + 1
            candidates = module_rows.get(c.path, [])
            target = candidates[k] if k < len(candidates) else None
        else:
            candidates = op_rows.get(c.path, [])
            start = op_pointer.get(c.path, 0)
            for j in range(start, len(candidates)):
                if op_matches(keys[candidates[j]].op, c.op):
                    target = candidates[j]
                    op_pointer[c.path] = j + 1
                    break
        if target is None:
            unattributed += t
        else:
            times[target] = (times[target] or 0.0) + t
    return times, unattributed


# -- the profiler run ----------------------------------------------------------------------------------------


class _Ranges:
    """Forward hooks that open and close one ``record_function`` range per module call (no synchronisation)."""

    def __init__(self, model: nn.Module) -> None:
        self.stack: list = []
        self.handles = []
        for path, module in model.named_modules():
            self.handles.append(module.register_forward_pre_hook(self._enter(MODULE_PREFIX + path)))
            self.handles.append(module.register_forward_hook(self._exit, always_call=True))

    def _enter(self, name: str) -> Callable:
        def hook(module, args):
            rf = torch.autograd.profiler.record_function(name)
            rf.__enter__()
            self.stack.append(rf)

        return hook

    def _exit(self, module, args, output):
        if self.stack:
            self.stack.pop().__exit__(None, None, None)

    def close(self) -> None:
        while self.stack:
            self.stack.pop().__exit__(None, None, None)
        for h in self.handles:
            h.remove()
        self.handles = []


def _device_us(event) -> float:
    value = getattr(event, "device_time_total", None)
    if value is None:
        value = getattr(event, "cuda_time_total", 0.0)
    return float(value or 0.0)


def calls_of(iteration_event, rowed_paths: set[str]) -> list[Call]:
    """The ``Call`` records of one ``archcost.iteration`` profiler event, walking its CPU children in order.

    A range of a module with a row is one call (nothing inside it is looked at); a range of a module without
    a row (a container) is walked into; any other event is an op run directly in the innermost module.
    """
    out: list[Call] = []

    def walk(event, path: str) -> None:
        for child in sorted(event.cpu_children, key=lambda e: e.time_range.start):
            name = child.name
            seconds = (child.time_range.end - child.time_range.start) / 1e6
            if name.startswith(MODULE_PREFIX):
                sub = name[len(MODULE_PREFIX) :]
                if sub in rowed_paths:
                    out.append(Call(sub, "", seconds, _device_us(child) / 1e6))
                else:
                    walk(child, sub)
            else:
                out.append(Call(path, name, seconds, _device_us(child) / 1e6))

    walk(iteration_event, "")
    return out


@dataclass(frozen=True)
class LayerTiming:
    """Per-row times over the profiled iterations, and what the whole iterations took under the profiler."""

    row_times: list[list[float | None]]  # per row, one value per iteration
    unattributed_s: list[float]  # per iteration: its wall time minus the rows' times (Python, ops without a row)
    iteration_s: list[float]  # wall time of each profiled iteration (on CUDA up to its synchronisation)
    iterations: int
    clock: str  # "cpu wall time" or "cuda kernel time"


def time_layers(
    model: nn.Module, forward: Callable[[], object], rows: Sequence, device, iterations: int
) -> LayerTiming:
    """Profile ``iterations`` calls of ``forward`` (which runs ``model``) and attribute the time to ``rows``.

    Two more calls run first under the profiler and are dropped (the profiler's own start-up). Hooks are
    removed before returning, even if forward raises.
    """
    from torch.profiler import ProfilerActivity, profile, record_function

    os.environ.setdefault("KINETO_LOG_LEVEL", "6")  # see memory.cpu_peak: silences kineto's start/stop lines
    cuda = torch.device(device).type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    keys = row_keys(rows)
    rowed = {k.path for k in keys if not k.op}
    ranges = _Ranges(model)
    drop = 2
    try:
        with profile(activities=activities) as prof:
            for _ in range(drop + iterations):
                ranges.stack.clear()
                with record_function(ITERATION):
                    forward()
                    if cuda:  # inside the range, so its wall time is the iteration's latency
                        torch.cuda.synchronize(device)
    finally:
        ranges.close()
    events = [e for e in prof.events() if e.name == ITERATION and _is_cpu(e)]
    events.sort(key=lambda e: e.time_range.start)
    events = events[drop:]
    row_times: list[list[float | None]] = [[] for _ in keys]
    unattributed, whole = [], []
    for ev in events:
        times, _ = attribute(calls_of(ev, rowed), keys, device=cuda)
        for i, t in enumerate(times):
            row_times[i].append(t)
        wall = (ev.time_range.end - ev.time_range.start) / 1e6
        whole.append(wall)
        unattributed.append(wall - sum(t for t in times if t is not None))
    return LayerTiming(row_times, unattributed, whole, len(events), "cuda kernel time" if cuda else "cpu wall time")


def _is_cpu(event) -> bool:
    kind = getattr(event, "device_type", None)
    return kind is None or kind == torch.autograd.DeviceType.CPU


def profiled_iterations(latency_s: float, repeats: int, min_time_s: float, *, cap: int = 200) -> int:
    """How many forwards to profile: at least ``repeats``, and enough to fill ``min_time_s`` (at most ``cap``)."""
    if latency_s <= 0:
        return max(1, repeats)
    return max(1, repeats, min(cap, math.ceil(min_time_s / latency_s)))


# -- the rows ------------------------------------------------------------------------------------------------


def _median(values: Sequence[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return statistics.median(got) if got else None


def layer_rows(
    rows: Sequence,
    timing: LayerTiming,
    element_bytes: int,
    peak_flops_per_s: float | None,
    peak_bytes_per_s: float | None,
) -> list[dict]:
    """One dict per cost-table row (``LAYER_FIELDS``): its analytic cost, measured median time and roofline place.

    ``bytes`` = inputs read + parameters read + output written (``roofline.row_traffic_bytes``);
    ``time_share`` = time_s / the sum of the measured layers' time_s; ``flops_per_s`` = flops / time_s;
    ``arithmetic_intensity`` = flops / bytes; ``bound`` against the device's peaks (None without peaks).
    """
    from archcost.profiling.roofline import bound, row_traffic_bytes

    medians = [_median(ts) for ts in timing.row_times]
    total = sum(m for m in medians if m is not None)
    out = []
    for r, t in zip(rows, medians, strict=True):
        nbytes = row_traffic_bytes(r, element_bytes)
        intensity = r.flops / nbytes if r.flops and nbytes else None
        fps = r.flops / t if r.flops and t else None
        out.append(
            {
                "name": r.name,
                "type": r.type,
                "kind": r.kind,
                "macs": r.macs,
                "flops": r.flops,
                "bytes": nbytes,
                "time_s": t,
                "time_share": t / total if t is not None and total else None,
                "flops_per_s": fps,
                "arithmetic_intensity": intensity,
                "percent_of_peak": 100 * fps / peak_flops_per_s if fps and peak_flops_per_s else None,
                "bound": bound(intensity, peak_flops_per_s, peak_bytes_per_s)
                if intensity and peak_flops_per_s and peak_bytes_per_s
                else None,
            }
        )
    return out


def summary(timing: LayerTiming, layers: list[dict], latency_median_s: float) -> dict:
    """The record-level layer fields: sum of layer medians against the run's median latency, overhead, rest."""
    total = sum(r["time_s"] for r in layers if r["time_s"] is not None)
    profiled = statistics.median(timing.iteration_s) if timing.iteration_s else None
    unmatched = [r["name"] for r in layers if r["time_s"] is None]
    return {
        "layer_time_sum_s": total,
        "layer_time_sum_ratio": total / latency_median_s if latency_median_s else None,
        "layer_unattributed_s": statistics.median(timing.unattributed_s) if timing.unattributed_s else None,
        "layer_iterations": timing.iterations,
        "layer_clock": timing.clock,
        "profiled_latency_median_s": profiled,
        "profiler_overhead": profiled / latency_median_s - 1 if profiled and latency_median_s else None,
        "layers_unmatched": unmatched,
    }
