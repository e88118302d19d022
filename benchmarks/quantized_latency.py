"""int8 against float32 CPU latency of resnet18 and mobilenet_v2, paired and alternated (issue 27, item 4).

Each model is quantized offline with random weights, as torchvision's own quantized models are built but
without downloading anything: ``torchvision.models.quantization.<name>(weights=None, quantize=False)``,
``fuse_model()``, ``qconfig = get_default_qconfig(torch.backends.quantized.engine)``, ``prepare``, calibration on
seeded random images, ``convert``. Its float original is ``torchvision.models.<name>(weights=None)`` with the same
seed. Both are timed in one process, on the same input, in turns: blocks of the same number of forwards in the
order F Q Q F F Q ..., so that the shared machine's slow drift in speed cancels within each turn; a turn's
ratio is (its two int8 blocks) / (its two float blocks), and the result is the median over turns with the
quartiles, beside each kind's median per-forward latency. (The same pairing as benchmarks/profile_paired.py, in
one process: both kinds share the threads and the allocator.)

Needs torchvision (the vision venv):

    /work/venv214/bin/python benchmarks/quantized_latency.py                 # batch 1, 1 thread, 12 turns
    /work/venv214/bin/python benchmarks/quantized_latency.py --threads 2 --turns 20
    /work/venv214/bin/python benchmarks/quantized_latency.py --smoke --no-write

Writes reports/quantized_latency.md and reports/quantized_latency.json (with the command that made them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("resnet18", "mobilenet_v2")


def build(name: str, engine: str, calibration: int, size: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    """``(float original, int8 model)`` of torchvision's ``name``, random weights (seed 0), quantized offline."""
    import torch.ao.quantization as tq
    import torchvision.models as tvm
    import torchvision.models.quantization as tvq

    torch.manual_seed(0)
    original = getattr(tvm, name)(weights=None).eval()
    torch.manual_seed(0)
    q = getattr(tvq, name)(weights=None, quantize=False).eval()
    q.fuse_model()
    q.qconfig = tq.get_default_qconfig(engine)
    tq.prepare(q, inplace=True)
    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for _ in range(calibration):
            q(torch.randn(2, 3, size, size, generator=gen))
    tq.convert(q, inplace=True)
    return original, q


def int8_modules(model: torch.nn.Module) -> int:
    """How many modules of ``model`` run integer kernels (archcost's own test of a quantized model)."""
    sys.path.insert(0, str(ROOT))
    from archcost.profiling.environment import quantized_parts

    return len(quantized_parts(model))


def block(model: torch.nn.Module, x: torch.Tensor, n: int) -> float:
    """Seconds per forward over ``n`` forwards."""
    start = time.perf_counter_ns()
    for _ in range(n):
        model(x)
    return (time.perf_counter_ns() - start) / 1e9 / n


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    q1, q2, q3 = statistics.quantiles(xs, n=4, method="inclusive") if len(xs) > 1 else (xs[0],) * 3
    return q1, q2, q3


def measure(name: str, args) -> dict:
    engine = torch.backends.quantized.engine
    original, quantized = build(name, engine, args.calibration, args.size)
    x = torch.randn(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(1))
    kinds = {"float32": original, "int8": quantized}
    with torch.inference_mode():
        for model in kinds.values():  # warm-up
            block(model, x, 3)
        per = block(original, x, 3)
        n = max(1, round(args.block_s / per))  # forwards per block: about block_s seconds of the float model
        times: dict[str, list[float]] = {"float32": [], "int8": []}
        ratios = []
        for turn in range(args.turns):
            order = ("float32", "int8", "int8", "float32") if turn % 2 == 0 else ("int8", "float32", "float32", "int8")
            got: dict[str, list[float]] = {"float32": [], "int8": []}
            for kind in order:
                got[kind].append(block(kinds[kind], x, n))
            for kind in got:
                times[kind].extend(got[kind])
            ratios.append(sum(got["int8"]) / sum(got["float32"]))
    q1, med, q3 = quartiles(ratios)
    return {
        "model": name,
        "int8_modules": int8_modules(quantized),
        "float32_median_ms": statistics.median(times["float32"]) * 1e3,
        "int8_median_ms": statistics.median(times["int8"]) * 1e3,
        "ratio_int8_over_float32_median": med,
        "ratio_q1": q1,
        "ratio_q3": q3,
        "speedup_float32_over_int8": 1 / med,
        "turns": args.turns,
        "forwards_per_block": n,
    }


