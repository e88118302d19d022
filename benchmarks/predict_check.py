"""How good is `archcost predict`? Predicted against measured CPU latency, for models the calibration never saw
(issue 28).

The device profile is fitted on a designed set of single-layer kernels (``archcost.predict.calibrate``), never on
a model, so every model here is held out from it by construction. The truth is a plain timed forward of each
model (random weights, ``torch.inference_mode``, ``archcost.profiling.timing.measure``). Calibration kernels and
models are timed **interleaved**, in rounds: each round times every kernel once and every (model, batch) once,
and the medians over rounds are the calibration points and the truth. A drift of the shared machine's speed over
the minutes of a run then moves both alike instead of entering the error.

Two baselines on the same measurements:

- **MACs**: latency = c x MACs, c fitted leave-one-family-out (the geometric mean of latency / MACs over the
  models of the other families), the "operation count predicts time" of Canziani & Culurciello (2016).
- **roofline**: one whole-model roofline, max(FLOPs / peak FLOP/s, traffic bytes / bandwidth), with the device
  roofs archcost's `profile` measures (``archcost.profiling.roofline.device_peaks``) and the model's traffic as
  `profile` counts it (every row's inputs, parameters and output once).

Each quoted figure: the relative error pred / measured - 1 per (model, batch, threads); its median absolute
value, the share within +-10% and +-20%, overall and per family.

    python benchmarks/predict_check.py                       # zoo + EXTERNAL, batch 1 and 8, 1 and 2 threads
    python benchmarks/predict_check.py --smoke --no-write    # three models, smoke kernels, one round
    python benchmarks/predict_check.py --models resnet18,vgg16 --threads 2 --batch-sizes 1

Writes reports/predict_check.md and reports/predict_check.json (every point), and the device profiles it fitted
to reports/predict/cpu-{T}t.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports"

#: models written outside the zoo, as users bring them (the test suite's and the users' cases'), with inputs
EXTERNAL = {
    "tests/cost/test_receptive.py:UNet": {"input_size": (1, 64, 64)},
    "tests/cost/test_training_cases.py:TinyGPT": {"input_size": "int64:16", "options": {"functional": False}},
    "tests/fixtures/workloads.py:TextCNN": {"input_size": "int64:16"},
    "tests/fixtures/usermodels.py:tiny_resnet": {"input_size": (3, 32, 32)},
    "../shared/cases/03_mha_hybrid_cnn.py:build": {"input_size": (3, 32, 32)},
    "../shared/cases/04_sdpa_attention.py:build": {"input_size": (16, 8, 8)},
    "../shared/cases/06_cnn_lstm_head.py:build": {"input_size": (1, 16, 32)},
}


def _family(spec: str) -> str:
    from archcost.zoo import get_meta, list_models

    return get_meta(spec).family if spec in list_models() else "external"


def _load(work, batch: int):
    """(the CPU model of the loaded ``work`` (random weights), its inputs at ``batch``, the analysis at ``batch``).
    The module is the workload's own, shared by its batch sizes (the whole zoo twice over does not fit in 24 GiB)."""
    from archcost.cost import analyze

    at = work.with_batch(batch)
    report = analyze(at)
    args, kwargs = at.tensors("cpu")
    return at.module.eval(), args, kwargs, report


def load_all(specs: dict[str, dict], batch_sizes: list[int]) -> tuple[dict, dict]:
    """({(spec, batch): ``_load``'s tuple}, {spec: why it could not be loaded}): each model loaded once, on the CPU."""
    from archcost.cost.workload import Workload

    loaded, skipped = {}, {}
    for spec, inputs in specs.items():
        try:
            work = Workload.of(spec, **inputs).load("cpu")
            for b in batch_sizes:
                loaded[(spec, b)] = _load(work, b)
        except Exception as exc:  # a benchmark: say which model and why, go on
            skipped[spec] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return loaded, skipped


def _median(xs: list[float]) -> float:
    return statistics.median(xs)


def _stats(errors: list[float]) -> dict:
    a = [abs(e) for e in errors]
    if not a:
        return {"n": 0}
    return {
        "n": len(a),
        "median_abs_error": _median(a),
        "within_10": sum(x <= 0.10 for x in a) / len(a),
        "within_20": sum(x <= 0.20 for x in a) / len(a),
    }


