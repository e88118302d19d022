"""``archcost report --models ... --output DIR``: a self-contained report (markdown, HTML, PNG, CSV)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from archcost.commands._common import EXIT_OK, add_device_arg, add_input_args, input_kwargs, parse_opts
from archcost.errors import InputError


def run(args: argparse.Namespace) -> int:
    from archcost.cost.collect import analyse_models, training_steps
    from archcost.report.document import build, write

    folder = Path(args.output)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder} exists and is not a folder", "give a folder for --output")
    if not folder.parent.is_dir():
        raise InputError(f"cannot create {folder}: {folder.parent} does not exist", "create the parent folder first")
    folder.mkdir(exist_ok=True)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models:
        raise InputError("--models is empty", "e.g. --models resnet50,vgg16")
    inputs = {**input_kwargs(args), "options": parse_opts(args.opt)}
    profile = None
    if args.device_profile is not None:  # read before analysing: a bad file is exit 2 at once
        from archcost.predict.annotate import read_profile

        profile = read_profile(args.device_profile)
    analysed = analyse_models(models, inputs)  # each model built and analysed once
    if profile is not None:
        from archcost.predict.annotate import with_prediction

        analysed = {spec: (work, with_prediction(r, *profile)) for spec, (work, r) in analysed.items()}
    steps = training_steps([work for work, _ in analysed.values()])
    doc = build(analysed, folder, args.results, args.accuracy, args.device, steps=steps)
    for path in write(doc, folder):
        print(f"wrote {path}", file=sys.stderr)
    return EXIT_OK


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="a folder with tables and charts for a set of models (md, html, png, csv)")
    p.add_argument("--models", required=True, help="comma-separated models")
    p.add_argument(
        "--results", action="append", metavar="FILE", help="profile results to include (JSON lines); repeatable"
    )
    p.add_argument("--accuracy", help="CSV model,top1[,top5] adding or overriding published accuracy")
    p.add_argument(
        "--device-profile",
        metavar="FILE",
        help="add each model's predicted latency from a device profile (archcost calibrate)",
    )
    add_device_arg(p, "records", default=None)
    add_input_args(p, batch=False, dtypes=("float32",), many=True)
    p.add_argument("--output", required=True, help="the folder to write")
    p.set_defaults(func=run)