def load(values: list[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def busy(env: dict) -> str:
    """What the load average says of the machine, in a sentence."""
    worst = max(env["load_before"][0], env["load_after"][0])
    if worst >= 0.5 * env["cpus"]:
        return (
            f"**The machine was busy with other work while this ran** (1-minute load up to {worst:.2f} on "
            f"{env['cpus']} CPUs): the latencies are slower and noisier than an idle machine's; the ratio is paired "
            "turn by turn (F Q Q F ...) so that the machine's drift cancels, and its quartiles over turns say how "
            "far to trust it."
        )
    return f"The machine was quiet (1-minute load at most {worst:.2f} on {env['cpus']} CPUs)."


def markdown(doc: dict) -> str:
    env = doc["environment"]
    lines = [
        "# int8 against float32 CPU latency (benchmarks/quantized_latency.py)",
        "",
        f"Command: `{doc['command']}`  ",
        f"Made {doc['date']} on {env['cpu']} ({env['cpus']} CPUs), torch {env['torch']}, torchvision "
        f"{env['torchvision']}, quantized engine `{env['quantized_engine']}`, {doc['threads']} thread(s), batch "
        f"{doc['batch']}, input 3x{doc['size']}x{doc['size']}; load average before the run "
        f"{load(env['load_before'])}, after {load(env['load_after'])} (1 / 5 / 15 min).",
        "",
        busy(env),
        "",
        "| model | int8 modules | float32 median ms | int8 median ms | int8 / float32 (median over turns) "
        "| quartiles | float32 / int8 speed-up |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for r in doc["results"]:
        lines.append(
            f"| {r['model']} | {r['int8_modules']} | {r['float32_median_ms']:.2f} | {r['int8_median_ms']:.2f} | "
            f"{r['ratio_int8_over_float32_median']:.3f} | {r['ratio_q1']:.3f} - {r['ratio_q3']:.3f} | "
            f"{r['speedup_float32_over_int8']:.2f}x |"
        )
    lines += [
        "",
        "Models: torchvision's `models.quantization` builders with `weights=None, quantize=False`, fused, prepared "
        "with `get_default_qconfig(engine)`, calibrated on seeded random images and converted (random weights: "
        "latency does not depend on the values); float originals: `torchvision.models.<name>(weights=None)`. "
        "`int8 modules`: the modules archcost finds running integer kernels "
        "(`archcost.profiling.environment.quantized_parts`). Medians per forward over all blocks of each kind; "
        f"{doc['results'][0]['turns'] if doc['results'] else 0} turns of four blocks of about {doc['block_s']} s each.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--turns", type=int, default=12)
    p.add_argument("--block-s", type=float, default=0.25, help="seconds per block of forwards (of the float model)")
    p.add_argument("--calibration", type=int, default=4, help="random calibration batches of 2")
    p.add_argument("--engine", help="torch.backends.quantized.engine (default: torch's own)")
    p.add_argument("--smoke", action="store_true", help="tiny: 64x64, 2 turns, short blocks")
    p.add_argument("--no-write", action="store_true", help="print the report instead of writing reports/")
    args = p.parse_args()
    if args.smoke:
        args.size, args.turns, args.block_s, args.calibration = 64, 2, 0.02, 1
    if args.engine:
        if args.engine not in torch.backends.quantized.supported_engines:
            p.error(f"--engine {args.engine}: this torch has {', '.join(torch.backends.quantized.supported_engines)}")
        torch.backends.quantized.engine = args.engine
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=UserWarning)  # torch's deprecation notes on quantized tensors
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    import torchvision

    load_before = os.getloadavg()
    results = [measure(name, args) for name in args.models.split(",")]
    cpu = "unknown CPU"
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))  # noqa: E741
    except (OSError, StopIteration):
        cpu = platform.processor() or cpu
    doc = {
        "command": "python " + " ".join([str(Path(sys.argv[0]).as_posix()), *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "threads": args.threads,
        "batch": args.batch,
        "size": args.size,
        "block_s": args.block_s,
        "environment": {
            "cpu": cpu,
            "cpus": len(os.sched_getaffinity(0)),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "quantized_engine": torch.backends.quantized.engine,
            "load_before": list(load_before),
            "load_after": list(os.getloadavg()),
        },
        "results": results,
    }
    text = markdown(doc)
    if args.no_write:
        print(text)
        return 0
    (ROOT / "reports" / "quantized_latency.md").write_text(text)
    (ROOT / "reports" / "quantized_latency.json").write_text(json.dumps(doc, indent=2) + "\n")
    print("wrote reports/quantized_latency.md and reports/quantized_latency.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
