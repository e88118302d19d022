"""Efficiency charts (Canziani & Culurciello 2016, and more) as matplotlib Figures.

Every function takes a pandas DataFrame (or a CostReport) and returns a ``Chart`` (``report/chart.py``:
the ``Figure`` and what the chart found: warnings, frontier, fit, roofs); nothing is shown or saved here.
Colours are fixed per model family, so a family looks the same in every chart.

Figures are ``matplotlib.figure.Figure`` objects made without pyplot, so importing this module leaves the
caller's matplotlib backend as it was; ``Figure.savefig`` renders them headless whatever the backend.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from archcost.cost.record import CostReport
from archcost.report.chart import Chart
from archcost.units import format_count

#: Kelly's (1965) colours of maximum contrast without white and black (black is a user's model), and two
#: more: 22 colours, one per zoo family, so that no two families share one (tab10's ten ran out at 22
#: families and gave mobilenet and vgg the same olive); the marker changes too (``_MARKERS`` cycle). In the
#: order of the zoo's sorted families, the pale ones (buff, light blue, yellows) falling to the least drawn.
_COLOURS = (
    "#be0032", "#c2b280", "#a1caf1", "#875692", "#008856", "#f38400", "#882d17", "#848482", "#e68fac",
    "#f3c300", "#dcd300", "#604e97", "#0067a5", "#f99379", "#2b3d26", "#00a3a3", "#f6a600", "#b3446c",
    "#8db600", "#1f2a80", "#e25822", "#654522",
)  # fmt: skip
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h")
#: the style of a model that is not in the zoo
USER_STYLE = ("black", "*")


def _zoo_families() -> list[str]:
    from archcost.zoo import get_meta, list_models

    return sorted({get_meta(n).family for n in list_models()})


def family_style(family: str) -> tuple[str, str]:
    """(colour, marker) of a family: its place among all zoo families, so it never changes between charts.

    Each family has its own colour (``_COLOURS``, as many as the zoo has families) and the markers cycle
    beside them, so bar charts (colour only) and scatter charts both tell every family apart. Beyond
    ``len(_COLOURS)`` families the colours repeat with another marker. A family outside the zoo (a user's
    model) is a black star."""
    families = _zoo_families()
    if family not in families:
        return USER_STYLE
    i = families.index(family)
    return _COLOURS[i % len(_COLOURS)], _MARKERS[(i + i // len(_COLOURS)) % len(_MARKERS)]


def family_colour(family: str) -> str:
    """The colour of a family (see ``family_style``)."""
    return family_style(family)[0]


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


def _new(title: str, xlabel: str, ylabel: str, size=(8, 5.5), subtitle: str = "") -> tuple[Chart, Axes]:
    """A chart with one axes: ``title`` on top, ``subtitle`` (where it was measured) under it."""
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.add_subplot()
    fig.suptitle(title)
    if subtitle:
        ax.set_title(subtitle, fontsize=8, color="dimgray")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    return Chart(fig), ax


# -- axes ----------------------------------------------------------------------------------------------
_SI = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K"))


def tick_text(value: float) -> str:
    """A tick label in plain numbers with archcost's decimal prefixes (``units.format_count``'s K, M, G, T):
    0.5, 30, 500, 2 K, 20 K, 10 G (never 3x10^1, 1e8 or an offset)."""
    for scale, prefix in _SI:
        if abs(value) >= scale:
            return f"{value / scale:g} {prefix}"
    return f"{value:g}"


def bytes_tick_text(value: float, unit: float = 1.0) -> str:
    """A tick of an axis in bytes (``unit`` bytes per data unit: 1e6 for MB): 500 MB, 1 GB, 20 GB (never
    '10 k' MB)."""
    b = value * unit
    for scale, prefix in (*_SI, (1.0, "")):
        if abs(b) >= scale:
            return f"{b / scale:g} {prefix}B"
    return f"{b:g} B"


def linear_axis(axis, formatter=None) -> None:
    """Linear ticks at 1, 2 and 5 times a power of ten, written with ``tick_text`` (no ``1e8`` offset)."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    axis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 5, 10]))
    axis.set_major_formatter(FuncFormatter(lambda v, _: (formatter or tick_text)(v)))


