"""Memory against batch size for training and inference: archcost's estimates as curves, measurements as points.

The curves come from the meta analysis at each batch size (no memory is allocated): inference is the
parameters plus the peak of live activations (``archcost.cost.memory``), training the peak of a whole step,
forward, backward and the optimizer's first step (``archcost.cost.training.training_peak_bytes``). The
points are ``memory_peak_bytes`` of ``archcost profile`` records (``--mode train`` for the training step,
the default for inference), where a results file is given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from archcost.errors import InputError
from archcost.report.chart import Chart
from archcost.report.figures import _COLOURS, _batch_axis, _log_axis, _new, bytes_tick_text, measured_on

#: batch sizes of the curves when no measurement says which
DEFAULT_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128)
MODES = ("train", "infer")  # the modes of archcost.cost.collect.MODES, in the order drawn
_STYLE = {"train": "-", "infer": "--"}
_NAMES = {"train": "training step", "infer": "inference"}


def estimates_frame(rows: Sequence[dict], *, dtype: str = "float32", optimizer: str = "adam") -> pd.DataFrame:
    """The rows of ``archcost.cost.collect.memory_estimates`` as the frame ``memory_train_vs_batch`` draws:
    columns ``model``, ``batch_size``, ``mode`` ("train" or "infer"), ``estimate_bytes``; ``attrs`` name the
    dtype and optimizer estimated."""
    df = pd.DataFrame(list(rows), columns=["model", "batch_size", "mode", "estimate_bytes"])
    df.attrs.update(dtype=dtype, optimizer=optimizer)
    return df


#: ``(models, batch_sizes, *, optimizer, dtype, foreach) -> rows``: ``archcost.cost.collect.memory_estimates``
Estimator = Callable[..., Sequence[dict]]


def memory_train_vs_batch(estimates: pd.DataFrame, measured: pd.DataFrame | None = None) -> Chart:
    """Peak memory (MB, log scale) against batch size (log 2): per model one colour, the estimated
    training step as a solid line and inference as a dashed one (``estimates_frame``), and measured peaks
    (profile records: ``model``, ``batch_size``, ``mode``, ``memory_peak_bytes``) as filled (training) and
    hollow (inference) markers. What the chart cannot show (a model without measurements, records of
    another dtype than the estimates) is written on it (``Chart.warnings``)."""
    if estimates.empty:
        raise InputError("no estimate to draw", "give at least one model")
    dtype = estimates.attrs.get("dtype", "float32")
    optimizer = estimates.attrs.get("optimizer", "adam")
    where = f"estimates: archcost meta analysis, {dtype}, {optimizer} (first step)"
    if measured is not None and len(measured):
        where += "\npoints " + measured_on(measured, batch=False)
    chart, ax = _new("Memory against batch size: training and inference", "batch size (log scale)",
                   "peak memory (log scale)", subtitle=where)  # fmt: skip
    colours = _COLOURS
    models = list(dict.fromkeys(estimates["model"]))
    values = list(estimates["estimate_bytes"] / 1e6)
    batches = list(estimates["batch_size"])
    for i, model in enumerate(models):
        colour = colours[i % len(colours)]
        for mode in MODES:
            part = estimates[(estimates["model"] == model) & (estimates["mode"] == mode)].sort_values("batch_size")
            ax.plot(part["batch_size"], part["estimate_bytes"] / 1e6, linestyle=_STYLE[mode], color=colour,
                    label=f"{model}, {_NAMES[mode]} (estimate)", gid=f"estimate:{model}:{mode}")  # fmt: skip
        if measured is None or measured.empty:
            continue
        mine = measured[(measured["model"] == model) & measured["memory_peak_bytes"].notna()]
        if mine.empty:
            chart.warn(f"no measured memory for {model} in the results: estimates only")
        for mode in MODES:
            got = mine[mine["mode"].astype(object).fillna("infer") == mode].sort_values("batch_size")
            if got.empty:
                continue
            ax.plot(got["batch_size"], got["memory_peak_bytes"] / 1e6, linestyle="none", marker="o", color=colour,
                    fillstyle="full" if mode == "train" else "none", markersize=6,
                    label=f"{model}, {_NAMES[mode]} (measured)", gid=f"measured:{model}:{mode}")  # fmt: skip
            values += list(got["memory_peak_bytes"] / 1e6)
            batches += list(got["batch_size"])
    if measured is not None and len(measured):
        other = sorted({str(d) for d in measured["dtype"].dropna()} - {dtype})
        if other:
            chart.warn(f"measured records in {', '.join(other)} are drawn against estimates in {dtype}")
    _batch_axis(ax, batches)
    ax.set_yscale("log")
    _log_axis(ax.yaxis, values, lambda v: bytes_tick_text(v, 1e6))  # data in MB, ticks 500 MB, 10 GB (not 10 k)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), handlelength=4)
    return chart


def training_memory_figure(
    models: Sequence[str] | None,
    measured: pd.DataFrame | None,
    estimate: Estimator,
    *,
    foreach: bool | None = None,
) -> Chart:
    """``memory_train_vs_batch`` for ``models`` (default: those in ``measured``) at the batch sizes measured
    (default ``DEFAULT_BATCH_SIZES``), with the optimizer and dtype of the measured training records
    (default adam, float32), the estimates made by ``estimate`` (``archcost.cost.collect.memory_estimates``:
    the caller's analysis; this module only presents). ``foreach`` defaults to whether the records were
    measured on CUDA."""
    if measured is not None and "mode" not in measured:
        measured = measured.assign(mode=None)
    if not models:
        if measured is None or measured.empty:
            raise InputError("no model to draw", "give --models, or --results with measurements")
        models = list(dict.fromkeys(measured["model"]))
    elif measured is not None:
        measured = measured[measured["model"].isin(set(models))]
    batches: Sequence[int] = DEFAULT_BATCH_SIZES
    optimizer, dtype = "adam", "float32"
    if measured is not None and len(measured):
        batches = sorted({int(b) for b in measured["batch_size"]})
        train = measured[measured["mode"] == "train"]
        optimizers = sorted({str(o) for o in train.get("optimizer", pd.Series(dtype=object)).dropna()})
        if len(optimizers) == 1:
            optimizer = optimizers[0]
        dtypes = sorted({str(d) for d in measured["dtype"].dropna()})
        if len(dtypes) == 1:
            dtype = dtypes[0]
        if foreach is None:
            foreach = any(str(d).startswith("cuda") for d in measured["device"].dropna())
    rows = estimate(models, batches, optimizer=optimizer, dtype=dtype, foreach=bool(foreach))
    return memory_train_vs_batch(estimates_frame(rows, dtype=dtype, optimizer=optimizer), measured)
