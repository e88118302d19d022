"""Energy from power samples, the power fields, and the NVML sampler (with a fake NVML: no GPU here)."""

import time
import types

import pytest
import torch

from archcost.profiling import nvml
from archcost.profiling.nvml import POWER_FIELDS, PowerSample, PowerSampler, integrate_energy, power_summary


def samples(*pairs):
    return [PowerSample(t, w) for t, w in pairs]


def test_constant_power_integrates_to_power_times_time():
    s = samples((0.0, 100.0), (1.0, 100.0), (2.0, 100.0))
    assert integrate_energy(s, 0.0, 2.0) == pytest.approx(100 * 2)


def test_linear_ramp_is_exact_under_the_trapezoid_rule():
    s = samples((0.0, 100.0), (1.0, 200.0))
    assert integrate_energy(s, 0.0, 1.0) == pytest.approx((100 + 200) / 2 * 1)
    # A window inside the samples is interpolated at its ends: 125 W at 0.25 s, 175 W at 0.75 s.
    assert integrate_energy(s, 0.25, 0.75) == pytest.approx((125 + 175) / 2 * 0.5)


def test_power_is_held_beyond_the_first_and_last_sample():
    s = samples((1.0, 50.0), (2.0, 150.0))
    assert integrate_energy(s, 0.0, 1.0) == pytest.approx(50 * 1)
    assert integrate_energy(s, 2.0, 4.0) == pytest.approx(150 * 2)


def test_empty_window_and_no_samples():
    assert integrate_energy(samples((0.0, 10.0)), 1.0, 1.0) == 0
    with pytest.raises(ValueError):
        integrate_energy([], 0.0, 1.0)


def test_power_summary_from_samples():
    s = [
        PowerSample(0.0, 200.0, util_pct=90, sm_clock_mhz=1400, memory_used_bytes=3 * 10**9, temperature_c=60),
        PowerSample(1.0, 300.0, util_pct=100, sm_clock_mhz=1500, memory_used_bytes=4 * 10**9, temperature_c=65),
        PowerSample(5.0, 0.0),  # after the timed window: not counted in the means
    ]
    spans = [(0.0, 0.5), (0.5, 1.0)]  # two samples of 0.5 s each
    images = 8 * 50 * 2  # batch 8, 50 iterations per sample, 2 samples
    out = power_summary(s, spans, images)
    energy = (200 + 300) / 2 * 1.0  # 250 J
    assert out["energy_j"] == pytest.approx(energy)
    assert out["power_mean_w"] == pytest.approx(energy / 1.0)
    assert out["energy_per_image_j"] == pytest.approx(energy / 800)
    assert out["images_per_joule"] == pytest.approx(800 / energy)
    assert out["energy_method"] == "power samples, trapezoid rule"
    assert out["power_max_w"] == 300
    assert out["gpu_util_mean_pct"] == 95 and out["sm_clock_mean_mhz"] == 1450
    assert out["gpu_memory_used_max_bytes"] == 4 * 10**9 and out["temperature_max_c"] == 65
    assert out["power_samples"] == 2


def test_power_summary_prefers_the_energy_counter():
    out = power_summary(samples((0.0, 200.0), (1.0, 300.0)), [(0.0, 1.0)], 100, counter_energy_j=240.0)
    assert out["energy_j"] == 240.0 and out["energy_per_image_j"] == pytest.approx(2.4)
    assert out["energy_method"] == "nvmlDeviceGetTotalEnergyConsumption"


def test_power_summary_without_samples_is_all_none():
    assert power_summary([], [(0.0, 1.0)], 10) == dict.fromkeys(POWER_FIELDS)


def test_no_nvml_on_the_cpu_says_why():
    module, handle, reason = nvml.open_device(torch.device("cpu"))
    assert module is None and handle is None and "CPU" in reason
    sampler = PowerSampler(torch.device("cpu")).start()
    sampler.mark(True)
    sampler.mark(False)
    assert not sampler.available and sampler.stop() == [] and sampler.counter_energy_j() is None
    sampler.close()


class FakeNVML(types.SimpleNamespace):
    """Enough of pynvml for the sampler: 150 W, and an energy counter that gains 150 mJ per ms."""

    NVML_CLOCK_SM = 1
    NVML_TEMPERATURE_GPU = 0

    def __init__(self):
        super().__init__(t0=time.perf_counter(), shut=0)

    def nvmlDeviceGetPowerUsage(self, h):
        return 150_000  # milliwatts

    def nvmlDeviceGetUtilizationRates(self, h):
        return types.SimpleNamespace(gpu=97, memory=40)

    def nvmlDeviceGetClockInfo(self, h, which):
        return 1410

    def nvmlDeviceGetMemoryInfo(self, h):
        return types.SimpleNamespace(used=5 * 10**9)

    def nvmlDeviceGetTemperature(self, h, which):
        return 61

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        return int((time.perf_counter() - self.t0) * 150_000)  # millijoules

    def nvmlShutdown(self):
        self.shut += 1


def test_sampler_thread_with_a_fake_nvml(monkeypatch):
    fake = FakeNVML()
    monkeypatch.setattr(nvml, "open_device", lambda device: (fake, "handle", None))
    sampler = PowerSampler("cuda", interval_s=0.005).start()
    sampler.mark(True)
    a = time.perf_counter()
    time.sleep(0.1)
    b = time.perf_counter()
    sampler.mark(False)
    got = sampler.stop()
    sampler.close()
    assert fake.shut == 1
    assert len(got) >= 3 and all(s.power_w == 150.0 and s.util_pct == 97 for s in got)
    assert got[0].sm_clock_mhz == 1410 and got[0].memory_used_bytes == 5 * 10**9 and got[0].temperature_c == 61
    # 150 W over the marked ~0.1 s: the counter and the samples agree on ~15 J (the marks bracket a..b).
    assert sampler.counter_energy_j() == pytest.approx(150 * (b - a), rel=0.2)
    out = power_summary(got, [(a, b)], images=10)
    assert out["power_mean_w"] == pytest.approx(150.0)


class FakeNVMLError(Exception):
    """pynvml.NVMLError's stand-in."""


def test_nvml_read_errors_are_reported_and_other_errors_are_not_swallowed(monkeypatch):
    """NVML's own errors (NVMLError) become a power_note; anything else (archcost's bug) propagates."""
    fake = FakeNVML()
    fake.NVMLError = FakeNVMLError

    def no_counter(h):
        raise FakeNVMLError("Not Supported")

    fake.nvmlDeviceGetTotalEnergyConsumption = no_counter
    monkeypatch.setattr(nvml, "open_device", lambda device: (fake, "handle", None))
    sampler = PowerSampler("cuda", interval_s=0.005)
    sampler.mark(True)
    assert sampler.read_errors == ["energy counter: Not Supported"]
    assert sampler.counter_energy_j() is None
    sampler.close()

    def broken(h):
        raise KeyError("a bug, not NVML")

    fake.nvmlDeviceGetTotalEnergyConsumption = broken
    with pytest.raises(KeyError):
        PowerSampler("cuda").mark(True)
    assert nvml.nvml_errors(fake) == (FakeNVMLError,) and nvml.nvml_errors(object()) == ()