def _log_axis(axis, values, formatter=None) -> None:
    """Log scale with plain-number ticks (``tick_text``, or ``formatter``): decades over a wide range, 1-2-5
    over one to three decades, every integer multiple over less than one; no minor labels, so labels never
    run into each other."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    vals = [float(v) for v in values if v is not None and v == v and v > 0]
    decades = math.log10(max(vals) / min(vals)) if vals else 4.0
    subs = (1.0,) if decades > 3 else (1.0, 2.0, 5.0) if decades > 0.9 else tuple(float(i) for i in range(1, 10))
    axis.set_major_locator(LogLocator(base=10, subs=subs, numticks=12))
    axis.set_major_formatter(FuncFormatter(lambda v, _: (formatter or tick_text)(v)))
    axis.set_minor_formatter(NullFormatter())


def _batch_axis(ax, batch_sizes) -> None:
    """x on a log-2 scale, ticked at exactly the batch sizes that were run, written as numbers."""
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    sizes = sorted({int(b) for b in batch_sizes})
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(sizes))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_locator(NullLocator())
    if len(sizes) == 1:
        ax.set_xlim(sizes[0] / 2, sizes[0] * 2)


# -- where it was measured -----------------------------------------------------------------------------
def _values(df: pd.DataFrame, column: str) -> list:
    if column not in df:
        return []
    return sorted({v for v in df[column].tolist() if v is not None and v == v}, key=str)


def measured_on(df: pd.DataFrame, batch: bool = True) -> str:
    """'measured on cpu (AMD EPYC), 2 threads, float32, batch 1': the subtitle of a chart of measured data.

    ``batch=False`` for charts whose x axis is the batch size. Columns a frame lacks are left out."""
    parts = []
    devices, names = _values(df, "device"), _values(df, "env_device_name")
    if devices:
        parts.append(", ".join(map(str, devices)) + (f" ({', '.join(map(str, names))})" if names else ""))
    threads = _values(df, "threads")
    if threads:
        parts.append(f"{', '.join(str(int(t)) for t in threads)} thread{'s' if threads != [1] else ''}")
    parts += [", ".join(map(str, _values(df, "dtype")))] if _values(df, "dtype") else []
    if True in _values(df, "channels_last"):
        parts.append("channels-last")
    if True in _values(df, "compiled"):
        parts.append("torch.compile")
    if batch and _values(df, "batch_size"):
        parts.append("batch " + ", ".join(str(int(b)) for b in _values(df, "batch_size")))
    return ("measured on " + ", ".join(p for p in parts if p)) if parts else ""


def _mixed_configurations(chart: Chart, df: pd.DataFrame) -> None:
    """A warning when one chart draws records of several dtypes, thread counts or settings."""
    for column, what in (("dtype", "dtypes"), ("threads", "thread counts"), ("channels_last", "memory formats"),
                         ("compiled", "compile settings")):  # fmt: skip
        values = _values(df, column)
        if len(values) > 1:
            chart.warn(f"records of several {what} ({', '.join(map(str, values))}) are drawn together")


# -- legends, keys and labels ----------------------------------------------------------------------------
def _legend_by_family(ax, families, loc: str = "upper left", anchor=(1.01, 1)):
    from matplotlib.lines import Line2D

    handles = []
    for f in sorted(set(families)):
        colour, marker = family_style(f)
        handles.append(Line2D([], [], marker=marker, linestyle="", color=colour, label=f))
    return _add_legend(ax, handles, title="family", fontsize=8, loc=loc, bbox_to_anchor=anchor, gid="families")


def _add_legend(ax, handles, gid: str, **kw):
    """A legend added as an artist, so the axes' own legend (the fit's, the roofs') and others all stay."""
    from matplotlib.legend import Legend

    legend = Legend(ax, handles, [h.get_label() for h in handles], **kw)
    legend.set_gid(gid)
    ax.add_artist(legend)
    legend.set_clip_on(False)  # add_artist clips to the axes: a legend beside them would vanish from layout
    return legend


#: the largest blob, in points² (matplotlib's scatter size); area is proportional to the value
BLOB_MAX_AREA = 1200.0


