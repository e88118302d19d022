"""Roofline efficiency: the device's measured peaks, and where a model sits under them.

The peaks are measured, not looked up: a large matrix multiply in the chosen dtype gives the achieved
FLOP/s (2 * n^3 FLOPs per n x n product), a large tensor copy the achieved bytes/s (each element read once
and written once: 2 * nbytes per copy). They are cached per device, dtype, thread count and torch version
in the user's cache directory (``$ARCHCOST_CACHE_DIR``, else ``platformdirs.user_cache_dir("archcost")``:
``$XDG_CACHE_HOME/archcost`` or ``~/.cache/archcost`` on Linux, ``~/Library/Caches/archcost`` on macOS,
``%LOCALAPPDATA%\\archcost\\Cache`` on Windows), in ``peaks.json``; a ``filelock`` lock file beside it makes
each read-modify-write whole, so processes calibrating at once lose no entry.

The arithmetic (achieved FLOP/s, percent of peak, arithmetic intensity, ridge point, bound) is pure.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from archcost.errors import first_line

#: Every field ``roofline_fields`` fills.
ROOFLINE_FIELDS = (
    "achieved_flops_per_s",
    "peak_flops_per_s",
    "peak_bytes_per_s",
    "percent_of_peak",
    "arithmetic_intensity",
    "ridge_point",
    "bound",
    "roofline_note",
)


def achieved_flops_per_s(flops: float, latency_s: float) -> float:
    """Model FLOPs per batch over the median latency of a batch."""
    return flops / latency_s


def arithmetic_intensity(flops: float, traffic_bytes: float) -> float:
    """FLOPs per byte moved to and from memory."""
    return flops / traffic_bytes


def ridge_point(peak_flops_per_s: float, peak_bytes_per_s: float) -> float:
    """The intensity (FLOP/byte) where the memory roof meets the compute roof."""
    return peak_flops_per_s / peak_bytes_per_s


def attainable_flops_per_s(intensity: float, peak_flops_per_s: float, peak_bytes_per_s: float) -> float:
    """The roofline: min(peak FLOP/s, intensity * peak bytes/s)."""
    return min(peak_flops_per_s, intensity * peak_bytes_per_s)


def bound(intensity: float, peak_flops_per_s: float, peak_bytes_per_s: float) -> str:
    """ "compute" when the intensity is at or above the ridge point, else "memory"."""
    return "compute" if intensity >= ridge_point(peak_flops_per_s, peak_bytes_per_s) else "memory"


def row_traffic_bytes(row, element_bytes: int) -> int:
    """Bytes one layer moves if nothing stays in cache: its inputs read (``input_shapes`` x ``element_bytes``),
    its parameters read (``param_bytes``) and its output written (``activation_bytes``) (a ``LayerCost`` row).
    """
    import math

    inputs = sum(math.prod(s) for s in row.input_shapes if isinstance(s, tuple) and all(isinstance(d, int) for d in s))
    return inputs * element_bytes + row.param_bytes + row.activation_bytes


def layer_traffic_bytes(layers, element_bytes: int) -> int:
    """Bytes a forward moves if no layer's data stays in cache: the sum of ``row_traffic_bytes`` over the rows.
    A lower-is-better-cache model, so the intensity it gives is a lower bound.
    """
    return sum(row_traffic_bytes(r, element_bytes) for r in layers)


def roofline_fields(
    flops: float | None,
    traffic_bytes: float | None,
    latency_s: float | None,
    peak_flops_per_s: float | None,
    peak_bytes_per_s: float | None,
) -> dict:
    """The roofline fields of one measurement; ``None`` where an input is missing, with the reason."""
    out = dict.fromkeys(ROOFLINE_FIELDS)
    out["peak_flops_per_s"] = peak_flops_per_s
    out["peak_bytes_per_s"] = peak_bytes_per_s
    missing = [
        name for name, v in (("model FLOPs", flops), ("latency", latency_s), ("traffic bytes", traffic_bytes)) if not v
    ]
    if flops and latency_s:
        out["achieved_flops_per_s"] = achieved_flops_per_s(flops, latency_s)
    if flops and traffic_bytes:
        out["arithmetic_intensity"] = arithmetic_intensity(flops, traffic_bytes)
    if peak_flops_per_s and out["achieved_flops_per_s"] is not None:
        out["percent_of_peak"] = 100 * out["achieved_flops_per_s"] / peak_flops_per_s
    if peak_flops_per_s and peak_bytes_per_s:
        out["ridge_point"] = ridge_point(peak_flops_per_s, peak_bytes_per_s)
        if out["arithmetic_intensity"] is not None:
            out["bound"] = bound(out["arithmetic_intensity"], peak_flops_per_s, peak_bytes_per_s)
    else:
        missing.append("device peaks")
    if missing:
        out["roofline_note"] = "missing " + ", ".join(missing)
    if out["percent_of_peak"] is not None and out["percent_of_peak"] > 100:
        out["roofline_note"] = "; ".join(n for n in (out["roofline_note"], STALE_PEAKS) if n)
    return out


#: Said wherever a measured FLOP/s is above the device's peak FLOP/s.
STALE_PEAKS = (
    "% peak above 100: the cached device peaks are stale (measured on a busy machine, another setting, or a "
    "different clock); measure them again with --recalibrate (archcost.profile(..., recalibrate=True))"
)


# -- measured peaks -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DevicePeaks:
    key: str
    flops_per_s: float | None
    bytes_per_s: float | None
    gemm_n: int
    copy_bytes: int
    note: str | None = None
    measured_at: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def cache_dir() -> Path:
    """The user's cache directory for archcost: ``$ARCHCOST_CACHE_DIR`` if set, else platformdirs' user cache
    directory for "archcost" (which follows ``$XDG_CACHE_HOME`` on Linux)."""
    if os.environ.get("ARCHCOST_CACHE_DIR"):
        return Path(os.environ["ARCHCOST_CACHE_DIR"])
    import platformdirs

    return Path(platformdirs.user_cache_dir("archcost", appauthor=False))


def peaks_key(device_name: str, device: str, dtype: str, threads: int | None, torch_version: str) -> str:
    """The cache key: a peak belongs to one device, dtype, thread count (CPU) and torch build."""
    parts = [device_name, device.split(":")[0], dtype, f"torch {torch_version}"]
    if device.startswith("cpu"):
        parts.append(f"{threads} threads")
    return " | ".join(parts)


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) and data.get("version") == 1 else {"version": 1, "peaks": {}}
    except (OSError, ValueError):
        return {"version": 1, "peaks": {}}


def load_cached(key: str) -> DevicePeaks | None:
    entry = _read_cache(cache_dir() / "peaks.json").get("peaks", {}).get(key)
    if not entry:
        return None
    try:
        return DevicePeaks(**entry)
    except TypeError:
        return None


#: How long ``store`` waits for another process's write of the cache before giving up on caching.
LOCK_TIMEOUT_S = 30.0


def store(peaks: DevicePeaks) -> None:
    """Add ``peaks`` to the cache file: read, add, write atomically, all under a ``filelock.FileLock`` on
    ``peaks.json.lock`` so that two processes storing at once both keep their entry. A cache that cannot be
    written (read-only home, lock held over ``LOCK_TIMEOUT_S``) is not an error: it only saves time."""
    path = cache_dir() / "peaks.json"
    try:
        from filelock import FileLock

        from archcost.files import write_atomic

        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(path.with_name(path.name + ".lock"), timeout=LOCK_TIMEOUT_S):
            data = _read_cache(path)
            data.setdefault("peaks", {})[peaks.key] = peaks.to_dict()
            write_atomic(path, json.dumps(data, indent=1, sort_keys=True))
    except Exception:  # noqa: S110 - the cache only saves time: a read-only home must not stop a measurement
        pass


def measure_peaks(
    device,
    dtype,
    key: str,
    *,
    gemm_n: int | None = None,
    copy_bytes: int | None = None,
    min_time_s: float = 0.2,
    repeats: int = 5,
    warmup_s: float = 0.3,
) -> DevicePeaks:
    """Achieved FLOP/s of an ``n x n`` matrix product and bytes/s of a large copy on ``device``.

    Sizes default to n = 4096 and 512 MB on a GPU, n = 2048 and 256 MB on the CPU (large enough to leave
    the caches). The best sample of each is the peak. A dtype the device cannot multiply leaves that peak
    ``None`` with the reason in ``note``.
    """
    import torch

    from archcost.profiling.timing import measure

    device = torch.device(device)
    gpu = device.type == "cuda"
    n = gemm_n or (4096 if gpu else 2048)
    nbytes = copy_bytes or ((512 if gpu else 256) * 10**6)
    notes = []
    flops = bandwidth = None
    with torch.inference_mode():
        try:
            a = torch.randn(n, n, device=device).to(dtype)
            b = torch.randn(n, n, device=device).to(dtype)
            out = torch.empty(n, n, device=device, dtype=dtype)
            t = measure(
                lambda: torch.mm(a, b, out=out), device, warmup_s=warmup_s, min_time_s=min_time_s, repeats=repeats
            )
            flops = 2 * n**3 / t.stats.min_s
        except (RuntimeError, TypeError) as exc:
            notes.append(f"matrix product in {dtype} failed: {first_line(exc)}")
        finally:
            a = b = out = None
        try:
            elements = nbytes // 4
            src = torch.empty(elements, device=device, dtype=torch.float32).uniform_()
            dst = torch.empty_like(src)
            t = measure(lambda: dst.copy_(src), device, warmup_s=warmup_s, min_time_s=min_time_s, repeats=repeats)
            bandwidth = 2 * elements * 4 / t.stats.min_s
        except (RuntimeError, MemoryError) as exc:
            notes.append(f"copy of {nbytes} bytes failed: {first_line(exc)}")
        finally:
            src = dst = None
    if gpu:
        torch.cuda.empty_cache()
    return DevicePeaks(
        key=key,
        flops_per_s=flops,
        bytes_per_s=bandwidth,
        gemm_n=n,
        copy_bytes=nbytes,
        note="; ".join(notes) or None,
        measured_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )


def measure_peaks_isolated(device, dtype, key: str, *, threads: int | None = None, **sizes) -> DevicePeaks:
    """``measure_peaks`` in a fresh Python process (``python -m archcost.profiling.roofline``).

    Why: the calibration allocates and frees 16 MB matrices and a 256 MB buffer; in the measuring process
    that moves glibc's dynamic mmap threshold and so changes how every later tensor is allocated, which
    changed the model's CPU latency after a first (calibrating) run against later (cached) runs (see
    benchmarks/profile_check.py). In its own process it leaves the measuring process as it was. If the child
    fails, the peaks are measured here, and ``note`` says so.
    """
    import subprocess

    import torch

    request = {
        "device": str(device),
        "dtype": str(dtype).replace("torch.", ""),
        "key": key,
        "threads": threads,
        "sizes": sizes,
    }
    try:
        done = subprocess.run(
            [sys.executable, "-m", "archcost.profiling.roofline"],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode == 0:
            return DevicePeaks(**json.loads(done.stdout.strip().splitlines()[-1]))
        why = (done.stderr.strip().splitlines() or ["no message"])[-1]
    except (OSError, subprocess.SubprocessError, ValueError, TypeError, IndexError) as exc:
        why = f"{type(exc).__name__}: {exc}"
    peaks = measure_peaks(torch.device(device), dtype, key, **sizes)
    note = f"peaks measured in the profiling process (the calibration process failed: {why})"
    return DevicePeaks(**{**peaks.to_dict(), "note": "; ".join(n for n in (peaks.note, note) if n)})


def device_peaks(
    device, dtype, key: str, *, recalibrate: bool = False, isolated: bool = False, threads: int | None = None, **sizes
) -> DevicePeaks:
    """The cached peaks for ``key``, measured (and cached) the first time or when ``recalibrate``.

    ``isolated``: measure them in a separate process (``measure_peaks_isolated``) with ``threads`` threads.
    """
    if not recalibrate:
        cached = load_cached(key)
        if cached is not None:
            return cached
    if isolated:
        peaks = measure_peaks_isolated(device, dtype, key, threads=threads, **sizes)
    else:
        peaks = measure_peaks(device, dtype, key, **sizes)
    store(peaks)
    return peaks


def _child() -> int:
    """``python -m archcost.profiling.roofline``: read a request (JSON) on stdin, print the peaks as JSON."""
    import torch

    request = json.loads(sys.stdin.read())
    if request.get("threads"):
        torch.set_num_threads(int(request["threads"]))
    dtype = getattr(torch, request["dtype"])
    peaks = measure_peaks(torch.device(request["device"]), dtype, request["key"], **request.get("sizes", {}))
    print(json.dumps(peaks.to_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(_child())
