"""The roofline's calibration (issue 26): the compute peak is the best of the kernels models run, the memory
roofs a cache-resident and a DRAM-sized copy, TF32 and FP32 named apart, a layer above the peak a finding."""

import json

import pytest
import torch

from archcost.profiling import roofline
from archcost.profiling.roofline import (
    ABOVE_PEAK,
    CALIBRATION_METHOD,
    DevicePeaks,
    Kernel,
    best_kernel,
    conv,
    gemm,
    in_math_mode,
    kernel_set,
    math_mode_text,
    roofline_fields,
    stream_sizes,
)


@pytest.mark.parametrize(
    ("kernel", "flops"),
    [
        (gemm(2048, 2048, 2048), 2 * 2048**3),  # 17.18 GFLOP: the one kernel the old calibration ran
        (gemm(3136, 576, 64), 2 * 3136 * 576 * 64),  # ResNet's 3x3 64->64 at 56 px as im2col: 56*56 x 9*64
        (conv(1, 64, 56, 64, 3), 2 * (3 * 3 * 64) * 56 * 56 * 64),  # 231.2 MFLOP, padding 1 keeps 56 px
        (conv(8, 128, 28, 128, 3), 2 * 8 * (3 * 3 * 128) * 28 * 28 * 128),
        (conv(1, 64, 56, 128, 3, stride=2), 2 * (3 * 3 * 64) * 28 * 28 * 128),  # stride 2 halves each side
        (conv(1, 256, 56, 64, 1), 2 * 256 * 56 * 56 * 64),  # a bottleneck's 1x1
    ],
)
def test_kernel_flops_count_two_per_multiply_accumulate(kernel, flops):
    assert kernel.flops == flops


def test_the_kernel_set_holds_products_and_convolutions_of_resnets_shapes():
    cpu = kernel_set(gpu=False)
    kinds = {k.kind for k in cpu}
    assert kinds == {"gemm", "conv"}
    squares = sorted(k.shape[0] for k in cpu if k.kind == "gemm" and len(set(k.shape)) == 1)
    assert squares == [512, 1024, 2048]
    assert conv(1, 64, 56, 64, 3) in cpu and conv(8, 512, 7, 512, 3) in cpu  # batch 1 and 8 on the CPU
    assert gemm(8 * 56 * 56, 9 * 64, 64) in cpu  # the tall-skinny product a 3x3 conv lowers to
    gpu = kernel_set(gpu=True)
    assert max(k.shape[0] for k in gpu if k.kind == "gemm" and len(set(k.shape)) == 1) == 4096
    assert {k.shape[0] for k in gpu if k.kind == "conv"} == {32}  # batch 32: batch 1 leaves a GPU idle
    assert len({k.name for k in cpu}) == len(cpu)  # names are the keys of kernel_flops_per_s


def test_stream_sizes_one_in_the_caches_one_far_beyond():
    cache, dram = stream_sizes(gpu=False)
    assert max(cache) <= 10**6 < dram == 256 * 10**6  # source and destination of 1 MB stay in an L2
    cache, dram = stream_sizes(gpu=True, copy_bytes=10**9)
    assert max(cache) <= 8 * 10**6 and dram == 10**9  # an A100's L2 is 40 MB


def test_the_peak_is_the_best_kernel_and_a_failed_one_is_skipped():
    assert best_kernel({"a": 1e9, "b": 3e9, "c": None}) == ("b", 3e9)
    assert best_kernel({"a": None}) == (None, None)


def test_each_kernel_is_taken_in_the_math_mode_the_model_runs_with():
    kernels = (gemm(64, 64, 64), conv(1, 8, 8, 8, 3))
    fp32 = {kernels[0].name: 10e12, kernels[1].name: 12e12}
    tf32 = {kernels[0].name: 60e12, kernels[1].name: 50e12}
    # torch's default: products in true FP32, convolutions in TF32
    assert in_math_mode(fp32, tf32, kernels, False, True) == {kernels[0].name: 10e12, kernels[1].name: 50e12}
    assert in_math_mode(fp32, tf32, kernels, True, True) == tf32
    assert math_mode_text(False, True) == "matmul fp32, convolution tf32"


TINY = (gemm(16, 16, 16), gemm(32, 32, 32), conv(1, 4, 8, 4, 3))


