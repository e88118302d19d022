"""Charts of measured time per layer (``archcost profile --layers``): time beside MACs, and layers on the roofline.

``layer_time``: Canziani & Culurciello (2016) plot operations against inference time per model; this is the
same comparison one level down, each layer's analytic MACs beside its measured median time, in execution
order, so a layer whose time is out of proportion to its work stands out. ``layer_roofline``: each layer
as a point at (arithmetic intensity, achieved FLOP/s) under the device's measured roofline (Williams,
Waterman & Patterson 2009), its area proportional to its share of the time. Both take one profile record
(a dict with ``layers``) and return a matplotlib Figure; nothing is shown or printed. The subtitle names the
model, input size, batch, dtype, device and threads of the measurement.
"""

from __future__ import annotations

import math

import pandas as pd
from matplotlib.figure import Figure

from archcost.errors import InputError
from archcost.report.chart import Chart
from archcost.report.figures import _log_axis, linear_axis
from archcost.units import format_count


def _value(v):
    """None for a missing value (NaN from pandas)."""
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def _list(v) -> list:
    return list(v) if isinstance(v, (list, tuple)) else []


def measured_setting(r: dict) -> str:
    """'resnet18, input 1x3x224x224, float32, cpu (AMD EPYC), 1 threads' for a profile record."""
    name = f" ({r['env_device_name']})" if _value(r.get("env_device_name")) else ""
    return (
        f"{r['model']}, input {r['batch_size']}x{r['input_shape']}, {r['dtype']}, {r['device']}{name}, "
        f"{r['threads']} threads"
    )


def pick_record(df: pd.DataFrame, model: str, batch_size: int | None, device: str | None) -> dict:
    """The latest ok record of ``model`` with layer times (at ``batch_size`` / on ``device`` when given)."""
    rows = df[(df["model"] == model) & (df["status"] == "ok")]
    if batch_size is not None:
        rows = rows[rows["batch_size"] == batch_size]
    if device:
        rows = rows[rows["device"] == device]
    with_layers = [r for r in rows.to_dict(orient="records") if isinstance(r.get("layers"), list) and r["layers"]]
    if not with_layers:
        where = "".join(
            [f" at batch {batch_size}" if batch_size is not None else "", f" on {device}" if device else ""]
        )
        raise InputError(
            f"the results hold no layer times for {model}{where}",
            f"measure them with `archcost profile {model} --layers --append FILE` (models in the file: "
            f"{', '.join(sorted(df['model'].dropna().unique())) or 'none'})",
        )
    return with_layers[-1]


def layer_time(r: dict, predicted: dict[str, float] | None = None) -> Chart:
    """Two bar panels sharing the layer axis (execution order, top to bottom): MACs per layer, and the
    measured median time per layer in ms (rows no profiler event matched are marked, not drawn at zero).
    ``predicted``: layer name -> predicted ms (``archcost.predict``), drawn as a thin bar beside each
    measured one (layers without a prediction get none)."""
    layers = r["layers"]
    names = [x["name"] for x in layers]
    n = len(names)
    fig = Figure(figsize=(11, max(3.0, 0.16 * n + 1.6)))
    ax_macs, ax_time = fig.subplots(1, 2, sharey=True)
    ys = list(range(n))
    macs = [x["macs"] or 0 for x in layers]
    times = [x["time_s"] * 1e3 if x["time_s"] is not None else 0.0 for x in layers]
    ax_macs.barh(ys, macs, color="#4c72b0")
    if predicted is None:
        ax_time.barh(ys, times, color="#dd8452")
    else:
        ax_time.barh([y - 0.2 for y in ys], times, height=0.4, color="#dd8452", label="measured")
        pred = [predicted.get(name) for name in names]
        ax_time.barh([y + 0.2 for y, p in zip(ys, pred, strict=True) if p is not None],
                     [p for p in pred if p is not None], height=0.4, color="#55a868", label="predicted")  # fmt: skip
        ax_time.legend(fontsize=7, loc="lower right")
    for y, x in zip(ys, layers, strict=True):
        if x["time_s"] is None:
            ax_time.text(0, y, " not matched", va="center", fontsize=6, color="#888888")
    ax_macs.set_yticks(ys, names, fontsize=6 if n > 40 else 8)
    ax_macs.invert_yaxis()
    ax_macs.set_xlabel("MACs per layer (analytic)")
    ax_time.set_xlabel("median time per layer (ms, torch.profiler)" + ("; predicted" if predicted else ""))
    linear_axis(ax_macs.xaxis)  # 1-2-5 ticks written 200 M, 400 M: never matplotlib's 1e8 offset
    linear_axis(ax_time.xaxis)
    ax_macs.grid(axis="x", alpha=0.3)
    ax_time.grid(axis="x", alpha=0.3)
    total = _value(r.get("layer_time_sum_s"))
    ratio = _value(r.get("layer_time_sum_ratio"))
    sums = (
        f"layers sum to {total * 1e3:.2f} ms = {100 * ratio:.0f}% of the median latency "
        f"{r['latency_median_s'] * 1e3:.2f} ms"
        if total is not None and ratio is not None
        else ""
    )
    if predicted:
        sums += f"; predicted layers sum to {sum(predicted.values()):.2f} ms"
    fig.suptitle(f"Time per layer beside its MACs\n{measured_setting(r)}; {sums}", fontsize=9)
    fig.tight_layout()
    return Chart(fig, warnings=_list(r.get("warnings")))


