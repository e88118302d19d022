"""The formulas against the arithmetic the seed documents and papers write down."""

import pytest
import torch
from torch import nn

from archcost.cost import analyze
from archcost.cost.formulas.conv import conv_macs, conv_transpose_macs
from archcost.cost.formulas.linear import bilinear_macs, linear_macs, matmul_macs
from archcost.cost.formulas.norm import lrn_flops
from archcost.cost.formulas.pool import adaptive_window_sum


def _cost(module: nn.Module, size):
    report = analyze(module, size)
    return report.totals


# -- seed 000/004: the Inception bottleneck arithmetic ----------------------------------------------
@pytest.mark.parametrize(
    "module, macs, params",
    [
        # 5x5 conv 192 -> 32 on 28x28
        (nn.Conv2d(192, 32, 5, padding=2, bias=False), (5 * 5 * 192) * 28 * 28 * 32, 5 * 5 * 192 * 32),
        # 1x1 reduction to 16, then the 5x5: 2,408,448 + 10,035,200
        (
            nn.Sequential(nn.Conv2d(192, 16, 1, bias=False), nn.Conv2d(16, 32, 5, padding=2, bias=False)),
            192 * 16 * 28 * 28 + (5 * 5 * 16) * 32 * 28 * 28,
            192 * 16 + 5 * 5 * 16 * 32,
        ),
        # depthwise separable: 5x5 depthwise on 192 channels, then 1x1 to 32
        (
            nn.Sequential(nn.Conv2d(192, 192, 5, padding=2, groups=192, bias=False), nn.Conv2d(192, 32, 1, bias=False)),
            5 * 5 * 192 * 28 * 28 + 192 * 32 * 28 * 28,
            5 * 5 * 192 + 192 * 32,
        ),
    ],
    ids=["5x5", "1x1-reduced", "depthwise-separable"],
)
def test_seed_bottleneck_arithmetic(module, macs, params):
    totals = _cost(module, (192, 28, 28))
    assert totals["macs"] == macs
    assert totals["params"] == params


def test_seed_numbers_written_out():
    # the seeds' printed figures, to be sure the expressions above say what the slides say
    assert (5 * 5 * 192) * 28 * 28 * 32 == 120_422_400
    assert 192 * 16 * 28 * 28 + (5 * 5 * 16) * 32 * 28 * 28 == 12_443_648
    assert 5 * 5 * 192 * 28 * 28 + 192 * 32 * 28 * 28 == 8_580_096
    assert 5 * 5 * 192 * 32 == 153_600 and 192 * 16 + 5 * 5 * 16 * 32 == 15_872
    assert 5 * 5 * 192 + 192 * 32 == 10_944


class InceptionModule(nn.Module):
    """The seed 004 example on a 28x28x256 input: branches 1x1/128, 3x3/192, 5x5/96 and 3x3 max pool,
    with or without 1x1 reductions to 64."""

    def __init__(self, reduced: bool) -> None:
        super().__init__()
        c = 256
        r = 64 if reduced else c
        self.b1 = nn.Conv2d(c, 128, 1, bias=False)
        self.r3 = nn.Conv2d(c, r, 1, bias=False) if reduced else nn.Identity()
        self.b3 = nn.Conv2d(r, 192, 3, padding=1, bias=False)
        self.r5 = nn.Conv2d(c, r, 1, bias=False) if reduced else nn.Identity()
        self.b5 = nn.Conv2d(r, 96, 5, padding=2, bias=False)
        self.pool = nn.MaxPool2d(3, 1, 1)
        self.proj = nn.Conv2d(c, 64, 1, bias=False) if reduced else nn.Identity()

    def forward(self, x):
        return torch.cat([self.b1(x), self.b3(self.r3(x)), self.b5(self.r5(x)), self.proj(self.pool(x))], 1)


def test_naive_inception_module_854m():
    report = analyze(InceptionModule(reduced=False), (256, 28, 28))
    expected = 28 * 28 * 128 * 1 * 1 * 256 + 28 * 28 * 192 * 3 * 3 * 256 + 28 * 28 * 96 * 5 * 5 * 256
    assert report.totals["macs"] == expected == 854_196_224  # the slides' "854M ops"
    assert report.output_shape == (1, 128 + 192 + 96 + 256, 28, 28)  # 28x28x672, as the slide says


