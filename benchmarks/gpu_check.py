"""Validate every GPU path of archcost in one run, and write what it measured (issue 19).

What it checks, in this order (each phase is timed, and a phase that fails is recorded, never fatal):

1. environment: GPU, driver, CUDA, cuDNN, torch, the TF32 switches, clocks / power limit / memory from NVML;
2. roofline peaks: ``archcost.profiling.roofline.measure_peaks`` at archcost's own sizes and at large sizes, per
   dtype, against the H200's published and previously measured figures (``REFERENCE`` below, with sources);
3. latency: ``archcost.profile`` (CUDA events) against ``torch.utils.benchmark.Timer`` on the same model, input
   and settings in the same process (target: within ``LATENCY_TOLERANCE``);
4. training memory: one real Adam step's ``torch.cuda.max_memory_allocated`` against archcost's estimates
   (``archcost.cost.training`` where this archcost has it, and ``archcost.cost.memory.estimate``);
5. the per-layer timer (``layers=True``) and a model measured in a fresh process (``isolate=True``) on the device;
6. the sweep: the Canziani & Culurciello set over batch sizes 1, 2, 4, ..., 256 in float16, bfloat16 and
   float32, channels-last, with NVML power and energy per image, through ``archcost.profiling.iter_profile``
   (inference memory: measured peak against archcost's estimate is in every record);
7. the CLI with ``--compile`` in a child process (killed at its time limit), if time is left;
8. figures (accuracy vs throughput, latency / throughput / power / memory vs batch, energy per image) and
   ``report.md``.

Files under ``--out`` (at most 8, each well under 16 MiB, no sub-folders): ``results.jsonl`` (the sweep's
records, ``archcost.profile/1``: ``archcost plot --results`` reads it), ``checks.json`` (every check, the
environment, the phase timings, what was skipped and why), ``report.md``, one ``canziani-<dtype>.png`` sheet per
dtype, and ``extras.tar.gz`` (each figure on its own, the roofline charts, the log). ``report.md`` and
``checks.json`` are rewritten after every phase, so a run stopped from outside keeps what it measured.

On the GPU machine (one NVIDIA H200, python3 with torch 2.11+cu130, no fvcore, no network), from the project
root, with no install step::

    PYTHONPATH=. python3 benchmarks/gpu_check.py --out $OUT

With the device tool, the lead runs (7.5 minutes of script, 8.5 with the machine's start, of the 15-minute lease)::

    run(command="PYTHONUNBUFFERED=1 PYTHONPATH=. python3 benchmarks/gpu_check.py --out $OUT --budget-s 450",
        timeout_s=510)

and commits what comes back under ``reports/gpu/h200/`` (the tool's ``files_at`` folder). ``--budget-s`` is a
global deadline: a phase that would not fit is skipped (and listed), the sweep stops between two measurements
(75 s before the reserve, kept for the ``--compile`` child), and the figures and report are written in the last
``--reserve-s`` seconds (the deadline is checked between measurements, so a run ends at most one measurement
late; a call stuck for good prints its stack at budget + 60 s). What the sweep did not reach is listed in
report.md ("Skipped"); while the machine is still warm (30 s), a second, shorter call can measure it, e.g.
``--dtypes float32 --no-compile-check --budget-s 200`` with ``timeout_s=240``. $OUT is emptied before each call:
copy the first run's files out of ``files_at`` before the second.

On a CPU, end to end with tiny settings (two small zoo models, batch 1-2, two dtypes; tests/profile/
test_gpu_check.py runs this)::

    python benchmarks/gpu_check.py --smoke --device cpu --out /tmp/gpu_check

Exit codes: 0 the run finished (the checks' own pass/fail is in report.md and checks.json), 1 a phase raised
(archcost's bug: the traceback is in checks.json), 2 bad input (e.g. ``--device cuda`` without CUDA).
"""

from __future__ import annotations

import argparse
import datetime
import faulthandler
import io
import json
import math
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Canziani & Culurciello (2016)'s networks, as the zoo names them.
CANZIANI = [
    "alexnet",
    "vgg16",
    "googlenet",
    "resnet18",
    "resnet50",
    "resnet152",
    "inception_v3",
    "densenet121",
    "mobilenet_v1",
    "mobilenet_v2",
    "shufflenet_v2_x1_0",
    "squeezenet1_1",
    "efficientnet_b0",
]
BATCH_SIZES = [1, 2, 4, 8, 16, 32, 64, 128, 256]
DTYPES = ["float16", "bfloat16", "float32"]  # the order of the sweep: the deadline cuts the last first

LATENCY_TOLERANCE = 0.05  # archcost's median latency within 5% of torch.utils.benchmark's

#: The H200's figures the measured peaks are compared with.
REFERENCE = {
    "datasheet": {
        # NVIDIA H200 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/h200), SXM: FP16/BF16 tensor core
        # 1,979 TFLOPS with 2:4 sparsity, i.e. 989 dense; FP32 67 TFLOPS; HBM3e 4.8 TB/s. The dense figures as
        # tabulated in itkb.uw.cz/2026/06/nvidia-h200-vs-b300-precisions-cores.html.
        "float16": 989e12,
        "bfloat16": 989e12,
        "float32": 67e12,
        "bytes_per_s": 4.8e12,
        "source": "NVIDIA H200 SXM datasheet (dense tensor-core FP16/BF16 989 TFLOP/s, FP32 67 TFLOP/s, "
        "HBM3e 4.8 TB/s)",
    },
    "measured": {
        # Measured with PyTorch on this project's lent H200 machines (the device tool's notes, 2026-10-28 and
        # 2026-11-04): an 8192 x 8192 x 8192 bf16 matrix product at 769-798 TFLOP/s on random data, a
        # device-to-device copy at about 4.3 TB/s counting bytes read and written.
        "bfloat16": 788e12,
        "bytes_per_s": 4.3e12,
        "source": "PyTorch on a lent H200 before this check: 8192^3 bf16 mm 788 TFLOP/s (769-798), "
        "device copy 4.3 TB/s read + written",
    },
}

#: Where the measured peaks are compared with ``REFERENCE["measured"]``: within this fraction counts as agreeing.
PEAK_TOLERANCE = 0.10

MAX_FILES, MAX_FILE_BYTES = 8, 16 * 2**20


# -- small helpers --------------------------------------------------------------------------------------------


