"""Roofline efficiency: the device's measured peaks, and where a model sits under them.

The peaks are measured, not looked up, the way the models' own kernels run: the compute peak is the best
FLOP/s that any of several matrix products (square, and the tall-skinny shapes a convolution lowers to) and
convolutions (ResNet's 3x3 and 1x1 layers) reaches in the chosen dtype at the same thread count, each the best
of its repeats (``kernel_set``; FLOPs counted as archcost counts them, 2 per MAC, so a convolution algorithm
that does fewer multiplications is in the peak too). On a GPU in float32, the kernels are timed with TF32 off
and on, named apart (``fp32_flops_per_s``, ``tf32_flops_per_s``), and the peak is the one of the settings the
model runs with (``torch.backends.cuda.matmul.allow_tf32`` for products, ``torch.backends.cudnn.allow_tf32``
for convolutions). The memory roofs are two copies (each element read once and written once: 2 * nbytes): one
that stays in the caches (``cache_bytes_per_s``, the best of a few small sizes) and one far larger than them
(``bytes_per_s``, the DRAM roof). A layer above the compute peak is then a finding (``ABOVE_PEAK`` says what it
can mean), not a calibration to repeat. They are cached per device, dtype, thread count and torch version
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
from typing import TypedDict

from archcost.errors import first_line


class RooflineFields(TypedDict, total=False):
    """A record's roofline fields (``roofline_fields``); ``None`` where an input is missing, with the reason."""

    achieved_flops_per_s: float | None
    peak_flops_per_s: float | None
    peak_bytes_per_s: float | None
    percent_of_peak: float | None
    arithmetic_intensity: float | None
    ridge_point: float | None
    bound: str | None  # "compute" or "memory"
    roofline_note: str | None


#: Every field ``roofline_fields`` fills.
ROOFLINE_FIELDS = tuple(RooflineFields.__annotations__)


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


def row_input_elements(row) -> list[int]:
    """The element count of each of one ``LayerCost`` row's inputs whose shape is known (a tuple of ints)."""
    import math

    return [math.prod(s) for s in row.input_shapes if isinstance(s, tuple) and all(isinstance(d, int) for d in s)]


def row_traffic_bytes(row, element_bytes: int) -> int:
    """Bytes one layer moves if nothing stays in cache: its inputs read (``input_shapes`` x ``element_bytes``),
    its parameters read (``param_bytes``) and its output written (``activation_bytes``) (a ``LayerCost`` row).
    """
    return sum(row_input_elements(row)) * element_bytes + row.param_bytes + row.activation_bytes


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
        out["roofline_note"] = "; ".join(n for n in (out["roofline_note"], ABOVE_PEAK) if n)
    return out


#: Said wherever a measured FLOP/s is above the device's peak FLOP/s: what it can mean, in the order to check.
ABOVE_PEAK = (
    "% peak above 100: faster than the fastest of the calibration's matrix products and convolutions at these "
    "threads and dtype. Either its kernel beats them all (a shape or algorithm the calibration does not "
    "cover: a Winograd or FFT convolution does fewer multiplications than the 2-per-MAC count), or its time is "
    "short of its work (torch.profiler matched only part of a layer), or the machine was busier while the peaks "
    "were measured (see peaks_measured_at) than now: only then does measuring them once more on a quiet machine "
    "help (--recalibrate)"
)
#: The name the profiling records and tests know it by.
STALE_PEAKS = ABOVE_PEAK


# -- measured peaks -------------------------------------------------------------------------------------


#: The calibration's method: cached peaks of another method (one 2048 x 2048 product, one copy) are measured
#: again, so an upgrade never keeps a peak below what the convolutions reach.
CALIBRATION_METHOD = 2