def test_reduced_inception_module_sum_of_the_slide_rows():
    """Seed 004 lists six convolutions and prints "Total: 358M ops". The six rows it lists add up to
    271,351,808 (271 M), not 358 M: archcost reproduces the rows, and the slide's total is not their sum."""
    report = analyze(InceptionModule(reduced=True), (256, 28, 28))
    rows = [
        28 * 28 * 64 * 1 * 1 * 256,
        28 * 28 * 64 * 1 * 1 * 256,
        28 * 28 * 128 * 1 * 1 * 256,
        28 * 28 * 192 * 3 * 3 * 64,
        28 * 28 * 96 * 5 * 5 * 64,
        28 * 28 * 64 * 1 * 1 * 256,
    ]
    assert sorted(r.macs for r in report.layers if r.type == "Conv2d") == sorted(rows)
    assert report.totals["macs"] == sum(rows) == 271_351_808
    assert report.totals["macs"] != 358_000_000


# -- pure formulas ----------------------------------------------------------------------------------
def test_conv_macs_grouped_and_dilated_from_shapes():
    # groups=4 conv 64->128, 3x3, dilation 2 on 1x64x32x32 with padding 2: out 1x128x32x32
    assert conv_macs((1, 128, 32, 32), (128, 64 // 4, 3, 3)) == 128 * 32 * 32 * (16 * 9)
    assert conv_transpose_macs((1, 64, 8, 8), (64, 32, 4, 4)) == 64 * 8 * 8 * 32 * 16


def test_linear_bilinear_matmul():
    assert linear_macs((32, 1000), 4096) == 32 * 1000 * 4096
    assert bilinear_macs((2, 5), 3, 4) == 2 * 5 * (3 * 4 + 4)
    assert matmul_macs((8, 16, 32), (8, 16, 64)) == 8 * 16 * 64 * 32


def test_adaptive_windows_overlap_when_sizes_do_not_divide():
    assert adaptive_window_sum(224, 7) == 224  # 7 windows of 32
    assert adaptive_window_sum(5, 3) == 2 + 3 + 2  # [0,2) [1,4) [3,5)
    assert adaptive_window_sum(7, 1) == 7


def test_lrn_per_element():
    assert lrn_flops(10, 5) == 10 * (2 * 5 + 3)


@pytest.mark.parametrize(
    "layer, size, flops",
    [
        (nn.ReLU(), (8, 4, 4), 8 * 16),
        (nn.ReLU6(), (8, 4, 4), 8 * 16 * 2),
        (nn.Sigmoid(), (8, 4, 4), 8 * 16 * 3),
        (nn.BatchNorm2d(8), (8, 4, 4), 8 * 16 * 2),  # eval: folded x * a + b
        (nn.GroupNorm(2, 8), (8, 4, 4), 8 * 16 * (5 + 2)),
        (nn.LocalResponseNorm(5), (8, 4, 4), 8 * 16 * (2 * 5 + 3)),
        (nn.MaxPool2d(2), (8, 4, 4), 8 * 2 * 2 * (4 - 1)),
        (nn.AvgPool2d(2), (8, 4, 4), 8 * 2 * 2 * 4),
        (nn.AdaptiveAvgPool2d(1), (8, 4, 4), 8 * 16),
        (nn.Dropout(), (8, 4, 4), 0),  # eval
        (nn.Linear(16, 10), (16,), 2 * 16 * 10 + 10),
        (nn.Conv2d(8, 4, 3, bias=True), (8, 4, 4), 2 * (8 * 9) * 4 * 2 * 2 + 4 * 2 * 2),
        (nn.Upsample(scale_factor=2, mode="bilinear"), (8, 4, 4), 8 * 8 * 8 * 9),
        (nn.Upsample(scale_factor=2), (8, 4, 4), 0),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else None,
)
def test_layer_flops(layer, size, flops):
    report = analyze(layer, size)
    assert report.totals["flops"] == flops
    assert not report.unsupported


def test_batchnorm_in_training_counts_statistics():
    report = analyze(nn.BatchNorm2d(8), (8, 4, 4), training=True)
    assert report.totals["flops"] == 8 * 16 * (5 + 2)
