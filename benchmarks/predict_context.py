"""Where `archcost predict`'s error comes from: the rule's fit, or the layers' context in a whole model (issue 28).

For each model, on the CPU, in one process and at one thread count:

- **whole**: the model's forward, timed as ``archcost profile`` times it (``archcost.profiling.timing.measure``);
- **isolated sum**: every leaf module called alone on the input it got in that forward (captured by a forward
  hook), each timed the same way, summed: what a per-kernel predictor that fitted its kernels perfectly would add
  up, since the calibration times each kernel alone;
- **predicted**: ``archcost.predict`` with a device profile (``--device-profile``), when one is given.

predicted / isolated sum - 1 is the rules' own error on this model's layers; isolated sum / whole - 1 is what a sum
of layers timed alone leaves out: the Python between layers, ops without a leaf module (``x + y``, ``torch.cat``)
and the caches a layer finds cold in a model but warm when it is timed in a loop.

    python benchmarks/predict_context.py --device-profile reports/predict/cpu-2t.json --threads 2

Writes reports/predict_context.md (and prints it). Run it on a quiet machine: the two timings of each model are
taken back to back, but a loaded machine moves both by tens of percent.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch
from predict_check import EXTERNAL, load_all  # this folder: the benchmark whose error this one explains

ROOT = Path(__file__).resolve().parent.parent
MODELS = "resnet18,mobilenet_v2,shufflenet_v2_x1_0,densenet121,efficientnet_b0,vgg11,squeezenet1_1,googlenet"


def measure_model(spec: str, batch: int, loaded: tuple, profile) -> dict:
    """One row of the table: ``loaded`` is predict_check's (model, args, kwargs, report) of ``spec`` at ``batch``."""
    from archcost.predict.model import predict_report
    from archcost.profiling.timing import measure

    cpu = torch.device("cpu")
    model, args, kwargs, report = loaded
    seen: list[tuple[torch.nn.Module, tuple]] = []
    leaves = [m for m in model.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append((m, tuple(i)))) for m in leaves]
    try:
        with torch.inference_mode():
            model(*args, **kwargs)
    finally:
        for h in hooks:
            h.remove()
    with torch.inference_mode():
        whole = measure(lambda: model(*args, **kwargs), cpu, warmup_s=0.3, min_time_s=0.1, repeats=5).stats.median_s
        isolated = sum(
            measure(lambda m=m, i=i: m(*i), cpu, warmup_s=0.01, min_time_s=0.01, repeats=3).stats.median_s
            for m, i in seen
        )
    predicted = None
    if profile is not None:
        predicted = sum(r.predicted_ms for r in predict_report(report, profile, batch)) / 1e3
    return {"model": spec, "batch": batch, "whole_s": whole, "isolated_s": isolated, "leaves": len(seen),
            "predicted_s": predicted}  # fmt: skip


def markdown(rows: list[dict], command: str, threads: int) -> str:
    lines = [
        "# Predicted, isolated-layer sum and whole-model latency (benchmarks/predict_context.py)",
        "",
        f"Made by `{command}` on {time.strftime('%Y-%m-%d')}, torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {threads} thread(s), float32 "
        f"(load {os.getloadavg()[0]:.1f}).",
        "",
        "isolated sum: every leaf module timed alone on the input it had in the model, summed. "
        "fit error = predicted / isolated sum - 1; context = isolated sum / whole - 1.",
        "",
        "| model | batch | leaves | whole ms | isolated sum ms | context | predicted ms | fit error | total error |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        p = r["predicted_s"]
        fit = f"{p / r['isolated_s'] - 1:+.0%}" if p else ""
        total = f"{p / r['whole_s'] - 1:+.0%}" if p else ""
        lines.append(
            f"| {r['model']} | {r['batch']} | {r['leaves']} | {r['whole_s'] * 1e3:.2f} | {r['isolated_s'] * 1e3:.2f} "
            f"| {r['isolated_s'] / r['whole_s'] - 1:+.0%} | {'' if p is None else f'{p * 1e3:.2f}'} | {fit} | {total} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from archcost.predict.profile import load_profile
    from archcost.profiling.sweep import measurement_setup

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=MODELS, help="comma-separated specs")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device-profile", help="a device profile of this machine at --threads, float32")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    profile = load_profile(args.device_profile) if args.device_profile else None
    specs = [m.strip() for m in args.models.split(",")]
    loaded, skipped = load_all({m: EXTERNAL.get(m, {}) for m in specs}, args.batch_sizes)
    for spec, why in skipped.items():
        print(f"left out {spec}: {why}", file=sys.stderr)
    rows = []
    with measurement_setup(torch.device("cpu"), args.threads, "float32"):
        for (spec, b), one in loaded.items():
            rows.append(measure_model(spec, b, one, profile))
            print(f"{spec} b{b} done", file=sys.stderr)
    text = markdown(rows, "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]), args.threads)
    print(text)
    if not args.no_write:
        (ROOT / "reports" / "predict_context.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
