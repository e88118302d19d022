"""The zoo as a table: name, family, year, input size and the published params, MACs and top-1 (blank where
none is published; JSON and CSV name each figure's source), and archcost's own counts on request."""

from __future__ import annotations

import json

import pandas as pd

from archcost.tables import render_table
from archcost.units import format_count
from archcost.zoo import get_meta, list_models

COLUMNS = ["name", "family", "year", "input_size", "params", "macs", "top1", "dataset"]
#: with ``computed=True``: archcost's own analytic counts beside the published ones
COMPUTED = ["archcost_params", "archcost_macs"]

#: Headers of the text and markdown table: the counts say whose they are (JSON and CSV name each source).
HEADERS = {"params": "published params", "macs": "published MACs", "archcost_params": "archcost params",
           "archcost_macs": "archcost MACs"}  # fmt: skip


def _number(fig):
    """A published figure's value (whole numbers as int), or None."""
    if fig is None:
        return None
    return int(fig.value) if float(fig.value).is_integer() else fig.value


def zoo_frame(family: str | None = None, computed: dict[str, dict[str, int]] | None = None) -> pd.DataFrame:
    """One row per zoo model with its metadata; params, macs and top1 are the published figures (``ModelMeta``)
    and their sources are in ``params_source``, ``macs_source`` and ``top1_source``.

    Nothing is analysed here. ``computed``: archcost's own totals per model name at its input size
    (``archcost.cost.collect.zoo_totals``), shown as ``archcost_params`` and ``archcost_macs``.
    """
    rows = []
    for name in list_models(family):
        meta = get_meta(name)
        rows.append(
            {
                "name": name,
                "family": meta.family,
                "year": meta.year,
                "input_size": "x".join(map(str, meta.input_size)),
                "params": _number(meta.params),
                "macs": _number(meta.macs),
                "top1": meta.top1.value if meta.top1 else None,
                "dataset": meta.dataset,
                "params_source": meta.params.source if meta.params else None,
                "macs_source": meta.macs.source if meta.macs else None,
                "top1_source": meta.top1.source if meta.top1 else None,
            }
        )
        if computed is not None:
            totals = computed[name]
            rows[-1] |= {"archcost_params": totals["params"], "archcost_macs": totals["macs"]}
    sources = ["params_source", "macs_source", "top1_source"]
    df = pd.DataFrame(rows, columns=[*COLUMNS, *(COMPUTED if computed is not None else []), *sources])
    for col in (
        "params",
        "macs",
        *(COMPUTED if computed is not None else []),
    ):  # counts stay whole numbers beside blanks
        values = df[col].dropna()
        if all(float(v).is_integer() for v in values):
            df[col] = df[col].astype("Int64")
    return df


def render_frame(df: pd.DataFrame, fmt: str) -> str:
    """The zoo table in ``fmt``: text, markdown, csv or json (json and csv carry the sources too)."""
    if fmt == "json":
        records = [{k: None if pd.isna(v) else v for k, v in r.items()} for r in df.astype(object).to_dict("records")]
        return json.dumps(records, sort_keys=True, indent=2) + "\n"
    if fmt == "csv":
        return df.to_csv(index=False)
    shown = [c for c in df.columns if not c.endswith("_source")]

    def count(v) -> str:
        return "" if pd.isna(v) else format_count(int(v) if float(v).is_integer() else v)

    human = df[shown].assign(
        **{c: df[c].map(count) for c in ("params", "macs", *(c for c in COMPUTED if c in df))},
        top1=df["top1"].map(lambda v: "" if pd.isna(v) else f"{v:.1f}"),
        year=df["year"].astype(str),
    )
    human = human.rename(columns=HEADERS)
    return render_table(human, fmt, left={"name", "family", "input_size", "dataset"}) + "\n"