def run(args: argparse.Namespace) -> dict:
    from archcost.predict.calibrate import TIMING, build_profile, features, kernels, time_kernel
    from archcost.predict.model import predict_report
    from archcost.profiling.roofline import layer_traffic_bytes
    from archcost.profiling.sweep import measurement_setup
    from archcost.profiling.timing import measure
    from archcost.zoo import list_models

    specs: dict[str, dict] = {}
    if args.models:
        for m in args.models.split(","):
            specs[m.strip()] = EXTERNAL.get(m.strip(), {})
    else:
        specs = {m: {} for m in list_models()} | dict(EXTERNAL)
    mode = "smoke" if args.smoke else "full"
    kset = kernels(mode)
    cpu = torch.device("cpu")
    points_out, profiles = [], {}
    loaded, skipped = load_all(specs, args.batch_sizes)  # once: the analysis does not depend on the threads
    for threads in args.threads:
        with measurement_setup(cpu, threads, "float32") as env:
            feats = {k.key: features(k, "float32") for k in kset}
            ktimes: dict[str, list[float]] = {k.key: [] for k in kset}
            mtimes: dict[tuple[str, int], list[float]] = {key: [] for key in loaded}
            warm, per, reps = TIMING[mode]
            for r in range(args.rounds):
                t0 = time.perf_counter()
                for k in kset:
                    ktimes[k.key].append(time_kernel(k, cpu, torch.float32, mode)[0])
                for key, (model, a, kw, _) in loaded.items():
                    with torch.inference_mode():
                        t = measure(lambda m=model, a=a, kw=kw: m(*a, **kw), cpu, warmup_s=0.2 if r == 0 else 0.02,
                                    min_time_s=args.min_time_s, repeats=3)  # fmt: skip
                    mtimes[key].append(t.stats.median_s)
                print(f"threads {threads}: round {r + 1}/{args.rounds} in {time.perf_counter() - t0:.0f} s",
                      file=sys.stderr)  # fmt: skip
            from archcost.predict.profile import CalibrationPoint

            pts = []
            for k in kset:
                kind, flops, nbytes, rows = feats[k.key]
                ts = ktimes[k.key]
                pts.append(CalibrationPoint(k.key, kind, flops, nbytes, _median(ts), min(ts), max(ts),
                                            rows if k.block else ()))  # fmt: skip
            from archcost import __version__

            profile = build_profile(pts, env, "cpu", "float32", mode, __version__)
            profiles[threads] = profile
            peaks = _peaks(threads)
            for (spec, b), (_, _, _, report) in loaded.items():
                rows = predict_report(report, profile, b)
                traffic = layer_traffic_bytes(report.layers, 4)
                flops = report.totals["flops"]
                roof = max(flops / peaks[0], traffic / peaks[1]) if peaks else math.nan
                points_out.append({
                    "model": spec, "family": _family(spec), "batch_size": b, "threads": threads,
                    "measured_s": _median(mtimes[(spec, b)]), "measured_rounds_s": mtimes[(spec, b)],
                    "predicted_s": sum(r.predicted_ms for r in rows) / 1e3, "macs": report.totals["macs"],
                    "flops": flops, "traffic_bytes": traffic, "roofline_s": roof,
                    "fallback_kinds": sorted({r.kind for r in rows if r.fallback}),
                })  # fmt: skip
            if not args.no_write:
                out = REPORTS / "predict" / f"cpu-{threads}t.json"
                out.parent.mkdir(parents=True, exist_ok=True)
                profile.save(out)
    _macs_baseline(points_out)
    fit = {t: {k: vars(v.error) for k, v in p.kinds.items()} for t, p in profiles.items()}
    return {"points": points_out, "skipped": skipped, "mode": mode, "rounds": args.rounds, "profile_fit": fit}


def _peaks(threads: int) -> tuple[float, float] | None:
    """(FLOP/s, bytes/s) roofs as `archcost profile` measures them at ``threads`` (cached per machine)."""
    from archcost.profiling.roofline import device_peaks, peaks_key

    key = peaks_key(platform.processor() or "cpu", "cpu", "float32", threads, torch.__version__)
    p = device_peaks(torch.device("cpu"), torch.float32, key, threads=threads)
    return (p.flops_per_s, p.bytes_per_s) if p.flops_per_s and p.bytes_per_s else None