@dataclass(frozen=True)
class DevicePeaks:
    """A device's measured roofs. ``flops_per_s``: the best kernel (``flops_kernel``) of ``kernel_flops_per_s``
    (every kernel's best FLOP/s) under the settings the model runs with (``math_mode`` on a GPU in float32);
    ``bytes_per_s``: the DRAM roof (a copy of ``copy_bytes``); ``cache_bytes_per_s``: the cache roof (a copy of
    ``cache_copy_bytes``); ``gemm_n``: the largest square product."""

    key: str
    flops_per_s: float | None
    bytes_per_s: float | None
    gemm_n: int
    copy_bytes: int
    note: str | None = None
    measured_at: str = ""
    method: int = CALIBRATION_METHOD
    flops_kernel: str | None = None
    kernel_flops_per_s: dict | None = None
    fp32_flops_per_s: float | None = None
    tf32_flops_per_s: float | None = None
    math_mode: str | None = None
    cache_bytes_per_s: float | None = None
    cache_copy_bytes: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


# -- the calibration's kernels (pure: shapes and FLOPs) --------------------------------------------------------


@dataclass(frozen=True)
class Kernel:
    """One calibration kernel: ``gemm`` (m, k, n): an (m x k) by (k x n) product; ``conv`` (batch, in channels,
    size, out channels, kernel, stride): a square convolution with padding kernel // 2, no bias."""

    name: str
    kind: str
    shape: tuple[int, ...]

    @property
    def flops(self) -> int:
        """FLOPs as archcost counts them: 2 per multiply-accumulate."""
        if self.kind == "gemm":
            m, k, n = self.shape
            return 2 * m * k * n
        batch, cin, size, cout, kernel, stride = self.shape
        out = conv_out_size(size, kernel, stride)
        return 2 * batch * cout * out * out * cin * kernel * kernel