class Run:
    """The deadline, the log and the checks of one run; ``save()`` rewrites checks.json and report.md."""

    def __init__(self, out: Path, budget_s: float, reserve_s: float, smoke: bool) -> None:
        self.out = out
        self.t0 = time.monotonic()
        self.budget_s = budget_s
        self.reserve_s = reserve_s
        self.smoke = smoke
        self.log_lines: list[str] = []
        self.checks: dict = {
            "schema": "archcost.gpu_check/1",
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "budget_s": budget_s,
            "reserve_s": reserve_s,
            "smoke": smoke,
            "phases": {},
            "skipped": [],
        }

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def remaining(self) -> float:
        """Seconds left before the figures and report must start."""
        return self.budget_s - self.reserve_s - self.elapsed()

    def log(self, text: str) -> None:
        line = f"[{self.elapsed():6.1f}s] {text}"
        self.log_lines.append(line)
        print(line, flush=True)

    def skip(self, what: str, why: str) -> None:
        self.checks["skipped"].append({"what": what, "why": why})
        self.log(f"skipped {what}: {why}")

    def phase(self, name: str, fn, *, needs_s: float = 0.0) -> None:
        """Run one phase: its result (a dict) goes to checks[name]; an exception is recorded, not raised."""
        if self.remaining() < needs_s:
            self.skip(name, f"{self.remaining():.0f} s left before the reserve, the phase needs about {needs_s:.0f}")
            return
        start = self.elapsed()
        self.log(f"phase {name} ...")
        entry = {"status": "ok", "started_s": round(start, 1)}
        try:
            self.checks[name] = fn()
        except Exception as exc:
            entry.update(status="error", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
            self.log(f"phase {name} FAILED: {type(exc).__name__}: {exc}")
        entry["seconds"] = round(self.elapsed() - start, 1)
        self.checks["phases"][name] = entry
        self.log(f"phase {name} {entry['status']} in {entry['seconds']} s")
        self.save()

    def save(self) -> None:
        self.checks["elapsed_s"] = round(self.elapsed(), 1)
        write_text(self.out / "checks.json", json.dumps(self.checks, indent=1, default=_json_default) + "\n")
        write_text(self.out / "report.md", render_report(self.checks))


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def clean(value):
    """JSON-safe numbers: NaN and infinities become None, numpy scalars plain Python."""
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def attempt(fn, default=None):
    try:
        return fn()
    except Exception:
        return default


# -- 1. environment -----------------------------------------------------------------------------------------


def nvml_environment(device) -> dict:
    """What NVML says about the GPU: driver, clocks now and at most, power limit and draw, memory, state."""
    if device.type != "cuda":
        return {"nvml_note": "no NVML reading on the CPU"}
    try:
        import pynvml
    except ImportError:
        return {"nvml_note": "pynvml (nvidia-ml-py) is not installed"}
    try:
        pynvml.nvmlInit()
    except Exception as exc:
        return {"nvml_note": f"NVML could not start: {exc}"}
    try:
        import torch

        index = device.index if device.index is not None else torch.cuda.current_device()
        h = pynvml.nvmlDeviceGetHandleByIndex(index)
        nv = pynvml

        def text(v):
            return v.decode() if isinstance(v, bytes) else v

        clocks = {"sm": nv.NVML_CLOCK_SM, "memory": nv.NVML_CLOCK_MEM, "graphics": nv.NVML_CLOCK_GRAPHICS}
        info = {
            "name": attempt(lambda: text(nv.nvmlDeviceGetName(h))),
            "driver": attempt(lambda: text(nv.nvmlSystemGetDriverVersion())),
            "cuda_driver": attempt(lambda: nv.nvmlSystemGetCudaDriverVersion_v2()),
            "vbios": attempt(lambda: text(nv.nvmlDeviceGetVbiosVersion(h))),
            "clock_mhz_now": {k: attempt(lambda c=c: nv.nvmlDeviceGetClockInfo(h, c)) for k, c in clocks.items()},
            "clock_mhz_max": {k: attempt(lambda c=c: nv.nvmlDeviceGetMaxClockInfo(h, c)) for k, c in clocks.items()},
            "clock_mhz_applications": {
                k: attempt(lambda c=c: nv.nvmlDeviceGetApplicationsClock(h, c)) for k, c in clocks.items()
            },
            "power_limit_w": attempt(lambda: nv.nvmlDeviceGetEnforcedPowerLimit(h) / 1e3),
            "power_now_w": attempt(lambda: nv.nvmlDeviceGetPowerUsage(h) / 1e3),
            "energy_counter_mj": attempt(lambda: nv.nvmlDeviceGetTotalEnergyConsumption(h)),
            "temperature_c": attempt(lambda: nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)),
            "memory_total_bytes": attempt(lambda: int(nv.nvmlDeviceGetMemoryInfo(h).total)),
            "memory_used_bytes": attempt(lambda: int(nv.nvmlDeviceGetMemoryInfo(h).used)),
            "performance_state": attempt(lambda: nv.nvmlDeviceGetPerformanceState(h)),
            "persistence_mode": attempt(lambda: nv.nvmlDeviceGetPersistenceMode(h)),
            "compute_mode": attempt(lambda: nv.nvmlDeviceGetComputeMode(h)),
            "mig_mode": attempt(lambda: list(nv.nvmlDeviceGetMigMode(h))),
        }
        unread = sorted(k for k, v in info.items() if v is None)
        if unread:
            info["nvml_unread"] = unread
        return info
    except Exception as exc:
        return {"nvml_note": f"NVML cannot read this GPU: {exc}"}
    finally:
        attempt(pynvml.nvmlShutdown)


