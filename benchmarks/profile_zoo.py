"""Profile the zoo on the CPU: writes reports/latency_cpu.csv (one row per model and batch size).

The CSV has every field of an ``archcost profile`` record (``archcost.profiling.results.FIELDS``): latency
median / p10 / p90 / CV, throughput, measured and estimated memory, FLOPs and roofline fields, and the
environment. ``archcost plot`` reads it. Each record is also appended, as it is measured, to
``reports/latency_cpu.jsonl`` so an interrupted run keeps its measurements; Ctrl-C still writes the CSV.

Run it on an idle machine; the whole zoo at batch 1 with the defaults takes roughly 10-20 minutes on 2 cores:

    python benchmarks/profile_zoo.py                                    # every zoo model, batch 1
    python benchmarks/profile_zoo.py --models resnet18,vgg16 --batch-sizes 1,8
    python benchmarks/profile_zoo.py --smoke --output /tmp/zoo.csv      # seconds: checks the script works
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", help="comma-separated zoo names (default: the whole zoo)")
    p.add_argument("--batch-sizes", default="1")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own)")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--min-time", type=float, default=0.2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-roofline", action="store_true")
    p.add_argument("--output", default=str(ROOT / "reports" / "latency_cpu.csv"))
    p.add_argument("--smoke", action="store_true", help="two small models, tiny settings: measures nothing")
    args = p.parse_args()

    import archcost
    from archcost.files import write_atomic
    from archcost.profiling import profile, render

    models = args.models.split(",") if args.models else archcost.list_models()
    if args.smoke:
        models = ["lenet5", "resnet20_cifar"]
        args.warmup, args.min_time, args.repeats, args.no_roofline = 0.0, 0.01, 3, True
    output = Path(args.output)
    journal = output.with_suffix(".jsonl")
    journal.unlink(missing_ok=True)
    start = time.perf_counter()
    load = os.getloadavg()
    df = profile(
        models,
        device="cpu",
        batch_sizes=args.batch_sizes,
        threads=args.threads,
        warmup_s=args.warmup,
        min_time_s=args.min_time,
        repeats=args.repeats,
        roofline=not args.no_roofline,
        results_file=journal,
        progress=sys.stderr.isatty(),
    )
    write_atomic(output, render(df, "csv"))
    ok = int((df["status"] == "ok").sum())
    print(
        f"wrote {output} ({ok} of {len(df)} measured, {time.perf_counter() - start:.0f} s, "
        f"load average before {load[0]:.2f}){' - interrupted' if df.attrs.get('interrupted') else ''}",
        file=sys.stderr,
    )
    return 130 if df.attrs.get("interrupted") else 0


if __name__ == "__main__":
    sys.exit(main())