def _blob_areas(values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return BLOB_MAX_AREA * values / values.max()


def _nice_below(value: float) -> float:
    """The largest 1, 2 or 5 times a power of ten at or below ``value``."""
    e = math.floor(math.log10(value))
    for m in (5, 2, 1):
        if m * 10**e <= value:
            return m * 10**e
    return 10**e


def size_key(ax, values, what: str) -> list[float]:
    """A legend of blob sizes: three round values (about the largest, a quarter and a twentieth of it)
    drawn at the area they have in the chart, titled ``what``. Returns the values shown."""
    from matplotlib.lines import Line2D

    vmax = float(max(values))
    keys = sorted({_nice_below(vmax / d) for d in (1, 4, 20)}, reverse=True)
    handles = [
        Line2D([], [], marker="o", linestyle="", markersize=math.sqrt(BLOB_MAX_AREA * k / vmax),
               markerfacecolor="lightgray", markeredgecolor="black", markeredgewidth=0.5, label=tick_text(k))
        for k in keys
    ]  # fmt: skip
    biggest = math.sqrt(BLOB_MAX_AREA * keys[0] / vmax)  # points
    _add_legend(ax, handles, "size-key", title=what, fontsize=8, title_fontsize=8, loc="lower left",
                bbox_to_anchor=(1.01, 0), labelspacing=max(1.0, biggest / 10), borderpad=1.0,
                handletextpad=1.0 + biggest / 20)  # fmt: skip
    ax.size_key = keys
    return keys


def _scatter(ax, x, y, families, sizes=None, **kw) -> None:
    """Models as points in their family's colour and marker (one scatter per marker; gid ``models``).

    With ``sizes`` (blob charts) every blob is a circle, so that areas compare truly; a family whose
    marker is not a circle gets its marker drawn small at the blob's centre."""
    x, y, fam = list(x), list(y), list(families)
    styles = [family_style(f) for f in fam]
    if sizes is not None:
        ax.scatter(x, y, marker="o", c=[c for c, _ in styles], s=list(sizes), gid="models", zorder=3, **kw)
        for marker in dict.fromkeys(m for _, m in styles if m != "o"):
            idx = [i for i, (_, m) in enumerate(styles) if m == marker]
            ax.scatter([x[i] for i in idx], [y[i] for i in idx], marker=marker, c=[styles[i][0] for i in idx],
                       s=12, edgecolors="black", linewidths=0.5, gid="family-marks", zorder=3.5)  # fmt: skip
        return
    for marker in dict.fromkeys(m for _, m in styles):
        idx = [i for i, (_, m) in enumerate(styles) if m == marker]
        ax.scatter([x[i] for i in idx], [y[i] for i in idx], marker=marker, c=[styles[i][0] for i in idx],
                   gid="models", zorder=3, **kw)  # fmt: skip


#: matplotlib's default scatter size (points²), for charts without blobs
_POINT_AREA = 36.0
#: label placement: distances tried from a point's edge (in font heights), and directions (degrees)
_RINGS = (0.3, 1.0, 2.0, 3.5, 5.0, 7.0, 9.5, 12.5)
_ANGLES = (15, -15, 165, 195, 90, 270, 45, -45, 135, 225, 0, 180, 60, 120, 240, 300)


def _overlap(box: np.ndarray, boxes: np.ndarray) -> float:
    """Total area of ``box`` (x0, y0, x1, y1) covered by ``boxes`` (n x 4), in pixels²."""
    if not len(boxes):
        return 0.0
    w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    return float(np.sum(w * h))


#: lines a label should not sit on: the Pareto frontier, the upper envelope, a fit
_AVOIDED_LINES = ("frontier", "envelope", "fit")


def _line_boxes(ax, step: float = 4.0) -> list[np.ndarray]:
    """Small boxes every ``step`` pixels along the lines labels should keep off (as drawn: steps too)."""
    from matplotlib.cbook import pts_to_poststep

    boxes = []
    for line in ax.lines:
        if line.get_gid() not in _AVOIDED_LINES or len(line.get_xdata()) < 2:
            continue
        x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
        if line.get_drawstyle() == "steps-post":
            x, y = pts_to_poststep(x, y)
        xy = ax.transData.transform(np.column_stack([x, y]))
        for (x0, y0), (x1, y1) in zip(xy[:-1], xy[1:], strict=True):
            n = max(1, int(math.hypot(x1 - x0, y1 - y0) / step))
            for t in np.linspace(0, 1, n + 1):
                px, py = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
                boxes.append(np.array([px - 1, py - 1, px + 1, py + 1]))
    return boxes


def _place_labels(fig: Figure, ax, x, y, texts: list[str], sizes=None, fontsize: float = 7) -> list:
    """Label every point where its label overlaps no other label, point, blob or legend inside the axes.

    Greedy placement in display space (Imhof's cartographic rule of thumb: crowded points first, each
    label at the nearest free spot around its point, preferring the right and left): the text is measured
    with matplotlib's renderer, candidate boxes are tried on rings of growing distance, and the first free
    one is taken; a label set away from its point gets a thin grey leader line. Where no spot is free
    within the outermost ring, the least covered one is used. Returns the Text objects (``gid`` label)."""
    from matplotlib.lines import Line2D

    if not texts:
        return []
    ax.margins(x=0.08, y=0.08)  # room for the outermost points' labels
    fig.draw_without_rendering()  # the layout first: placement works in display coordinates
    ax.set_xlim(ax.get_xlim())  # freeze the limits, so that leader lines cannot move them
    ax.set_ylim(ax.get_ylim())
    renderer = fig.canvas.get_renderer() if hasattr(fig.canvas, "get_renderer") else fig._get_renderer()  # type: ignore[attr-defined]  # private fallback of older matplotlib
    xy = np.column_stack([np.asarray(x, float), np.asarray(y, float)])
    centres = ax.transData.transform(xy)
    areas = np.full(len(texts), _POINT_AREA) if sizes is None else np.asarray(sizes, float)
    radii = fig.dpi / 72 * np.sqrt(areas) / 2
    frame = ax.get_window_extent(renderer)
    pad = 3.0  # pixels between a label and anything else
    occupied = [np.array([cx - r, cy - r, cx + r, cy + r]) for (cx, cy), r in zip(centres, radii, strict=True)]
    for artist in [*ax.artists, ax.get_legend(), *ax.texts]:
        if artist is not None and artist.get_visible():
            box = artist.get_window_extent(renderer)
            if box.overlaps(frame):
                occupied.append(np.array([box.x0, box.y0, box.x1, box.y1]))
    occupied += _line_boxes(ax)
    halo = {"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 0.5}  # readable over lines and grid
    labels = [ax.text(0, 0, t, fontsize=fontsize, zorder=4, bbox=halo, gid="label") for t in texts]
    sizes_px = []
    for label in labels:
        box = label.get_window_extent(renderer)
        sizes_px.append((box.width + 2 * pad, box.height + 2 * pad))
    line_h = fig.dpi / 72 * fontsize * 1.2
    crowd = [int(np.sum(np.hypot(*(centres - c).T) < 6 * line_h)) for c in centres]
    for i in sorted(range(len(texts)), key=lambda k: -crowd[k]):
        (cx, cy), r, (w, h) = centres[i], radii[i], sizes_px[i]
        others = np.array([b for j, b in enumerate(occupied) if j != i])
        best, best_cost = None, math.inf
        for ring in _RINGS:
            d = r + ring * line_h
            for angle in _ANGLES:
                dx, dy = math.cos(math.radians(angle)), math.sin(math.radians(angle))
                px, py = cx + d * dx, cy + d * dy
                x0 = px if dx > 0.3 else px - w if dx < -0.3 else px - w / 2
                y0 = py if dy > 0.3 else py - h if dy < -0.3 else py - h / 2
                box = np.array([x0, y0, x0 + w, y0 + h])
                if box[0] < frame.x0 or box[2] > frame.x1 or box[1] < frame.y0 or box[3] > frame.y1:
                    continue
                cost = _overlap(box, others)
                if cost < best_cost:
                    best, best_cost = box, cost
                if cost == 0:
                    break
            if best_cost == 0:
                break
        if best is None:  # nowhere inside the axes: right of the point
            best = np.array([cx + r, cy, cx + r + w, cy + h])
        occupied.append(best)
        tx, ty = ax.transData.inverted().transform((best[0] + pad, best[1] + pad))
        labels[i].set_position((tx, ty))
        labels[i].set_verticalalignment("bottom")
        nearest = np.clip((cx, cy), best[:2], best[2:])
        gap = math.hypot(nearest[0] - cx, nearest[1] - cy)
        if gap > r + 0.8 * line_h:  # set away from its point: a leader line to its edge
            edge = np.array((cx, cy)) + (nearest - (cx, cy)) * r / gap
            ends = ax.transData.inverted().transform([edge, nearest])
            ax.add_line(Line2D(ends[:, 0], ends[:, 1], color="gray", linewidth=0.5, zorder=3.8, gid="leader"))
    return labels


def _input_sizes(df: pd.DataFrame) -> tuple[str, dict[str, str]]:
    """The commonest input size, and the models analysed at another one ({model: '32 px'})."""
    if "input_size" not in df or df["input_size"].isna().all():
        return "", {}
    common = df["input_size"].mode().iloc[0]
    other = {m: f"{s.split('x')[-1]} px" for m, s in zip(df["model"], df["input_size"], strict=True)
             if s != common}  # fmt: skip
    return common, other


def accuracy_vs_macs(df: pd.DataFrame) -> Chart:
    """Top-1 against MACs (log x), blob area proportional to parameters (with a size key), Pareto
    frontier marked. Canziani & Culurciello 2016, Fig. 2.

    ``df`` columns: model, family, macs, params, top1; optional input_size ('3x224x224') and dataset.
    Models analysed at another input size than most are labelled with it: MACs grow with the input."""
    common, other = _input_sizes(df)
    datasets = _values(df, "dataset")
    subtitle = (f"top-1 on {', '.join(datasets)}; " if datasets else "") + (
        f"MACs at input {common}" + (" unless labelled" if other else "") if common else ""
    )
    chart, ax = _new("Accuracy against operations (blob area proportional to parameters)",
                   "MACs per image (log scale)", "top-1 accuracy (%)", subtitle=subtitle.strip("; "))  # fmt: skip
    sizes = _blob_areas(df["params"])
    _scatter(ax, df["macs"], df["top1"], df["family"], sizes, alpha=0.6, edgecolors="black", linewidths=0.5)
    ax.set_xscale("log")
    _log_axis(ax.xaxis, df["macs"])
    front = pareto_front(df["macs"].tolist(), df["top1"].tolist())
    fx, fy = df["macs"].iloc[front], df["top1"].iloc[front]
    ax.step(fx, fy, where="post", color="black", linewidth=1, linestyle="--", gid="frontier")
    texts = [m + (f" ({other[m]})" if m in other else "") + (" *" if i in front else "")
             for i, m in enumerate(df["model"])]  # fmt: skip
    _legend_by_family(ax, df["family"])
    size_key(ax, df["params"], "parameters")
    ax.text(0.01, 0.01, "- - - and *: the Pareto frontier (no model is more accurate for fewer MACs)",
            transform=ax.transAxes, fontsize=7)  # fmt: skip
    if len(df) < 2:
        chart.warn(f"one model only ({df['model'].iloc[0]}): nothing to compare it with")
    _place_labels(chart.figure, ax, df["macs"], df["top1"], texts, sizes)
    chart.frontier = list(df["model"].iloc[front])
    return chart


def _bar_labels(df: pd.DataFrame) -> list[str]:
    _, other = _input_sizes(df)
    return [m + (f" ({other[m]})" if m in other else "") for m in df["model"]]


def accuracy_bar(df: pd.DataFrame) -> Chart:
    """Top-1 per model, sorted (Canziani & Culurciello 2016, Fig. 1)."""
    df = df.sort_values("top1")
    datasets = _values(df, "dataset")
    chart, ax = _new("Top-1 accuracy", "top-1 accuracy (%)", "model", size=(8, 0.3 * len(df) + 1.8),
                   subtitle=f"on {', '.join(datasets)}" if datasets else "")  # fmt: skip
    ax.barh(_bar_labels(df), df["top1"], color=[family_colour(f) for f in df["family"]], gid="models")
    for y, v in enumerate(df["top1"]):
        ax.text(v, y, f" {v:.1f}", va="center", fontsize=7)
    ax.set_xlim(min(df["top1"]) - 10, 100)
    _legend_by_family(ax, df["family"])
    return chart


def accuracy_density(df: pd.DataFrame) -> Chart:
    """Top-1 per million parameters (Canziani & Culurciello 2016, Fig. 3's accuracy density)."""
    df = df.assign(density=df["top1"] / (df["params"] / 1e6)).sort_values("density")
    chart, ax = _new("Accuracy density", "top-1 accuracy (%) per million parameters", "model",
                   size=(8, 0.3 * len(df) + 1.8))  # fmt: skip
    ax.barh(_bar_labels(df), df["density"], color=[family_colour(f) for f in df["family"]], gid="models")
    for y, v in enumerate(df["density"]):
        ax.text(v, y, f" {v:.2f}", va="center", fontsize=7)
    ax.set_xlim(0, df["density"].max() * 1.12)  # room for the last value's text
    _legend_by_family(ax, df["family"])
    return chart


def layers(report: CostReport) -> Chart:
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
    return Chart(fig)


#: names of a receptive field's axes, by the number of spatial axes
AXIS_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}


def receptive_field(report: CostReport) -> Chart:
    """Receptive field size per spatial axis (height, width) against layer index, and the input's size."""
    rows = [(i, r.name, r.rf) for i, r in enumerate(report.layers) if r.rf is not None and not r.rf_global]
    chart, ax = _new(f"{report.model}: receptive field growth", "layer (execution order)",
                   "receptive field (input pixels)")  # fmt: skip
    axes_n = len(rows[0][2]) if rows else 0
    names = AXIS_NAMES.get(axes_n, tuple(f"axis {a}" for a in range(axes_n)))
    styles = ("-", "--", ":")
    same = axes_n > 1 and all(len(set(rf)) == 1 for _, _, rf in rows)
    for axis in range(1 if same else axes_n):  # one line when every axis grows alike (square kernels)
        label = " = ".join(names) + " (equal at every layer)" if same else names[axis]
        ax.plot([i for i, _, _ in rows], [rf[axis] for _, _, rf in rows], marker=".", linestyle=styles[axis % 3],
                label=label, gid=f"axis{axis}")  # fmt: skip
    spatial = report.input_shape[-axes_n:] if axes_n else report.input_shape[-1:]
    ax.axhline(max(spatial), color="gray", linestyle=":", gid="input",
               label=f"input size ({'x'.join(map(str, spatial))})")  # fmt: skip
    if rows:
        i, last_name, last_rf = rows[-1]
        # to the left of the last point, so it never runs off the right edge
        ax.annotate(f"{last_name}: {'x'.join(f'{v:g}' for v in last_rf)}", (i, max(last_rf)),
                    textcoords="offset points", xytext=(-6, 8), ha="right", fontsize=7, gid="last")  # fmt: skip
        ax.set_ylim(top=max(max(last_rf), max(spatial)) * 1.12)
    ax.legend(fontsize=8, loc="upper left")
    return chart


# -- charts from measured results -----------------------------------------------------------------
#: line styles of the models of one family, in turn
_DASHES = ("-", "--", ":", "-.")


def model_styles(models: list[str], families: list[str]) -> dict[str, dict]:
    """Per model, the keywords of its line: its family's colour; the first model of a family its family's
    marker and a solid line, the next ones the next markers and dashes (and hollow markers after four), so
    that resnet18 and resnet50 differ in marker as well as dash and the legend tells every model apart."""
    seen: dict[str, int] = {}
    out = {}
    for model, family in zip(models, families, strict=True):
        colour, marker = family_style(family)
        k = seen[family] = seen.get(family, -1) + 1
        start = _MARKERS.index(marker) if marker in _MARKERS else 0
        out[model] = {
            "color": colour,
            "marker": marker if k == 0 else _MARKERS[(start + k) % len(_MARKERS)],
            "linestyle": _DASHES[k % len(_DASHES)],
            "fillstyle": "full" if k < len(_MARKERS) else "none",
        }
    return out


def _per_model_lines(df: pd.DataFrame, y: str, title: str, ylabel: str, logy: bool = False, formatter=None) -> Chart:
    chart, ax = _new(title, "batch size (log scale)", ylabel, subtitle=measured_on(df, batch=False))
    _mixed_configurations(chart, df)
    groups = [(model, group.sort_values("batch_size")) for model, group in df.groupby("model", sort=True)]
    styles = model_styles([m for m, _ in groups], [g["family"].iloc[0] for _, g in groups])
    single = []
    for model, group in groups:
        ax.plot(group["batch_size"], group[y], label=model, gid=f"model:{model}", **styles[model])
        if group["batch_size"].nunique() < 2:
            single.append(model)
    _batch_axis(ax, df["batch_size"])
    if logy:
        ax.set_yscale("log")
        _log_axis(ax.yaxis, df[y], formatter)
    else:
        linear_axis(ax.yaxis, formatter)
    # handles long enough to show a dash pattern ("--" and ":" look alike over matplotlib's default 2 em)
    ax.legend(fontsize=7, ncols=2 if df["model"].nunique() > 8 else 1, loc="upper left", bbox_to_anchor=(1.01, 1),
              handlelength=4)  # fmt: skip
    if single and len(single) == df["model"].nunique():
        sizes = ", ".join(str(int(b)) for b in sorted(df["batch_size"].unique()))
        chart.warn(f"every model was measured at one batch size only (batch {sizes}): no trend to show; "
                   "profile with --batch-sizes 1,8,32,128")  # fmt: skip
    elif single:
        chart.warn(f"measured at one batch size only (a point, not a line): {', '.join(single)}")
    return chart


def latency_vs_batch(df: pd.DataFrame) -> Chart:
    """Median latency per batch against batch size, one line per model (Canziani & Culurciello, Fig. 4)."""
    return _per_model_lines(
        df, "latency_ms", "Inference time against batch size", "median latency per batch (ms, log scale)", True
    )


def throughput_vs_batch(df: pd.DataFrame) -> Chart:
    """Images per second against batch size, one line per model."""
    return _per_model_lines(df, "throughput", "Throughput against batch size", "images per second (log scale)", True)


def power_vs_batch(df: pd.DataFrame) -> Chart:
    """Mean board power against batch size (NVML), one line per model (Canziani & Culurciello, Fig. 5)."""
    return _per_model_lines(df, "power_w", "Power against batch size", "mean board power (W)")


def energy_per_image(df: pd.DataFrame) -> Chart:
    """Energy per image against batch size (NVML), one line per model."""
    return _per_model_lines(
        df, "energy_j_per_image", "Energy per image against batch size", "energy per image (J, log scale)", True
    )


def memory_vs_batch(df: pd.DataFrame) -> Chart:
    """Measured peak memory against batch size, one line per model (Canziani & Culurciello, Fig. 6)."""
    return _per_model_lines(df, "memory_mb", "Memory against batch size", "peak memory (log scale)", True,
                            lambda v: bytes_tick_text(v, 1e6))  # fmt: skip


#: fewest points a fit is drawn through: two points always lie on a line (R² = 1 says nothing)
MIN_FIT_POINTS = 3


def _r2(y, pred) -> float:
    y, pred = np.asarray(y, float), np.asarray(pred, float)
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return 1 - float(np.sum((y - pred) ** 2)) / ss_tot if ss_tot else 1.0


def linear_fit(x, y) -> tuple[float, float, float]:
    """Least-squares line y = a x + b: (a, b, R²)."""
    a, b = np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)
    return float(a), float(b), _r2(y, a * np.asarray(x, float) + b)