def _macs_baseline(points: list[dict]) -> None:
    """``macs_s`` on each point: c x MACs with c the geometric mean of measured / MACs over the points of the
    other families at the same batch size and threads (leave-one-family-out)."""
    for p in points:
        others = [q for q in points if q["family"] != p["family"] and q["batch_size"] == p["batch_size"]
                  and q["threads"] == p["threads"] and q["macs"] > 0]  # fmt: skip
        if not others or p["macs"] <= 0:
            p["macs_s"] = math.nan
            continue
        log_c = statistics.fmean(math.log(q["measured_s"] / q["macs"]) for q in others)
        p["macs_s"] = math.exp(log_c) * p["macs"]


def summarise(result: dict) -> dict:
    pts = result["points"]
    out = {}
    for name, field in (("archcost predict", "predicted_s"), ("MACs (fitted, leave-one-family-out)", "macs_s"),
                        ("whole-model roofline", "roofline_s")):  # fmt: skip
        errs = [p[field] / p["measured_s"] - 1 for p in pts if not math.isnan(p[field])]
        out[name] = {"all": _stats(errs)}
        for key in sorted({(p["batch_size"], p["threads"]) for p in pts}):
            errs_k = [p[field] / p["measured_s"] - 1 for p in pts
                      if (p["batch_size"], p["threads"]) == key and not math.isnan(p[field])]  # fmt: skip
            out[name][f"batch {key[0]}, {key[1]} thread(s)"] = _stats(errs_k)
    fam = {}
    for f in sorted({p["family"] for p in pts}):
        fam[f] = _stats([p["predicted_s"] / p["measured_s"] - 1 for p in pts if p["family"] == f])
    out["per family (archcost predict)"] = fam
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def markdown(result: dict, summary: dict, command: str) -> str:
    lines = [
        "# Predicted against measured latency (benchmarks/predict_check.py)",
        "",
        f"Made by `{command}` on {time.strftime('%Y-%m-%d')}, torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (1-minute load average at "
        f"the end {os.getloadavg()[0]:.1f}, the benchmark's own threads included), kernels `{result['mode']}`, "
        f"{result['rounds']} interleaved rounds.",
        "",
        "Relative error = predicted / measured - 1 per (model, batch size, threads). No model was used to "
        "calibrate archcost's profile (single-layer kernels only); the MACs baseline is fitted leave-one-family-out.",
        "",
        "| predictor | slice | n | median abs error | within +-10% | within +-20% |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, slices in summary.items():
        if name.startswith("per family"):
            continue
        for sl, s in slices.items():
            if s["n"]:
                lines.append(f"| {name} | {sl} | {s['n']} | {_pct(s['median_abs_error'])} | {_pct(s['within_10'])} "
                             f"| {_pct(s['within_20'])} |")  # fmt: skip
    lines += ["", "Per family (archcost predict, every batch size and thread count):", ""]
    lines += ["| family | n | median abs error | within +-10% | within +-20% |", "|---|---:|---:|---:|---:|"]
    for f, s in summary["per family (archcost predict)"].items():
        lines.append(f"| {f} | {s['n']} | {_pct(s['median_abs_error'])} | {_pct(s['within_10'])} | "
                     f"{_pct(s['within_20'])} |")  # fmt: skip
    if result["skipped"]:
        lines += ["", "Left out (could not be loaded here): " + "; ".join(f"{k} ({v})" for k, v in
                                                                       result["skipped"].items())]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", help="comma-separated specs (default: the zoo and EXTERNAL)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min-time-s", type=float, default=0.05, help="seconds per timed sample of a model")
    ap.add_argument("--smoke", action="store_true", help="three models, smoke kernels, one round")
    ap.add_argument("--no-write", action="store_true", help="print the summary, write nothing")
    args = ap.parse_args(argv)
    if args.smoke:
        args.models = args.models or "resnet18,mobilenet_v2,tests/fixtures/workloads.py:TextCNN"
        args.rounds, args.threads, args.batch_sizes = 1, args.threads[:1], args.batch_sizes[:1]
    command = "python benchmarks/predict_check.py " + " ".join(argv if argv is not None else sys.argv[1:])
    result = run(args)
    summary = summarise(result)
    text = markdown(result, summary, command.strip())
    if args.no_write:
        print(text)
        return 0
    (REPORTS / "predict_check.json").write_text(json.dumps({**result, "summary": summary, "command": command},
                                                           indent=1, default=str) + "\n")  # fmt: skip
    (REPORTS / "predict_check.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
