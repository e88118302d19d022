"""Conformance: archcost against torchvision's published figures and torch's FlopCounterMode, model by model.

Needs torch 2.14.1, torchvision 0.29.1 and timm in a venv of its own (the tests need none of them)::

    python -m venv /work/venv214 && /work/venv214/bin/pip install torch==2.14.1 torchvision==0.29.1 timm
    /work/venv214/bin/pip install -e .
    nice -n 10 /work/venv214/bin/python benchmarks/conformance.py run --suite all --csv reports/conformance.csv
    /work/venv214/bin/python benchmarks/conformance.py report --csv reports/conformance.csv \
        --before reports/conformance_before.csv

``run`` appends one CSV row per model as it goes and skips models already in the CSV, so an interrupted run
resumes where it stopped. Each model runs in a worker process with a time limit (``--timeout``); a model
that exceeds it is recorded as ``timeout`` and the worker is replaced.

Suites and references:

* ``tv-cls``: every torchvision classification model, built without weights on the meta device, at its
  weights' crop size, against the weights' ``num_params`` and ``_ops`` (torchvision's "GFLOPS", which are
  GMACs, rounded to 3 decimals). Exact = same params and same GMACs at 3 decimals, nothing uncosted.
* ``tv-other``: torchvision's detection, segmentation, optical-flow and video models whose forward runs on
  the meta device, against FlopCounterMode (MACs = its FLOPs / 2).
* ``timm``: every timm architecture (``timm.list_models()``), built on meta with ``pretrained=False`` at the
  default input size of its pretrained config, against FlopCounterMode on the same meta input.

Equal = archcost's MACs equal FlopCounterMode's FLOPs / 2 exactly, and archcost lists nothing as uncosted.
"""

from __future__ import annotations

import argparse
import copy
import csv
import multiprocessing as mp
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIELDS = (
    "suite model input_size verdict params ref_params macs ref_macs fcm_macs uncosted note seconds archcost_s fcm_s"
).split()

# -- explanations: where archcost and the reference differ for a known reason -------------------------------
#: op (as archcost names it) -> why FlopCounterMode's count differs from archcost's there.
FCM_GAPS = {
    "mv": "FlopCounterMode has no formula for aten.mv (matrix-vector product); archcost counts its MACs",
    "dot": "FlopCounterMode has no formula for aten.dot; archcost counts its MACs",
    "addmv": "FlopCounterMode has no formula for aten.addmv; archcost counts its MACs",
    "bilinear": "FlopCounterMode does not count aten._trilinear (nn.Bilinear); archcost does",
    "conv_transpose": "",
}


# -- building and measuring one model ---------------------------------------------------------------------------
def _tv_classification():
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _tv_other():
    import torchvision.models as tvm

    names = []
    for module in (tvm.detection, tvm.segmentation, tvm.video, tvm.optical_flow):
        names += tvm.list_models(module=module)
    return sorted(names)


def _timm():
    """Every timm architecture, one per family (the module that defines it) in turn, so that a partial run
    covers every family before it covers any twice."""
    from itertools import zip_longest

    import timm

    families: dict[str, list[str]] = {}
    for name in sorted(timm.list_models()):
        families.setdefault(timm.models.model_entrypoint(name).__module__, []).append(name)
    order = zip_longest(*families.values())
    return [name for turn in order for name in turn if name is not None]


SUITES = {"tv-cls": _tv_classification, "tv-other": _tv_other, "timm": _timm}


def _weights(name: str):
    import torchvision.models as tvm

    try:
        return tvm.get_model_weights(name).DEFAULT
    except (ValueError, AttributeError):
        return None


def _tv_input(name: str, weights) -> tuple[int, ...]:
    """The input a torchvision model's weights were evaluated at (its transforms' crop size)."""
    if weights is None:
        return (3, 224, 224)
    t = weights.transforms()
    crop = getattr(t, "crop_size", None) or getattr(t, "resize_size", None) or [224]
    h, w = (crop[0], crop[0]) if len(crop) == 1 else crop[:2]
    if "video" in type(t).__name__.lower() or type(t).__name__ == "VideoClassification":
        frames = max(16, int(weights.meta.get("min_temporal_size", 16) or 16))
        return (3, frames, h, w)
    if name.startswith("raft"):
        return (3, 520, 960)
    return (3, h, w)