def power_law_fit(x, y) -> tuple[float, float, float]:
    """Least squares on log10 y = k log10 x + log10 c, i.e. y = c x^k, a straight line on log-log axes:
    (k, c, R² of the log values)."""
    lx, ly = np.log10(np.asarray(x, float)), np.log10(np.asarray(y, float))
    k, b = np.polyfit(lx, ly, 1)
    return float(k), float(10**b), _r2(ly, k * lx + b)


def _scatter_with_fit(df: pd.DataFrame, x: list, y: list, chart: Chart, ax, loglog: bool, what: str) -> Chart:
    """Models as points (family colours and markers), a least-squares fit with its R² (``chart.fit``) where
    there are at least ``MIN_FIT_POINTS`` models, and a label on every model."""
    _scatter(ax, x, y, df["family"])
    if len(x) >= MIN_FIT_POINTS:
        xs = np.geomspace(min(x), max(x), 200) if loglog else np.linspace(min(x), max(x), 200)
        if loglog:
            k, c, r2 = chart.fit = power_law_fit(x, y)
            label = f"power-law fit y = {c:.3g} x^{k:.2f}\n(straight on log-log axes), R² = {r2:.3f} of log values"
            ys = c * xs**k
        else:
            a, b, r2 = chart.fit = linear_fit(x, y)
            label = f"least-squares line y = {a:.3g} x + {b:.3g}, R² = {r2:.3f}"
            ys = a * xs + b
        ax.plot(xs, ys, color="black", linestyle="--", linewidth=1, label=label, gid="fit")
        ax.legend(fontsize=8, loc="lower right")
    else:
        chart.warn(f"{len(x)} model(s) only: {what} needs at least {MIN_FIT_POINTS} to fit a line; no fit drawn")
    _legend_by_family(ax, df["family"])
    _place_labels(chart.figure, ax, x, y, df["model"].tolist(), fontsize=6 if len(x) > 30 else 7)
    return chart


