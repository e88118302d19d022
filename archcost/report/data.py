"""Assembling the per-model table the charts and reports draw: archcost's own counts, the zoo's
published accuracy, a user's accuracy file, and measured profile results."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from archcost.errors import InputError


@dataclass
class Points:
    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)  # what was left out, and why


def read_accuracy(path: str | Path) -> dict[str, dict[str, float | str | None]]:
    """``model,top1[,top5][,dataset]`` CSV -> {model: {"top1": .., "top5": .., "dataset": ..}}.

    ``dataset`` (e.g. ``CIFAR-10``) says what the accuracy was measured on; accuracy charts compare
    models of one dataset only."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"cannot read accuracy file {path}: {exc.strerror}", "give a CSV with model,top1[,top5][,dataset]"
        ) from None
    rows = list(csv.DictReader(text.splitlines()))
    if not rows or "model" not in rows[0] or "top1" not in rows[0]:
        raise InputError(
            f"{path} is not an accuracy file", "its first line must be model,top1 (and optionally ,top5 and ,dataset)"
        )
    out = {}
    for line, row in enumerate(rows, start=2):
        try:
            top1 = float(row["top1"])
            top5 = float(row["top5"]) if row.get("top5") not in (None, "") else None
        except ValueError:
            raise InputError(f"{path}:{line}: top1/top5 must be numbers, got {row}", "fix that line") from None
        if not 0 < top1 <= 100:
            raise InputError(f"{path}:{line}: top1 {top1} is not a percentage", "write accuracies in percent")
        dataset = (row.get("dataset") or "").strip() or None
        out[row["model"].strip()] = {"top1": top1, "top5": top5, "dataset": dataset}
    return out


COLUMNS = ["model", "family", "input_size", "params", "macs", "flops", "top1", "top5", "dataset"]


def model_points(
    models: list[str],
    accuracy: str | Path | None = None,
    dataset: str | None = "ImageNet",
    *,
    analysed: dict | None = None,
) -> Points:
    """One row per model: name, family, input_size ('3x224x224'), params, macs, flops, top1, top5, dataset.

    Counts are archcost's analysis at the model's default input; accuracy is the zoo's published
    figure, overridden or added by ``accuracy`` (whose ``dataset`` column, if any, says what it was
    measured on). Models of another dataset are left out with a note. A model outside the zoo has no
    known dataset: it is taken as ``dataset`` and a note says so, with the input it was analysed at.
    ``analysed``: ``{spec: (LoadedModel, CostReport)}`` already made by the caller (not built again)."""
    from archcost.cost import analyze
    from archcost.models import load_model
    from archcost.zoo import get_meta

    extra = read_accuracy(accuracy) if accuracy else {}
    rows, notes = [], []
    for spec in models:
        if analysed and spec in analysed:
            loaded, report = analysed[spec]
        else:
            loaded = load_model(spec)
            report = analyze(loaded.module, loaded.input_size, name=loaded.name)
        meta = get_meta(spec) if loaded.source == "zoo" else None
        row = {
            "model": loaded.name,
            "family": meta.family if meta else "user",
            "input_size": "x".join(map(str, loaded.input_size)),
            "params": report.totals["params"],
            "macs": report.totals["macs"],
            "flops": report.totals["flops"],
            "top1": meta.top1.value if meta and meta.top1 else None,
            "top5": meta.top5.value if meta and meta.top5 else None,
            "dataset": meta.dataset if meta else None,
        }
        row.update({k: v for k, v in extra.get(loaded.name, extra.get(spec, {})).items() if v is not None})
        if row["dataset"] is None:
            row["dataset"] = dataset or "ImageNet"
            if row["top1"] is not None:
                notes.append(
                    f"{loaded.name} is not a zoo model, so its dataset is not known: its top-1 is drawn as "
                    f"{row['dataset']} accuracy and its MACs are at input {row['input_size']} (add a dataset "
                    "column to the accuracy file if that is wrong)"
                )
        if dataset and row["dataset"] != dataset:
            notes.append(f"{loaded.name} left out: its accuracy is on {row['dataset']}, not {dataset}")
            continue
        rows.append(row)
    return Points(pd.DataFrame(rows, columns=COLUMNS), notes)


def with_accuracy(points: Points) -> Points:
    """Only the models with a known top-1, and a note naming the others (never plotted at zero)."""
    df = points.frame
    missing = df[df["top1"].isna()]["model"].tolist()
    notes = list(points.notes)
    if missing:
        notes.append(f"no published accuracy, left out: {', '.join(missing)} (add them with --accuracy FILE)")
    return Points(df[df["top1"].notna()].reset_index(drop=True), notes)
