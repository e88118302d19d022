"""``archcost bench MODEL [MODEL ...] --output FILE``: record each model's cost figures for ``archcost compare``."""

from __future__ import annotations

import argparse
import sys

from archcost.commands._common import (
    EXIT_FAIL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    add_device_arg,
    add_input_args,
    emit,
    input_kwargs,
    parse_opts,
    positive_int,
    seconds,
)


def _batch_sizes(text: str) -> list[int]:
    try:
        sizes = [int(p) for p in text.replace(" ", "").split(",") if p]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of batch sizes") from None
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"{text!r}: batch sizes must be >= 1")
    return sizes


def run(args: argparse.Namespace) -> int:
    from archcost.bench import bench, dumps, write_bench

    profile = None
    if args.profile:
        profile = {
            "device": args.device,
            "batch_sizes": args.profile_batch_sizes,
            "threads": args.threads,
            "warmup_s": args.warmup,
            "min_time_s": args.min_time,
            "repeats": args.repeats,
            "power": not args.no_power,
        }

    def step(message: str) -> None:
        if not args.quiet:
            print(f"archcost bench: {message}", file=sys.stderr)

    doc = bench(
        args.models,
        batch_size=args.batch_size,
        dtype=args.dtype,
        **input_kwargs(args),
        options=parse_opts(args.opt),
        profile=profile,
        on_step=step,
        skip_missing=args.skip_missing,
        device_profile=args.device_profile,
    )
    if args.output:
        write_bench(doc, args.output)
        print(f"wrote {args.output} ({len(doc['models'])} model(s))", file=sys.stderr)
    else:
        emit(dumps(doc), None)
    if doc["settings"]["profile"] and doc["settings"]["profile"]["interrupted"]:
        print("archcost: interrupted: the file holds the measurements finished before Ctrl-C", file=sys.stderr)
        return EXIT_INTERRUPTED
    failed = [
        (spec, rec)
        for spec, entry in doc["models"].items()
        for rec in entry.get("measured", [])
        if rec.get("status") == "error"
    ]
    for spec, rec in failed:
        print(f"archcost: {spec} at batch {rec.get('batch_size')} failed: {rec.get('error')}", file=sys.stderr)
    return EXIT_FAIL if failed else EXIT_OK


def add_parser(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="record models' cost figures in a JSON file for archcost compare (CI)",
        description="Record, for each model, params, MACs, FLOPs, parameter and peak activation memory and the "
        "receptive field (and, with --profile, measured latency, throughput and memory) in a versioned JSON "
        "file. The same models and versions give a byte-identical file.",
    )
    p.add_argument(
        "models",
        nargs="+",
        metavar="MODEL",
        help="zoo name, package.module:callable, file.py:callable, torchvision:NAME, timm:NAME or file.onnx",
    )
    p.add_argument("--output", help="write the JSON here (default: standard output)")
    add_input_args(p, many=True)
    p.add_argument(
        "--device-profile",
        metavar="FILE",
        help="record each model's latency predicted with this device profile (archcost calibrate); "
        'compare --fail-on "predicted_latency>5%%" gates it without timing anything',
    )
    g = p.add_argument_group("measured figures (--profile)")
    g.add_argument("--profile", action="store_true", help="also measure latency, throughput and memory")
    add_device_arg(g, "run")
    g.add_argument(
        "--profile-batch-sizes", type=_batch_sizes, help="batch sizes to time, e.g. 1,32 (default: --batch-size)"
    )
    g.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's own)")
    g.add_argument("--warmup", type=seconds, default=1.0, help="seconds of warm-up at least (default 1)")
    g.add_argument("--min-time", type=seconds, default=0.2, help="seconds per sample at least (default 0.2)")
    g.add_argument("--repeats", type=positive_int, default=10, help="samples per measurement (default 10)")
    g.add_argument("--no-power", action="store_true", help="do not sample NVML power")
    p.add_argument(
        "--skip-missing",
        action="store_true",
        help="leave out (and list in the file) models that cannot be found or imported, e.g. on the base commit of "
        "a pull request that adds them",
    )
    p.add_argument("--quiet", action="store_true", help="no progress messages")
    p.set_defaults(func=run)