def _figure_size(n: int) -> tuple[float, float]:
    """Room for a label on every point: larger for many models."""
    return (8, 5.5) if n <= 20 else (13, 9)


def memory_vs_params(df: pd.DataFrame) -> Chart:
    """Measured peak memory against parameter count, with a least-squares line (linear axes)."""
    chart, ax = _new("Memory against parameters", "parameters (millions)", "measured peak memory",
                   size=_figure_size(len(df)), subtitle=measured_on(df))  # fmt: skip
    _mixed_configurations(chart, df)
    linear_axis(ax.xaxis)
    linear_axis(ax.yaxis, lambda v: bytes_tick_text(v, 1e6))  # data in MB
    return _scatter_with_fit(df, (df["params"] / 1e6).tolist(), df["memory_mb"].tolist(), chart, ax, False,
                             "memory against parameters")  # fmt: skip


def macs_vs_latency(df: pd.DataFrame) -> Chart:
    """MACs against measured latency on log-log axes, with a power-law fit y = c x^k and the R² of the
    log values (does operation count predict time? Canziani & Culurciello 2016, Fig. 7)."""
    chart, ax = _new("Operations against inference time", "median latency per batch (ms, log scale)",
                   "GMACs per batch (log scale)", size=_figure_size(len(df)), subtitle=measured_on(df))  # fmt: skip
    _mixed_configurations(chart, df)
    x, y = df["latency_ms"].tolist(), (df["macs"] * df["batch_size"] / 1e9).tolist()
    ax.set_xscale("log")
    ax.set_yscale("log")
    _log_axis(ax.xaxis, x)
    _log_axis(ax.yaxis, y)
    return _scatter_with_fit(df, x, y, chart, ax, True, "operations against time")


