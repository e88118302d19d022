"""``archcost list``: the model zoo as a table."""

from __future__ import annotations

import argparse

from archcost.commands._common import EXIT_OK, add_output_args, emit
from archcost.errors import InputError


def run(args: argparse.Namespace) -> int:
    from archcost.report.zoo import render_frame, zoo_frame
    from archcost.zoo import list_models

    computed = None
    if args.computed:
        from archcost.cost.collect import zoo_totals

        computed = zoo_totals(list_models(args.family))
    df = zoo_frame(args.family, computed=computed)
    if df.empty:
        raise InputError(f"no zoo model has family {args.family!r}", "run `archcost list` to see the families")
    emit(render_frame(df, args.format), args.output)
    return EXIT_OK


def add_parser(sub) -> None:
    p = sub.add_parser("list", help="the model zoo")
    p.add_argument("--family", help="only this family, e.g. resnet")
    p.add_argument(
        "--computed", action="store_true", help="add archcost's own params and MACs (analyses every model listed)"
    )
    add_output_args(p)
    p.set_defaults(func=run)