def layer_roofline(r: dict) -> Chart:
    """Layers as points at (FLOPs / bytes, FLOPs / time) under the roofline min(peak FLOP/s, intensity x peak
    bytes/s); point area proportional to the layer's share of the time; the whole model as a star."""
    peak_f, peak_b = _value(r.get("peak_flops_per_s")), _value(r.get("peak_bytes_per_s"))
    if not peak_f or not peak_b:
        raise InputError(
            "the record has no device peaks to draw the roofline",
            "profile without --no-roofline (peaks are measured once and cached)",
        )
    pts = [x for x in r["layers"] if x.get("arithmetic_intensity") and x.get("flops_per_s")]
    if not pts:
        raise InputError("no layer has both FLOPs and a measured time", "check the --layers record")
    fig = Figure(figsize=(8, 5.5))
    ax = fig.subplots()
    xs = [x["arithmetic_intensity"] for x in pts]
    lo, hi = min(xs + [1.0]) / 2, max(xs + [peak_f / peak_b]) * 2
    grid = [lo * (hi / lo) ** (i / 200) for i in range(201)]
    roof = [min(peak_f, i * peak_b) for i in grid]
    ax.plot(grid, roof, color="black", linewidth=1.2, gid="roof",
            label=f"roof: {format_count(peak_f)}FLOP/s, DRAM {format_count(peak_b)}B/s")  # fmt: skip
    cache_b = _value(r.get("peak_cache_bytes_per_s"))
    if cache_b and cache_b > peak_b:  # small layers whose data stays in cache may run above the DRAM roof
        cache_roof = [min(peak_f, i * cache_b) for i in grid]
        ax.plot(grid, cache_roof, color="gray", linewidth=0.8, linestyle="--", gid="cache-roof",
                label=f"cache-resident stream {format_count(cache_b)}B/s")  # fmt: skip
        roof += cache_roof
    ax.axvline(peak_f / peak_b, color="grey", linestyle=":", linewidth=0.8, label="ridge point")
    types = sorted({x["type"] for x in pts})
    for t in types:
        sel = [x for x in pts if x["type"] == t]
        ax.scatter(
            [x["arithmetic_intensity"] for x in sel],
            [x["flops_per_s"] for x in sel],
            s=[20 + 600 * (x["time_share"] or 0) for x in sel],
            alpha=0.7,
            label=t,
        )
    if _value(r.get("arithmetic_intensity")) and _value(r.get("achieved_flops_per_s")):
        ax.scatter([r["arithmetic_intensity"]], [r["achieved_flops_per_s"]], marker="*", s=200, color="black")
        ax.annotate("whole model", (r["arithmetic_intensity"], r["achieved_flops_per_s"]), fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _log_axis(ax.xaxis, [lo, hi])  # plain 1-2-5 or decade ticks: 0.5, 10, 1 K, not 10^-1 ... 10^11
    _log_axis(ax.yaxis, roof + [x["flops_per_s"] for x in pts])
    ax.set_xlabel("arithmetic intensity (FLOPs / bytes moved, no cache reuse: a lower bound)")
    ax.set_ylabel("achieved FLOP/s (analytic FLOPs / measured time)")
    ax.grid(which="major", alpha=0.2)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"Layers on the roofline (area: share of time)\n{measured_setting(r)}", fontsize=9)
    fig.tight_layout()
    warnings = _list(r.get("warnings"))
    above = [x["name"] for x in pts if x["flops_per_s"] > peak_f]
    if above:
        from archcost.profiling.roofline import ABOVE_PEAK

        shown = ", ".join(above[:4]) + (f" and {len(above) - 4} more" if len(above) > 4 else "")
        ax.text(0.01, 0.99, f"above the compute roof: {shown} (see the warning)", transform=ax.transAxes,
                va="top", fontsize=7, color="#c44e52", gid="above")  # fmt: skip
        if "peaks_stale" not in _list(r.get("flags")):
            warnings.append(f"layers above the calibrated compute peak ({shown}): {ABOVE_PEAK}")
    return Chart(fig, warnings=list(dict.fromkeys(warnings)), above=above)


def figure_for(kind: str, results: str, model: str | None, batch_size: int | None, device: str | None) -> Chart:
    """``archcost plot layer-time|layer-roofline MODEL --results FILE``."""
    from archcost.profiling.results import read_results

    if not model:
        raise InputError(f"plot {kind} needs a MODEL", f"e.g. archcost plot {kind} resnet18 --results r.jsonl")
    if not results:
        raise InputError(
            f"plot {kind} draws measured layer times", "give --results FILE from `archcost profile --layers`"
        )
    r = pick_record(read_results(results), model, batch_size, device)
    return layer_time(r) if kind == "layer-time" else layer_roofline(r)
