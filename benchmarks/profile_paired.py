"""Does `archcost profile` time a model as a plain process does? Two live processes taking turns (issue 17).

Comparing separate processes run one after another (benchmarks/profile_check.py) cannot answer it on a
shared machine: the machine's own speed moves by 20-40% over tens of seconds (identical plain processes
differ by 1.35x), far more than the effect sought. Here two processes are started side by side and kept
alive; each sets itself up as it would alone, warms up, and then they take turns timing blocks of the same
number of forwards (order A B B A ..., so a drift in time cancels). Each turn's pair of blocks ran within a
second of each other, so their ratio is free of the machine's slow drift; the median over turns is the
comparison, and a `plain` against `plain` session measures the method's own resolution.

The processes:

- ``plain``: imports torch and benchmarks/plain_models.py only; ``torch.utils.benchmark.Timer.timeit(n)``
  in ``torch.inference_mode()`` (what a user's own timing script does).
- ``archcost``: the real ``archcost profile FILE:factory --device cpu --threads T`` command in-process, up to
  the moment it times the model: its imports, model build, analysis, cached device peaks, its warm-up;
  then ``archcost.profiling.timing.CpuTimer.block`` on archcost's own forward closure for each turn (the
  sweep's ``measure`` is replaced by the turn-taking loop; nothing else of archcost is changed).
- ``plain_ftz``, ``plain_imports``, ``plain_bigfree``: the plain process with one of archcost's (past)
  differences added (``torch.set_flush_denormal(True)``; archcost's modules imported; a large allocation
  freed first), to attribute a gap if one shows; ``plain_grad`` (autograd on); ``plain_pixels`` (a 10% larger
  image) is a known difference of about 10%, to show what the method sees.

Each pair of kinds runs in both orientations (archcost as A and as B): in some runs one position was a few
percent faster than the other (plain against plain read 0.97-0.98 in one run, 1.01 in the next), and the
geometric mean of the two orientations, sqrt((B/A with archcost as B) / (B/A with archcost as A)), cancels
such a position effect.

Writes its section of reports/performance.md:

    python benchmarks/profile_paired.py                   # resnet18, batch 1, 1 thread
    python benchmarks/profile_paired.py --threads 2
    python benchmarks/profile_paired.py --smoke --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _plain import MODELS, allocate_and_free, import_archcost, plain_model  # noqa: E402
from _report import publish  # noqa: E402  (benchmarks/ is the script's folder)

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "reports" / "performance.md"
BEGIN, END = "<!-- profile_paired: begin -->", "<!-- profile_paired: end -->"
TAG = "PAIR "  # protocol lines on stdout start with this; anything else a process prints is ignored

KINDS = {
    "plain": "torch + the model file only; torch.utils.benchmark Timer.timeit(n) in torch.inference_mode()",
    "plain_ftz": "the plain process + torch.set_flush_denormal(True)",
    "plain_imports": "the plain process + archcost's modules imported (archcost.cli, profiling, pandas, ...)",
    "plain_bigfree": "the plain process + 3 x 16 MB matrices and a 256 MB buffer allocated and freed before the "
    "model is built (the README once blamed glibc's mmap threshold for a 25% gap)",
    "plain_grad": "the plain process without torch.inference_mode() (autograd records the forward)",
    "plain_pixels": "the plain process on a 10% larger image (235 x 235 instead of 224 x 224: 1.101x the "
    "pixels, so about 1.10x the convolution work): a known difference, to show what the method sees",
    "archcost": "`archcost profile` in-process up to its timing; archcost's CpuTimer on its own forward closure",
}


# -- the two kinds of child --------------------------------------------------------------------------------


#: the protocol's stream: stdout as the process began (inside `archcost profile`, sys.stdout is stderr, where
#: the CLI sends everything but its results)
PROTOCOL = sys.stdout


def say(text: str) -> None:
    PROTOCOL.write(TAG + text + "\n")
    PROTOCOL.flush()


def serve(block) -> None:
    """Answer ``go N`` with the seconds per call of ``block(N)`` until ``stop``."""
    say("ready")
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] != "go":
            break
        say(json.dumps(block(int(words[1]))))


def plain_child(kind: str, factory: str, threads: int) -> None:
    import torch
    from torch.utils.benchmark import Timer

    torch.set_num_threads(threads)
    if kind == "plain_ftz":
        torch.set_flush_denormal(True)
    if kind == "plain_bigfree":
        allocate_and_free()
    if kind == "plain_imports":
        import_archcost()
    model = plain_model(factory)
    size = tuple(model.input_size)
    if kind == "plain_pixels":  # every side 1.049x: 1.10x the pixels
        size = (size[0], *(round(s * 1.049) for s in size[1:]))
    x = torch.randn((1, *size), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode(kind != "plain_grad"):
        timer = Timer(stmt="model(x)", globals={"model": model, "x": x}, num_threads=threads)
        timer.timeit(3)
        serve(lambda n: timer.timeit(n).mean)


def archcost_child(factory: str, threads: int, flags: list[str]) -> None:
    import archcost.profiling.steps as steps
    from archcost.cli import main
    from archcost.profiling.timing import CpuTimer, warm_up

    def take_turns(fn, device, *, warmup_s, min_time_s, repeats, on_timed=None):
        timer = CpuTimer()
        warm_up(fn, timer, warmup_s)  # archcost's own warm-up, as before its timed samples
        serve(lambda n: timer.block(fn, n) / n)
        os._exit(0)

    steps.measure = take_turns  # the sweep's timing call becomes the turn-taking loop; all else is archcost's
    cmd = ["profile", f"{MODELS}:{factory}", "--device", "cpu", "--threads", str(threads), "--format", "json"]
    main([*cmd, "--quiet", "--no-power", *flags])
    say("error: archcost profile returned without timing the model")


# -- the parent --------------------------------------------------------------------------------------------


class Child:
    def __init__(self, kind: str, args, cache: str) -> None:
        cmd = [sys.executable, __file__, "--child", kind, "--factory", args.factory, "--threads", str(args.threads)]
        if args.smoke:
            cmd.append("--smoke")
        env = {**os.environ, "ARCHCOST_CACHE_DIR": cache, "PYTHONPATH": str(ROOT)}
        self.kind = kind
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT, bufsize=1
        )

    def read(self) -> str:
        for line in self.proc.stdout:
            if line.startswith(TAG):
                text = line[len(TAG) :].strip()
                if text.startswith("error"):
                    raise RuntimeError(f"{self.kind}: {text}")
                return text
        raise RuntimeError(f"{self.kind} ended (exit {self.proc.wait()})")

    def block(self, n: int) -> float:
        self.proc.stdin.write(f"go {n}\n")
        self.proc.stdin.flush()
        return float(self.read())

    def close(self) -> None:
        try:
            self.proc.stdin.write("stop\n")
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def session(a: str, b: str, args, cache: str) -> dict:
    """Two fresh processes taking turns; per turn the ratio of b's block to a's."""
    ca, cb = Child(a, args, cache), Child(b, args, cache)
    try:
        ca.read(), cb.read()  # both set up and warmed up
        n = max(1, round(args.block / ca.block(1)))
        ta, tb = [], []
        for t in range(args.turns + args.skip):
            order = (ca, cb) if t % 2 == 0 else (cb, ca)
            got = {c.kind + str(id(c)): c.block(n) for c in order}
            if t >= args.skip:
                ta.append(got[a + str(id(ca))])
                tb.append(got[b + str(id(cb))])
    finally:
        ca.close()
        cb.close()
    ratios = [y / x for x, y in zip(ta, tb, strict=True)]
    return {"a": a, "b": b, "n": n, "a_s": ta, "b_s": tb, "ratios": ratios}


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return q[0], statistics.median(xs), q[2]


def section(sessions: list[dict], args, load: tuple, seconds: float) -> str:
    import torch

    lines = [
        BEGIN,
        "## `archcost profile` against a plain process, two live processes taking turns",
        "",
        f"Generated by `{' '.join(['python benchmarks/profile_paired.py', *sys.argv[1:]])}` on "
        f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, Python "
        f"{platform.python_version()}; model `{args.factory}` of benchmarks/plain_models.py, batch 1, float32, "
        f"cpu, {args.threads} thread(s); load average before the run {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}; "
        f"{seconds:.0f} s in all{' (smoke settings: not a measurement)' if args.smoke else ''}. In each session "
        f"two fresh processes set up, warm up, then take turns (A B B A ...) timing blocks of the same number "
        f"of forwards (about {args.block} s each); {args.turns} turns after {args.skip} discarded. *B / A* is "
        "the median over turns of the ratio of B's block to A's block of the same turn (quartiles in brackets).",
        "",
        *(f"- `{k}`: {v}" for k, v in KINDS.items()),
        "",
        "| session | A | B | forwards per block | A median ms | B median ms | B / A (quartiles) |",
        "| ---: | --- | --- | ---: | ---: | ---: | --- |",
    ]
    for i, s in enumerate(sessions, 1):
        lo, med, hi = quartiles(s["ratios"])
        lines.append(
            f"| {i} | `{s['a']}` | `{s['b']}` | {s['n']} | {statistics.median(s['a_s']) * 1e3:.2f} | "
            f"{statistics.median(s['b_s']) * 1e3:.2f} | **{med:.3f}** ({lo:.3f}-{hi:.3f}) |"
        )
    by_pair: dict[tuple[str, str], float] = {}
    counts: dict[tuple[str, str], int] = {}
    for a, b in dict.fromkeys((s["a"], s["b"]) for s in sessions):
        rs = [statistics.median(s["ratios"]) for s in sessions if (s["a"], s["b"]) == (a, b)]
        by_pair[a, b], counts[a, b] = statistics.median(rs), len(rs)
    lines += ["", "Per pair of kinds, the median of the sessions' B / A:", ""]
    lines += [f"- `{b}` / `{a}`: {r:.3f} over {counts[a, b]} session(s)" for (a, b), r in by_pair.items()]
    both = [(a, b) for (a, b) in by_pair if a != b and (b, a) in by_pair and a == "plain"]
    if both:
        lines += ["", "Both orientations, the position of the process cancelled (geometric mean):", ""]
    for a, b in both:
        r = (by_pair[a, b] / by_pair[b, a]) ** 0.5
        verdict = f" (target within 10%: {'met' if abs(r - 1) <= 0.10 else 'NOT met'})" if b == "archcost" else ""
        lines.append(f"- **`{b}` / `{a}`: {r:.3f}**{verdict}")
    lines.append(END)
    return "\n".join(lines)


PLAN = [
    ("plain", "plain"),
    ("plain", "archcost"),
    ("archcost", "plain"),
    ("plain", "plain_ftz"),
    ("plain", "plain_imports"),
    ("plain", "plain_bigfree"),
    ("plain", "plain_grad"),
    ("plain", "plain_pixels"),
    ("plain", "archcost"),
    ("archcost", "plain"),
    ("plain", "plain"),
]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--factory", default="resnet18", help="a function of benchmarks/plain_models.py")
    p.add_argument("--threads", type=int, default=1, help="torch threads in both processes (default 1)")
    p.add_argument("--turns", type=int, default=30, help="turns per session, counted (default 30)")
    p.add_argument("--skip", type=int, default=2, help="first turns not counted (default 2)")
    p.add_argument("--block", type=float, default=0.5, help="seconds per block, about (default 0.5)")
    p.add_argument("--smoke", action="store_true", help="tiny settings: checks the script runs, measures nothing")
    p.add_argument("--no-write", action="store_true", help="print the section instead of writing the report")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.smoke:
        args.factory = "small"
    if args.child:
        if args.child == "archcost":
            flags = ["--warmup", "0.05"] if args.smoke else []
            archcost_child(args.factory, args.threads, flags)
        else:
            plain_child(args.child, args.factory, args.threads)
        return 0
    plan = PLAN
    if args.smoke:
        args.turns, args.skip, args.block, plan = 3, 1, 0.02, [("plain", "archcost")]
    load = os.getloadavg()
    start = time.perf_counter()
    sessions = []
    with tempfile.TemporaryDirectory() as cache:
        # the first archcost run calibrates and caches the device peaks, as a user's first run does
        subprocess.run(
            [sys.executable, "-m", "archcost.cli", "profile", f"{MODELS}:{args.factory}", "--device", "cpu",
             "--threads", str(args.threads), "--quiet", "--no-power", "--warmup", "0", "--min-time", "0.01",
             "--repeats", "1", "--format", "json"],
            env={**os.environ, "ARCHCOST_CACHE_DIR": cache, "PYTHONPATH": str(ROOT)},
            cwd=ROOT, capture_output=True, check=True,
        )  # fmt: skip
        for a, b in plan:
            s = session(a, b, args, cache)
            sessions.append(s)
            print(f"{a} / {b}: {statistics.median(s['ratios']):.3f} (n={s['n']})", file=sys.stderr)
    text = section(sessions, args, load, time.perf_counter() - start)
    publish(text, BEGIN, END, args.no_write, REPORT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
