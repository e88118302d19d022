"""Assembling the per-model table the charts and reports draw: archcost's own counts, the zoo's
published accuracy, a user's accuracy file, and measured profile results."""

from __future__ import annotations

import csv
import warnings
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


def model_points(analysed: dict, accuracy: str | Path | None = None, dataset: str | None = "ImageNet") -> Points:
    """One row per analysed model: name, family, input_size ('3x224x224'), params, macs, flops, top1, top5,
    dataset.

    ``analysed``: ``{spec: (Workload, CostReport)}`` (``archcost.cost.collect.analyse_models``: counts at
    the inputs analysed, by default the model's own). Accuracy is the zoo's published figure, overridden or
    added by ``accuracy`` (whose ``dataset`` column, if any, says what it was measured on). Models of another
    dataset are left out with a note. A model outside the zoo has no known dataset: it is taken as
    ``dataset`` and a note says so, with the input it was analysed at."""
    from archcost.zoo import get_meta

    extra = read_accuracy(accuracy) if accuracy else {}
    rows, notes = [], []
    for spec, (loaded, report) in analysed.items():
        meta = get_meta(spec) if loaded.source == "zoo" else None
        row = {
            "model": loaded.name,
            "family": meta.family if meta else "user",
            "input_size": loaded.label(),
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


_RENAMES = {
    "latency_median_s": ("latency_ms", 1e3),
    "throughput_ips": ("throughput", 1.0),
    "memory_peak_bytes": ("memory_mb", 1e-6),
    "power_mean_w": ("power_w", 1.0),
    "energy_per_image_j": ("energy_j_per_image", 1.0),
    "achieved_flops_per_s": ("achieved_flops", 1.0),
}


def _device_label(device, name) -> str:
    """``cuda:0 (NVIDIA H100 80GB HBM3)``: a device is its kind too (every Ray worker's GPU is its cuda:0)."""
    return f"{device} ({name})" if isinstance(name, str) and name else str(device)


def measured_frame(path: str | list[str], device: str | None, batch_size: int | None):
    """Profile results (one file or several) as the charts want them: one device, ok records, family and
    accuracy attached. A device is the record's ``device`` and ``env_device_name`` together: ``cuda:0`` on two
    kinds of GPU (results from a cluster) are two devices; ``device`` picks by either, or by the two as
    ``_device_label`` writes them."""
    import pandas as pd

    from archcost.profiling.results import ResultsFileWarning, read_results
    from archcost.zoo import get_meta, list_models

    paths = [path] if isinstance(path, (str, Path)) else list(path)
    where = ", ".join(map(str, paths))
    with warnings.catch_warnings():  # a skipped broken line is said once, as a note, by the command
        warnings.simplefilter("ignore", ResultsFileWarning)
        df = read_results(paths)
    skipped = list(df.attrs.get("warnings", []))
    df = df[df["status"] == "ok"]
    label = pd.Series([_device_label(d, n) for d, n in zip(df["device"], df["env_device_name"], strict=True)])
    label.index = df.index
    if device:
        keep = (df["device"] == device) | (df["env_device_name"] == device) | (label == device)
        df, label = df[keep], label[keep]
    devices = sorted(set(label))
    if len(devices) > 1:
        raise InputError(
            f"{where} hold{'s' if len(paths) == 1 else ''} results from several devices ({'; '.join(devices)})",
            "choose one with --device (cuda:0, or the device name in brackets); charts never mix devices",
        )
    if df.empty:
        raise InputError(f"{where} has no successful measurement" + (f" on {device}" if device else ""), "")
    if batch_size is not None:
        df = df[df["batch_size"] == batch_size]
    zoo = set(list_models())
    top1 = [get_meta(m).top1 if m in zoo else None for m in df["model"]]
    df = df.assign(
        family=[get_meta(m).family if m in zoo else "user" for m in df["model"]],
        top1=[t.value if t else None for t in top1],
        dataset=[get_meta(m).dataset if m in zoo else None for m in df["model"]],
        input_size=df["input_shape"],
    )
    for src, (dst, scale) in _RENAMES.items():
        df[dst] = df[src] * scale
    df = df.reset_index(drop=True)
    df.attrs["warnings"] = skipped
    return df
