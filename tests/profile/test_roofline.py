"""Roofline arithmetic, traffic from the analysis, and the cached device peaks."""

import pytest
import torch
from torch import nn

from archcost.cost import analyze
from archcost.profiling import roofline
from archcost.profiling.roofline import (
    DevicePeaks,
    arithmetic_intensity,
    attainable_flops_per_s,
    bound,
    device_peaks,
    layer_traffic_bytes,
    ridge_point,
    roofline_fields,
)

PEAK_FLOPS = 100e9  # 100 GFLOP/s
PEAK_BW = 20e9  # 20 GB/s -> ridge at 5 FLOP/byte


def test_ridge_and_bound():
    assert ridge_point(PEAK_FLOPS, PEAK_BW) == 5
    assert bound(4.9, PEAK_FLOPS, PEAK_BW) == "memory"
    assert bound(5.0, PEAK_FLOPS, PEAK_BW) == "compute"
    assert attainable_flops_per_s(2, PEAK_FLOPS, PEAK_BW) == 2 * 20e9
    assert attainable_flops_per_s(50, PEAK_FLOPS, PEAK_BW) == PEAK_FLOPS


def test_roofline_fields_of_one_measurement():
    flops, traffic, latency = 4e9, 0.5e9, 0.1  # 4 GFLOP per batch in 100 ms, 0.5 GB moved
    f = roofline_fields(flops, traffic, latency, PEAK_FLOPS, PEAK_BW)
    assert f["achieved_flops_per_s"] == pytest.approx(4e9 / 0.1)  # 40 GFLOP/s
    assert f["percent_of_peak"] == pytest.approx(100 * 40e9 / 100e9)  # 40 %
    assert f["arithmetic_intensity"] == pytest.approx(4e9 / 0.5e9)  # 8 FLOP/byte
    assert f["ridge_point"] == 5
    assert f["bound"] == "compute"
    assert f["roofline_note"] is None


def test_roofline_fields_say_what_is_missing():
    f = roofline_fields(4e9, 0.5e9, 0.1, None, None)
    assert f["achieved_flops_per_s"] == pytest.approx(40e9)
    assert f["percent_of_peak"] is None and f["bound"] is None
    assert "device peaks" in f["roofline_note"]
    f = roofline_fields(None, None, 0.1, PEAK_FLOPS, PEAK_BW)
    assert f["achieved_flops_per_s"] is None and f["arithmetic_intensity"] is None
    assert "model FLOPs" in f["roofline_note"]


def test_arithmetic_intensity():
    assert arithmetic_intensity(10, 4) == 2.5


def test_traffic_is_inputs_params_and_outputs_of_every_layer():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
    report = analyze(model, (3, 16, 16), batch_size=2)
    conv_in = 2 * 3 * 16 * 16  # elements read by the conv
    conv_params = 8 * 3 * 3 * 3 + 8  # weights and bias
    conv_out = 2 * 8 * 16 * 16  # written by the conv, read by the relu
    relu_out = conv_out
    expected = 4 * (conv_in + conv_params + conv_out + conv_out + relu_out)
    assert layer_traffic_bytes(report.layers, 4) == expected


def test_peaks_are_cached_per_key(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHCOST_CACHE_DIR", str(tmp_path))
    calls = []

    def fake_measure(device, dtype, key, **sizes):
        calls.append(key)
        return DevicePeaks(key, 1e11, 2e10, 64, 1 << 16)

    monkeypatch.setattr(roofline, "measure_peaks", fake_measure)
    first = device_peaks("cpu", torch.float32, "cpu-a")
    again = device_peaks("cpu", torch.float32, "cpu-a")
    other = device_peaks("cpu", torch.float32, "cpu-b")
    forced = device_peaks("cpu", torch.float32, "cpu-a", recalibrate=True)
    assert calls == ["cpu-a", "cpu-b", "cpu-a"]
    assert first == again == forced and other.key == "cpu-b"
    assert (tmp_path / "peaks.json").is_file()


def test_a_broken_cache_file_is_measured_again(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHCOST_CACHE_DIR", str(tmp_path))
    (tmp_path / "peaks.json").write_text("{not json")
    monkeypatch.setattr(roofline, "measure_peaks", lambda d, t, key, **s: DevicePeaks(key, 1.0, 1.0, 1, 1))
    assert device_peaks("cpu", torch.float32, "k").flops_per_s == 1.0


def test_measure_peaks_on_the_cpu_with_tiny_sizes():
    p = roofline.measure_peaks(
        "cpu", torch.float32, "tiny", gemm_n=32, copy_bytes=1 << 16, min_time_s=0.001, repeats=2, warmup_s=0
    )
    assert p.flops_per_s > 0 and p.bytes_per_s > 0
    assert (p.gemm_n, p.copy_bytes, p.note) == (32, 1 << 16, None)


def test_peaks_key_separates_threads_on_the_cpu_only():
    a = roofline.peaks_key("EPYC", "cpu", "float32", 2, "2.13")
    b = roofline.peaks_key("EPYC", "cpu", "float32", 1, "2.13")
    assert a != b
    assert roofline.peaks_key("A100", "cuda:0", "float16", 2, "2.13") == roofline.peaks_key(
        "A100", "cuda:1", "float16", 8, "2.13"
    )


@pytest.mark.slow
def test_peaks_are_measured_in_a_separate_process(tmp_path, monkeypatch):
    """The calibration's big allocations must not happen in the measuring process (they change its allocator)."""
    monkeypatch.setenv("ARCHCOST_CACHE_DIR", str(tmp_path))

    def not_here(*args, **kwargs):
        raise AssertionError("measured in the profiling process")

    monkeypatch.setattr(roofline, "measure_peaks", not_here)
    p = device_peaks(
        "cpu", torch.float32, "iso", isolated=True, threads=1, gemm_n=64, copy_bytes=10**6, min_time_s=0.01
    )
    assert p.key == "iso" and p.flops_per_s > 0 and p.bytes_per_s > 0 and p.gemm_n == 64 and p.note is None
