"""What a measurement's outcome becomes in a record: failures classified, trust flags, the analytic fields.

Used by the one measured step protocol (``steps.measure_step``) and the sweep around it.
"""

from __future__ import annotations

import gc
import re

import torch

from archcost import errors
from archcost.errors import ArchcostError
from archcost.profiling.roofline import layer_traffic_bytes
from archcost.units import DTYPES

#: A record's ``flags`` when a figure should not be trusted as it is (each comes with a sentence in ``warnings``).
FLAGS = ("cv_high", "warmup_unsettled", "peaks_stale", "layer_sum_off", "cpu_stolen", "page_faults")
CV_LIMIT = 0.10  # coefficient of variation above which the latency is flagged
STEAL_LIMIT = 0.05  # share of the CPUs' ticks a hypervisor stole during the timed samples above which it is flagged
#: minor page faults per call above which the latency is flagged: 1 MiB of 4 KiB pages mapped afresh per call, about
#: 0.3-0.5 ms of the kernel zeroing pages on this project's VM (efficientnet_b0 at batch 1: 2,300-5,400 faults per
#: call and 30-50% slower than with none; environment.steady_heap)
FAULT_LIMIT = 256
LAYER_SUM_TOLERANCE = 0.15  # layer times must add up to the median latency within this fraction


_OOM = re.compile(r"out of memory|can't allocate memory|cannot allocate memory|ALLOC_FAILED", re.IGNORECASE)
_UNSUPPORTED = re.compile(r"not implemented for|not supported|unsupported|does not support|no kernel", re.IGNORECASE)
_DTYPE_WORDS = re.compile(r"half|bfloat16|float16|bf16|fp16", re.IGNORECASE)


def is_oom(exc: BaseException) -> bool:
    """Whether ``exc`` is an out-of-memory: ``torch.cuda.OutOfMemoryError``, ``MemoryError`` or an allocator message."""
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if isinstance(exc, MemoryError) or (oom_type is not None and isinstance(exc, oom_type)):
        return True
    return isinstance(exc, RuntimeError) and bool(_OOM.search(str(exc)))


def classify_failure(exc: BaseException, dtype: str) -> str:
    """``oom``, ``unsupported`` (a reduced-precision dtype the device has no kernel for) or ``error``."""
    if is_oom(exc):
        return "oom"
    text = str(exc)
    if dtype != "float32" and _UNSUPPORTED.search(text) and _DTYPE_WORDS.search(text):
        return "unsupported"
    return "error"


def carry_over(status: str, batch_size: int, message: str) -> tuple[str, str] | None:
    """What the larger batch sizes of a model get after ``status`` at ``batch_size``: oom and unsupported
    carry over without running (a bigger batch needs more memory; a dtype stays unsupported), ok and error don't.
    """
    if status == "oom":
        return "oom", f"not run: batch {batch_size} already ran out of memory"
    if status == "unsupported":
        return "unsupported", message
    return None


def first_line(exc: BaseException) -> str:
    """``"ValueError: first line of its message"``: a failure as a record's ``error`` holds it."""
    return errors.first_line(exc, with_type=True)


