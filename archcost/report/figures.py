"""Efficiency charts (Canziani & Culurciello 2016, and more) as matplotlib Figures.

Every function takes a pandas DataFrame (or a CostReport) and returns a ``Figure``; nothing is shown
or saved here. Colours are fixed per model family, so a family looks the same in every chart.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")  # headless: figures are written to files, never shown

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from archcost.cost.record import CostReport  # noqa: E402
from archcost.units import format_count  # noqa: E402

_PALETTE = plt.get_cmap("tab20").colors + plt.get_cmap("tab20b").colors


def family_colour(family: str) -> tuple:
    """The colour of a family: its place among all zoo families, so it never changes between charts."""
    from archcost.zoo import get_meta, list_models

    families = sorted({get_meta(n).family for n in list_models()} | {family})
    return _PALETTE[families.index(family) % len(_PALETTE)]


def pareto_front(x: list[float], y: list[float]) -> list[int]:
    """Indices of the points no other point beats: lower or equal ``x`` and higher or equal ``y``,
    one of them strictly. Sorted by ``x``."""
    order = sorted(range(len(x)), key=lambda i: (x[i], -y[i]))
    front, best = [], -math.inf
    for i in order:
        if y[i] > best:
            front.append(i)
            best = y[i]
    return front


def upper_envelope(x: list[float], y: list[float]) -> list[int]:
    """Indices of the points no other point beats with higher or equal ``x`` and ``y`` (more is better
    on both axes, as throughput and accuracy), sorted by ``x``."""
    flipped = pareto_front([-v for v in x], y)
    return sorted(flipped, key=lambda i: x[i])


def _new(title: str, xlabel: str, ylabel: str, size=(8, 5.5)) -> tuple[Figure, plt.Axes]:
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _legend_by_family(ax, families) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", linestyle="", color=family_colour(f), label=f) for f in sorted(set(families))]
    ax.legend(handles=handles, title="family", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))


#: above this many points, charts name families in a legend instead of labelling every point
MAX_LABELS = 20


def _label(ax, x, y, text) -> None:
    ax.annotate(text, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)


def _label_points(ax, xs, ys, names, families) -> None:
    if len(names) <= MAX_LABELS:
        for x, y, name in zip(xs, ys, names, strict=True):
            _label(ax, x, y, name)
    else:
        _legend_by_family(ax, families)


def accuracy_vs_macs(df: pd.DataFrame) -> Figure:
    """Top-1 against MACs (log x), blob area proportional to parameters, Pareto frontier labelled.

    ``df`` columns: model, family, macs, params, top1."""
    fig, ax = _new(
        "Accuracy against operations (blob area: parameters)", "MACs per image (log scale)", "top-1 accuracy (%)"
    )
    sizes = 20 + 800 * df["params"] / df["params"].max()
    ax.scatter(df["macs"], df["top1"], s=sizes, c=[family_colour(f) for f in df["family"]], alpha=0.6,
               edgecolors="black", linewidths=0.5, gid="models")  # fmt: skip
    ax.set_xscale("log")
    front = pareto_front(df["macs"].tolist(), df["top1"].tolist())
    fx, fy = df["macs"].iloc[front], df["top1"].iloc[front]
    ax.step(fx, fy, where="post", color="black", linewidth=1, linestyle="--", label="Pareto frontier", gid="frontier")
    for i, row in df.reset_index(drop=True).iterrows():
        _label(ax, row["macs"], row["top1"], row["model"] + (" *" if i in front else ""))
    _legend_by_family(ax, df["family"])
    ax.text(0.01, 0.01, "* on the Pareto frontier: no model is more accurate for fewer MACs", transform=ax.transAxes,
            fontsize=7)  # fmt: skip
    fig.frontier = list(df["model"].iloc[front])  # for tests and reports
    return fig


def accuracy_bar(df: pd.DataFrame) -> Figure:
    """Top-1 per model, sorted (Canziani Fig. 1)."""
    df = df.sort_values("top1")
    fig, ax = _new("Top-1 accuracy", "top-1 accuracy (%)", "model", size=(8, 0.3 * len(df) + 1.5))
    ax.barh(df["model"], df["top1"], color=[family_colour(f) for f in df["family"]], gid="models")
    for y, v in enumerate(df["top1"]):
        ax.text(v, y, f" {v:.1f}", va="center", fontsize=7)
    ax.set_xlim(min(df["top1"]) - 10, 100)
    _legend_by_family(ax, df["family"])
    return fig


def accuracy_density(df: pd.DataFrame) -> Figure:
    """Top-1 per million parameters (Canziani Fig. 3's accuracy density)."""
    df = df.assign(density=df["top1"] / (df["params"] / 1e6)).sort_values("density")
    fig, ax = _new("Accuracy density", "top-1 accuracy (%) per million parameters", "model",
                   size=(8, 0.3 * len(df) + 1.5))  # fmt: skip
    ax.barh(df["model"], df["density"], color=[family_colour(f) for f in df["family"]], gid="models")
    for y, v in enumerate(df["density"]):
        ax.text(v, y, f" {v:.2f}", va="center", fontsize=7)
    _legend_by_family(ax, df["family"])
    return fig


def layers(report: CostReport) -> Figure:
    """Per-layer parameters and MACs as two aligned bar charts (the layers with either)."""
    rows = [r for r in report.layers if r.params or r.macs]
    names = [r.name for r in rows]
    fig = Figure(figsize=(10, 0.22 * len(rows) + 2), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    total_p, total_m = sum(r.params for r in rows) or 1, sum(r.macs for r in rows) or 1
    y = np.arange(len(rows))
    axes[0].barh(y, [100 * r.params / total_p for r in rows], color="tab:blue", gid="params")
    axes[1].barh(y, [100 * r.macs / total_m for r in rows], color="tab:orange", gid="macs")
    axes[0].set_yticks(y, names, fontsize=7)
    axes[0].invert_yaxis()
    axes[0].set_xlabel(f"share of parameters (%), total {format_count(report.totals['params'])}")
    axes[1].set_xlabel(f"share of MACs (%), total {format_count(report.totals['macs'])}")
    axes[0].set_title("Parameters per layer")
    axes[1].set_title("MACs per layer")
    for ax in axes:
        ax.grid(True, axis="x", alpha=0.3)
    shares = []
    for kind, prefix in (("conv", "Conv"), ("fully connected", "Linear")):
        p = sum(r.params for r in rows if r.type.startswith(prefix)) / total_p
        m = sum(r.macs for r in rows if r.type.startswith(prefix)) / total_m
        shares.append(f"{kind} layers: {100 * p:.1f}% of parameters, {100 * m:.1f}% of MACs")
    fig.suptitle(f"{report.model}: where the weights and the work are\n" + "; ".join(shares), fontsize=10)
    return fig


def receptive_field(report: CostReport) -> Figure:
    """Receptive field size (per axis) against layer index."""
    rows = [(i, r) for i, r in enumerate(report.layers) if r.rf is not None and not r.rf_global]
    fig, ax = _new(
        f"{report.model}: receptive field growth", "layer (execution order)", "receptive field (input pixels)"
    )
    axes_n = len(rows[0][1].rf) if rows else 0
    for axis in range(axes_n):
        ax.plot(
            [i for i, _ in rows], [r.rf[axis] for _, r in rows], marker=".", label=f"axis {axis}", gid=f"axis{axis}"
        )
    side = report.input_shape[-1]
    ax.axhline(side, color="gray", linestyle=":", label=f"input size ({side})")
    if rows:
        i, last = rows[-1]
        _label(ax, i, last.rf[0], f"{last.name}: {last.rf[0]:g}")
    ax.legend(fontsize=8)
    return fig


# -- charts from measured results -----------------------------------------------------------------
def _per_model_lines(df: pd.DataFrame, y: str, title: str, ylabel: str, logy: bool = False) -> Figure:
    fig, ax = _new(title, "batch size", ylabel)
    seen: dict[str, int] = {}  # models drawn per family: the family's colour, a different line and marker
    for model, group in df.groupby("model", sort=True):
        group = group.sort_values("batch_size")
        family = group["family"].iloc[0]
        k = seen[family] = seen.get(family, -1) + 1
        ax.plot(group["batch_size"], group[y], marker="os^Dv"[k % 5], linestyle=("-", "--", ":", "-.")[k % 4],
                label=model, color=family_colour(family), gid=f"model:{model}")  # fmt: skip
    ax.set_xscale("log", base=2)
    if logy:
        ax.set_yscale("log")
    ax.legend(fontsize=7, ncols=2)
    return fig


def latency_vs_batch(df: pd.DataFrame) -> Figure:
    return _per_model_lines(
        df, "latency_ms", "Inference time against batch size", "median latency per batch (ms)", True
    )


def throughput_vs_batch(df: pd.DataFrame) -> Figure:
    return _per_model_lines(df, "throughput", "Throughput against batch size", "images per second", True)


def power_vs_batch(df: pd.DataFrame) -> Figure:
    return _per_model_lines(df, "power_w", "Power against batch size", "mean board power (W)")


def energy_per_image(df: pd.DataFrame) -> Figure:
    return _per_model_lines(
        df, "energy_j_per_image", "Energy per image against batch size", "energy per image (J)", True
    )


def memory_vs_batch(df: pd.DataFrame) -> Figure:
    return _per_model_lines(df, "memory_mb", "Memory against batch size", "peak memory (MB)")


def _fit(ax, x, y, logx=False) -> tuple[float, float, float]:
    """Least-squares line y = a x + b, drawn, with its R^2."""
    a, b = np.polyfit(x, y, 1)
    pred = a * np.asarray(x) + b
    ss_res = float(np.sum((np.asarray(y) - pred) ** 2))
    ss_tot = float(np.sum((np.asarray(y) - np.mean(y)) ** 2)) or 1.0
    r2 = 1 - ss_res / ss_tot
    xs = np.linspace(min(x), max(x), 200)
    ys = a * xs + b
    keep = ys > 0  # drawn where positive, so the line shows on log axes too
    ax.plot(xs[keep], ys[keep], color="black", linestyle="--", linewidth=1, label=f"linear fit, R² = {r2:.3f}",
            gid="fit")  # fmt: skip
    return a, b, r2


def _scatter_with_fit(df: pd.DataFrame, x: list, y: list, fig: Figure, ax) -> Figure:
    """Models as points (family colours), a least-squares line with its R² (``fig.fit``), and labels."""
    ax.scatter(x, y, c=[family_colour(f) for f in df["family"]], gid="models")
    if len(x) >= 2:
        fig.fit = _fit(ax, x, y)
        fit_legend = ax.legend(fontsize=8, loc="lower right")
    _label_points(ax, x, y, df["model"].tolist(), df["family"])
    if len(x) > MAX_LABELS:  # the family legend replaced the fit's: put it back
        ax.add_artist(fit_legend)
    return fig


def memory_vs_params(df: pd.DataFrame) -> Figure:
    """Measured memory against parameter count, with a linear fit."""
    fig, ax = _new("Memory against parameters", "parameters (millions)", "measured peak memory (MB)")
    return _scatter_with_fit(df, (df["params"] / 1e6).tolist(), df["memory_mb"].tolist(), fig, ax)


def macs_vs_latency(df: pd.DataFrame) -> Figure:
    """MACs against measured latency, with a linear fit and R² (does operation count predict time?).
    The fit is on the linear values; the axes are logarithmic so that small and large models both show."""
    fig, ax = _new("Operations against inference time", "median latency (ms, log scale)", "GMACs per batch (log scale)")
    _scatter_with_fit(df, df["latency_ms"].tolist(), (df["macs"] * df["batch_size"] / 1e9).tolist(), fig, ax)
    ax.set_xscale("log")
    ax.set_yscale("log")
    return fig


def accuracy_vs_throughput(df: pd.DataFrame) -> Figure:
    """Top-1 against images per second, blob area proportional to MACs, with the upper envelope."""
    fig, ax = _new(
        "Accuracy against throughput (blob area: MACs)", "images per second (log scale)", "top-1 accuracy (%)"
    )
    sizes = 20 + 800 * df["macs"] / df["macs"].max()
    ax.scatter(df["throughput"], df["top1"], s=sizes, c=[family_colour(f) for f in df["family"]], alpha=0.6,
               edgecolors="black", linewidths=0.5, gid="models")  # fmt: skip
    ax.set_xscale("log")
    env = upper_envelope(df["throughput"].tolist(), df["top1"].tolist())
    ax.plot(df["throughput"].iloc[env], df["top1"].iloc[env], color="black", linestyle="--", linewidth=1,
            label="upper envelope", gid="envelope")  # fmt: skip
    for _, row in df.iterrows():
        _label(ax, row["throughput"], row["top1"], row["model"])
    _legend_by_family(ax, df["family"])
    fig.envelope = list(df["model"].iloc[env])
    return fig


def roofline(df: pd.DataFrame, peak_flops: float, peak_bytes_per_s: float) -> Figure:
    """The device's measured roofs, and each model at its arithmetic intensity and achieved FLOP/s."""
    fig, ax = _new("Roofline", "arithmetic intensity (FLOPs per byte)", "achieved FLOP/s")
    ai = df["arithmetic_intensity"].tolist()
    lo, hi = min(ai + [1.0]) / 4, max(ai + [peak_flops / peak_bytes_per_s]) * 4
    xs = np.logspace(math.log10(lo), math.log10(hi), 100)
    ax.plot(xs, np.minimum(peak_flops, xs * peak_bytes_per_s), color="black", gid="roof",
            label=f"roofs: {format_count(peak_flops)}FLOP/s, {format_count(peak_bytes_per_s)}B/s")  # fmt: skip
    ax.scatter(ai, df["achieved_flops"], c=[family_colour(f) for f in df["family"]], gid="models")
    for x, y, m in zip(ai, df["achieved_flops"], df["model"], strict=True):
        _label(ax, x, y, m)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    return fig