def conv_out_size(size: int, kernel: int, stride: int) -> int:
    """The output size of a convolution with padding ``kernel // 2``."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def gemm(m: int, k: int, n: int) -> Kernel:
    return Kernel(f"matmul {m}x{k} @ {k}x{n}", "gemm", (m, k, n))


def conv(batch: int, cin: int, size: int, cout: int, kernel: int, stride: int = 1) -> Kernel:
    return Kernel(
        f"conv {kernel}x{kernel}/{stride} {cin}->{cout} at {size}x{size}, batch {batch}",
        "conv",
        (batch, cin, size, cout, kernel, stride),
    )


def kernel_set(gpu: bool, gemm_n: int | None = None) -> tuple[Kernel, ...]:
    """The kernels the compute peak is the best of: square products up to ``gemm_n`` (4096 on a GPU, 2048 on
    the CPU), the products ResNet's 3x3 layers lower to (im2col: output positions x 9 C_in by C_out, at 56, 28,
    14 and 7 px) and those convolutions themselves, with a 1x1 bottleneck one; at batch 1 and 8 on the CPU,
    32 on a GPU (where batch 1 leaves most of the chip idle)."""
    n = gemm_n or (4096 if gpu else 2048)
    squares = sorted({max(16, n // 4), max(16, n // 2), n})
    kernels = [gemm(s, s, s) for s in squares]
    batches = (32,) if gpu else (1, 8)
    for size, channels in ((56, 64), (28, 128), (14, 256), (7, 512)):
        kernels.append(gemm(batches[-1] * size * size, 9 * channels, channels))
        for b in batches:
            kernels.append(conv(b, channels, size, channels, 3))
    kernels += [conv(b, 256, 56, 64, 1) for b in batches]
    return tuple(kernels)


def stream_sizes(gpu: bool, copy_bytes: int | None = None) -> tuple[tuple[int, ...], int]:
    """(cache-resident copy sizes, DRAM-sized copy) in bytes of the source: 64 KB to 1 MB on the CPU (the
    L1 and L2 of one core; source and destination both stay), 2 to 8 MB on a GPU (its L2 is 40 MB and more on
    an A100 or H100), and ``copy_bytes`` (256 MB on the CPU, 512 MB on a GPU) far beyond any cache."""
    cache = (2 * 10**6, 4 * 10**6, 8 * 10**6) if gpu else (64 * 10**3, 256 * 10**3, 10**6)
    return cache, copy_bytes or ((512 if gpu else 256) * 10**6)


def best_kernel(results: dict[str, float | None]) -> tuple[str | None, float | None]:
    """The kernel with the most FLOP/s of ``results`` ({name: FLOP/s or None when it failed})."""
    done = {name: v for name, v in results.items() if v}
    if not done:
        return None, None
    name = max(done, key=lambda n: done[n] or 0.0)
    return name, done[name]


def math_mode_text(matmul_tf32: bool, cudnn_tf32: bool) -> str:
    """'matmul fp32, convolution tf32' (torch's default on a GPU)."""
    return f"matmul {'tf32' if matmul_tf32 else 'fp32'}, convolution {'tf32' if cudnn_tf32 else 'fp32'}"


def in_math_mode(fp32: dict, tf32: dict, kernels, matmul_tf32: bool, cudnn_tf32: bool) -> dict:
    """Per kernel, its FLOP/s in the mode the model runs with: products by ``matmul_tf32``, convolutions by
    ``cudnn_tf32`` (``fp32``/``tf32``: {name: FLOP/s} timed with TF32 off/on)."""
    use = {"gemm": matmul_tf32, "conv": cudnn_tf32}
    return {k.name: (tf32 if use[k.kind] else fp32).get(k.name) for k in kernels}


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
    if not entry or entry.get("method") != CALIBRATION_METHOD:  # none, or measured the old way: measure again
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


def _time_kernel(kernel: Kernel, device, dtype, timing: dict) -> float:
    """The best FLOP/s of ``kernel`` on ``device`` over ``timing``'s repeats (``timing.measure`` keywords)."""
    import torch

    from archcost.profiling.timing import measure

    if kernel.kind == "gemm":
        m, k, n = kernel.shape
        a = torch.randn(m, k, device=device).to(dtype)
        b = torch.randn(k, n, device=device).to(dtype)
        out = torch.empty(m, n, device=device, dtype=dtype)

        def run():
            return torch.mm(a, b, out=out)
    else:
        batch, cin, size, cout, kern, stride = kernel.shape
        layer = torch.nn.Conv2d(cin, cout, kern, stride, kern // 2, bias=False).to(device=device, dtype=dtype)
        x = torch.randn(batch, cin, size, size, device=device).to(dtype)

        def run():
            return layer(x)

    t = measure(run, device, **timing)
    return kernel.flops / t.stats.min_s


def _time_kernels(kernels, device, dtype, timing: dict, notes: list[str]) -> dict[str, float | None]:
    """{kernel name: best FLOP/s, or None with a note where the kernel failed (a dtype the device cannot
    multiply, no memory)}."""
    out: dict[str, float | None] = {}
    for kernel in kernels:
        try:
            out[kernel.name] = _time_kernel(kernel, device, dtype, timing)
        except (RuntimeError, TypeError, MemoryError) as exc:
            out[kernel.name] = None
            notes.append(f"{kernel.name} in {str(dtype).replace('torch.', '')} failed: {first_line(exc)}")
    return out


def _time_copy(nbytes: int, device, timing: dict) -> float:
    """The best bytes/s of copying ``nbytes`` (each element read once and written once)."""
    import torch

    from archcost.profiling.timing import measure

    elements = max(1, nbytes // 4)
    src = torch.empty(elements, device=device, dtype=torch.float32).uniform_()
    dst = torch.empty_like(src)
    t = measure(lambda: dst.copy_(src), device, **timing)
    return 2 * elements * 4 / t.stats.min_s


def measure_peaks(
    device,
    dtype,
    key: str,
    *,
    gemm_n: int | None = None,
    copy_bytes: int | None = None,
    min_time_s: float = 0.1,
    repeats: int = 5,
    warmup_s: float = 0.2,
    kernels: tuple[Kernel, ...] | None = None,
    cache_bytes: tuple[int, ...] | None = None,
    tf32: tuple[bool, bool] | None = None,
) -> DevicePeaks:
    """The compute peak (the best of ``kernels``, default ``kernel_set``), the DRAM roof (a copy of
    ``copy_bytes``) and the cache roof (the best copy of ``cache_bytes``, default ``stream_sizes``) on
    ``device``, each kernel the best of ``repeats`` samples of at least ``min_time_s``.

    On CUDA in float32 every kernel is timed with TF32 off and on (the flags restored after); ``tf32``
    (matmul, cudnn) says which the model runs with (default: the flags as they are now). cuDNN's benchmark
    mode is on while the convolutions are timed, as ``archcost profile`` runs them. A kernel that fails leaves
    its entry None with the reason in ``note``; no kernel at all leaves ``flops_per_s`` None.
    """
    import torch

    device = torch.device(device)
    gpu = device.type == "cuda"
    kernels = tuple(kernels) if kernels is not None else kernel_set(gpu, gemm_n)
    squares = [k.shape[0] for k in kernels if k.kind == "gemm" and len(set(k.shape)) == 1]
    cache_sizes, dram = stream_sizes(gpu, copy_bytes)
    cache_sizes = tuple(cache_bytes) if cache_bytes is not None else cache_sizes
    timing = {"warmup_s": warmup_s, "min_time_s": min_time_s, "repeats": repeats}
    notes: list[str] = []
    fp32 = tf32_results = None
    mode = None
    with torch.inference_mode():
        if gpu and dtype == torch.float32:
            flags = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
            matmul_tf32, cudnn_tf32 = tf32 if tf32 is not None else flags
            old_benchmark = torch.backends.cudnn.benchmark
            try:
                torch.backends.cudnn.benchmark = True
                results = {}
                for on in (False, True):
                    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = on
                    results[on] = _time_kernels(kernels, device, dtype, timing, notes)
            finally:
                torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags
                torch.backends.cudnn.benchmark = old_benchmark
            fp32, tf32_results = results[False], results[True]
            per_kernel = in_math_mode(fp32, tf32_results, kernels, matmul_tf32, cudnn_tf32)
            mode = math_mode_text(matmul_tf32, cudnn_tf32)
        elif gpu:
            old_benchmark = torch.backends.cudnn.benchmark
            try:
                torch.backends.cudnn.benchmark = True
                per_kernel = _time_kernels(kernels, device, dtype, timing, notes)
            finally:
                torch.backends.cudnn.benchmark = old_benchmark
        else:
            per_kernel = _time_kernels(kernels, device, dtype, timing, notes)
        best_name, flops = best_kernel(per_kernel)
        bandwidth = cache_bandwidth = None
        cache_size = None
        try:
            bandwidth = _time_copy(dram, device, timing)
        except (RuntimeError, MemoryError) as exc:
            notes.append(f"copy of {dram} bytes failed: {first_line(exc)}")
        for size in cache_sizes:
            try:
                got = _time_copy(size, device, timing)
            except (RuntimeError, MemoryError) as exc:
                notes.append(f"copy of {size} bytes failed: {first_line(exc)}")
                continue
            if cache_bandwidth is None or got > cache_bandwidth:
                cache_bandwidth, cache_size = got, size
    if gpu:
        torch.cuda.empty_cache()
    return DevicePeaks(
        key=key,
        flops_per_s=flops,
        bytes_per_s=bandwidth,
        gemm_n=max(squares, default=0),
        copy_bytes=dram,
        note="; ".join(dict.fromkeys(notes)) or None,
        measured_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        flops_kernel=best_name,
        kernel_flops_per_s=per_kernel,
        fp32_flops_per_s=best_kernel(fp32)[1] if fp32 is not None else None,
        tf32_flops_per_s=best_kernel(tf32_results)[1] if tf32_results is not None else None,
        math_mode=mode,
        cache_bytes_per_s=cache_bandwidth,
        cache_copy_bytes=cache_size,
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

    tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)  # as the model will run
    request = {
        "device": str(device),
        "dtype": str(dtype).replace("torch.", ""),
        "key": key,
        "threads": threads,
        "sizes": {"tf32": list(tf32), **{k: [asdict(x) for x in v] if k == "kernels" else v for k, v in sizes.items()}},
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
    sizes = dict(request.get("sizes", {}))
    if "tf32" in sizes:
        sizes["tf32"] = tuple(sizes["tf32"])
    if "kernels" in sizes:
        sizes["kernels"] = tuple(Kernel(k["name"], k["kind"], tuple(k["shape"])) for k in sizes["kernels"])
    peaks = measure_peaks(torch.device(request["device"]), dtype, request["key"], **sizes)
    print(json.dumps(peaks.to_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(_child())
