"""Power and energy on NVIDIA GPUs through NVML (``pynvml`` from nvidia-ml-py).

A background thread samples power, GPU utilisation, SM clock, memory used and temperature while the
timed samples run. Energy over the timed window comes from NVML's total-energy counter where the GPU
has one (Volta and later), and otherwise from the power samples by the trapezoid rule. Where NVML or a
GPU is absent every power field is ``None`` and ``power_note`` says why; nothing fails.

The arithmetic (integration over the timed windows, per-image energy) is in pure functions at the top.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypedDict


class PowerFields(TypedDict, total=False):
    """A record's power fields (``power_summary``): NVIDIA GPUs only, ``None`` elsewhere (``power_note`` says why)."""

    power_mean_w: float | None
    power_max_w: float | None
    energy_j: float | None
    energy_per_image_j: float | None
    images_per_joule: float | None
    energy_method: str | None
    gpu_util_mean_pct: float | None
    sm_clock_mean_mhz: float | None
    gpu_memory_used_max_bytes: int | None
    temperature_max_c: float | None
    power_samples: int | None


#: Every field ``power_summary`` fills, all None when there is no reading.
POWER_FIELDS = tuple(PowerFields.__annotations__)


@dataclass(frozen=True)
class PowerSample:
    t: float  # time.perf_counter() seconds
    power_w: float
    util_pct: float | None = None
    sm_clock_mhz: float | None = None
    memory_used_bytes: int | None = None
    temperature_c: float | None = None


def _power_at(samples: Sequence[PowerSample], t: float) -> float:
    """Power at time ``t``: linear between the samples around it, held constant beyond the first and last."""
    if t <= samples[0].t:
        return samples[0].power_w
    if t >= samples[-1].t:
        return samples[-1].power_w
    for a, b in zip(samples, samples[1:], strict=False):
        if a.t <= t <= b.t:
            if b.t == a.t:
                return b.power_w
            return a.power_w + (b.power_w - a.power_w) * (t - a.t) / (b.t - a.t)
    return samples[-1].power_w  # not reached: samples are sorted


def integrate_energy(samples: Sequence[PowerSample], t0: float, t1: float) -> float:
    """Joules between ``t0`` and ``t1``: the trapezoid rule over the samples inside, interpolated at the ends."""
    if t1 <= t0:
        return 0.0
    if not samples:
        raise ValueError("no power samples to integrate")
    samples = sorted(samples, key=lambda s: s.t)
    points = [(t0, _power_at(samples, t0))]
    points += [(s.t, s.power_w) for s in samples if t0 < s.t < t1]
    points.append((t1, _power_at(samples, t1)))
    return sum((tb - ta) * (pa + pb) / 2 for (ta, pa), (tb, pb) in zip(points, points[1:], strict=False))


def power_summary(
    samples: Sequence[PowerSample],
    spans: Sequence[tuple[float, float]],
    images: int,
    counter_energy_j: float | None = None,
) -> dict:
    """The power fields of one measurement: ``images`` were processed in the time ``spans``.

    Energy is ``counter_energy_j`` when the GPU's energy counter gave one, else the integral of the power
    samples over the spans. Mean power = energy / time in the spans; energy per image = energy / images.
    """
    duration = sum(b - a for a, b in spans)
    if not samples or duration <= 0 or images <= 0:
        return dict.fromkeys(POWER_FIELDS)
    if counter_energy_j is not None and counter_energy_j > 0:
        energy, method = counter_energy_j, "nvmlDeviceGetTotalEnergyConsumption"
    else:
        energy, method = sum(integrate_energy(samples, a, b) for a, b in spans), "power samples, trapezoid rule"
    inside = [s for s in samples if any(a <= s.t <= b for a, b in spans)] or list(samples)

    def mean(values):
        values = [v for v in values if v is not None]
        return sum(values) / len(values) if values else None

    def top(values):
        values = [v for v in values if v is not None]
        return max(values) if values else None

    return {
        "power_mean_w": energy / duration,
        "power_max_w": top(s.power_w for s in inside),
        "energy_j": energy,
        "energy_per_image_j": energy / images,
        "images_per_joule": images / energy if energy > 0 else None,
        "energy_method": method,
        "gpu_util_mean_pct": mean(s.util_pct for s in inside),
        "sm_clock_mean_mhz": mean(s.sm_clock_mhz for s in inside),
        "gpu_memory_used_max_bytes": top(s.memory_used_bytes for s in inside),
        "temperature_max_c": top(s.temperature_c for s in inside),
        "power_samples": len(inside),
    }


# -- NVML ---------------------------------------------------------------------------------------------


def open_device(device) -> tuple[Any, Any, str | None]:
    """``(pynvml module, NVML handle, None)`` for a CUDA device, or ``(None, None, reason)`` when there is none.

    The handle is found by the device's UUID (CUDA and NVML number devices differently when
    ``CUDA_VISIBLE_DEVICES`` reorders them), falling back to the index.
    """
    if getattr(device, "type", str(device)) != "cuda":
        return None, None, "no power reading on the CPU: NVML measures NVIDIA GPUs only"
    try:
        import pynvml
    except ImportError:
        return None, None, "pynvml is not installed (pip install nvidia-ml-py)"
    failed = nvml_errors(pynvml)
    try:
        pynvml.nvmlInit()
    except failed as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return None, None, f"NVML could not start: {exc}"
    try:
        import torch

        index = device.index if device.index is not None else torch.cuda.current_device()
        uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
        handle = None
        if uuid is not None:
            try:
                handle = pynvml.nvmlDeviceGetHandleByUUID(f"GPU-{uuid}")
            except failed:  # NVML_ERROR_NOT_FOUND (a MIG slice, an older driver): the index below
                handle = None
        if handle is None:
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        pynvml.nvmlDeviceGetPowerUsage(handle)  # some GPUs have no power sensor: find out now
    except (*failed, RuntimeError, AssertionError) as exc:  # type: ignore[misc]  # NVML, or torch's device properties
        _shutdown(pynvml)
        return None, None, f"NVML cannot read this GPU's power: {exc}"
    return pynvml, handle, None


