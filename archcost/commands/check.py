"""``archcost check MODEL`` / ``archcost check --all``: archcost, fvcore and FlopCounterMode, reconciled."""

from __future__ import annotations

import argparse
import sys

from archcost.commands._common import (
    EXIT_FAIL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    add_input_args,
    add_output_args,
    emit,
    load,
)
from archcost.errors import InputError


def _check(spec: str, args: argparse.Namespace):
    from archcost.crosscheck import check_model

    work = load(args, "cpu", model=spec)  # fvcore traces real tensors
    return check_model(work, mode=args.mode)


def run(args: argparse.Namespace) -> int:
    from archcost.crosscheck.render import render_model, render_zoo

    if args.all == bool(args.model):
        raise InputError(
            "give one MODEL or --all, not both" if args.all else "no model given",
            "run `archcost check resnet50`, or `archcost check --all` for every zoo model",
        )
    if args.all:
        from archcost.zoo import list_models

        if args.opt or args.input_size or args.kwarg:
            raise InputError("--opt, --input-size and --kwarg apply to one model", "drop them with --all")
        recs = []
        try:
            for name in list_models():
                recs.append(_check(name, args))
                if not args.quiet:
                    print(f"checked {name}: {'ok' if recs[-1].ok else 'MISMATCH'}", file=sys.stderr)
        except KeyboardInterrupt:
            if recs:  # keep what was finished, as profile and bench do
                emit(render_zoo(recs, args.format), args.output)
            print(
                f"archcost: interrupted after {len(recs)} of {len(list_models())} models"
                + (f": {args.output} holds the finished rows" if recs and args.output else ""),
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
        emit(render_zoo(recs, args.format), args.output)
        return EXIT_OK if all(r.ok for r in recs) else EXIT_FAIL
    rec = _check(args.model, args)
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
    add_input_args(p, dtypes=("float32",))
    p.add_argument(
        "--mode",
        default="infer",
        choices=["infer", "train"],
        help="train: also compare the backward of a training step with FlopCounterMode's (per module, explained)",
    )
    p.add_argument("--quiet", action="store_true", help="with --all: no progress lines on standard error")
    add_output_args(p, ("text", "markdown", "json"))
    p.set_defaults(func=run)
