"""How good is `archcost predict`? Predicted against measured CPU latency, for models the calibration never saw
(issue 28).

The device profile is fitted on a designed set of single-layer kernels and designed blocks
(``archcost.predict.calibrate``, ``archcost.predict.blocks``), never on a model, so every model here is held out
from it by construction. The truth is a plain timed forward of each model (random weights,
``torch.inference_mode``, ``archcost.profiling.timing.measure``). Calibration kernels and models are timed
**interleaved**, in rounds: each round is a **fresh process** (``--worker``) that times every kernel once and then
every (model, batch) in ``--passes`` passes (each pass times every model once; the round's time of a model is the
median of its passes), and the medians over rounds are the calibration points and the truth. The thread counts take
turns round by round. Passes, because a model's timing here is off together with the models timed just before and
after it (a slow spell of the shared machine lasting seconds: in session 12's run, adjacent models of different
families had deviations from their medians correlated by +0.1 to +0.6, models ten apart by about 0), so one
contiguous block of samples per model takes one spell whole. The first pass warms a model up until settled and
calibrates its iterations; a later pass reuses them after one warm-up call. Every pass also records what the
machine took meanwhile (``archcost.profiling.timing``: the hypervisor's steal time from /proc/stat and the
process's CPU seconds per wall second), and the report gives the truth's resolution with the stolen time taken
out. A drift of the shared machine's speed over the
minutes of a run moves kernels and models alike, and no single process's state (identical processes here differ
by tens of percent: benchmarks/profile_paired.py) decides the truth or the profile. The report also states the
truth's own resolution: each process's timing of a model against the median of the other processes' timings of
it, and one pass against the other passes of its process.

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
from collections.abc import Callable
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


def _in_process(at) -> tuple:
    """(the CPU model (random weights), its args, its kwargs, its analysis) of the workload ``at``."""
    from archcost.cost import analyze

    return (at.module.eval(), *at.tensors("cpu"), analyze(at))


def load_all(specs: dict[str, dict], batch_sizes: list[int], keep: Callable = _in_process) -> tuple[dict, dict]:
    """({(spec, batch): ``keep`` of its workload at that batch}, {spec: why it could not be loaded}). ``keep``
    defaults to ``_in_process`` (benchmarks/predict_context.py times models and layers in this process). The
    module is the workload's own, shared by its batch sizes (the whole zoo twice over does not fit in 24 GiB)."""
    from archcost.cost.workload import Workload

    loaded, skipped = {}, {}
    for spec, inputs in specs.items():
        try:
            work = Workload.of(spec, **inputs).load("cpu")
            for b in batch_sizes:
                loaded[(spec, b)] = keep(work.with_batch(b))
        except Exception as exc:  # a benchmark: say which model and why, go on
            skipped[spec] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return loaded, skipped


def analyse_all(specs: dict[str, dict], batch_sizes: list[int]) -> tuple[dict, dict]:
    """``load_all`` keeping each workload's analysis only: the rounds load and time their own copies."""
    from archcost.cost import analyze

    return load_all(specs, batch_sizes, analyze)


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


