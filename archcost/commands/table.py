"""``archcost table MODEL``: the per-layer cost table."""

from __future__ import annotations

import argparse

from archcost.cli import EXIT_OK, add_model_args, add_output_args, analyse, emit, positive_int


def run(args: argparse.Namespace) -> int:
    if args.fvcore:  # fvcore's per-module figures beside archcost's (archcost.crosscheck)
        from archcost.crosscheck.table import table_from_args

        emit(table_from_args(args), args.output)
        return EXIT_OK
    from archcost.report.table import render

    emit(render(analyse(args), args.format, args.depth), args.output)
    return EXIT_OK


def add_parser(sub) -> None:
    p = sub.add_parser("table", help="per-layer params, MACs, FLOPs and memory")
    add_model_args(p)
    p.add_argument("--depth", type=positive_int, help="roll layers up to this depth of the module tree")
    p.add_argument("--fvcore", action="store_true", help="add fvcore's flop, activation and parameter counts")
    add_output_args(p)
    p.set_defaults(func=run)
