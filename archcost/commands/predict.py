"""``archcost predict MODEL --device-profile FILE``: predicted latency per layer and in total, per batch size."""

from __future__ import annotations

import argparse
import copy
import json
import sys

from archcost.commands._common import EXIT_OK, add_model_args, analyse, emit, load, positive_int
from archcost.errors import ArchcostError


def _analyses(args: argparse.Namespace) -> list:
    """One ``CostReport`` per batch size, the model built once (an ONNX file: read once per batch size)."""
    from archcost.onnx_graph import is_onnx_path

    if is_onnx_path(args.model):
        reports = []
        for b in args.batch_sizes:
            one = copy.copy(args)
            one.batch_size = b
            reports.append(analyse(one))
        return reports
    from archcost.cost import analyze

    args.batch_size = args.batch_sizes[0]
    work = load(args, "meta")
    return [analyze(work.with_batch(b)) for b in args.batch_sizes]


def run(args: argparse.Namespace) -> int:
    import torch

    from archcost.predict.model import Prediction, predict_report
    from archcost.predict.profile import check_matches, load_profile

    profile = load_profile(args.device_profile)  # before the model: a bad file is exit 2 at once
    args.dtype = args.dtype or profile.dtype
    device_name = None
    if args.device is not None:
        from archcost.profiling.environment import device_name as name_of
        from archcost.profiling.sweep import resolve_device

        if args.device.split(":", 1)[0] == profile.device_type:  # another type is refused below by name
            try:
                device_name = name_of(resolve_device(args.device))
            except ArchcostError:  # no such device here: the prediction is for the profile's, nothing to compare
                device_name = None
    warnings = check_matches(
        profile,
        device=args.device,
        device_name=device_name,
        threads=args.threads,
        dtype=args.dtype,
        torch=torch.__version__,
        strict=args.strict_profile,
    )
    args.batch_sizes = list(dict.fromkeys(args.batch_size))
    reports = _analyses(args)
    rows = []
    totals = {}
    for b, report in zip(args.batch_sizes, reports, strict=True):
        got = predict_report(report, profile, b)
        rows += got
        totals[b] = sum(r.predicted_ms for r in got)
    prediction = Prediction(
        reports[0].model, reports[0].dtype, tuple(args.batch_sizes), tuple(rows), totals, tuple(warnings), profile
    )
    for w in warnings:
        print(f"archcost: warning: {w}", file=sys.stderr)
    emit(render(prediction, args.format), args.output)
    return EXIT_OK


def _ms(value: float) -> str:
    return f"{value:.3f}" if value < 100 else f"{value:.1f}"


def render(prediction, fmt: str) -> str:
    """``prediction`` as text (``table``), markdown, CSV (one row per layer and batch size) or JSON."""
    if fmt == "json":
        return json.dumps(prediction.to_dict(), indent=2, sort_keys=True) + "\n"
    import pandas as pd

    if fmt == "csv":
        return pd.DataFrame([r.to_dict() for r in prediction.layers]).to_csv(index=False)
    from archcost.tables import render_table
    from archcost.units import format_bytes, format_count

    batches = prediction.batch_sizes
    first = prediction.rows(batches[0])
    per_batch = [prediction.rows(b) for b in batches]
    aligned = all(len(rs) == len(first) and [r.name for r in rs] == [r.name for r in first] for rs in per_batch)
    headers = ["Layer", "Type", "Kind", "Rule", "FLOPs", "Bytes"] + [f"ms @ {b}" for b in batches]
    if not aligned:  # the rows differ between batch sizes (a forward that branches on the batch): one column each
        per_batch = [first]
        headers = headers[:7]
    table = []
    for i, r in enumerate(first):
        rule = f"{r.rule}*" if r.fallback else r.rule
        cells = [r.name, r.type, r.kind, rule, format_count(r.flops), format_bytes(r.bytes)]
        table.append(cells + [_ms(rs[i].predicted_ms) for rs in per_batch])
    table.append(["Total", "", "", "", "", ""] + [_ms(prediction.totals_ms[b]) for b in batches[: len(per_batch)]])
    body = render_table(table, "markdown" if fmt == "markdown" else "text", headers=headers, left=4, totals=True)
    p = prediction.profile
    lines = [
        f"Predicted latency of {prediction.model} ({prediction.dtype}) on {p.device} ({p.device_name}), "
        f"{p.threads} thread(s), from the device profile {p.path} ({p.mode} calibration, torch {p.torch_version}):",
        body,
        "Totals: " + ", ".join(f"batch {b}: {_ms(prediction.totals_ms[b])} ms" for b in batches) + " (the sum of the "
        "layers' predictions; the Python between layers is not in it).",
    ]
    fallbacks = prediction.fallbacks
    if fallbacks:
        flagged = sum(1 for r in first if r.fallback)
        lines.append(
            f"* {flagged} row(s) priced by the nearest rule, the profile having no data for their kind: "
            + ", ".join(f"{k} by {v}" for k, v in sorted(fallbacks.items()))
            + "."
        )
    return "\n".join(lines) + "\n"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="predicted latency per layer and in total, from a device profile (archcost calibrate)",
        description="Price every row of the cost table with the fitted rule of its kind in a device profile and "
        "add them up, at each batch size; nothing is timed. A kind the profile has no data for is priced by the "
        "nearest kind it has, and the row is flagged.",
    )
    add_model_args(p, batch=False, dtypes=("float32", "float16", "bfloat16"))
    p.set_defaults(dtype=None)  # the profile's dtype unless given (another one is refused)
    p.add_argument(
        "--batch-size",
        type=positive_int,
        nargs="+",
        default=[1],
        metavar="N",
        help="one or more batch sizes (default 1): --batch-size 1 8",
    )
    p.add_argument("--device-profile", required=True, metavar="FILE", help="the JSON archcost calibrate wrote")
    p.add_argument(
        "--device",
        help="the device the prediction is for (cpu, cuda, cuda:N; default the profile's): another kind of device "
        "than the profile's is refused, another model of it warned about",
    )
    p.add_argument(
        "--threads", type=positive_int, help="the torch threads the prediction is for (default the profile's)"
    )
    p.add_argument(
        "--strict-profile",
        action="store_true",
        help="refuse (exit 2) a profile from another CPU/GPU model, thread count or torch build instead of warning",
    )
    p.add_argument("--format", default="table", choices=["table", "text", "markdown", "csv", "json"])
    p.add_argument("--output", help="write to this file instead of standard output")
    p.set_defaults(func=run)
