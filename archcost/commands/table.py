"""``archcost table MODEL``: the per-layer cost table."""

from __future__ import annotations

import argparse
import sys

from archcost.commands._common import (
    EXIT_FAIL,
    EXIT_OK,
    add_analysis_args,
    add_model_args,
    add_output_args,
    analyse,
    emit,
    load,
    positive_int,
)
from archcost.errors import InputError


def run(args: argparse.Namespace) -> int:
    from archcost.report.table import check_columns, check_top

    chosen = check_columns(args.columns) if args.columns is not None else None  # before analysing: exit 2 fast
    check_top(args.top)
    from archcost.cost.precision import check_bits

    bits = [
        check_bits(getattr(args, k), f"--{k.replace('_', '-')}") for k in ("weight_bits", "act_bits", "first_last_bits")
    ]
    if any(b is not None for b in bits) and (args.fvcore or args.mode == "train"):
        raise InputError(
            "--weight-bits/--act-bits/--first-last-bits price an inference table",
            "leave out " + ("--fvcore" if args.fvcore else "--mode train") + ", or the bit widths",
        )
    profile = None
    if args.device_profile is not None:  # read before analysing: a bad file is exit 2 at once
        if args.fvcore or args.mode == "train":
            raise InputError(
                "--device-profile predicts inference latency",
                "leave out " + ("--fvcore" if args.fvcore else "--mode train") + ", or --device-profile",
            )
        from archcost.predict.annotate import read_profile

        profile = read_profile(args.device_profile)
    other = "--fvcore" if args.fvcore else "--mode train" if args.mode == "train" else None
    if (chosen is not None or args.top is not None) and (other or args.format == "json"):
        raise InputError(
            "--columns and --top choose the columns and rows of the cost table"
            + (f"; {other} has a table of its own" if other else "; JSON holds every field of every layer"),
            f"leave out --columns/--top, or run without {other}" if other else "leave out --columns/--top",
        )
    if args.fvcore:  # fvcore's per-module figures beside archcost's (archcost.crosscheck)
        from archcost.cost import analyze
        from archcost.crosscheck.fvcore_run import run_fvcore
        from archcost.report.fvcore_table import render_with_fvcore

        work = load(args, "cpu")  # fvcore traces real tensors; archcost analyses on meta, the same inputs
        table = render_with_fvcore(analyze(work), work.module, run_fvcore(work.module, work), args.format, args.depth)
        emit(table, args.output)
        return EXIT_OK
    from archcost.report.table import not_costed_line, render

    if args.mode == "train":  # forward, backward and optimizer work per layer (archcost.cost.training)
        from archcost.commands.maxbatch import train_report
        from archcost.report.training import render_training

        report = train_report(args)
        emit(render_training(report, args.format), args.output)
    else:
        from archcost.cost.precision import with_precision

        report = with_precision(analyse(args), args.weight_bits, args.act_bits, args.first_last_bits)
        if profile is not None:
            from archcost.predict.annotate import with_prediction

            report = with_prediction(report, *profile)
        emit(render(report, args.format, args.depth, chosen, args.top), args.output)
    if args.strict and report.unsupported:
        print(f"archcost table --strict: {not_costed_line(report)}", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK


def add_parser(sub) -> None:
    p = sub.add_parser("table", help="per-layer params, MACs, FLOPs and memory")
    add_model_args(p)
    add_analysis_args(p)
    p.add_argument("--depth", type=positive_int, help="roll layers up to this depth of the module tree")
    p.add_argument(
        "--columns",
        metavar="NAMES",
        help="comma-separated columns to show (the layer name always comes first): name, type, output_shape, "
        "params, trainable_params, frozen_params, macs, share (of the total MACs), flops, param_bytes, "
        "activation_bytes, rf",
    )
    p.add_argument(
        "--top", type=positive_int, metavar="K", help="only the K layers with the most MACs (totals: the whole model)"
    )
    p.add_argument(
        "--weight-bits", type=int, metavar="N", help="what-if: price weights at N bits (1-32): bytes and BOPs"
    )
    p.add_argument("--act-bits", type=int, metavar="N", help="what-if: price activations at N bits (1-32)")
    p.add_argument(
        "--first-last-bits",
        type=int,
        metavar="N",
        help="with --weight-bits/--act-bits: the first and last layers with MACs at N bits (default: the same)",
    )
    p.add_argument(
        "--device-profile",
        metavar="FILE",
        help="add predicted milliseconds per layer and in total from a device profile (archcost calibrate)",
    )
    p.add_argument("--fvcore", action="store_true", help="add fvcore's flop, activation and parameter counts")
    p.add_argument(
        "--strict", action="store_true", help="exit 1 when any op could not be costed (the totals are lower bounds)"
    )
    p.add_argument("--mode", default="infer", choices=["infer", "train"], help="train: add backward and optimizer work")
    p.add_argument("--optimizer", default="adam", help="with --mode train: sgd, momentum, adam (default) or adamw")
    add_output_args(p)
    p.set_defaults(func=run)