def worker(job_path: str, out_path: str) -> int:
    """One round, in a process of its own: time every kernel once, then every (model, batch) once per pass (the job's
    ``passes``), at the job's threads; write {"kernels": {key: s}, "models": {"spec|batch": s, the median of the
    passes}, "model_passes": {"spec|batch": [s per pass]}, ...} to ``out_path``. A fresh process per
    round, because one process's timings agree with each other better than with another's (process state:
    identical processes here differ by tens of percent, benchmarks/profile_paired.py)."""
    from archcost.predict.calibrate import kernels, time_kernel
    from archcost.profiling.environment import heap_state
    from archcost.profiling.sweep import measurement_setup
    from archcost.profiling.timing import cpu_ticks, measure, steal_between

    job = json.loads(Path(job_path).read_text())
    cpu = torch.device("cpu")
    t0 = time.perf_counter()
    specs = {}
    for spec, inputs in job["specs"].items():  # JSON gave lists for the input sizes
        specs[spec] = {k: tuple(v) if isinstance(v, list) else v for k, v in inputs.items()}
    loaded, skipped = load_all(specs, job["batch_sizes"], lambda at: (at.module.eval(), *at.tensors("cpu")))
    if skipped:  # the driver analysed them all: a model that loads there and not here is a fault of the run
        raise RuntimeError(f"the round could not load {skipped}")
    models = {f"{spec}|{b}": v for (spec, b), v in loaded.items()}
    loaded_s = time.perf_counter() - t0
    ktimes, mtimes, states, ksteal = {}, {}, {}, {}
    with measurement_setup(cpu, job["threads"], "float32"):
        for k in kernels(job["mode"]):
            ticks = cpu_ticks()
            ktimes[k.key] = time_kernel(k, cpu, torch.float32, job["mode"])[0]
            ksteal[k.key] = steal_between(ticks, cpu_ticks())  # over the kernel's build, warm-up and samples
        passes: dict[str, list[float]] = {key: [] for key in models}
        steal: dict[str, list] = {key: [] for key in models}  # per pass: [stolen share, process CPU s per wall s]
        counts: dict[str, list[float]] = {key: [0.0, 0.0, 0.0, 0.0, 0] for key in models}
        iterations: dict[str, int] = {}
        repeats = max(1, round(3 / job["passes"]))  # three samples per model per round, however many passes
        for p in range(job["passes"]):  # each pass times every model once: a slow spell of the machine meets
            for key, (model, a, kw) in models.items():  # one pass's sample of a model, not all of them
                usage: list = []  # the process's resource usage at the start and the end of the timed samples
                # the first pass warms up until settled and calibrates the iterations; a later pass reuses them
                # after one warm-up call (the model ran in this process already)
                again = {"warmup_s": 0.0, "warmup_window": 1, "iterations": iterations[key]} if p else {}
                with torch.inference_mode():
                    t = measure(lambda m=model, a=a, kw=kw: m(*a, **kw), cpu, **({"warmup_s": 0.2} | again),
                                min_time_s=job["min_time_s"], repeats=repeats,
                                on_timed=lambda _, u=usage: u.append(_usage()))  # fmt: skip
                iterations.setdefault(key, t.iterations)
                passes[key].append(t.stats.median_s)
                steal[key].append([t.steal_fraction, t.process_cpu_per_wall])
                c = counts[key]
                for i, (x0, x1) in enumerate(zip(*usage, strict=True)):
                    c[i] += x1 - x0
                c[4] += repeats * t.iterations
        for key, (faults, voluntary, involuntary, wall, calls) in counts.items():
            mtimes[key] = _median(passes[key])
            states[key] = {"minor_faults_per_call": faults / calls, "involuntary_switches_per_s": involuntary / wall,
                           "voluntary_switches_per_s": voluntary / wall, "heap": heap_state()}  # fmt: skip
    out = {"kernels": ktimes, "models": mtimes, "model_passes": passes, "model_steal": steal, "kernel_steal": ksteal,
           "load_s": loaded_s,
           "time_s": time.perf_counter() - t0 - loaded_s, "pid": os.getpid(), "model_states": states}  # fmt: skip
    Path(out_path).write_text(json.dumps(out))
    return 0


