"""`archcost check` on torchvision and timm models: does every difference with fvcore and FlopCounterMode have
its written-down convention (exit 0), or is it a finding?

Needs the venv of ``benchmarks/conformance.py`` (torch 2.14.1, torchvision 0.29.1, timm) with fvcore::

    /work/venv214/bin/pip install fvcore
    nice -n 10 /work/venv214/bin/python benchmarks/check_conformance.py --per-family 1

Each model is built on the CPU with random weights (fvcore traces real tensors) at its default input, in a worker
process with a time limit, and checked with ``archcost.crosscheck.check_model``. ``--per-family N``: the first N
models of each family (the name up to its first digit or underscore); ``--max N``: at most N of those per suite,
evenly spaced over the sorted names, so that a run covers the kinds of layer in minutes rather than hours on two
cores.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import re
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _family(name: str) -> str:
    return re.split(r"[\d_]", name, maxsplit=1)[0] or name


def _models(suite: str, per_family: int) -> list[str]:
    if suite == "tv":
        import torchvision

        names = sorted(torchvision.models.list_models(module=torchvision.models))
    else:
        import timm

        names = sorted(timm.list_models())
    seen: Counter = Counter()
    out = []
    for n in names:
        f = _family(n)
        if per_family and seen[f] >= per_family:
            continue
        seen[f] += 1
        out.append(n)
    return out


def _one(suite: str, name: str, queue) -> None:
    try:
        import torch

        from archcost.crosscheck import check_model

        torch.manual_seed(0)
        if suite == "tv":
            import torchvision

            weights = torchvision.models.get_model_weights(name)
            w = next(iter(weights)) if weights else None
            crop = w.transforms().crop_size[0] if w is not None and hasattr(w.transforms(), "crop_size") else 224
            model = torchvision.models.get_model(name, weights=None).eval()
            size = (3, crop, crop)
        else:
            import timm

            model = timm.create_model(name, pretrained=False).eval()
            size = tuple(model.pretrained_cfg.get("input_size", (3, 224, 224)))
        rec = check_model(model, size, name=name)
        findings = [f for f in rec.findings if "fvcore could not" not in f]
        queue.put((name, "ok" if rec.ok else "MISMATCH", "; ".join(findings[:2] + rec.mismatches[:2])[:300]))
    except Exception as exc:  # recorded, never hidden
        queue.put((name, "error", f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", choices=["tv", "timm", "both"], default="both")
    p.add_argument("--per-family", type=int, default=1, help="models per family (0: every model)")
    p.add_argument("--timeout", type=float, default=240.0, help="seconds per model")
    p.add_argument("--max", type=int, default=0, help="at most this many models per suite, evenly spaced (0: all)")
    p.add_argument("--output", default=str(ROOT / "reports" / "check_conformance.md"))
    args = p.parse_args(argv)
    rows = []
    ctx = mp.get_context("spawn")
    for suite in ("tv", "timm") if args.suite == "both" else (args.suite,):
        names = _models(suite, args.per_family)
        if args.max and len(names) > args.max:
            names = [names[round(i * (len(names) - 1) / (args.max - 1))] for i in range(args.max)]
        for i, name in enumerate(names):
            q = ctx.Queue()
            proc = ctx.Process(target=_one, args=(suite, name, q))
            start = time.perf_counter()
            proc.start()
            proc.join(args.timeout)
            if proc.is_alive():
                proc.kill()
                proc.join()
                row = (name, "timeout", f"over {args.timeout:.0f} s")
            else:
                row = q.get() if not q.empty() else (name, "error", f"the worker exited with {proc.exitcode}")
            rows.append((suite, *row, time.perf_counter() - start))
            print(f"[{i + 1}/{len(names)}] {suite} {row[0]}: {row[1]} {row[2][:120]}", flush=True)
    verdicts = Counter((s, v) for s, _, v, _, _ in rows)
    lines = [
        "# `archcost check` on torchvision and timm models",
        "",
        "Written by `benchmarks/check_conformance.py` (its docstring says how each model is built and checked). "
        "ok: every difference between archcost, fvcore and FlopCounterMode is predicted by a written-down "
        "convention (`archcost check` exits 0); MISMATCH: a difference none predicts (exit 1).",
        "",
        "| suite | models | ok | MISMATCH | error | timeout |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for suite in sorted({s for s, *_ in rows}):
        n = sum(1 for r in rows if r[0] == suite)
        lines.append(
            f"| {suite} | {n} | "
            + " | ".join(str(verdicts[(suite, v)]) for v in ("ok", "MISMATCH", "error", "timeout"))
            + " |"
        )
    lines += ["", "## Every model that is not ok", "", "| suite | model | verdict | what |"]
    lines.append("| --- | --- | --- | --- |")
    lines += [f"| {s} | {n} | {v} | {w.replace('|', '/')} |" for s, n, v, w, _ in rows if v != "ok"]
    Path(args.output).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
