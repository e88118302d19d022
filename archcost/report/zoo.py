"""The zoo as a table: name, family, year, input size, params, MACs and published top-1."""

from __future__ import annotations

import json

import pandas as pd

from archcost.units import format_count
from archcost.zoo import get_meta, list_models


def zoo_frame(family: str | None = None) -> pd.DataFrame:
    """One row per zoo model with its metadata; params and MACs are archcost's own analytic counts."""
    from archcost.cost import analyze
    from archcost.zoo import get_model

    rows = []
    for name in list_models(family):
        meta = get_meta(name)
        totals = analyze(get_model(name), meta.input_size, name=name).totals
        rows.append(
            {
                "name": name,
                "family": meta.family,
                "year": meta.year,
                "input_size": "x".join(map(str, meta.input_size)),
                "params": totals["params"],
                "macs": totals["macs"],
                "top1": meta.top1.value if meta.top1 else None,
                "dataset": meta.dataset,
            }
        )
    return pd.DataFrame(rows, columns=["name", "family", "year", "input_size", "params", "macs", "top1", "dataset"])


#: names and words flush left, numbers flush right
_ALIGN = ("left", "left", "right", "left", "right", "right", "right", "left")


def render_frame(df: pd.DataFrame, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(df.to_dict(orient="records"), sort_keys=True, indent=2) + "\n"
    if fmt == "csv":
        return df.to_csv(index=False)
    human = df.assign(
        params=df["params"].map(format_count),
        macs=df["macs"].map(format_count),
        top1=df["top1"].map(lambda v: "" if pd.isna(v) else f"{v:.1f}"),
    )
    if fmt == "markdown":
        # the cells are already formatted: tabulate must not re-parse "77.0" into 77 beside 76.4
        return human.to_markdown(index=False, disable_numparse=True, colalign=_ALIGN) + "\n"
    from archcost.report.table import text_table

    return text_table(human.astype(str), left=2, totals=False) + "\n"
