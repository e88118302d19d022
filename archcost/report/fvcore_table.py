"""``archcost table MODEL --fvcore``: fvcore's per-module figures in columns beside archcost's.

fvcore reports per module, archcost per layer call. Each module's own fvcore figure (its count minus its
submodules') goes on the first table row of the nearest module, itself or an ancestor, that the table
shows; so a module called twice shows fvcore's figure on its first row, and the column adds up to
fvcore's total.
"""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd
from torch import nn

from archcost.cost.record import CostReport
from archcost.crosscheck.fvcore_run import FvcoreResult
from archcost.crosscheck.reconcile import fvcore_own_params, nearest, own_counts
from archcost.tables import render_table
from archcost.units import format_count

COLUMNS = {
    "fvcore_flops": "fvcore flop",
    "fvcore_activations": "fvcore acts",
    "fvcore_params": "fvcore params",
}

LEGEND = (
    "fvcore columns: FlopCountAnalysis (its 'flop' is one multiply-add: conv/linear/matmul equal archcost's "
    "MACs; by default it also counts batch norm, adaptive average pooling, other norms and upsampling), "
    "ActivationCountAnalysis (output elements of conv/linear/matmul) and parameter_count, per module: a "
    "module called twice shows fvcore's figure on its first row."
)


def _owners(report: CostReport, depth: int | None) -> dict[str, int]:
    """Module path -> index of the first table row that stands for it."""
    owners: dict[str, int] = {}
    if depth is None:
        for i, r in enumerate(report.layers):
            owners.setdefault(r.module, i)
        return owners
    index: dict[str, int] = {}
    for r in report.layers:  # the grouping of CostReport.rollup
        parts = r.module.split(".") if r.module else []
        deep = len(parts) >= depth
        key = ".".join(parts[:depth]) if deep else r.name.split("#")[0]
        index.setdefault(key, len(index))
        owners.setdefault(key if deep else r.module, index[key])
    return owners


def fvcore_columns(report: CostReport, model: nn.Module, fv: FvcoreResult, depth: int | None = None) -> pd.DataFrame:
    """fvcore's flops, activations and params, one row per row of ``layer_frame(report, depth)`` (the last
    is the total). Empty (NA) where the table row has no module of its own, and everywhere if fvcore
    failed."""
    n_rows = (len(report.layers) if depth is None else len(report.rollup(depth))) + 1
    cols = {c: [pd.NA] * n_rows for c in COLUMNS}
    if not fv.ok:
        return pd.DataFrame(cols).astype("Int64")
    owners = _owners(report, depth)
    names = [n for n, _ in model.named_modules()]
    sources = {
        "fvcore_flops": own_counts(fv.flops, names),
        "fvcore_activations": own_counts(fv.activations, names),
        "fvcore_params": {k: Counter(n=v) for k, v in fvcore_own_params(fv, model).items()},
    }
    for col, own in sources.items():
        placed: dict[int, int] = {}
        for name, c in own.items():
            key, total = nearest(name, owners), sum(c.values())
            if key is not None and total:
                placed[owners[key]] = placed.get(owners[key], 0) + total
        for i in set(owners.values()):
            cols[col][i] = placed.get(i, 0)
    cols["fvcore_flops"][-1] = fv.total_flops()
    cols["fvcore_activations"][-1] = fv.total_activations()
    cols["fvcore_params"][-1] = fv.params.get("", 0)
    return pd.DataFrame(cols).astype("Int64")


def _fvcore_footer(fv: FvcoreResult) -> list[str]:
    if not fv.ok:
        return [f"fvcore could not analyse this model: {fv.error}"]
    lines = [LEGEND]
    unsupported = fv.unsupported.get("", Counter())
    if unsupported:
        ops = ", ".join(f"{op} x{n}" for op, n in sorted(unsupported.items()))
        lines.append(f"fvcore unsupported ops (counted 0 by fvcore): {ops}")
    return lines


def render_with_fvcore(
    report: CostReport, model: nn.Module, fv: FvcoreResult, fmt: str = "text", depth: int | None = None
) -> str:
    """``archcost.report.table.render`` with fvcore's columns added, in the same four formats."""
    from archcost.report import table

    extra = fvcore_columns(report, model, fv, None if fmt == "json" else depth)
    if fmt == "json":  # the JSON document is per layer whatever the depth
        doc = json.loads(table.render(report, "json", depth))
        per_row = extra.iloc[:-1].astype(object).where(extra.iloc[:-1].notna(), None)
        doc["fvcore"] = {
            "error": fv.error,
            "layers": [
                dict(name=r.name, **row) for r, row in zip(report.layers, per_row.to_dict("records"), strict=True)
            ],
            "totals": None if not fv.ok else {c: int(extra[c].iloc[-1]) for c in COLUMNS},
            "unsupported": dict(fv.unsupported.get("", {})),
        }
        return json.dumps(doc, sort_keys=True, indent=2) + "\n"
    if fmt == "csv":
        df = table.layer_frame(report, depth)
        df["output_shape"] = df["output_shape"].map(table.shape_text)
        return pd.concat([df, extra], axis=1).to_csv(index=False)
    human = table.human_frame(report, depth)
    for col, header in COLUMNS.items():
        human[header] = [("" if pd.isna(v) else format_count(int(v))) for v in extra[col]]
    footer = table.footer_lines(report) + _fvcore_footer(fv)
    if fmt not in ("markdown", "text"):
        raise ValueError(f"unknown format {fmt!r}")
    return table.titled(report.model, render_table(human, fmt, left=3, totals=True), footer, fmt)