def package_versions() -> dict:
    from importlib import metadata

    names = ["torch", "torchvision", "numpy", "pandas", "matplotlib", "nvidia-ml-py", "tqdm", "tabulate", "onnx"]
    names += ["fvcore", "timm", "adjusttext"]
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def environment(device) -> dict:
    import torch

    from archcost.profiling.environment import environment as archcost_environment

    env = {
        "archcost_env": archcost_environment(
            device, threads=torch.get_num_threads(), dtype="float32", cudnn_benchmark=torch.backends.cudnn.benchmark
        ),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "archcost_commit": attempt(
            lambda: (
                subprocess.run(
                    ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
                ).stdout.strip()
                or None
            )
        ),
        "packages": package_versions(),
        # float32 convolutions on CUDA use TF32 tensor cores while this is True (torch's default), matrix
        # products only when torch.backends.cuda.matmul.allow_tf32 is (default False): the float32 "peak"
        # below is a true-FP32 matrix product, the models' float32 convolutions may run faster than it.
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        env["cuda_device"] = {
            "name": p.name,
            "capability": f"{p.major}.{p.minor}",
            "multiprocessors": p.multi_processor_count,
            "memory_bytes": p.total_memory,
            "l2_cache_bytes": getattr(p, "L2_cache_size", None),
            "bf16_supported": torch.cuda.is_bf16_supported(),
        }
    env["nvml"] = nvml_environment(device)
    return env


# -- 2. roofline peaks ----------------------------------------------------------------------------------------


def roofline_check(device, dtypes: list[str], smoke: bool) -> dict:
    """``measure_peaks`` at archcost's default sizes (what the sweep's records use) and at large sizes, per dtype.

    In a smoke run only tiny sizes are measured, and they are stored in the peaks cache under the key the sweep
    will look up, so that the sweep does not calibrate at full size (minutes on a busy CPU)."""
    import torch

    from archcost.profiling.environment import device_name
    from archcost.profiling.roofline import DevicePeaks, measure_peaks, peaks_key, store
    from archcost.units import DTYPES as TORCH_DTYPES

    gpu = device.type == "cuda"
    if smoke:
        sizes = {"default": {"gemm_n": 128, "copy_bytes": 4 * 10**6}}
        settings = {"min_time_s": 0.005, "repeats": 2, "warmup_s": 0.0}
    else:
        sizes = {"default": {}, "large": {"gemm_n": 8192, "copy_bytes": 4 * 10**9 if gpu else 10**9}}
        settings = {}
    out: dict = {"sizes": sizes, "per_dtype": {}}
    for dtype in dtypes:
        row: dict = {}
        for label, size in sizes.items():
            p = measure_peaks(device, TORCH_DTYPES[dtype], f"gpu_check {label}", **size, **settings)
            row[label] = {
                "flops_per_s": p.flops_per_s,
                "bytes_per_s": p.bytes_per_s,
                "gemm_n": p.gemm_n,
                "copy_bytes": p.copy_bytes,
                "note": p.note,
            }
            if smoke:
                key = peaks_key(device_name(device), str(device), dtype, torch.get_num_threads(), torch.__version__)
                store(DevicePeaks(**{**p.to_dict(), "key": key, "note": "gpu_check smoke: tiny sizes"}))
        best = max((v["flops_per_s"] or 0 for v in row.values()), default=0) or None
        for kind in ("datasheet", "measured"):
            ref = REFERENCE[kind].get(dtype)
            if ref and best:
                row[f"flops_vs_{kind}"] = best / ref
        out["per_dtype"][dtype] = row
    copies = [
        v["bytes_per_s"] for r in out["per_dtype"].values() for k, v in r.items() if k in sizes and v["bytes_per_s"]
    ]
    if copies:
        best_copy = max(copies)
        out["best_bytes_per_s"] = best_copy
        for kind in ("datasheet", "measured"):
            out[f"bytes_vs_{kind}"] = best_copy / REFERENCE[kind]["bytes_per_s"]
    if gpu:
        bf16 = out["per_dtype"].get("bfloat16", {}).get("flops_vs_measured")
        out["bf16_agrees_with_measured"] = None if bf16 is None else abs(bf16 - 1) <= PEAK_TOLERANCE
        copy = out.get("bytes_vs_measured")
        out["copy_agrees_with_measured"] = None if copy is None else abs(copy - 1) <= PEAK_TOLERANCE
        torch.cuda.empty_cache()
    else:
        out["note"] = "the reference figures are an H200's; on the CPU they are shown but mean nothing"
    out["reference"] = REFERENCE
    return out


# -- 3. latency: archcost against torch.utils.benchmark -------------------------------------------------------


def latency_check(device, cases: list[tuple[str, str, int]], timing: dict, channels_last: bool, run: Run) -> dict:
    """For each (model, dtype, batch): archcost's median, torch.utils.benchmark's median, archcost's again."""
    import torch
    import torch.utils.benchmark as tbench

    from archcost.models import load_model
    from archcost.profiling import ProfileConfig, iter_profile
    from archcost.units import DTYPES as TORCH_DTYPES

    rows = []
    for name, dtype, batch in cases:
        if run.remaining() < 10:
            run.skip(f"latency check {name} {dtype} batch {batch}", "deadline")
            continue
        config = ProfileConfig(
            device=str(device),
            batch_sizes=[batch],
            dtype=dtype,
            channels_last=channels_last,
            warmup_s=timing["warmup_s"],
            min_time_s=timing["min_time_s"] * 2,
            repeats=max(timing["repeats"], 5),
            roofline=False,
            power=False,
            memory=False,
        )

        def archcost_median(name=name, config=config):
            rec = next(iter(iter_profile([name], config)))
            if rec["status"] != "ok":
                raise RuntimeError(f"archcost profile {name}: {rec['status']}: {rec['error']}")
            return rec["latency_median_s"], rec["timer"], rec["latency_cv"]

        # torch.utils.benchmark on the model placed as archcost places it: eval, dtype, channels-last, inference
        # mode, cudnn.benchmark on (archcost turns it on for CUDA sweeps).
        model = load_model(name, {}, device="cpu")
        module = model.module.eval().to(device=device, dtype=TORCH_DTYPES[dtype])
        x = torch.randn((batch, *model.input_size), generator=torch.Generator().manual_seed(0))
        x = x.to(device=device, dtype=TORCH_DTYPES[dtype])
        if channels_last:
            module = module.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        old = torch.backends.cudnn.benchmark
        a1, timer, cv = archcost_median()
        try:
            torch.backends.cudnn.benchmark = device.type == "cuda"
            with torch.inference_mode():
                for _ in range(3):
                    module(x)
                t = tbench.Timer(
                    stmt="module(x)", globals={"module": module, "x": x}, num_threads=torch.get_num_threads()
                )
                m = t.blocked_autorange(min_run_time=timing["benchmark_s"])
        finally:
            torch.backends.cudnn.benchmark = old
        module = x = None
        if device.type == "cuda":
            torch.cuda.empty_cache()
        a2, _, _ = archcost_median()
        archcost_s = (a1 + a2) / 2
        ratio = archcost_s / m.median
        rows.append(
            {
                "model": name,
                "dtype": dtype,
                "batch_size": batch,
                "channels_last": channels_last,
                "archcost_median_s": [a1, a2],
                "archcost_timer": timer,
                "archcost_cv": cv,
                "benchmark_median_s": m.median,
                "benchmark_iqr_s": m.iqr,
                "benchmark_runs": len(m.times),
                "benchmark_number_per_run": m.number_per_run,
                "ratio": ratio,
                "within_tolerance": abs(ratio - 1) <= LATENCY_TOLERANCE,
            }
        )
        run.log(
            f"  latency {name} {dtype} b{batch}: archcost {archcost_s * 1e3:.3f} ms, benchmark "
            f"{m.median * 1e3:.3f} ms, ratio {ratio:.3f}"
        )
    return {"tolerance": LATENCY_TOLERANCE, "cases": rows}


# -- 4. training memory ----------------------------------------------------------------------------------------


def training_estimates(name: str, size: tuple, batch: int, dtype: str, cuda: bool) -> dict:
    """archcost's estimates of one Adam step's peak bytes (parameters and input included), from each source
    this archcost has; a source it lacks is a note, not an error."""
    import inspect

    import archcost

    out: dict = {}
    try:
        from archcost.cost.training import training_peak_bytes
    except ImportError as exc:
        out["archcost.cost.training"] = {"note": f"not in this archcost ({exc})"}
    else:
        kwargs = {}
        if "foreach" in inspect.signature(training_peak_bytes).parameters:
            kwargs["foreach"] = cuda  # torch.optim.Adam's default: the foreach implementation on CUDA
        try:
            value = training_peak_bytes(archcost.get_model(name), size, batch, dtype, optimizer="adam", **kwargs)
            out["archcost.cost.training"] = {"bytes": int(value), **({"foreach": kwargs["foreach"]} if kwargs else {})}
        except Exception as exc:
            out["archcost.cost.training"] = {"note": f"failed: {type(exc).__name__}: {exc}"}
    try:
        from archcost.cost.memory import estimate

        est = estimate(archcost.analyze(archcost.get_model(name), size, batch, dtype), "adam")
        out["archcost.cost.memory.estimate"] = {"bytes": int(est.training_total_bytes)}
    except (ImportError, AttributeError) as exc:
        out["archcost.cost.memory.estimate"] = {"note": f"not in this archcost ({exc})"}
    return out


def measured_training_step(name: str, batch: int, device) -> dict:
    """Peak bytes of one real training step (forward, backward, Adam's first step) of a freshly built model,
    parameters, buffers and input included; on CUDA from the caching allocator, on the CPU from torch.profiler."""
    import torch

    from archcost.models import load_model
    from archcost.profiling.memory import measure_training_peak

    loaded = load_model(name, {}, device="cpu")
    model = loaded.module.to(device)
    x = torch.randn((batch, *loaded.input_size), generator=torch.Generator().manual_seed(0)).to(device)
    try:  # archcost's one measured method (on a copy of the model; CUDA: cuDNN workspaces included)
        mem = measure_training_peak(model, x, "adam")
    finally:
        model = x = None
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return {"bytes": int(mem.peak_bytes), "held_bytes": int(mem.held_bytes), "method": mem.method}


def training_memory_check(device, cases: list[tuple[str, int]], run: Run) -> dict:
    import archcost

    rows = []
    for name, batch in cases:
        if run.remaining() < 10:
            run.skip(f"training memory {name} batch {batch}", "deadline")
            continue
        size = tuple(archcost.get_meta(name).input_size)
        row = {"model": name, "batch_size": batch, "dtype": "float32", "optimizer": "adam"}
        try:
            row["measured"] = measured_training_step(name, batch, device)
        except Exception as exc:
            from archcost.profiling.sweep import is_oom

            row["measured"] = {
                "note": ("out of memory: " if is_oom(exc) else "failed: ") + f"{type(exc).__name__}: {exc}"
            }
        row["estimates"] = training_estimates(name, size, batch, "float32", device.type == "cuda")
        measured = row["measured"].get("bytes")
        for est in row["estimates"].values():
            if measured and est.get("bytes"):
                est["estimate_over_measured"] = est["bytes"] / measured
        rows.append(row)
        run.log(
            f"  training {name} b{batch}: measured {measured}, estimates "
            f"{ {k: v.get('bytes', v.get('note')) for k, v in row['estimates'].items()} }"
        )
    have = any("bytes" in r["estimates"].get("archcost.cost.training", {}) for r in rows)
    return {
        "cases": rows,
        "note": None
        if have
        else "archcost.cost.training (issue 16's training cost) gave no estimate here: only the coarse "
        "archcost.cost.memory.estimate is compared",
    }


# -- 5. per-layer timing and isolated processes on the device -------------------------------------------------


def profile_records(models, device, **settings) -> list[dict]:
    from archcost.profiling import ProfileConfig, iter_profile

    config = ProfileConfig(device=str(device), **settings)
    return [dict(r) for r in iter_profile(models, config)]


def summarise_record(rec: dict) -> dict:
    keep = [
        "model",
        "batch_size",
        "dtype",
        "status",
        "error",
        "latency_median_s",
        "timer",
        "memory_method",
        "layer_time_sum_ratio",
        "profiler_overhead",
        "flags",
        "warnings",
        "power_note",
        "energy_method",
        "compiled",
        "device",
    ]
    out = {k: clean(rec.get(k)) for k in keep if k in rec}
    if rec.get("layers"):
        out["layer_rows"] = len(rec["layers"])
        top = sorted(rec["layers"], key=lambda r: -(r.get("time_s") or 0))[:5]
        out["slowest_layers"] = [{k: clean(r.get(k)) for k in ("name", "type", "time_s", "bound")} for r in top]
    return out


def paths_check(device, model: str, batch: int, dtype: str, channels_last: bool, timing: dict) -> dict:
    settings = dict(
        batch_sizes=[batch],
        dtype=dtype,
        channels_last=channels_last,
        warmup_s=timing["warmup_s"],
        min_time_s=timing["min_time_s"],
        repeats=timing["repeats"],
        roofline=False,
    )
    layers = profile_records([model], device, layers=True, **settings)
    isolated = profile_records([model], device, isolate=True, **settings)
    return {
        "layers": [summarise_record(r) for r in layers],
        "isolated": [summarise_record(r) for r in isolated],
    }


# -- 5b. predicted latency (issue 28) -------------------------------------------------------------------------

#: the models the GPU prediction check measures (none is a calibration kernel: all held out)
PREDICT_MODELS = ["resnet18", "resnet50", "mobilenet_v2", "vgg16", "densenet121", "squeezenet1_1", "googlenet"]


def prediction_check(device, dtypes: list[str], models: list[str], batch_sizes: list[int], smoke: bool, run: Run,
                     extras: dict[str, bytes]) -> dict:  # fmt: skip
    """Calibrate a device profile per dtype on ``device`` (``archcost.predict.calibrate``: float32 under torch's
    float32 matmul precision, named in the profile, and bfloat16), then time each model at each batch size and
    predict it with the profile: per (dtype, model, batch) the measured and predicted ms and the relative error,
    and per dtype the share within +-10% / +-20%. The profiles go to extras (``device-profile-<dtype>.json``)."""
    import torch

    from archcost.cost import analyze
    from archcost.cost.workload import Workload
    from archcost.predict import calibrate
    from archcost.predict.calibrate import kernels, spread
    from archcost.predict.model import predict_report
    from archcost.profiling.timing import measure

    out: dict = {"float32_matmul_precision": torch.get_float32_matmul_precision(), "dtypes": {}}
    mode = "smoke" if smoke else "full"
    kernel_set = spread(kernels(mode))  # cut by the deadline, the profile still has every kind it reached
    for n, dtype in enumerate(dtypes):
        if run.remaining() < (5 if smoke else 60):
            run.skip(f"prediction {dtype}", f"{run.remaining():.0f} s left before the reserve")
            continue
        t0 = time.monotonic()
        # this dtype's share of the time left, three quarters of it for the kernels, the rest for the models
        share = (run.remaining() - 10) / (len(dtypes) - n)
        profile = calibrate(str(device), dtype=dtype, mode=mode, kernel_set=kernel_set, deadline=t0 + 0.75 * share)
        extras[f"device-profile-{dtype}.json"] = (
            json.dumps(profile.to_dict(), indent=1, sort_keys=True) + "\n"
        ).encode()
        entry: dict = {"calibration_s": round(time.monotonic() - t0, 1), "points": [],
                       "kernels_timed": len(profile.points), "kernels": len(kernel_set),
                       "fit": {k: vars(v.error) for k, v in profile.kinds.items()}}  # fmt: skip
        tdtype = getattr(torch, dtype)
        for name in models:
            for b in batch_sizes:
                if run.remaining() < 10:
                    run.skip(f"prediction {dtype} {name}@{b}", "out of time")
                    continue
                work = Workload.of(name, dtype=dtype).load("cpu").with_batch(b)
                model = work.module.to(device=device, dtype=tdtype).eval()
                args, kwargs = work.tensors(device, dtype=tdtype)
                with torch.inference_mode():
                    t = measure(lambda m=model, a=args, kw=kwargs: m(*a, **kw), device, warmup_s=0.1, min_time_s=0.02,
                                repeats=5)  # fmt: skip
                rows = predict_report(analyze(work), profile, b)
                predicted = sum(r.predicted_ms for r in rows)
                measured = t.stats.median_s * 1e3
                entry["points"].append({"model": name, "batch_size": b, "measured_ms": measured,
                                        "predicted_ms": predicted, "error": predicted / measured - 1,
                                        "fallbacks": sorted({r.kind for r in rows if r.fallback})})  # fmt: skip
                model = None  # freed before the next model is built
                if device.type == "cuda":
                    torch.cuda.empty_cache()
        errs = [abs(p["error"]) for p in entry["points"]]
        if errs:
            entry["within_10"] = sum(e <= 0.10 for e in errs) / len(errs)
            entry["within_20"] = sum(e <= 0.20 for e in errs) / len(errs)
            entry["median_abs_error"] = sorted(errs)[len(errs) // 2]
        out["dtypes"][dtype] = entry
        run.log(f"prediction {dtype}: {len(errs)} points, within 10%: {entry.get('within_10')}")
    return out


# -- 6. the sweep ------------------------------------------------------------------------------------------------


def sweep(
    device, models, batch_sizes, dtypes, channels_last, timing, results: Path, run: Run, keep_s: float = 0.0
) -> dict:
    """The sweep through ``archcost.profiling.iter_profile``, one dtype after another, each record appended to
    ``results`` as measured; it stops between two measurements when fewer than ``keep_s`` seconds are left before
    the reserve (the time kept for the CLI check)."""
    from archcost.profiling import ProfileConfig, iter_profile
    from archcost.profiling.results import append_records

    summary: dict = {"models": models, "batch_sizes": batch_sizes, "dtypes": dtypes, "timing": timing, "runs": []}
    for dtype in dtypes:
        if run.remaining() <= keep_s:
            run.skip(f"sweep {dtype}", "deadline: no time left")
            continue
        config = ProfileConfig(
            device=str(device),
            batch_sizes=batch_sizes,
            dtype=dtype,
            channels_last=channels_last,
            warmup_s=timing["warmup_s"],
            min_time_s=timing["min_time_s"],
            repeats=timing["repeats"],
            roofline=True,
            power=True,
            memory=True,
        )
        done: dict[str, list[int]] = {}
        start = run.elapsed()
        gen = iter_profile(models, config)
        stopped = None
        try:
            for rec in gen:
                append_records(results, [rec])
                done.setdefault(rec["model"], []).append(rec["batch_size"])
                if rec["status"] != "ok":
                    run.log(f"  {dtype} {rec['model']} b{rec['batch_size']}: {rec['status']}: {rec['error']}")
                if run.remaining() <= keep_s:
                    stopped = "deadline"
                    break
        except Exception as exc:  # a model that cannot be built, a bug: the other dtypes still run
            stopped = f"{type(exc).__name__}: {exc}"
            run.log(f"  sweep {dtype} stopped: {stopped}")
        finally:
            gen.close()
        missing = {m: [b for b in batch_sizes if b not in done.get(m, [])] for m in models}
        missing = {m: b for m, b in missing.items() if b}
        if missing:
            run.skip(f"sweep {dtype}: {sum(map(len, missing.values()))} measurements", stopped or "not reached")
        summary["runs"].append(
            {
                "dtype": dtype,
                "records": sum(map(len, done.values())),
                "seconds": round(run.elapsed() - start, 1),
                "stopped": stopped,
                "not_measured": missing,
            }
        )
        run.log(f"  sweep {dtype}: {sum(map(len, done.values()))} records in {run.elapsed() - start:.0f} s")
        run.save()
    return summary


def sweep_findings(results: Path) -> dict:
    """What the sweep's records say: statuses, flags, power and memory-estimate agreement, per dtype."""
    from archcost.profiling.results import read_results

    if not results.exists():
        return {"note": "no sweep records"}
    df = read_results(results)
    out: dict = {"records": len(df), "status": df["status"].value_counts().to_dict()}
    ok = df[df["status"] == "ok"]
    out["errors"] = [
        {"model": r.model, "dtype": r.dtype, "batch_size": int(r.batch_size), "status": r.status, "error": r.error}
        for r in df[df["status"] != "ok"].itertuples()
    ][:40]
    if "flags" in df:
        counts: dict = {}
        for flags in ok["flags"]:
            for f in flags or []:
                counts[f] = counts.get(f, 0) + 1
        out["flags"] = counts
    out["timers"] = sorted(set(ok["timer"].dropna()))
    out["memory_methods"] = sorted(set(ok["memory_method"].dropna()))
    out["power_notes"] = df["power_note"].dropna().value_counts().head(5).to_dict()
    out["energy_methods"] = ok["energy_method"].dropna().value_counts().to_dict()
    with_power = ok["energy_per_image_j"].notna().sum()
    out["records_with_energy"] = int(with_power)
    ratio = ok["memory_estimate_bytes"] / ok["memory_activation_peak_bytes"]
    per = []
    for (model, dtype), g in ok.assign(ratio=ratio).groupby(["model", "dtype"], sort=True):
        g = g.sort_values("batch_size")
        r = g["ratio"].dropna()
        per.append(
            {
                "model": model,
                "dtype": dtype,
                "batches": len(g),
                "estimate_over_measured_min": clean(r.min()) if len(r) else None,
                "estimate_over_measured_max": clean(r.max()) if len(r) else None,
                "at_largest_batch": {
                    "batch_size": int(g["batch_size"].iloc[-1]),
                    "estimate_bytes": clean(g["memory_estimate_bytes"].iloc[-1]),
                    "measured_bytes": clean(g["memory_activation_peak_bytes"].iloc[-1]),
                },
            }
        )
    out["inference_memory"] = per
    out["peaks_used"] = {
        d: {
            "flops_per_s": clean(g["peak_flops_per_s"].dropna().iloc[0])
            if g["peak_flops_per_s"].notna().any()
            else None,
            "bytes_per_s": clean(g["peak_bytes_per_s"].dropna().iloc[0])
            if g["peak_bytes_per_s"].notna().any()
            else None,
            "max_percent_of_peak": clean(g["percent_of_peak"].max()),
        }
        for d, g in ok.groupby("dtype")
    }
    return out


# -- 7. the CLI with --compile in a child process ----------------------------------------------------------------


def cli_check(device, model: str, batch_sizes: list[int], dtype: str, compile_: bool, timeout_s: float, timing) -> dict:
    cmd = [
        sys.executable,
        "-c",
        "import sys; from archcost.cli import main; sys.exit(main(sys.argv[1:]))",
        "profile",
        model,
        "--device",
        str(device),
        "--dtype",
        dtype,
        "--channels-last",
        "--batch-sizes",
        ",".join(map(str, batch_sizes)),
        "--format",
        "json",
        "--quiet",
        "--warmup",
        str(timing["warmup_s"]),
        "--min-time",
        str(timing["min_time_s"]),
        "--repeats",
        str(timing["repeats"]),
    ]
    if compile_:
        cmd.append("--compile")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    start = time.monotonic()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"command": cmd[3:], "status": "timeout", "timeout_s": timeout_s}
    out = {
        "command": cmd[3:],
        "exit_code": done.returncode,
        "seconds": round(time.monotonic() - start, 1),
        "stderr_tail": done.stderr.strip().splitlines()[-8:],
    }
    try:
        out["records"] = [summarise_record(r) for r in json.loads(done.stdout)]
    except ValueError:
        out["stdout_head"] = done.stdout[:500]
    out["status"] = "ok" if done.returncode == 0 and out.get("records") else "failed"
    return out


# -- 8. figures, report, files ------------------------------------------------------------------------------------


def _png(chart) -> bytes:
    """A chart (``archcost.report.chart.Chart``) or a matplotlib Figure as PNG bytes."""
    import matplotlib.pyplot as plt

    fig = chart.figure  # a Chart's figure; a Figure's .figure is the Figure itself
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _text_png(title: str, text: str) -> bytes:
    import textwrap

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.02, 0.9, textwrap.fill(text, 80), va="top", fontsize=10, transform=ax.transAxes)
    return _png(fig)


