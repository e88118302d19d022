"""``archcost profile MODEL [MODEL ...]``: measured latency, throughput, memory, power and roofline efficiency."""

from __future__ import annotations

import argparse
import sys

from archcost.commands._common import (
    EXIT_FAIL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    add_device_arg,
    add_input_args,
    add_output_args,
    emit,
    input_kwargs,
    parse_opts,
    positive_int,
    seconds,
)
from archcost.errors import ArchcostError
from archcost.profiling.config import HEAPS


def run(args: argparse.Namespace) -> int:
    from archcost.profiling import profile, render
    from archcost.profiling.sweep import check_writable

    # Before anything is measured: a typo in a folder must not throw away a sweep.
    if args.output:
        check_writable(args.output, "--output file")
    if args.append:
        check_writable(args.append, "--append results file")
    try:
        df = profile(
            args.models,
            device=args.device,
            batch_sizes=args.batch_sizes,
            dtype=args.dtype,
            channels_last=args.channels_last,
            compile=args.compile,
            threads=args.threads,
            warmup_s=args.warmup,
            min_time_s=args.min_time,
            repeats=args.repeats,
            **input_kwargs(args),
            options=parse_opts(args.opt),
            roofline=not args.no_roofline,
            recalibrate=args.recalibrate,
            power=not args.no_power,
            layers=args.layers,
            isolate=args.isolate,
            mode=args.mode,
            optimizer=args.optimizer,
            amp=args.amp,
            results_file=args.append,
            progress=not args.quiet and sys.stderr.isatty(),
            resume=args.resume,
            executor="ray" if args.ray is not None else "local",
            address=args.ray or None,
            accelerator=args.accelerator,
            quantized_engine=args.quantized_engine,
            heap=args.heap,
        )
    except ArchcostError as exc:  # bad input found mid-sweep (a model that cannot be built): show what was measured
        measured = getattr(exc, "measured", None)
        if measured is not None and len(measured):
            emit(render(measured, args.format), args.output)
            print(f"archcost: {len(measured)} measurement(s) finished before this error", file=sys.stderr)
        raise
    if df.attrs.get("skipped"):
        print(f"resume: {df.attrs['skipped']} measurement(s) already in {args.append}, not run again", file=sys.stderr)
    if len(df):
        emit(render(df, args.format), args.output)
    for r in df.to_dict(orient="records") if args.format != "text" or args.output else []:  # text shows them
        for warning in r.get("warnings") or []:
            print(f"archcost: warning: {r['model']} at batch {r['batch_size']}: {warning}", file=sys.stderr)
    if args.append and len(df):
        print(f"appended {len(df)} record(s) to {args.append}", file=sys.stderr)
    if df.attrs.get("interrupted"):
        done = f"wrote the {len(df)} measurement(s) finished before Ctrl-C" if len(df) else "nothing measured yet"
        print(f"archcost: interrupted: {done}", file=sys.stderr)
        return EXIT_INTERRUPTED
    errors = df[df["status"] == "error"]
    if len(errors):
        for r in errors.to_dict(orient="records"):
            print(f"archcost: {r['model']} at batch {r['batch_size']} failed: {r['error']}", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK


def add_parser(sub) -> None:
    p = sub.add_parser(
        "profile",
        help="measured latency, throughput, peak memory, power and roofline efficiency",
        description="Time models over a sweep of batch sizes. Out-of-memory and unsupported dtypes are "
        "recorded, not fatal; Ctrl-C writes what was measured.",
    )
    p.add_argument("models", nargs="+", metavar="MODEL", help="zoo name, package.module:callable, file.py:callable")
    add_device_arg(p, "run")
    p.add_argument("--batch-sizes", default="1", help="comma-separated batch sizes (default 1), e.g. 1,2,4,8")
    add_input_args(p, batch=False, dtypes=("float32", "float16", "bfloat16"), many=True)
    p.add_argument("--channels-last", action="store_true", help="model and input in channels-last memory format")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (compilation is in the warm-up)")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's own)")
    p.add_argument("--warmup", type=seconds, default=1.0, help="seconds of warm-up at least (default 1)")
    p.add_argument("--min-time", type=seconds, default=0.2, help="seconds per sample at least (default 0.2)")
    p.add_argument("--repeats", type=positive_int, default=10, help="samples per measurement (default 10)")
    p.add_argument(
        "--layers",
        action="store_true",
        help="also time every layer of the cost table with torch.profiler (csv: one row per layer)",
    )
    p.add_argument(
        "--isolate",
        action="store_true",
        help="measure each model in a fresh process, as a plain timing script would (see README)",
    )
    p.add_argument(
        "--mode",
        default="infer",
        choices=["infer", "train"],
        help="infer (default): time a forward; train: time a training step (forward, loss, backward, optimizer step)",
    )
    p.add_argument("--optimizer", default="adam", help="with --mode train: sgd, momentum, adam (default) or adamw")
    p.add_argument(
        "--amp",
        action="store_true",
        help="with --mode train: autocast mixed precision (float16 on CUDA, bfloat16 on the CPU; float32 weights)",
    )
    add_output_args(p, ("text", "json", "csv"))
    p.add_argument("--append", metavar="FILE", help="also append every record, as measured, to this JSON-lines file")
    p.add_argument(
        "--resume",
        action="store_true",
        help="with --append: skip each (model, device, dtype, batch, mode) the file already has a record of",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="run each model as a Ray task (pip install 'archcost[ray]'): ray://HEAD:10001, HEAD:6379, auto, local; "
        "no ADDRESS: RAY_ADDRESS or a local cluster. A CPU task holds --threads CPUs (default 1), as many threads",
    )
    p.add_argument(
        "--accelerator",
        metavar="TYPE",
        help="with --ray --device cuda: only GPUs of this kind, as Ray names it (A100, H100, T4, ...)",
    )
    p.add_argument(
        "--quantized-engine",
        metavar="NAME",
        help="torch.backends.quantized.engine for the run (x86, fbgemm, qnnpack, onednn: whichever this torch has), "
        "set before each model is built; recorded as env_quantized_engine (default: torch's own)",
    )
    p.add_argument(
        "--heap",
        choices=HEAPS,
        default="steady",
        help="steady (default): keep freed memory in the heap (glibc mallopt), so that outputs under 32 MiB are not "
        "faulted in afresh on every call, whatever the process allocated before; as-is: the C library's own "
        "policy, as a plain script has it. Recorded as env_heap; faults per call as minor_faults_per_call",
    )
    p.add_argument("--no-power", action="store_true", help="do not sample NVML power")
    p.add_argument("--no-roofline", action="store_true", help="skip the device-peak calibration and roofline fields")
    p.add_argument("--recalibrate", action="store_true", help="measure the device peaks again, ignoring the cache")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