def _build(suite: str, name: str):
    import torch

    if suite == "timm":
        import timm

        with torch.device("meta"):
            model = timm.create_model(name, pretrained=False)
        size = tuple(model.pretrained_cfg.get("input_size") or (3, 224, 224))
        return model, size, None
    import inspect

    import torchvision.models as tvm

    weights = _weights(name)
    size = _tv_input(name, weights)
    builder = tvm.get_model_builder(name)
    accepts = inspect.signature(builder).parameters
    kwargs = {}
    if name == "googlenet":
        kwargs["aux_logits"] = False  # the weights' builder drops the auxiliary heads (torchvision's googlenet())
    if name.startswith("vit_") and weights is not None:
        kwargs["image_size"] = size[-1]  # as the weights' builder does (vit_h_14's SWAG weights: 518)
    if "weights_backbone" in accepts:
        kwargs["weights_backbone"] = None  # nothing may download
    try:
        with torch.device("meta"):
            model = builder(weights=None, **kwargs)
    except NotImplementedError:  # a builder that reads tensor values (RegNet's widths): build on the CPU
        with _no_init():
            model = builder(weights=None, **kwargs).to("meta")
    return model, size, weights


class _no_init:
    """Skip torch.nn.init while a model is built on the CPU: only the shapes matter here."""

    def __enter__(self):
        import torch

        self.saved = {}
        for n in dir(torch.nn.init):
            f = getattr(torch.nn.init, n)
            if n.endswith("_") and not n.startswith("_") and callable(f):
                self.saved[n] = f
                setattr(torch.nn.init, n, lambda t, *a, **k: t)
        return self

    def __exit__(self, *exc):
        import torch

        for n, f in self.saved.items():
            setattr(torch.nn.init, n, f)


def _fcm_macs(model, size) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    if size and size[0] == 3 and len(size) == 3 and isinstance(model, torch.nn.Module) and _is_raft(model):
        x = (torch.empty((1, *size), device="meta"), torch.empty((1, *size), device="meta"))
    else:
        x = (torch.empty((1, *size), device="meta"),)
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(*x)
    except AssertionError as exc:
        if "Expected gradient function" not in str(exc):
            raise
        # FlopCounterMode's module tracker asserts when a module returns a leaf that requires grad (eval-mode
        # dropout handing back a Parameter, e.g. a position embedding): count with frozen parameters instead
        # (this benchmark's own meta instance; the counts do not depend on requires_grad)
        model.requires_grad_(False)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(*x)
    flops = counter.get_total_flops()
    return flops // 2


def _is_raft(model) -> bool:
    return type(model).__name__ == "RAFT"


def measure(suite: str, name: str) -> dict:
    """One CSV row for ``name``: archcost's and the reference's figures and the verdict."""
    import torch

    from archcost import analyze

    start = time.perf_counter()
    row = dict.fromkeys(FIELDS, "")
    row.update(suite=suite, model=name)
    try:
        model, size, weights = _build(suite, name)
        model.eval()
    except Exception as exc:  # a model that cannot be built on meta is recorded, not hidden
        row.update(verdict="build error", note=_first_line(exc), seconds=f"{time.perf_counter() - start:.1f}")
        return row
    row["input_size"] = "x".join(map(str, size))
    inputs = [size, size] if _is_raft(model) else size  # RAFT: two images (optical flow)

    def ours() -> None:
        t0 = time.perf_counter()
        try:
            report = analyze(model, inputs)
            row.update(params=report.totals["params"], macs=report.totals["macs"])
            row["uncosted"] = " ".join(sorted({u.op for u in report.unsupported}))
        except Exception as exc:
            row["verdict"] = "archcost error"
            row["note"] = _first_line(exc)
        row["archcost_s"] = f"{time.perf_counter() - t0:.4f}"

    reference = copy.deepcopy(model)  # FlopCounterMode's run is not guarded: a forward that fails midway can
    # leave meta tensors cached on the model (torchvision's anchor cache), which archcost's CPU fallback then reads

    def theirs() -> None:
        t0 = time.perf_counter()
        try:
            row["fcm_macs"] = _fcm_macs(reference, size)
        except Exception as exc:
            row["note"] = (row["note"] + "; " if row["note"] else "") + "FlopCounterMode: " + _first_line(exc)
        row["fcm_s"] = f"{time.perf_counter() - t0:.4f}"

    # the two analyses of one model, side by side in one process; which goes first alternates by name, so the
    # warm-up a first run pays falls on each tool alike over a suite
    for step in (ours, theirs) if sum(map(ord, name)) % 2 == 0 else (theirs, ours):
        step()
    if suite == "tv-cls" and weights is not None:
        row["ref_params"] = weights.meta["num_params"]
        row["ref_macs"] = weights.meta["_ops"]
    elif row["fcm_macs"] != "":
        row["ref_params"] = sum(p.numel() for p in model.parameters())
        row["ref_macs"] = row["fcm_macs"]
    if row["verdict"] == "archcost error" and row["fcm_macs"] == "" and "nonzero" in row["note"]:
        row["verdict"] = "needs data"  # neither tool can run this forward on meta tensors (torch.nonzero)
    if not row["verdict"]:
        row["verdict"] = _verdict(suite, row)
    row["seconds"] = f"{time.perf_counter() - start:.1f}"
    model = None  # noqa: F841  (free it before the next model)
    torch.nn.Module  # noqa: B018  (keep torch imported in the worker)
    return row


