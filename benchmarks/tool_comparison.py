"""archcost against fvcore, ptflops, thop and torchinfo on the same models: analysis time and peak memory.

Every measurement runs in a fresh Python process (same imports, no caches carried over), the tools take
turns within each round, and the report quotes medians. Each tool is used the way its README shows:
archcost on the meta device (no weights, no arithmetic), the others on a real CPU model and a random
input, which they run forward. Writes its own section of reports/performance.md below the line
``<!-- other benchmarks below -->``, between its begin/end markers, leaving everything else as it was.

    python benchmarks/tool_comparison.py                         # resnet50, vgg16, mobilenet_v1 at batch 1 and 32
    python benchmarks/tool_comparison.py --models resnet50 --batches 1 --repeats 1
    python benchmarks/tool_comparison.py --smoke                 # seconds: lenet5, batch 1, no report written

Needs ``pip install --no-deps ptflops thop torchinfo`` (each needs only torch, which is installed; ``--no-deps``
keeps pip from pulling another torch). A tool that is missing or fails is a row saying so, not a crash.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _report import write_section  # noqa: E402  (benchmarks/ is the script's folder)

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "reports" / "performance.md"
MARKER = "<!-- other benchmarks below -->"
BEGIN, END = "<!-- tool_comparison: begin -->", "<!-- tool_comparison: end -->"

TOOLS = ("archcost", "fvcore", "ptflops", "thop", "torchinfo")
PACKAGES = {"archcost": "archcost", "fvcore": "fvcore", "ptflops": "ptflops", "thop": "thop", "torchinfo": "torchinfo"}
#: What each tool's headline number is, in archcost's terms (README: "What the numbers mean").
COUNTS = {
    "archcost": "MACs (conv, linear, matmul)",
    "fvcore": '"flops" = MACs of conv/linear, + batch norm and adaptive pooling',
    "ptflops": "MACs + element-wise ops (ReLU, BN, pooling, add), per image: divides by the batch",
    "thop": "MACs (+ BN, ReLU and pooling for its hooked modules)",
    "torchinfo": "mult-adds of conv and linear weights",
}
DEFAULT_MODELS = ("resnet50", "vgg16", "mobilenet_v1")
DEFAULT_BATCHES = (1, 32)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _analysis(tool: str, model_name: str, batch: int):
    """A function that runs one analysis by ``tool`` and returns its count, and what it needs built."""
    import contextlib
    import io

    import torch

    import archcost

    size = tuple(archcost.get_meta(model_name).input_size)
    if tool == "archcost":
        net = archcost.get_model(model_name)  # meta device: no weights
        return lambda: archcost.analyze(net, size, batch).totals["macs"]
    net = archcost.get_model(model_name, device="cpu").eval()
    x = torch.randn((batch, *size))
    sink = io.StringIO()
    if tool == "fvcore":
        from fvcore.nn import FlopCountAnalysis

        def run():
            analysis = FlopCountAnalysis(net, x)
            analysis.unsupported_ops_warnings(False)
            analysis.uncalled_modules_warnings(False)
            return analysis.total()

        return run
    if tool == "ptflops":
        from ptflops import get_model_complexity_info

        def run():
            with contextlib.redirect_stdout(sink):
                count, _ = get_model_complexity_info(
                    net, size, as_strings=False, print_per_layer_stat=False, input_constructor=lambda _res: x
                )
            if count is None:
                raise RuntimeError("ptflops returned no count: " + sink.getvalue().strip().splitlines()[-1])
            return count

        return run
    if tool == "thop":
        from thop import profile

        def run():
            with contextlib.redirect_stdout(sink):
                return profile(net, inputs=(x,), verbose=False)[0]

        return run
    if tool == "torchinfo":
        from torchinfo import summary

        return lambda: summary(net, input_data=x, verbose=0, device="cpu").total_mult_adds
    raise ValueError(f"unknown tool {tool}")


def worker(tool: str, model_name: str, batch: int) -> dict:
    """Two analyses by ``tool`` in this (fresh) process: the first pays one-time costs (imports, torch's
    lazy initialisation), the second is what a script analysing many models pays per model."""
    import torch

    torch.manual_seed(0)
    base_rss = _rss_mb()
    analysis = _analysis(tool, model_name, batch)
    start = time.perf_counter()
    count = analysis()
    first = time.perf_counter() - start
    start = time.perf_counter()
    analysis()
    second = time.perf_counter() - start
    return {
        "seconds": first,
        "warm_seconds": second,
        "rss_import_mb": base_rss,
        "peak_rss_mb": _rss_mb(),
        "count": int(count),
    }


def measure(tool: str, model: str, batch: int) -> dict:
    """``worker`` in a fresh process; a tool that fails is a result with its error."""
    cmd = [sys.executable, __file__, "--worker", tool, model, str(batch)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        lines = (out.stderr or out.stdout).strip().splitlines()
        return {"error": lines[-1] if lines else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def version(tool: str) -> str | None:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version(PACKAGES[tool])
    except PackageNotFoundError:
        return None


def import_torch_rss() -> float:
    code = "import resource, torch; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def _ratio(a: float, b: float | None) -> str:
    return f"{a / b:.2g}x" if b else ""


def section(results: dict, args: argparse.Namespace, versions: dict, torch_rss: float, load: tuple) -> str:
    import torch

    lines = [
        BEGIN,
        "## Analysis time and memory: archcost, fvcore, ptflops, thop, torchinfo",
        "",
        f"Generated by `python benchmarks/tool_comparison.py --repeats {args.repeats}` on {platform.machine()} "
        f"with {torch.get_num_threads()} threads, torch {torch.__version__}, Python {platform.python_version()}; "
        "tools: " + ", ".join(f"{t} {versions[t] or '(not installed)'}" for t in TOOLS) + ". "
        f"Load average before the run: {load[0]:.2f}. Each figure is the median of {args.repeats} runs, each in "
        "a fresh process, the tools taking turns. Shared, noisy machines: read the ratios, not the absolute times.",
        "",
        "archcost analyses on the meta device (shapes only); the other tools run the model's forward pass "
        "on real tensors, so their time and memory grow with the batch. Peak RSS is the process's maximum "
        f"resident memory; `import torch` alone takes {torch_rss:.0f} MB. *count* is each tool's own total, "
        "which means different things:",
        "",
        *[f"- {t}: {COUNTS[t]}" for t in TOOLS],
        "",
        "*first* is the first analysis in a fresh process (it pays one-time costs: for archcost about 0.4 s that "
        "torch spends importing sympy the first time a meta kernel checks a shape); *second* is a second "
        "analysis of the same model in the same process, what a script analysing many models pays per model. "
        "*x archcost* is the tool's time over archcost's, first to first and second to second.",
        "",
        "| model | batch | tool | first s | second s | x archcost (first) | x archcost (second) "
        "| peak RSS MB (above import torch) | count |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (model, batch), by_tool in results.items():
        ours = [r for r in by_tool.get("archcost", []) if "error" not in r]
        ours_first = statistics.median(r["seconds"] for r in ours) if ours else None
        ours_second = statistics.median(r["warm_seconds"] for r in ours) if ours else None
        for tool in args.tools:
            runs = by_tool.get(tool, [])
            ok = [r for r in runs if "error" not in r]
            if not ok:
                error = runs[0]["error"] if runs else "not run"
                lines.append(f"| {model} | {batch} | {tool} | failed: {error.replace('|', '/')} | | | | | |")
                continue
            first = statistics.median(r["seconds"] for r in ok)
            second = statistics.median(r["warm_seconds"] for r in ok)
            rss = statistics.median(r["peak_rss_mb"] for r in ok)
            lines.append(
                f"| {model} | {batch} | {tool} | {first:.3f} | {second:.4f} | {_ratio(first, ours_first)} "
                f"| {_ratio(second, ours_second)} | {rss:.0f} (+{rss - torch_rss:.0f}) | {ok[0]['count']:,} |"
            )
    lines += ["", END]
    return "\n".join(lines)


def write_section_here(text: str, path: Path = REPORT) -> None:
    write_section(text, BEGIN, END, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--batches", nargs="+", type=int, default=list(DEFAULT_BATCHES))
    parser.add_argument("--tools", nargs="+", default=list(TOOLS), choices=TOOLS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print the section, do not touch the report")
    parser.add_argument("--smoke", action="store_true", help="lenet5, batch 1, one run, no report: seconds")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        tool, model, batch = args.worker
        print(json.dumps(worker(tool, model, int(batch))))
        return 0
    if args.smoke:
        args.models, args.batches, args.repeats, args.no_write = ["lenet5"], [1], 1, True
    if "archcost" not in args.tools:
        args.tools = ["archcost", *args.tools]
    versions = {t: version(t) for t in TOOLS}
    load = os.getloadavg()
    torch_rss = statistics.median(import_torch_rss() for _ in range(min(3, args.repeats)))
    results: dict[tuple, dict[str, list[dict]]] = {}
    for model in args.models:
        for batch in args.batches:
            for _ in range(args.repeats):
                for tool in args.tools:  # the tools take turns
                    if versions[tool] is None:
                        r = {"error": f"{PACKAGES[tool]} is not installed (pip install --no-deps {PACKAGES[tool]})"}
                    else:
                        r = measure(tool, model, batch)
                    results.setdefault((model, batch), {}).setdefault(tool, []).append(r)
                    print(model, batch, tool, r, file=sys.stderr)
    text = section(results, args, versions, torch_rss, load)
    print(text)
    if not args.no_write:
        write_section_here(text)
        print(f"wrote {REPORT.relative_to(ROOT)}", file=sys.stderr)
    failed = [k for k, v in results.items() for runs in v.values() for r in runs if "error" in r]
    return 1 if args.smoke and failed else 0


if __name__ == "__main__":
    sys.exit(main())