def sheet(panels: list[tuple[str, bytes]], title: str) -> bytes:
    """The panels (PNG bytes) tiled two rows by three, under ``title``."""
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt

    images = [mpimg.imread(io.BytesIO(png), format="png") for _, png in panels]
    h = max(i.shape[0] for i in images)
    w = max(i.shape[1] for i in images)
    cols = 3
    rows = math.ceil(len(images) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * w / 100, rows * h / 100 + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img in zip(axes.flat, images, strict=False):
        ax.imshow(img)
    fig.suptitle(title, fontsize=16)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def figures_for(results: Path, out: Path, dtypes: list[str], extras: dict[str, bytes]) -> dict:
    """One Canziani sheet per dtype (and each panel in ``extras``); a panel that cannot be drawn says why."""
    try:
        from archcost.report.data import measured_frame
    except ImportError:  # before it moved to the report package
        from archcost.report.data import measured_frame
    from archcost.report import figures

    notes: dict = {}
    if not results.exists():
        return {"note": "no sweep records to draw"}
    frame = measured_frame(str(results), None, None)
    for dtype in dtypes:
        df = frame[frame["dtype"] == dtype].reset_index(drop=True)
        if df.empty:
            notes[dtype] = "no successful measurement"
            continue
        panels: list[tuple[str, bytes]] = []
        # accuracy against throughput: every model at one batch size, the largest all of them ran at
        per_model = [set(g["batch_size"]) for _, g in df.groupby("model")]
        common = sorted(set.intersection(*per_model)) if per_model else []
        if common:
            at = df[df["batch_size"] == common[-1]]
            acc_note = f"batch {common[-1]}, the largest every model ran at"
        else:
            at = df.loc[df.groupby("model")["throughput"].idxmax()]
            acc_note = "each model at its own fastest batch (no batch size every model ran at)"
        at = at[at["top1"].notna()]
        if at["dataset"].nunique() > 1:  # accuracy compares models of one dataset: the one most models are on
            dataset = at["dataset"].value_counts().index[0]
            acc_note += f"; models on {dataset} only"
            at = at[at["dataset"] == dataset]
        at = at.reset_index(drop=True)
        specs = [
            ("accuracy-vs-throughput", lambda at=at: figures.accuracy_vs_throughput(at), "top1"),
            ("latency-vs-batch", lambda df=df: figures.latency_vs_batch(df), "latency_ms"),
            ("throughput-vs-batch", lambda df=df: figures.throughput_vs_batch(df), "throughput"),
            ("power-vs-batch", lambda df=df: figures.power_vs_batch(df), "power_w"),
            ("memory-vs-batch", lambda df=df: figures.memory_vs_batch(df), "memory_mb"),
            ("energy-per-image", lambda df=df: figures.energy_per_image(df), "energy_j_per_image"),
        ]
        for name, draw, column in specs:
            source = at if name == "accuracy-vs-throughput" else df
            if source.empty or source[column].isna().all():
                why = (
                    "; ".join(sorted(set(df["power_note"].dropna())))[:300] or "no readings"
                    if column in ("power_w", "energy_j_per_image")
                    else f"no {column} values"
                )
                png = _text_png(name, f"nothing to draw for {dtype}: {why}")
                notes[f"{dtype} {name}"] = why
            else:
                try:
                    png = _png(draw())
                except Exception as exc:  # a figure's bug must not lose the measurements
                    png = _text_png(name, f"the figure failed: {type(exc).__name__}: {exc}")
                    notes[f"{dtype} {name}"] = f"figure failed: {type(exc).__name__}: {exc}"
            panels.append((name, png))
            extras[f"{name}-{dtype}.png"] = png
        notes[f"{dtype} accuracy-vs-throughput"] = notes.get(f"{dtype} accuracy-vs-throughput", acc_note)
        title = f"archcost gpu_check: {dtype}, {df['device'].iloc[0]} ({df['env_device_name'].iloc[0]})"
        (out / f"canziani-{dtype}.png").write_bytes(sheet(panels, title))
        peak_f, peak_b = df["peak_flops_per_s"].dropna(), df["peak_bytes_per_s"].dropna()
        if len(peak_f) and len(peak_b):
            try:
                one = df[df["batch_size"] == df["batch_size"].max()].reset_index(drop=True)
                one = one[one["arithmetic_intensity"].notna() & one["achieved_flops"].notna()].reset_index(drop=True)
                extras[f"roofline-{dtype}.png"] = _png(
                    figures.roofline(one, float(peak_f.iloc[0]), float(peak_b.iloc[0]))
                )
            except Exception as exc:
                notes[f"{dtype} roofline"] = f"figure failed: {type(exc).__name__}: {exc}"
    return notes


def finish_files(out: Path, extras: dict[str, bytes], log_text: str) -> dict:
    """Write extras.tar.gz, then make sure at most MAX_FILES files of at most MAX_FILE_BYTES each stay in
    ``out`` (anything else goes into a second archive, which is listed)."""
    extras = {**extras, "gpu_check.log": log_text.encode()}
    with tarfile.open(out / "extras.tar.gz", "w:gz") as tar:
        for name, data in sorted(extras.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    files = sorted(p for p in out.iterdir() if p.is_file() and not p.name.startswith("."))
    keep = ["results.jsonl", "checks.json", "report.md", "extras.tar.gz"]
    order = sorted(files, key=lambda p: (p.name not in keep, p.name))
    too_big = [p for p in order if p.stat().st_size > MAX_FILE_BYTES]
    over = [p for p in order if p not in too_big][MAX_FILES - 1 :]  # room for overflow.tar.gz
    moved = []
    if too_big or len(files) > MAX_FILES:
        with tarfile.open(out / "overflow.tar.gz", "w:gz") as tar:
            for p in [*too_big, *over]:
                tar.add(p, arcname=p.name)
                moved.append(p.name)
                p.unlink()
    return {
        "files": sorted(p.name for p in out.iterdir() if p.is_file()),
        "extras": sorted(extras),
        "moved_to_overflow": moved,
    }


def _fmt(v, scale=1.0, digits=3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return f"{v * scale:.{digits}g}"


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def render_report(c: dict) -> str:
    """report.md from checks.json's content (rewritten after every phase)."""
    env = c.get("environment", {})
    lines = [
        "# archcost GPU check",
        "",
        f"`{c['command']}`, started {c['started']}, {c.get('elapsed_s', 0):.0f} s of a {c['budget_s']:.0f} s budget"
        + (" (smoke settings: measures nothing)" if c.get("smoke") else "")
        + ". Written by benchmarks/gpu_check.py; every number below is in checks.json and results.jsonl.",
        "",
        "## Environment",
        "",
    ]
    if env:
        dev = env.get("cuda_device") or {}
        nv = env.get("nvml") or {}
        rows = [
            ["device", dev.get("name") or env.get("archcost_env", {}).get("env_device_name")],
            [
                "capability, SMs, memory",
                f"{dev.get('capability')}, {dev.get('multiprocessors')}, {_fmt(dev.get('memory_bytes'), 2**-30, 4)} GiB"
                if dev
                else "",
            ],
            ["driver (NVML)", nv.get("driver") or nv.get("nvml_note", "")],
            ["torch, CUDA, cuDNN", f"{env.get('torch')}, {env.get('torch_cuda')}, {env.get('cudnn')}"],
            ["python, platform", f"{env.get('python')}, {env.get('platform')}"],
            [
                "clocks MHz now (sm, mem)",
                f"{nv.get('clock_mhz_now', {}).get('sm')}, {nv.get('clock_mhz_now', {}).get('memory')}",
            ],
            [
                "clocks MHz max (sm, mem)",
                f"{nv.get('clock_mhz_max', {}).get('sm')}, {nv.get('clock_mhz_max', {}).get('memory')}",
            ],
            ["power limit W", nv.get("power_limit_w")],
            ["TF32: cuDNN conv, matmul", f"{env.get('cudnn_allow_tf32')}, {env.get('matmul_allow_tf32')}"],
            ["archcost commit", env.get("archcost_commit")],
            ["packages", ", ".join(f"{k} {v}" for k, v in (env.get("packages") or {}).items() if v)],
            ["missing packages", ", ".join(k for k, v in (env.get("packages") or {}).items() if not v)],
        ]
        lines += [_table(["", ""], rows), ""]
    roof = c.get("roofline")
    if roof:
        lines += ["## Roofline peaks", ""]
        rows = []
        for dtype, r in roof["per_dtype"].items():
            for label in roof["sizes"]:
                m = r[label]
                rows.append(
                    [
                        dtype,
                        f"{label} (n={m['gemm_n']}, copy {m['copy_bytes'] / 1e6:g} MB)",
                        _fmt(m["flops_per_s"], 1e-12, 4),
                        _fmt(m["bytes_per_s"], 1e-12, 3),
                        _fmt(r.get("flops_vs_datasheet"), 1, 3),
                        _fmt(r.get("flops_vs_measured"), 1, 3),
                        m["note"] or "",
                    ]
                )
        lines += [
            _table(
                ["dtype", "sizes", "TFLOP/s", "copy TB/s", "best / datasheet", "best / measured before", "note"], rows
            ),
            "",
        ]
        lines.append(
            f"Copy: best {_fmt(roof.get('best_bytes_per_s'), 1e-12, 3)} TB/s, "
            f"{_fmt(roof.get('bytes_vs_datasheet'), 1, 3)} of the datasheet, "
            f"{_fmt(roof.get('bytes_vs_measured'), 1, 3)} of the figure measured before. bf16 agrees with the "
            f"earlier measurement (within {PEAK_TOLERANCE:.0%}): {roof.get('bf16_agrees_with_measured')}; copy: "
            f"{roof.get('copy_agrees_with_measured')}. References: {REFERENCE['datasheet']['source']}; "
            f"{REFERENCE['measured']['source']}."
        )
        lines.append("")
    lat = c.get("latency")
    if lat:
        lines += [f"## Latency: archcost against torch.utils.benchmark (target within {lat['tolerance']:.0%})", ""]
        rows = [
            [
                r["model"],
                r["dtype"],
                r["batch_size"],
                " / ".join(_fmt(v, 1e3, 4) for v in r["archcost_median_s"]),
                _fmt(r["benchmark_median_s"], 1e3, 4),
                _fmt(r["ratio"], 1, 4),
                "yes" if r["within_tolerance"] else "NO",
            ]
            for r in lat["cases"]
        ]
        lines += [
            _table(
                ["model", "dtype", "batch", "archcost ms (before / after)", "benchmark ms", "ratio", "within"], rows
            ),
            "",
        ]
    mem = c.get("training_memory")
    if mem:
        lines += ["## Training memory: one Adam step, float32 (parameters and input included)", ""]
        rows = []
        for r in mem["cases"]:
            m = r["measured"]
            for src, e in r["estimates"].items():
                rows.append(
                    [
                        r["model"],
                        r["batch_size"],
                        _fmt(m.get("bytes"), 1e-6, 5) or m.get("note", ""),
                        src,
                        _fmt(e.get("bytes"), 1e-6, 5) or e.get("note", ""),
                        _fmt(e.get("estimate_over_measured"), 1, 3),
                    ]
                )
        lines += [_table(["model", "batch", "measured MB", "estimate", "estimate MB", "estimate / measured"], rows), ""]
        if mem.get("note"):
            lines += [mem["note"], ""]
    paths = c.get("paths")
    if paths:
        lines += ["## Per-layer timing and isolated processes", ""]
        for kind in ("layers", "isolated"):
            for r in paths[kind]:
                lines.append(
                    f"- {kind}: {r.get('model')} b{r.get('batch_size')} {r.get('dtype')}: {r.get('status')}"
                    f" {r.get('error') or ''} median {_fmt(r.get('latency_median_s'), 1e3, 4)} ms, timer "
                    f"{r.get('timer')}, layer sum / latency {_fmt(r.get('layer_time_sum_ratio'), 1, 3)}, "
                    f"profiler overhead {_fmt(r.get('profiler_overhead'), 1, 3)}, flags {r.get('flags')}"
                )
        lines.append("")
    pred = c.get("prediction")
    if pred:
        lines += ["## Predicted latency (archcost calibrate + predict, issue 28)", ""]
        precision = pred.get("float32_matmul_precision")
        lines.append(
            f"A device profile calibrated per dtype on this GPU (float32 under torch's float32 matmul precision "
            f"{precision!r}: TF32 {'off' if precision == 'highest' else 'on'}), then each model timed and predicted "
            "with it; none of the models is a calibration kernel."
        )
        lines.append("")
        rows = []
        for dtype, e in pred.get("dtypes", {}).items():
            for p in e.get("points", []):
                rows.append([dtype, p["model"], p["batch_size"], _fmt(p["measured_ms"], 1, 4),
                             _fmt(p["predicted_ms"], 1, 4), f"{100 * p['error']:+.0f}%"])  # fmt: skip
            if e.get("points"):
                lines.append(
                    f"- {dtype}: calibration {e['calibration_s']} s ({e.get('kernels_timed', '?')} of "
                    f"{e.get('kernels', '?')} kernels before its deadline); {100 * e['within_10']:.0f}% within +-10%, "
                    f"{100 * e['within_20']:.0f}% within +-20%, median |error| {100 * e['median_abs_error']:.0f}%"
                )
        lines += ["", _table(["dtype", "model", "batch", "measured ms", "predicted ms", "error"], rows), ""]
    sw, found = c.get("sweep"), c.get("sweep_findings")
    if sw:
        lines += ["## Sweep", ""]
        lines.append(
            f"{len(sw['models'])} models x batch sizes {sw['batch_sizes']} x {sw['dtypes']}, channels-last, "
            f"timing {sw['timing']}."
        )
        for r in sw["runs"]:
            lines.append(
                f"- {r['dtype']}: {r['records']} records in {r['seconds']} s"
                + (f", stopped: {r['stopped']}" if r["stopped"] else "")
                + (f", not measured: {r['not_measured']}" if r["not_measured"] else "")
            )
        lines.append("")
    if found and "records" in found:
        lines += [
            f"Statuses {found['status']}; flags {found.get('flags')}; timers {found['timers']}; memory "
            f"{found['memory_methods']}; energy {found['energy_methods']} ({found['records_with_energy']} records "
            f"with energy); power notes {found['power_notes']}.",
            "",
        ]
        if found["errors"]:
            lines += ["Failed measurements:", ""]
            lines += [
                f"- {e['model']} {e['dtype']} b{e['batch_size']}: {e['status']}: {e['error']}" for e in found["errors"]
            ]
            lines.append("")
        rows = [
            [
                m["model"],
                m["dtype"],
                m["batches"],
                _fmt(m["estimate_over_measured_min"], 1, 3),
                _fmt(m["estimate_over_measured_max"], 1, 3),
                m["at_largest_batch"]["batch_size"],
                _fmt(m["at_largest_batch"]["estimate_bytes"], 1e-6, 4),
                _fmt(m["at_largest_batch"]["measured_bytes"], 1e-6, 4),
            ]
            for m in found["inference_memory"]
        ]
        lines += [
            "Inference memory, activations with the input: archcost's estimate against the measured peak "
            "(CUDA: max_memory_allocated, cuDNN workspaces included).",
            "",
            _table(
                ["model", "dtype", "batches", "est/meas min", "est/meas max", "largest batch", "est MB", "measured MB"],
                rows,
            ),
            "",
        ]
        lines += [f"Peaks the records used: {found['peaks_used']}.", ""]
    if c.get("throughput_table"):
        lines += ["## Throughput and energy", "", c["throughput_table"], ""]
    cli = c.get("cli")
    if cli:
        lines += ["## CLI (child process)", ""]
        for key, r in cli.items():
            measured = [
                (x.get("batch_size"), x.get("status"), _fmt(x.get("latency_median_s"), 1e3, 4))
                for x in r.get("records", [])
            ]
            lines.append(
                f"- {key}: {r.get('status')} ({' '.join(map(str, r.get('command', [])))}), "
                f"{r.get('seconds', r.get('timeout_s'))} s, (batch, status, median ms): {measured}"
            )
            if r.get("status") != "ok":
                lines += [f"  stderr: {' / '.join(r.get('stderr_tail', []))}"]
        lines.append("")
    if c.get("figures"):
        lines += ["## Figures", "", f"Notes: {c['figures']}", ""]
    if c.get("files"):
        lines += ["## Files", "", f"{c['files']}", ""]
    lines += ["## Phases", ""]
    lines += [
        f"- {k}: {v['status']} in {v.get('seconds')} s" + (f": {v['error']}" if v.get("error") else "")
        for k, v in c["phases"].items()
    ]
    if c["skipped"]:
        lines += ["", "Skipped:", ""] + [f"- {s['what']}: {s['why']}" for s in c["skipped"]]
    return "\n".join(lines) + "\n"


def throughput_table(results: Path) -> str:
    """Per dtype and model: latency at batch 1, best throughput and its batch, energy per image there."""
    from archcost.profiling.results import read_results

    if not results.exists():
        return ""
    df = read_results(results)
    ok = df[df["status"] == "ok"]
    rows = []
    for (dtype, model), g in ok.groupby(["dtype", "model"], sort=True):
        b1 = g[g["batch_size"] == 1]["latency_median_s"]
        best = g.loc[g["throughput_ips"].idxmax()]
        rows.append(
            [
                dtype,
                model,
                _fmt(b1.iloc[0] if len(b1) else None, 1e3, 4),
                _fmt(best["throughput_ips"], 1, 5),
                int(best["batch_size"]),
                _fmt(best["energy_per_image_j"], 1e3, 4),
                _fmt(best["power_mean_w"], 1, 4),
                _fmt(best["sm_clock_mean_mhz"], 1, 4),
                _fmt(best["percent_of_peak"], 1, 3),
            ]
        )
    return _table(
        [
            "dtype",
            "model",
            "b1 ms",
            "best img/s",
            "at batch",
            "mJ/img there",
            "W there",
            "SM MHz there",
            "% of peak FLOP/s",
        ],
        rows,
    )


# -- main -----------------------------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="folder for the results (created; files in it are replaced)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    p.add_argument("--budget-s", type=float, default=450.0, help="global deadline in seconds (default 450)")
    p.add_argument("--reserve-s", type=float, help="seconds kept for figures and report (default 45; smoke 0)")
    p.add_argument("--models", help="comma-separated zoo names (default: the Canziani set)")
    p.add_argument("--batch-sizes", help="comma-separated (default 1,2,4,...,256)")
    p.add_argument("--dtypes", help="comma-separated (default float16,bfloat16,float32)")
    p.add_argument("--no-channels-last", action="store_true", help="sweep in the default (NCHW) memory format")
    p.add_argument("--no-compile-check", action="store_true", help="skip the CLI --compile child process")
    p.add_argument("--smoke", action="store_true", help="tiny settings for a CPU: two small models, batch 1-2")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")  # torch.profiler's start/stop lines on every memory measurement
    # device peaks measured fresh for this run, not read from a cache an earlier run left
    os.environ["ARCHCOST_CACHE_DIR"] = tempfile.mkdtemp(prefix="archcost-gpu-check-")
    import torch

    from archcost.errors import ArchcostError
    from archcost.profiling.sweep import resolve_device

    try:  # before anything is written or measured
        device = resolve_device(args.device)
    except ArchcostError as exc:
        print(f"gpu_check: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(
            f"gpu_check: error: cannot create --out {out}: {exc.strerror}\n  hint: give a folder you can write",
            file=sys.stderr,
        )
        return 2
    for stale in ("results.jsonl", "checks.json", "report.md", "extras.tar.gz", "overflow.tar.gz"):
        (out / stale).unlink(missing_ok=True)
    for stale in out.glob("canziani-*.png"):
        stale.unlink()
    smoke = args.smoke
    models = args.models.split(",") if args.models else (["lenet5", "resnet20_cifar"] if smoke else CANZIANI)
    batch_sizes = (
        [int(b) for b in args.batch_sizes.split(",")] if args.batch_sizes else ([1, 2] if smoke else BATCH_SIZES)
    )
    dtypes = args.dtypes.split(",") if args.dtypes else (["float32", "bfloat16"] if smoke else DTYPES)
    channels_last = not args.no_channels_last
    reserve = args.reserve_s if args.reserve_s is not None else (0.0 if smoke else 45.0)
    if smoke:
        timing = {"warmup_s": 0.0, "min_time_s": 0.005, "repeats": 3, "benchmark_s": 0.1}
    else:
        # a timed window of repeats x min_time = 0.2 s per measurement keeps 351 measurements inside the budget;
        # NVML's power reading averages over a longer window on recent GPUs, see the report's power notes
        timing = {"warmup_s": 0.1, "min_time_s": 0.04, "repeats": 5, "benchmark_s": 1.0}
    run = Run(out, args.budget_s, reserve, smoke)
    faulthandler.dump_traceback_later(args.budget_s + 60, exit=False)  # a hang prints where it is
    run.checks["settings"] = {
        "device": str(device),
        "models": models,
        "batch_sizes": batch_sizes,
        "dtypes": dtypes,
        "channels_last": channels_last,
        "timing": timing,
    }
    run.log(f"gpu_check on {device}, torch {torch.__version__}, budget {args.budget_s:.0f} s, reserve {reserve:.0f} s")
    results = out / "results.jsonl"
    first = models[0]
    if smoke:
        latency_cases = [(first, dtypes[0], batch_sizes[-1])]
        training_cases = [(first, batch_sizes[-1])]
        path_case = (first, batch_sizes[-1], dtypes[0])
    else:
        latency_cases = [("resnet50", "float16", 64), ("mobilenet_v2", "float16", 1), ("vgg16", "float32", 16)]
        training_cases = [("resnet50", 32), ("mobilenet_v2", 64), ("vgg16", 16), ("densenet121", 32)]
        path_case = ("resnet18", 32, "float16")

    run.phase("environment", lambda: environment(device))
    run.phase("roofline", lambda: roofline_check(device, dtypes, smoke), needs_s=10)
    run.phase("latency", lambda: latency_check(device, latency_cases, timing, channels_last, run), needs_s=10)
    run.phase("training_memory", lambda: training_memory_check(device, training_cases, run), needs_s=10)
    run.phase("paths", lambda: paths_check(device, *path_case, channels_last, timing), needs_s=15)
    extras: dict[str, bytes] = {}
    predict_models = models[:2] if smoke else PREDICT_MODELS
    predict_dtypes = dtypes[:1] if smoke else [d for d in ("float32", "bfloat16") if d in dtypes] or dtypes[:1]
    run.phase(
        "prediction",
        lambda: prediction_check(
            device, predict_dtypes, predict_models, [1, 32] if not smoke else [1], smoke, run, extras
        ),  # fmt: skip
        needs_s=5 if smoke else 90,
    )
    compile_check = not smoke and not args.no_compile_check
    keep = 75.0 if compile_check else 0.0  # left after the sweep for the CLI --compile child
    run.phase("sweep", lambda: sweep(device, models, batch_sizes, dtypes, channels_last, timing, results, run, keep))
    run.phase("sweep_findings", lambda: sweep_findings(results))
    run.checks["throughput_table"] = attempt(lambda: throughput_table(results), "")

    def cli():
        out_ = {}
        compile_ = compile_check
        timeout = max(30.0, min(240.0, run.remaining()))
        out_["profile" + (" --compile" if compile_ else "")] = cli_check(
            device,
            "resnet18" if not smoke else first,
            [32] if compile_ else batch_sizes[:1] + batch_sizes[-1:],  # one shape: one compilation
            dtypes[0],
            compile_,
            timeout,
            timing,
        )
        if not compile_:
            run.skip("torch.compile", "smoke run (compiling takes minutes on a CPU)" if smoke else "--no-compile-check")
        return out_

    run.phase("cli", cli, needs_s=30 if not smoke else 0)
    run.phase("figures", lambda: figures_for(results, out, dtypes, extras))
    run.checks["files"] = finish_files(out, extras, "\n".join(run.log_lines))
    run.save()
    faulthandler.cancel_dump_traceback_later()
    failed = [k for k, v in run.checks["phases"].items() if v["status"] != "ok"]
    run.log(f"done in {run.elapsed():.0f} s; files {run.checks['files']['files']}; failed phases {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