def accuracy_vs_throughput(df: pd.DataFrame) -> Chart:
    """Top-1 against images per second, blob area proportional to MACs per image (with a size key), and
    the upper envelope."""
    common, other = _input_sizes(df)
    subtitle = measured_on(df) + (f"; input {common}" + (" unless labelled" if other else "") if common else "")
    chart, ax = _new("Accuracy against throughput (blob area proportional to MACs per image)",
                   "images per second (log scale)", "top-1 accuracy (%)", subtitle=subtitle)  # fmt: skip
    _mixed_configurations(chart, df)
    sizes = _blob_areas(df["macs"])
    _scatter(ax, df["throughput"], df["top1"], df["family"], sizes, alpha=0.6, edgecolors="black", linewidths=0.5)
    ax.set_xscale("log")
    _log_axis(ax.xaxis, df["throughput"])
    env = upper_envelope(df["throughput"].tolist(), df["top1"].tolist())
    ax.plot(df["throughput"].iloc[env], df["top1"].iloc[env], color="black", linestyle="--", linewidth=1,
            gid="envelope")  # fmt: skip
    ax.text(0.01, 0.01, "- - -: the upper envelope (no model is both faster and more accurate)",
            transform=ax.transAxes, fontsize=7)  # fmt: skip
    _legend_by_family(ax, df["family"])
    size_key(ax, df["macs"], "MACs per image")
    if len(df) < 2:
        chart.warn(f"one model only ({df['model'].iloc[0]}): nothing to compare it with")
    texts = [m + (f" ({other[m]})" if m in other else "") for m in df["model"]]
    _place_labels(chart.figure, ax, df["throughput"], df["top1"], texts, sizes)
    chart.frontier = list(df["model"].iloc[env])
    return chart


