"""Predicted against measured latency (issue 28): one point per model on log-log axes with the y = x line and
the +-10% band, so a reader sees at once how many models the device profile predicts to within 10%.

Takes the figures it draws (``predicted_ms`` from ``archcost.predict``, ``measured_ms`` from ``archcost
profile`` records); nothing is analysed or measured here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from archcost.report.chart import Chart
from archcost.report.figures import _log_axis, _new, _place_labels, family_style

#: the band drawn around y = x, and the share of models inside it quoted in the chart
BAND = 0.10


def _ms_text(v: float) -> str:
    return f"{v:g} ms"


def predicted_vs_measured(df: pd.DataFrame, setting: str = "") -> Chart:
    """Predicted (y) against measured (x) milliseconds per forward, one labelled point per row of ``df``
    (columns ``model``, ``family``, ``measured_ms``, ``predicted_ms``), both axes log, the y = x line and the
    band of +-``BAND`` around it. ``setting``: where it was measured (the subtitle). The chart's ``data``:
    ``within`` (share of models within the band), ``errors`` (model -> predicted / measured - 1)."""
    chart, ax = _new("Predicted against measured latency (one point per model)", "measured ms per forward (log)",
                     "predicted ms per forward (log)", size=(8, 7), subtitle=setting)  # fmt: skip
    df = df[(df["measured_ms"] > 0) & (df["predicted_ms"] > 0)].reset_index(drop=True)
    if df.empty:
        chart.warn("no model with both a measured and a predicted latency")
        return chart
    lo = float(min(df["measured_ms"].min(), df["predicted_ms"].min())) / 1.5
    hi = float(max(df["measured_ms"].max(), df["predicted_ms"].max())) * 1.5
    line = np.geomspace(lo, hi, 50)
    ax.fill_between(line, line * (1 - BAND), line * (1 + BAND), color="tab:green", alpha=0.15, gid="band",
                    label=f"within +-{100 * BAND:.0f}%")  # fmt: skip
    ax.plot(line, line, color="black", linewidth=0.8, gid="identity", label="predicted = measured")
    for family, group in df.groupby("family", sort=False):
        colour, marker = family_style(str(family))
        ax.scatter(group["measured_ms"], group["predicted_ms"], c=colour, marker=marker, s=30, edgecolors="black",
                   linewidths=0.4, zorder=3, gid="models")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    _log_axis(ax.xaxis, [lo, hi], formatter=_ms_text)
    _log_axis(ax.yaxis, [lo, hi], formatter=_ms_text)
    errors = df["predicted_ms"] / df["measured_ms"] - 1
    within = float((errors.abs() <= BAND).mean())
    ax.legend(loc="upper left", fontsize=8)
    ax.text(0.99, 0.01, f"{within:.0%} of {len(df)} models within +-{100 * BAND:.0f}%; median |error| "
            f"{errors.abs().median():.0%}", transform=ax.transAxes, ha="right", fontsize=8)  # fmt: skip
    _place_labels(chart.figure, ax, df["measured_ms"], df["predicted_ms"], list(df["model"]))
    chart.data["within"] = within
    chart.data["errors"] = dict(zip(df["model"], errors, strict=True))
    if len(df) < 3:
        chart.warn(f"only {len(df)} model(s): too few to judge a predictor")
    return chart
