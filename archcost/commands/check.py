"""``archcost check MODEL`` / ``archcost check --all``: archcost, fvcore and FlopCounterMode, reconciled."""

from __future__ import annotations

import argparse
import sys

from archcost.commands._common import EXIT_FAIL, EXIT_OK, emit, parse_input_size, parse_opts, positive_int
from archcost.errors import InputError


def _check(spec: str, args: argparse.Namespace, options: dict):
    from archcost.crosscheck import check_model
    from archcost.models import load_model

    loaded = load_model(spec, options, device="cpu")  # fvcore traces real tensors
    size = parse_input_size(args.input_size) if args.input_size else loaded.input_size
    return check_model(loaded.module, size, args.batch_size, name=loaded.name, mode=args.mode)


def run(args: argparse.Namespace) -> int:
    from archcost.crosscheck.render import render_model, render_zoo

    if args.all == bool(args.model):
        raise InputError(
            "give one MODEL or --all, not both" if args.all else "no model given",
            "run `archcost check resnet50`, or `archcost check --all` for every zoo model",
        )
    if args.all:
        from archcost.zoo import list_models

        if args.opt or args.input_size:
            raise InputError("--opt and --input-size apply to one model", "drop them with --all")
        recs = []
        for name in list_models():
            recs.append(_check(name, args, {}))
            if not args.quiet:
                print(f"checked {name}: {'ok' if recs[-1].ok else 'MISMATCH'}", file=sys.stderr)
        emit(render_zoo(recs, args.format), args.output)
        return EXIT_OK if all(r.ok for r in recs) else EXIT_FAIL
    rec = _check(args.model, args, parse_opts(args.opt))
    emit(render_model(rec, args.format), args.output)
    return EXIT_OK if rec.ok else EXIT_FAIL


def add_parser(sub) -> None:
    p = sub.add_parser(
        "check",
        help="archcost vs fvcore vs torch FlopCounterMode, module by module, every difference explained",
        description="Runs archcost, fvcore (FlopCountAnalysis, ActivationCountAnalysis, parameter_count) and "
        "torch's FlopCounterMode on the same model and input, aligns them module by module and explains each "
        "difference by a written-down convention. Exit code 1 when a difference is not explained.",
    )
    p.add_argument("model", nargs="?", help="zoo name, package.module:callable, torchvision:NAME or timm:NAME")
    p.add_argument("--all", action="store_true", help="check every zoo model (one line each)")
    p.add_argument("--input-size", help="CxHxW (default: the model's own)")
    p.add_argument("--batch-size", type=positive_int, default=1, help="batch size (default 1; fvcore computes it)")
    p.add_argument("--opt", action="append", metavar="KEY=VALUE", help="model option, repeatable")
    p.add_argument(
        "--mode",
        default="infer",
        choices=["infer", "train"],
        help="train: also compare the backward of a training step with FlopCounterMode's (per module, explained)",
    )
    p.add_argument("--quiet", action="store_true", help="with --all: no progress lines on standard error")
    p.add_argument("--format", default="text", choices=["text", "markdown", "json"])
    p.add_argument("--output", help="write to this file instead of standard output")
    p.set_defaults(func=run)