def _usage() -> tuple[int, int, int, float]:
    """(minor page faults, voluntary and involuntary context switches of this process so far, ``perf_counter``):
    ``getrusage(2)``; the rounds record them around each model's timed samples, to tell a process whose heap
    faults its outputs in, or that the machine preempted, from one that ran undisturbed."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_minflt, r.ru_nvcsw, r.ru_nivcsw, time.perf_counter()


def _round(job: dict, tmp: Path, name: str) -> dict:
    """Run one round (``worker``) in a fresh Python process and read what it timed."""
    import subprocess

    job_path, out_path = tmp / f"{name}.job.json", tmp / f"{name}.out.json"
    job_path.write_text(json.dumps(job))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(job_path), str(out_path)]
    subprocess.run(cmd, check=True, cwd=ROOT)
    return json.loads(out_path.read_text())


def _time_rounds(args: argparse.Namespace, runnable: dict, reports: dict, mode: str) -> tuple[dict, ...]:
    """({threads: {kernel key: [seconds per round]}}, {threads: {(spec, batch): [seconds per round]}}): the
    rounds, each a fresh process (``_round``), the thread counts taking turns; {threads: {(spec, batch): [the
    process's page faults and context switches while it timed the model (``worker``), per round]}}; and
    {threads: {(spec, batch): [[seconds per pass] per round]}} (a round's seconds are the median of its passes);
    {threads: {(spec, batch): [[[stolen share, process CPU s per wall s] per pass] per round]}} and {threads: {kernel
    key: [stolen share per round]}} (``timing.cpu_ticks``: what the hypervisor took meanwhile)."""
    import tempfile

    from archcost.predict.calibrate import kernels

    ktimes = {t: {k.key: [] for k in kernels(mode)} for t in args.threads}
    mtimes = {t: {key: [] for key in reports} for t in args.threads}
    states: dict = {t: {key: [] for key in reports} for t in args.threads}
    passes: dict = {t: {key: [] for key in reports} for t in args.threads}
    steal: dict = {t: {key: [] for key in reports} for t in args.threads}
    ksteal: dict = {t: {k.key: [] for k in kernels(mode)} for t in args.threads}
    with tempfile.TemporaryDirectory(prefix="predict_check-") as tmp:
        for r in range(args.rounds):  # rounds outermost: the thread counts take turns, so drift reaches both
            for threads in args.threads:
                job = {"specs": runnable, "batch_sizes": args.batch_sizes, "threads": threads, "mode": mode,
                       "min_time_s": args.min_time_s, "passes": args.passes}  # fmt: skip
                got = _round(job, Path(tmp), f"t{threads}-r{r}")
                for key, v in got["kernels"].items():
                    ktimes[threads][key].append(v)
                    ksteal[threads][key].append(got["kernel_steal"][key])
                for spec, b in reports:
                    mtimes[threads][(spec, b)].append(got["models"][f"{spec}|{b}"])
                    states[threads][(spec, b)].append(got["model_states"][f"{spec}|{b}"])
                    passes[threads][(spec, b)].append(got["model_passes"][f"{spec}|{b}"])
                    steal[threads][(spec, b)].append(got["model_steal"][f"{spec}|{b}"])
                print(f"round {r + 1}/{args.rounds}, {threads} thread(s): a fresh process, loaded in "
                      f"{got['load_s']:.0f} s, timed in {got['time_s']:.0f} s", file=sys.stderr)  # fmt: skip
    return ktimes, mtimes, states, passes, steal, ksteal


def _profiles_timed(args: argparse.Namespace, ktimes: dict, mode: str) -> dict:
    """{threads: the profile fitted to the rounds' median kernel times (p10, p90: their least and most)}."""
    from archcost import __version__
    from archcost.predict.calibrate import build_profile, kernels, point_of
    from archcost.profiling.sweep import measurement_setup

    profiles = {}
    for threads in args.threads:
        with measurement_setup(torch.device("cpu"), threads, "float32") as env:  # the environment at these threads
            pass
        pts = [point_of(k, "float32", _median(ts), min(ts), max(ts)) for k in kernels(mode)
               if (ts := ktimes[threads][k.key])]  # fmt: skip
        profiles[threads] = build_profile(pts, env, "cpu", "float32", mode, __version__)
    return profiles


def _stored(args: argparse.Namespace, reports: dict) -> tuple[dict, dict, dict]:
    """A previous run's measurements, for ``--refit``: ({threads: its profile refitted by this archcost
    (``calibrate.refit``)}, {threads: {(spec, batch): [seconds per round]}}, the run's JSON), read from
    ``args.refit`` (a predict_check.json) and the profiles beside it (``predict/cpu-{T}t.json``)."""
    from archcost.predict.calibrate import refit
    from archcost.predict.profile import load_profile

    old = json.loads(Path(args.refit).read_text())
    profiles, mtimes = {}, {}
    for threads in args.threads:
        profiles[threads] = refit(load_profile(Path(args.refit).parent / "predict" / f"cpu-{threads}t.json"))
        mtimes[threads] = {(p["model"], p["batch_size"]): p["measured_rounds_s"] for p in old["points"]
                           if p["threads"] == threads and (p["model"], p["batch_size"]) in reports}  # fmt: skip
    return profiles, mtimes, old


def _one_process_profiles(profile, kernel_rounds: dict[str, list[float]]) -> list:
    """One profile per round: ``profile``'s points at that round's time alone (p10 = p90 = it), fitted again: what
    ``archcost calibrate`` in one process would have given, beside the median over processes that ``profile`` is
    (``calibrate --processes N``)."""
    import dataclasses

    from archcost.predict.calibrate import with_points

    counts = {len(ts) for ts in kernel_rounds.values()}
    if len(counts) != 1 or min(counts) < 2:
        return []
    out = []
    for i in range(counts.pop()):
        pts = [dataclasses.replace(p, time_s=(t := kernel_rounds[p.key][i]), p10_s=t, p90_s=t) for p in profile.points
               if p.key in kernel_rounds]  # fmt: skip
        out.append(with_points(profile, pts))
    return out


def run(args: argparse.Namespace) -> dict:
    from archcost.predict.model import predict_report
    from archcost.profiling.environment import huge_pages
    from archcost.profiling.roofline import layer_traffic_bytes
    from archcost.zoo import list_models

    specs: dict[str, dict] = {}
    if args.models:
        for m in args.models.split(","):
            specs[m.strip()] = EXTERNAL.get(m.strip(), {})
    else:
        specs = {m: {} for m in list_models()} | dict(EXTERNAL)
    mode = "smoke" if args.smoke else "full"
    reports, skipped = analyse_all(specs, args.batch_sizes)  # once: the analysis does not depend on the threads
    if args.refit:
        profiles, mtimes, old = _stored(args, reports)
        mode, rounds, measured_by = profiles[args.threads[0]].mode, int(old["rounds"]), old.get("measured_by")
        roofs = {(p["model"], p["batch_size"], p["threads"]): p["roofline_s"] for p in old["points"]}
        measured_by = measured_by or f"`{old['command'].strip()}`"
        ktimes = {int(t): v for t, v in old.get("kernel_rounds_s", {}).items()}
        thp, passes_per_round = old.get("huge_pages"), old.get("passes", 1)
        states = {t: {(p["model"], p["batch_size"]): p.get("process_states_rounds", []) for p in old["points"]
                      if p["threads"] == t} for t in args.threads}  # fmt: skip
        passes = {t: {(p["model"], p["batch_size"]): p.get("measured_passes_rounds_s", []) for p in old["points"]
                      if p["threads"] == t} for t in args.threads}  # fmt: skip
        steal = {t: {(p["model"], p["batch_size"]): p.get("steal_passes_rounds", []) for p in old["points"]
                     if p["threads"] == t} for t in args.threads}  # fmt: skip
        ksteal = {int(t): v for t, v in old.get("kernel_steal_rounds", {}).items()}
    else:
        runnable = {s: v for s, v in specs.items() if s not in skipped}
        ktimes, mtimes, states, passes, steal, ksteal = _time_rounds(args, runnable, reports, mode)
        profiles, rounds, roofs, measured_by = _profiles_timed(args, ktimes, mode), args.rounds, None, None
        thp = dict(zip(("mode", "torch_allocator"), huge_pages(), strict=True))  # the workers inherit it
        passes_per_round = args.passes
    points_out = []
    for threads, profile in profiles.items():
        peaks = None if roofs else _peaks(threads)
        singles = _one_process_profiles(profile, ktimes.get(threads, {}))
        for (spec, b), report in reports.items():
            if (spec, b) not in mtimes[threads]:
                continue
            rows = predict_report(report, profile, b)
            traffic = layer_traffic_bytes(report.layers, 4)
            flops = report.totals["flops"]
            roof = (
                roofs.get((spec, b, threads), math.nan)
                if roofs
                else (max(flops / peaks[0], traffic / peaks[1]) if peaks else math.nan)
            )
            points_out.append({
                "model": spec, "family": _family(spec), "batch_size": b, "threads": threads,
                "measured_s": _median(mtimes[threads][(spec, b)]), "measured_rounds_s": mtimes[threads][(spec, b)],
                "process_states_rounds": states.get(threads, {}).get((spec, b), []),
                "measured_passes_rounds_s": passes.get(threads, {}).get((spec, b), []),
                "steal_passes_rounds": steal.get(threads, {}).get((spec, b), []),
                "predicted_s": sum(r.predicted_ms for r in rows) / 1e3, "macs": report.totals["macs"],
                "flops": flops, "traffic_bytes": traffic, "roofline_s": roof,
                "fallback_kinds": sorted({r.kind for r in rows if r.fallback}),
                "predicted_one_process_s": [sum(r.predicted_ms for r in predict_report(report, one, b)) / 1e3
                                            for one in singles],
            })  # fmt: skip
        if not args.no_write:
            out = REPORTS / "predict" / f"cpu-{threads}t.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            profile.save(out)
    _macs_baseline(points_out)
    fit = {t: {k: vars(v.error) for k, v in p.kinds.items()} for t, p in profiles.items()}
    return {"points": points_out, "skipped": skipped, "mode": mode, "rounds": rounds, "profile_fit": fit,
            "huge_pages": thp, "passes": passes_per_round, "cpus": old.get("cpus") if args.refit else os.cpu_count(),
            "measured_by": measured_by, "kernel_rounds_s": ktimes, "kernel_steal_rounds": ksteal,
            "device_name": profiles[args.threads[0]].device_name if profiles else None}  # fmt: skip


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


def _steal_free(point: dict, cpus: int | None) -> list[float]:
    """A point's time per round with the hypervisor's share taken out: each pass's seconds x (1 - the stolen share
    of its threads' ticks), the median over the round's passes. The stolen share of all ``cpus``' ticks is put on
    the point's threads alone (an idle virtual CPU is not stolen from: it does not ask to run). [] without records."""
    out = []
    for ts, st in zip(point.get("measured_passes_rounds_s", []), point.get("steal_passes_rounds", []), strict=False):
        if len(ts) != len(st) or not cpus or any(x[0] is None for x in st):
            return []
        out.append(_median([t * (1 - min(1.0, x[0] * cpus / point["threads"])) for t, x in zip(ts, st, strict=True)]))
    return out


#: resampled medians per point in ``_perfect_predictor``
PERFECT_DRAWS = 200


def _perfect_predictor(pts: list[dict], draws: int = PERFECT_DRAWS, seed: int = 0) -> dict[str, list[float]]:
    """{slice: errors} a predictor that knew each model's true latency would make against the median of the rounds'
    processes: per slice, every process's log deviation from its point's mean log time (times sqrt(n / (n - 1)), the
    spread of one process rather than of a deviation from a mean that includes it), resampled ``draws`` times per
    point into medians of as many processes as the point had. The goal's reach on this machine with this many rounds,
    on the assumption that processes deviate independently of each other and of the model."""
    import random

    rng = random.Random(seed)
    pooled: dict[str, list[float]] = {}
    for p in pts:
        logs = [math.log(t) for t in p["measured_rounds_s"]]
        if len(logs) < 3:
            continue
        mean, scale = sum(logs) / len(logs), math.sqrt(len(logs) / (len(logs) - 1))
        pooled.setdefault(f"batch {p['batch_size']}, {p['threads']} thread(s)", []).extend(
            (x - mean) * scale for x in logs
        )
    out: dict[str, list[float]] = {"all": []}
    for p in pts:
        sl, n = f"batch {p['batch_size']}, {p['threads']} thread(s)", len(p["measured_rounds_s"])
        if sl not in pooled:
            continue
        for _ in range(draws):
            e = math.exp(-_median([rng.choice(pooled[sl]) for _ in range(n)])) - 1  # truth / median - 1
            for key in ("all", sl):
                out.setdefault(key, []).append(e)
    return out


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
    # the truth's own resolution: one process's measurement against the median of the others' (a fresh process per
    # round), and archcost's prediction against one process's measurement, on the same points
    noise, single = {"all": []}, {"all": []}
    for p in pts:
        rounds = p["measured_rounds_s"]
        if len(rounds) < 3:
            continue
        sl = f"batch {p['batch_size']}, {p['threads']} thread(s)"
        for i, t in enumerate(rounds):
            e = t / _median(rounds[:i] + rounds[i + 1 :]) - 1
            for key in ("all", sl):
                noise.setdefault(key, []).append(e)
                single.setdefault(key, []).append(p["predicted_s"] / t - 1)
    perfect = _perfect_predictor(pts)
    if perfect["all"]:
        out["a perfect predictor (the true latency; simulated from the rounds' spread)"] = {
            k: _stats(v) | {"n": len(v) // PERFECT_DRAWS}
            for k, v in perfect.items()  # points, not draws
        }
    within = {"all": []}  # one pass against the other passes of the same process (``--passes``)
    for p in pts:
        sl = f"batch {p['batch_size']}, {p['threads']} thread(s)"
        for ts in p.get("measured_passes_rounds_s", []):
            for i, t in enumerate(ts if len(ts) >= 3 else []):
                for key in ("all", sl):
                    within.setdefault(key, []).append(t / _median(ts[:i] + ts[i + 1 :]) - 1)
    if within["all"]:
        name = "one pass of a process (against the median of its other passes)"
        out[name] = {k: _stats(v) for k, v in within.items()}
    if noise["all"]:
        out["one process's measurement (against the median of the other processes')"] = {
            k: _stats(v) for k, v in noise.items()
        }
        out["archcost predict (against one process's measurement)"] = {k: _stats(v) for k, v in single.items()}
    one = {"all": []}  # the profile from one process's kernels alone (calibrate --processes 1)
    for p in pts:
        sl = f"batch {p['batch_size']}, {p['threads']} thread(s)"
        for predicted in p.get("predicted_one_process_s", []):
            for key in ("all", sl):
                one.setdefault(key, []).append(predicted / p["measured_s"] - 1)
    if one["all"]:
        out["archcost predict, profile from one process's kernels (calibrate --processes 1)"] = {
            k: _stats(v) for k, v in one.items()
        }
    free = {"all": []}, {"all": []}  # the same two, the stolen time taken out of every pass (``_steal_free``)
    for p in pts:
        rounds = _steal_free(p, result.get("cpus"))
        if len(rounds) < 3:
            continue
        sl = f"batch {p['batch_size']}, {p['threads']} thread(s)"
        for i, t in enumerate(rounds):
            for key in ("all", sl):
                free[0].setdefault(key, []).append(t / _median(rounds[:i] + rounds[i + 1 :]) - 1)
        for key in ("all", sl):
            free[1].setdefault(key, []).append(p["predicted_s"] / _median(rounds) - 1)
    if free[0]["all"]:
        out["one process's measurement, stolen time taken out (against the other processes')"] = {
            k: _stats(v) for k, v in free[0].items()
        }
        out["archcost predict (against the median measurement, stolen time taken out)"] = {
            k: _stats(v) for k, v in free[1].items()
        }
    fam = {}
    for f in sorted({p["family"] for p in pts}):
        fam[f] = _stats([p["predicted_s"] / p["measured_s"] - 1 for p in pts if p["family"] == f])
    out["per family (archcost predict)"] = fam
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def markdown(result: dict, summary: dict, command: str) -> str:
    if result.get("measured_by"):  # --refit: nothing timed here
        made = (
            f"Made by `{command}` on {time.strftime('%Y-%m-%d')}: nothing timed, the measurements of "
            f"{result['measured_by']} (CPU {result.get('device_name') or 'unknown'}, kernels "
            f"`{result['mode']}`, {result['rounds']} rounds, each a fresh process) fitted by this archcost."
        )
    else:
        made = (
            f"Made by `{command}` on {time.strftime('%Y-%m-%d')}, torch {torch.__version__}, "
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (1-minute load average at "
            f"the end {os.getloadavg()[0]:.1f}, the benchmark's own threads included), CPU "
            f"{result.get('device_name') or 'unknown'}, kernels `{result['mode']}`, {result['rounds']} rounds, "
            "each a fresh process that times every calibration kernel once and then every (model, batch) in "
            f"{result.get('passes', 1)} pass(es), a round's time of a model being the median of its passes; the "
            "thread counts take turns."
        )
    thp = result.get("huge_pages")
    if thp:  # the workers inherit the driver's environment (environment.huge_pages)
        made += (
            f" Transparent huge pages: {thp['mode']}; torch's CPU allocator "
            f"{'asked for them (THP_MEM_ALLOC_ENABLE=1)' if thp['torch_allocator'] else 'did not ask for them'}."
        )
    stolen = sorted(x[0] for p in result["points"] for r in p.get("steal_passes_rounds", []) for x in r
                    if x[0] is not None)  # fmt: skip
    if stolen:
        made += (
            f" The hypervisor's steal while the models' samples ran (the stolen share of all CPUs' ticks, /proc/stat):"
            f" median {100 * _median(stolen):.1f}%, 90th percentile {100 * stolen[int(0.9 * (len(stolen) - 1))]:.1f}%,"
            f" most {100 * stolen[-1]:.1f}% (of {len(stolen)} passes)."
        )
    states = [s for p in result["points"] for s in p.get("process_states_rounds", [])]
    heaps = sorted({s["heap"] for s in states if "heap" in s})
    if heaps:  # every round's process (environment.steady_heap)
        faults = sorted(s["minor_faults_per_call"] for s in states)
        made += (
            f" The workers' heap: {' and '.join(heaps)} (archcost.profiling.environment.steady_heap); minor page "
            f"faults per call of a model: median {_median(faults):,.0f}, most {faults[-1]:,.0f}."
        )
    lines = [
        "# Predicted against measured latency (benchmarks/predict_check.py)",
        "",
        made,
        "",
        "Relative error = predicted / measured - 1 per (model, batch size, threads); measured = the median over "
        "the rounds' processes, and each calibration point likewise. No model was used to calibrate archcost's "
        "profile (single-layer kernels and designed blocks, archcost.predict.blocks); the MACs baseline is fitted "
        "leave-one-family-out. The rows 'one process's measurement' give the truth's own resolution: how close "
        "one process's timing of a model comes to the median of the other processes' timings of it, beside "
        "archcost's prediction against the same single-process timings. The row 'profile from one process's "
        "kernels' prices every model with a profile fitted to one round's kernel times alone (what a calibration "
        "in one process gives) instead of their median over the rounds (`calibrate --processes N`). The row 'a "
        "perfect predictor' is the goal's reach here: what a prediction equal to each model's true latency would "
        "score against the median of this many processes, given the spread of one process's timings (each "
        "slice's deviations of a process from its model's mean, resampled; processes assumed independent).",
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
    ap.add_argument("--rounds", type=int, default=None, help="fresh processes per thread count (default 3)")
    ap.add_argument("--min-time-s", type=float, default=0.05, help="seconds per timed sample of a model")
    ap.add_argument("--passes", type=int, default=3, help="passes over the models within a round (default 3)")
    ap.add_argument("--smoke", action="store_true", help="three models, smoke kernels, one round")
    ap.add_argument("--no-write", action="store_true", help="print the summary, write nothing")
    ap.add_argument(
        "--refit",
        metavar="JSON",
        help="time nothing: a previous run's measurements (its "
        "predict_check.json and the predict/cpu-{T}t.json profiles beside it) fitted by this archcost",
    )
    ap.add_argument("--worker", nargs=2, metavar=("JOB", "OUT"), help=argparse.SUPPRESS)  # one round (``worker``)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(*args.worker)
    if args.smoke:
        args.models = args.models or "resnet18,mobilenet_v2,tests/fixtures/workloads.py:TextCNN"
        args.rounds, args.threads, args.batch_sizes = args.rounds or 1, args.threads[:1], args.batch_sizes[:1]
    args.rounds = args.rounds or 3
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
