"""``archcost compare BASE.json NEW.json [--fail-on ...]``: what changed between two bench files; exit 1 on a
threshold crossed."""

from __future__ import annotations

import argparse

from archcost.commands._common import EXIT_FAIL, EXIT_OK, add_output_args, emit


def run(args: argparse.Namespace) -> int:
    from archcost.bench import compare, parse_fail_on, read_bench, render

    thresholds = parse_fail_on(args.fail_on)  # bad thresholds fail before any file is read
    base, new = read_bench(args.base), read_bench(args.new)
    result = compare(
        base, new, thresholds, base_label=args.base_label or args.base, new_label=args.new_label or args.new
    )
    emit(render(result, args.format, args.only_changed), args.output)
    return EXIT_FAIL if result.failed else EXIT_OK


def add_parser(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="compare two archcost bench files; exit 1 when a --fail-on threshold is crossed",
        description="A table of each model's figures in BASE and NEW with absolute and relative change. Measured "
        "figures are compared only between runs of the same device and settings, and a latency change counts "
        "only when it is larger than both the threshold and the runs' p10-p90 spread. Exit codes: 0 no "
        "threshold crossed, 1 a threshold crossed, 2 bad input.",
    )
    p.add_argument("base", metavar="BASE.json", help="bench file of the base (e.g. the target branch)")
    p.add_argument("new", metavar="NEW.json", help="bench file of the change")
    p.add_argument(
        "--fail-on",
        metavar="RULES",
        help="comma-separated: METRIC>N%% (increase), METRIC<-N%% (decrease), |METRIC|>N%% (either way), "
        'METRIC>AMOUNT (e.g. params>1M, latency>2ms); e.g. "macs>0%%,params>0%%,latency>10%%". Metrics: params, '
        "macs, flops, param_bytes, activation_bytes, peak_activation_bytes, receptive_field, unsupported, "
        "latency, throughput, measured_memory",
    )
    add_output_args(p, ("text", "markdown", "json"))
    p.add_argument("--base-label", help="name BASE this way in the table (default: its file name as given)")
    p.add_argument("--new-label", help="name NEW this way in the table (default: its file name as given)")
    p.add_argument("--only-changed", action="store_true", help="list only figures that changed (or have a note)")
    p.set_defaults(func=run)