def release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def flags_and_warnings(out: dict) -> tuple[list[str], list[str]]:
    """The ``flags`` of a measured record and one sentence each saying what to do (``FLAGS``)."""
    flags, warnings = [], []
    cv = out.get("latency_cv")
    if cv is not None and cv > CV_LIMIT:
        flags.append("cv_high")
        warnings.append(
            f"latency CV {100 * cv:.0f}% is over {100 * CV_LIMIT:.0f}%: the samples disagree (a busy machine, "
            "frequency scaling); close other work, use --threads below the core count, or raise --min-time"
        )
    if out.get("warmup_settled") is False:
        flags.append("warmup_unsettled")
        warnings.append("warm-up did not settle (the last single calls still changed by more than 5%); raise --warmup")
    pct = out.get("percent_of_peak")
    layer_pct = [r["percent_of_peak"] for r in out.get("layers") or [] if r.get("percent_of_peak") is not None]
    if (pct is not None and pct > 100) or any(p > 100 for p in layer_pct):
        from archcost.profiling.roofline import ABOVE_PEAK

        flags.append("peaks_stale")
        where = "the model" if pct is not None and pct > 100 else "a layer"
        warnings.append(f"{where} ran above the calibrated peak FLOP/s: {ABOVE_PEAK}")
    ratio = out.get("layer_time_sum_ratio")
    if ratio is not None and abs(ratio - 1) > LAYER_SUM_TOLERANCE:
        flags.append("layer_sum_off")
        warnings.append(
            f"the layer times add up to {100 * ratio:.0f}% of the median latency (more than "
            f"{100 * LAYER_SUM_TOLERANCE:.0f}% off): time between layers (Python), the profiler's overhead "
            "(large against a model of a few ms) or a busy machine (see the CV); read the shares, not the "
            "absolute layer times (layer_unattributed_s and profiler_overhead say which)"
        )
    steal = out.get("cpu_steal_fraction")
    if steal is not None and steal > STEAL_LIMIT:
        flags.append("cpu_stolen")
        warnings.append(
            f"the hypervisor took {100 * steal:.0f}% of the CPUs' time while the samples ran (steal, /proc/stat): "
            "the latency includes time in which the model did not run; time again when the host is quieter, or "
            "on a dedicated or bare-metal machine"
        )
    faults = out.get("minor_faults_per_call")
    if faults is not None and faults > FAULT_LIMIT:
        from archcost.profiling.environment import STEADY_MMAP_THRESHOLD, heap_state

        flags.append("page_faults")
        mib = faults * 4096 / 2**20
        if heap_state() == "steady":  # what is left: allocations glibc maps afresh at any setting
            why = (f"outputs of {STEADY_MMAP_THRESHOLD // 2**20} MiB or more, which glibc maps afresh on every "
                   "call; THP_MEM_ALLOC_ENABLE=1 in the environment (torch's allocator asks for 2 MiB pages) or "
                   "jemalloc/tcmalloc preloaded takes most of it away")  # fmt: skip
        else:
            why = ("memory the allocator gave back to the kernel and faults in again, which depends on what this "
                   "process allocated before; profile with --heap steady (the default)")  # fmt: skip
        warnings.append(
            f"{faults:,.0f} minor page faults per call (about {mib:,.0f} MiB of 4 KiB pages mapped and zeroed by "
            f"the kernel on every call) are in the latency: {why}"
        )
    return flags, warnings


def channels_last(value):
    """A 4-D image input in channels-last memory format (anything else as it is)."""
    if isinstance(value, torch.Tensor) and value.dim() == 4 and value.is_floating_point():
        return value.contiguous(memory_format=torch.channels_last)
    return value


def analysis_fields(report, dtype: str) -> dict:
    """A record's analytic fields from the ``CostReport`` of its batch size (or the ``ArchcostError`` its
    analysis raised): params, MACs, FLOPs, traffic bytes and the inference memory estimate."""
    if isinstance(report, ArchcostError):
        return {"analysis_note": f"analysis failed: {report.message}", "memory_estimate_note": "no analysis"}
    out: dict = {}
    totals = report.totals
    out["params"], out["macs"], out["flops"] = totals["params"], totals["macs"], totals["flops"]
    out["traffic_bytes"] = layer_traffic_bytes(report.layers, torch.empty((), dtype=DTYPES[dtype]).element_size())
    if report.unsupported:
        ops = sorted({u.op for u in report.unsupported})
        out["analysis_note"] = f"FLOPs exclude ops archcost cannot cost: {', '.join(ops[:5])}"
    from archcost.cost.memory import inference_peak_bytes

    try:
        out["memory_estimate_bytes"] = int(inference_peak_bytes(report))
    except Exception as exc:  # the estimate is a comparison column: its failure must not stop a measurement
        out["memory_estimate_note"] = f"estimate failed: {first_line(exc)}"
    return out