def test_measure_peaks_on_the_cpu_names_the_best_kernel_and_both_memory_roofs():
    p = roofline.measure_peaks("cpu", torch.float32, "tiny", kernels=TINY, copy_bytes=1 << 20,
                               cache_bytes=(1 << 12, 1 << 14), min_time_s=0.001, repeats=2, warmup_s=0)  # fmt: skip
    assert set(p.kernel_flops_per_s) == {k.name for k in TINY}
    assert p.flops_per_s == max(p.kernel_flops_per_s.values()) > 0
    assert p.kernel_flops_per_s[p.flops_kernel] == p.flops_per_s
    assert p.bytes_per_s > 0 and p.cache_bytes_per_s > 0 and p.cache_copy_bytes in (1 << 12, 1 << 14)
    assert (p.gemm_n, p.copy_bytes, p.method, p.note) == (32, 1 << 20, CALIBRATION_METHOD, None)
    assert p.fp32_flops_per_s is None and p.math_mode is None  # named apart on a GPU in float32 only


def test_on_a_gpu_in_float32_tf32_and_fp32_are_named_apart_and_the_flags_restored(monkeypatch):
    timed = []

    def fake_kernels(kernels, device, dtype, timing, notes):
        on = torch.backends.cuda.matmul.allow_tf32
        assert torch.backends.cudnn.allow_tf32 == on and torch.backends.cudnn.benchmark
        timed.append(on)
        return {k.name: (8e12 if on else 1e12) * (2 if k.kind == "conv" else 1) for k in kernels}

    monkeypatch.setattr(roofline, "_time_kernels", fake_kernels)
    monkeypatch.setattr(roofline, "_time_copy", lambda nbytes, device, timing: 1e12 if nbytes < 10**7 else 3e12)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    flags = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)
    p = roofline.measure_peaks("cuda", torch.float32, "gpu", kernels=TINY, tf32=(False, True))
    assert timed == [False, True]
    assert (p.fp32_flops_per_s, p.tf32_flops_per_s) == (2e12, 16e12)
    # products in FP32 (1e12), convolutions in TF32 (16e12): the peak is the conv's
    assert p.flops_per_s == 16e12 and p.flops_kernel == TINY[2].name and p.math_mode == "matmul fp32, convolution tf32"
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
            torch.backends.cudnn.benchmark) == flags  # fmt: skip
    p = roofline.measure_peaks("cuda", torch.float32, "gpu", kernels=TINY, tf32=(False, False))
    assert p.flops_per_s == 2e12 and p.math_mode == "matmul fp32, convolution fp32"


def test_peaks_of_the_old_one_product_calibration_are_measured_again(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHCOST_CACHE_DIR", str(tmp_path))
    old = {"key": "k", "flops_per_s": 42.2e9, "bytes_per_s": 1e10, "gemm_n": 2048, "copy_bytes": 256 * 10**6}
    (tmp_path / "peaks.json").write_text(json.dumps({"version": 1, "peaks": {"k": old}}))
    assert roofline.load_cached("k") is None  # the 42.2 GFLOP/s of one 2048^3 product is not kept
    roofline.store(DevicePeaks("k", 68.5e9, 1e10, 2048, 256 * 10**6))
    assert roofline.load_cached("k").flops_per_s == 68.5e9


def test_the_calibration_child_takes_kernels_and_tf32_through_json(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHCOST_CACHE_DIR", str(tmp_path))
    p = roofline.measure_peaks_isolated("cpu", torch.float32, "iso", threads=1, kernels=TINY[:1], copy_bytes=10**5,
                                        cache_bytes=(4096,), min_time_s=0.001, repeats=1, warmup_s=0)  # fmt: skip
    assert p.note is None and set(p.kernel_flops_per_s) == {TINY[0].name} and p.flops_kernel == TINY[0].name


def test_above_the_peak_is_a_finding_that_says_what_it_can_mean_not_a_loop():
    over = roofline_fields(2e9, 1e8, 1.0, peak_flops_per_s=1e9, peak_bytes_per_s=1e9)
    assert ABOVE_PEAK in over["roofline_note"]
    assert "Winograd" in ABOVE_PEAK and "torch.profiler" in ABOVE_PEAK and "peaks_measured_at" in ABOVE_PEAK
    assert "stale" not in ABOVE_PEAK  # the old text blamed the calibration and sent users round --recalibrate


def test_kernels_are_plain_data():
    k = Kernel("x", "gemm", (2, 3, 4))
    assert k.flops == 2 * 2 * 3 * 4