#: line styles of the roofs of several runs on one chart, in turn
_ROOF_STYLES = ("-", "--", "-.", ":")


def _roof_groups(df: pd.DataFrame) -> list[tuple[float, float, float | None, list[int]]]:
    """The distinct roofs of the records: (peak FLOP/s, peak bytes/s, cache bytes/s or None, row indices),
    oldest calibration first. Runs that share one calibration (the peaks are cached) share one roof."""
    cache = df["peak_cache_bytes_per_s"] if "peak_cache_bytes_per_s" in df else pd.Series([None] * len(df))
    when = df["peaks_measured_at"] if "peaks_measured_at" in df else pd.Series([""] * len(df))
    groups: dict[tuple, list[int]] = {}
    for i, (f, b, c) in enumerate(zip(df["peak_flops_per_s"], df["peak_bytes_per_s"], cache, strict=True)):
        c = None if c is None or c != c else float(c)
        groups.setdefault((float(f), float(b), c), []).append(i)
    order = sorted(groups, key=lambda k: min(str(when.iloc[i] or "") for i in groups[k]))
    return [(*k, groups[k]) for k in order]


def roofline(df: pd.DataFrame, peak_flops: float | None = None, peak_bytes_per_s: float | None = None) -> Chart:
    """The device's measured roofs (Williams, Waterman & Patterson 2009), and each model at its arithmetic
    intensity and achieved FLOP/s, under the roof of its own run.

    Each record carries the peaks it was measured against (``peak_flops_per_s``, ``peak_bytes_per_s``, and
    ``peak_cache_bytes_per_s`` where the cache-resident memory roof was measured); records of several
    calibrations (other runs, thread counts, a recalibration) get one roof each, labelled with the models
    under it, and a model is "above the roof" only against its own. ``peak_flops`` / ``peak_bytes_per_s``
    given: one roof for every record (as before). Records without peaks are left out with a warning.
    ``Chart.roofs``: per roof (peak FLOP/s, peak bytes/s, models); ``Chart.above``: the models above their own."""
    from archcost.profiling.roofline import ABOVE_PEAK

    chart, ax = _new("Roofline", "arithmetic intensity (FLOPs per byte, log scale)", "achieved FLOP/s (log scale)",
                   subtitle=measured_on(df))  # fmt: skip
    _mixed_configurations(chart, df)
    if peak_flops is not None and peak_bytes_per_s is not None:
        df = df.assign(peak_flops_per_s=float(peak_flops), peak_bytes_per_s=float(peak_bytes_per_s))
    known = df["peak_flops_per_s"].notna() & df["peak_bytes_per_s"].notna() & (df["peak_flops_per_s"] > 0)
    if not known.all():
        chart.warn("no device peaks in the record (profiled with --no-roofline), left out: "
                   + ", ".join(df[~known]["model"].astype(str)))  # fmt: skip
    df = df[known].reset_index(drop=True)
    if df.empty:
        return chart
    groups = _roof_groups(df)
    ai = df["arithmetic_intensity"].tolist()
    ridges = [f / b for f, b, _, _ in groups]
    lo, hi = min(ai + [1.0]) / 4, max(ai + ridges) * 4
    xs = np.logspace(math.log10(lo), math.log10(hi), 100)
    roof_values = []
    for n, (flops, bandwidth, cache, rows) in enumerate(groups):
        style = _ROOF_STYLES[n % len(_ROOF_STYLES)]
        models = list(dict.fromkeys(df["model"].iloc[rows]))
        more = f" +{len(models) - 4}" if len(models) > 4 else ""
        under = "" if len(groups) == 1 else ": " + ", ".join(models[:4]) + more
        roof = np.minimum(flops, xs * bandwidth)
        roof_values += list(roof)
        ax.plot(xs, roof, color="black", linestyle=style, linewidth=1.2, gid=f"roof:{n}",
                label=f"roof {format_count(flops)}FLOP/s, {format_count(bandwidth)}B/s{under}")  # fmt: skip
        if cache and cache > bandwidth:
            ax.plot(xs, np.minimum(flops, xs * cache), color="gray", linestyle=style, linewidth=0.8,
                    gid=f"cache-roof:{n}", label=f"cache-resident stream {format_count(cache)}B/s")  # fmt: skip
            roof_values += list(np.minimum(flops, xs * cache))
        chart.roofs.append((flops, bandwidth, models))
    ax.set_xscale("log")
    ax.set_yscale("log")
    _log_axis(ax.xaxis, [lo, hi])
    _log_axis(ax.yaxis, roof_values + df["achieved_flops"].tolist())
    ax.legend(fontsize=7, loc="lower right")
    _scatter(ax, ai, df["achieved_flops"], df["family"])
    _legend_by_family(ax, df["family"])
    chart.above = list(dict.fromkeys(df[df["achieved_flops"] > df["peak_flops_per_s"]]["model"]))
    if chart.above:
        chart.warn(f"above their own run's compute roof: {', '.join(chart.above)}. {ABOVE_PEAK}")
    _place_labels(chart.figure, ax, ai, df["achieved_flops"].tolist(), df["model"].tolist())
    return chart