def _verdict(suite: str, row: dict) -> str:
    if row["ref_macs"] == "":
        return "reference error"
    if suite == "tv-cls":
        same = int(row["params"]) == int(row["ref_params"]) and round(int(row["macs"]) / 1e9, 3) == float(
            row["ref_macs"]
        )
    else:
        same = int(row["params"]) == int(row["ref_params"]) and int(row["macs"]) == int(row["ref_macs"])
    if same and not row["uncosted"]:
        return "equal"
    if row["uncosted"]:
        return "uncosted"
    return "differs"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200] if text else ''}"


# -- running many models, resumably, with a per-model time limit --------------------------------------------
def _worker(conn) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    while True:
        job = conn.recv()
        if job is None:
            return
        suite, name = job
        try:
            conn.send(measure(suite, name))
        except Exception:  # the harness keeps going; the row says what broke
            row = dict.fromkeys(FIELDS, "")
            row.update(suite=suite, model=name, verdict="harness error", note=traceback.format_exc(limit=1)[-200:])
            conn.send(row)


class _Pool:
    def __init__(self) -> None:
        self.ctx = mp.get_context("spawn")
        self.proc = None

    def _start(self) -> None:
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker, args=(child,), daemon=True)
        self.proc.start()

    def run(self, suite: str, name: str, timeout: float) -> dict:
        if self.proc is None or not self.proc.is_alive():
            self._start()
        self.conn.send((suite, name))
        if self.conn.poll(timeout):
            try:
                return self.conn.recv()
            except EOFError:
                pass
        reason = "timeout" if self.proc.is_alive() else f"worker died (exit {self.proc.exitcode})"
        self.proc.kill()
        self.proc.join()
        self.proc = None
        row = dict.fromkeys(FIELDS, "")
        row.update(suite=suite, model=name, verdict=reason, note=f"limit {timeout:.0f} s")
        return row

    def close(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            self.conn.send(None)
            self.proc.join(5)


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def run(args: argparse.Namespace) -> int:
    path = Path(args.csv)
    done = {(r["suite"], r["model"]) for r in read_rows(path)}
    suites = list(SUITES) if args.suite == "all" else [args.suite]
    jobs = [(s, n) for s in suites for n in SUITES[s]() if (s, n) not in done]
    if args.only:
        jobs = [(s, n) for s, n in jobs if any(n == o for o in args.only)]
    jobs = jobs[: args.limit] if args.limit else jobs
    new = not path.exists()
    pool = _Pool()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        try:
            for i, (suite, name) in enumerate(jobs):
                row = pool.run(suite, name, args.timeout)
                writer.writerow(row)
                f.flush()
                print(f"[{i + 1}/{len(jobs)}] {suite} {name}: {row['verdict']} {row['uncosted']}", flush=True)
        finally:
            pool.close()
    return 0


# -- the report -----------------------------------------------------------------------------------------------------
def summary(rows: list[dict]) -> dict[str, Counter]:
    by: dict[str, Counter] = {}
    for r in rows:
        by.setdefault(r["suite"], Counter())[r["verdict"]] += 1
    return by


def report(args: argparse.Namespace) -> int:
    rows = read_rows(Path(args.csv))
    before = read_rows(Path(args.before)) if args.before else []
    explain = _explanations()
    lines = [
        "# Conformance: archcost against torchvision's published figures and FlopCounterMode",
        "",
        "Written by `benchmarks/conformance.py report` from "
        f"`{Path(args.csv).relative_to(ROOT) if Path(args.csv).is_absolute() else args.csv}` "
        "(one row per model: both counts, the verdict, the ops archcost could not cost). "
        "How each suite is built and what it is compared with is in the script's docstring. "
        "MACs: archcost's `macs`; FlopCounterMode's FLOPs / 2 (it counts 2 per multiply-accumulate).",
        "",
        "| suite | listed | run | equal | differs | uncosted | other (see below) | equal before the change |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    now, then = summary(rows), summary(before)
    for suite in SUITES:
        c = now.get(suite)
        if not c:
            continue
        total = sum(c.values())
        errors = total - c["equal"] - c["differs"] - c["uncosted"]
        b = then.get(suite)
        ran = {r["model"] for r in rows if r["suite"] == suite}
        same = [r for r in before if r["suite"] == suite and r["model"] in ran]
        was = f"{sum(r['verdict'] == 'equal' for r in same)} of the same {len(same)}" if b else "not run"
        lines.append(
            f"| {suite} | {len(SUITES[suite]())} | {total} | {c['equal']} ({100 * c['equal'] / total:.1f}%) | "
            f"{c['differs']} | {c['uncosted']} | {errors} | {was} |"
        )
    timed = [r for r in rows if r.get("archcost_s") and r.get("fcm_s") and r["verdict"] in ("equal", "differs")]
    for suite in SUITES:
        pairs = [(float(r["archcost_s"]), float(r["fcm_s"])) for r in timed if r["suite"] == suite]
        if pairs:
            ours, theirs = sum(a for a, _ in pairs), sum(b for _, b in pairs)
            ratios = sorted(a / b for a, b in pairs if b > 0)
            lines += [
                "",
                f"Analysis time, {suite} ({len(pairs)} models analysed by both, each pair side by side in one "
                f"process, the order alternating): archcost {ours:.1f} s, FlopCounterMode on meta {theirs:.1f} s, "
                f"**{ours / theirs:.2f}x** in total; per model median {ratios[len(ratios) // 2]:.2f}x.",
            ]
    uncosted = Counter(op for r in rows for op in r["uncosted"].split())
    if uncosted:
        lines += [
            "",
            "Ops still not costed, by number of models: " + ", ".join(f"{o} {n}" for o, n in uncosted.most_common()),
        ]
    lines += ["", *NOTES]
    lines += ["", "## Every model that is not equal", "", "| suite | model | verdict | archcost | reference | why |"]
    lines.append("| --- | --- | --- | ---: | ---: | --- |")
    for r in rows:
        if r["verdict"] == "equal":
            continue
        ours = f"{r['params']} params, {r['macs']} MACs" if r["macs"] else ""
        ref = f"{r['ref_params']} params, {r['ref_macs']} {'GMACs' if r['suite'] == 'tv-cls' else 'MACs'}"
        why = explain.get(r["model"]) or _auto_reason(r)
        lines.append(
            f"| {r['suite']} | {r['model']} | {r['verdict']} | {ours} | {ref if r['ref_macs'] else ''} | {why} |"
        )
    Path(args.output).write_text("\n".join(lines) + "\n")
    return 0


NOTES = [
    "Verdicts: `equal` (tv-cls: torchvision's published params and GMACs at 3 decimals; other suites: "
    "FlopCounterMode's MACs and the model's parameter count, exactly, and nothing uncosted); `differs`; "
    "`uncosted` (archcost listed an op it could not cost); `needs data` (the forward cannot run on meta "
    "tensors, for archcost and FlopCounterMode alike: detection models call `torch.nonzero`); "
    "`not compared`; `timeout` (over the per-model limit on a loaded machine).",
    "",
    "Where FlopCounterMode is the one that is wrong: it has no formula for `aten.mv`, `aten.dot`, "
    "`aten.addmv` or `aten._trilinear` (nn.Bilinear) and counts them 0, and on the CPU it counts 0 for "
    "`F.scaled_dot_product_attention` (pytorch/pytorch#195460) and for an LSTM that oneDNN runs; this "
    "benchmark runs it on the meta device, where attention and LSTMs decompose into `bmm`/`mm` and agree.",
]


def _auto_reason(r: dict) -> str:
    parts = []
    if r["uncosted"]:
        parts.append(f"not costed: {r['uncosted']}")
    if r["note"]:
        parts.append(r["note"].replace("|", "/"))
    return "; ".join(parts)


def _explanations() -> dict[str, str]:
    """Per-model explanations, written after reading each difference (see the report)."""
    path = ROOT / "benchmarks" / "conformance_explained.csv"
    if not path.exists():
        return {}
    with path.open(newline="") as f:
        return {r["model"]: r["why"] for r in csv.DictReader(f)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(required=True)
    p = sub.add_parser("run", help="measure models, appending to the CSV")
    p.add_argument("--suite", choices=[*SUITES, "all"], default="all")
    p.add_argument("--csv", default=str(ROOT / "reports" / "conformance.csv"))
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per model")
    p.add_argument("--limit", type=int, default=0, help="at most this many models this run (0: all)")
    p.add_argument("--only", nargs="*", help="only these model names")
    p.set_defaults(func=run)
    p = sub.add_parser("report", help="write reports/conformance.md from the CSV")
    p.add_argument("--csv", default=str(ROOT / "reports" / "conformance.csv"))
    p.add_argument("--before", help="a CSV of the same run on the code before the change")
    p.add_argument("--output", default=str(ROOT / "reports" / "conformance.md"))
    p.set_defaults(func=report)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