def nvml_errors(pynvml) -> tuple[type[BaseException], ...]:
    """The exception class NVML raises (``pynvml.NVMLError``, base of every ``NVMLError_*``), as a tuple for
    ``except``; empty for a module without it (a test's fake), so that nothing else is caught."""
    error = getattr(pynvml, "NVMLError", None)
    return (error,) if isinstance(error, type) and issubclass(error, BaseException) else ()


def _shutdown(pynvml) -> None:
    try:
        pynvml.nvmlShutdown()
    except nvml_errors(pynvml):  # NVML already shut down or never started: nothing to release
        pass


def driver_version() -> str | None:
    """The NVIDIA driver version from NVML, or None."""
    try:
        import pynvml
    except ImportError:
        return None
    failed = nvml_errors(pynvml)
    try:
        pynvml.nvmlInit()
    except failed:  # no driver or library: no version to report
        return None
    try:
        version = pynvml.nvmlSystemGetDriverVersion()
        return version.decode() if isinstance(version, bytes) else str(version)
    except failed:
        return None
    finally:
        _shutdown(pynvml)


class PowerSampler:
    """Samples NVML every ``interval_s`` in a daemon thread while ``active``; ``close()`` stops it.

    ``mark(True)`` / ``mark(False)`` bracket a timed window (as ``timing.measure``'s ``on_timed``): the
    energy counter is read at both ends. ``power_summary`` keeps the samples inside the timed spans.
    """

    def __init__(self, device, interval_s: float = 0.02) -> None:
        self.nvml, self.handle, self.reason = open_device(device)
        self.interval_s = interval_s
        self.samples: list[PowerSample] = []
        self._counter: list[float | None] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.read_errors: list[str] = []  # NVML read failures, once each, said in the record's power_note

    @property
    def available(self) -> bool:
        return self.handle is not None

    def start(self) -> PowerSampler:
        if self.available:
            self.samples = []
            self._counter = []
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="archcost-nvml", daemon=True)
            self._thread.start()
        return self

    def mark(self, starting: bool) -> None:
        if self.available:
            self._counter.append(self._energy_mj())

    def stop(self) -> list[PowerSample]:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=2)
            self._thread = None
        with self._lock:
            return list(self.samples)

    def counter_energy_j(self) -> float | None:
        """Joules between the first and last ``mark``, from NVML's energy counter (None if it has none)."""
        marks = [m for m in self._counter if m is not None]
        if len(marks) < 2 or len(marks) != len(self._counter):
            return None
        return (marks[-1] - marks[0]) / 1e3

    def close(self) -> None:
        self.stop()
        if self.nvml is not None:
            _shutdown(self.nvml)
            self.nvml = self.handle = None

    def _energy_mj(self) -> float | None:
        try:
            return float(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))
        except nvml_errors(self.nvml) as exc:  # NVML_ERROR_NOT_SUPPORTED before Volta: no counter energy
            self._note(f"energy counter: {exc}")
            return None

    def _note(self, text: str) -> None:
        """Keep the first NVML read failure of each kind (``read_errors``): power_fields reports them."""
        with self._lock:
            if text not in self.read_errors:
                self.read_errors.append(text)

    def _read(self) -> PowerSample | None:
        nv, h = self.nvml, self.handle
        failed = nvml_errors(nv)
        try:
            power = nv.nvmlDeviceGetPowerUsage(h) / 1e3  # milliwatts
        except failed as exc:
            self._note(f"power: {exc}")
            return None
        t = time.perf_counter()

        def attempt(f):
            try:
                return f()
            except failed:  # NVML_ERROR_NOT_SUPPORTED: this GPU does not report that figure (None in the sample)
                return None

        return PowerSample(
            t=t,
            power_w=power,
            util_pct=attempt(lambda: float(nv.nvmlDeviceGetUtilizationRates(h).gpu)),
            sm_clock_mhz=attempt(lambda: float(nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM))),
            memory_used_bytes=attempt(lambda: int(nv.nvmlDeviceGetMemoryInfo(h).used)),
            temperature_c=attempt(lambda: float(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU))),
        )

    def _run(self) -> None:
        while not self._stop.is_set():
            sample = self._read()
            if sample is not None:
                with self._lock:
                    self.samples.append(sample)
            self._stop.wait(self.interval_s)


def power_fields(sampler: PowerSampler | None, samples, timing, batch: int) -> dict:
    """A record's power fields for one timed run (``timing``: ``profiling.timing.Timing``): the summary of
    ``samples`` over the timed blocks, or a ``power_note`` saying why there is none."""
    if sampler is None:
        return {"power_note": "power measurement off"}
    if not sampler.available:
        return {"power_note": sampler.reason}
    images = batch * timing.iterations * timing.stats.samples
    out = power_summary(samples, timing.block_spans, images, sampler.counter_energy_j())
    notes = []
    if out.get("energy_j") is None:
        notes.append("NVML gave no power samples during the timed runs")
    if sampler.read_errors:
        notes.append("NVML read errors: " + "; ".join(sampler.read_errors))
    if notes:
        out["power_note"] = "; ".join([*filter(None, [out.get("power_note")]), *notes])
    return out
