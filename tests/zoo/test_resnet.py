"""ResNet v1 (He et al. 2015, Table 1), WRN-50-2 and ResNeXt (Xie et al. 2017, Table 1): params and MACs."""

from __future__ import annotations

from functools import cache

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archcost.errors import ModelOptionError
from archcost.zoo import get_meta, get_model, list_models
from archcost.zoo.resnet import _bottleneck_resnet

RESNETS = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
RESNEXTS = ["resnext50_32x4d", "resnext101_32x4d", "resnext101_64x4d"]
ALL = RESNETS + ["wide_resnet50_2"] + RESNEXTS


@cache
def _model(name: str) -> nn.Module:
    return get_model(name)  # meta device; shared by the tests that only read the default build


def _params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _macs(m: nn.Module, size: int = 224) -> int:
    with FlopCounterMode(display=False) as counter:
        m(torch.empty(1, 3, size, size, device="meta"))
    return counter.get_total_flops() // 2


def test_all_registered():
    assert list_models("resnet") == sorted(RESNETS)
    assert list_models("resnext") == sorted(RESNEXTS)
    assert "wide_resnet50_2" in list_models("wide_resnet")


# --- Table 1 as arithmetic -------------------------------------------------------------------------------
# Output maps: conv1 112x112, conv2_x 56x56, conv3_x 28x28, conv4_x 14x14, conv5_x 7x7.
_SIZES = (56, 28, 14, 7)
_CHANNELS = (64, 128, 256, 512)


def _conv(k: int, c_in: int, c_out: int, hw: int, groups: int = 1) -> int:
    """Multiply-adds of a k x k convolution producing an hw x hw map."""
    return k * k * (c_in // groups) * c_out * hw * hw


def _basic_macs(depths) -> int:
    total = _conv(7, 3, 64, 112)  # conv1
    c_in = 64
    for i, (n, c, hw) in enumerate(zip(depths, _CHANNELS, _SIZES, strict=True)):
        for b in range(n):
            total += _conv(3, c_in, c, hw) + _conv(3, c, c, hw)
            if b == 0 and i > 0:
                total += _conv(1, c_in, c, hw)  # option B projection at conv3_1, conv4_1, conv5_1
            c_in = c
    return total + 512 * 1000  # fc


def _bottleneck_macs(depths, *, width=lambda c: c, groups=1, stride_in_1x1=True) -> int:
    """Sum over Table 1's bottlenecks [1x1, c; 3x3, c; 1x1, 4c] and the projections where shapes change."""
    total = _conv(7, 3, 64, 112)
    c_in = 64
    for i, (n, c, hw) in enumerate(zip(depths, _CHANNELS, _SIZES, strict=True)):
        w = width(c)
        for b in range(n):
            # v1: the stride-2 1x1 already produces the small map; v1.5: the 1x1 runs at the input size.
            hw1 = hw if (stride_in_1x1 or b > 0 or i == 0) else 2 * hw
            total += _conv(1, c_in, w, hw1) + _conv(3, w, w, hw, groups) + _conv(1, w, 4 * c, hw)
            if b == 0:
                total += _conv(1, c_in, 4 * c, hw)  # projection shortcut
            c_in = 4 * c
    return total + 2048 * 1000


EXACT_MACS = {
    "resnet18": _basic_macs((2, 2, 2, 2)),  # 1,814,073,344
    "resnet34": _basic_macs((3, 4, 6, 3)),  # 3,663,761,408
    "resnet50": _bottleneck_macs((3, 4, 6, 3)),  # 3,857,973,248
    "resnet101": _bottleneck_macs((3, 4, 23, 3)),  # 7,570,194,432
    "resnet152": _bottleneck_macs((3, 8, 36, 3)),  # 11,282,415,616
    "wide_resnet50_2": _bottleneck_macs((3, 4, 6, 3), width=lambda c: 2 * c, stride_in_1x1=False),
    "resnext50_32x4d": _bottleneck_macs((3, 4, 6, 3), width=lambda c: 2 * c, groups=32, stride_in_1x1=False),
    "resnext101_32x4d": _bottleneck_macs((3, 4, 23, 3), width=lambda c: 2 * c, groups=32, stride_in_1x1=False),
    "resnext101_64x4d": _bottleneck_macs((3, 4, 23, 3), width=lambda c: 4 * c, groups=64, stride_in_1x1=False),
}


@pytest.mark.parametrize("name", ALL)
def test_macs_equal_table1_arithmetic(name):
    assert _macs(_model(name)) == EXACT_MACS[name]


# Table 1, FLOPs row (multiply-adds, section 3.3), printed to one decimal of 10^9.
_ROUNDING = "Table 1 prints one decimal; see the model docstring for the unreproduced digit"


@pytest.mark.parametrize(
    "name, table1",
    [
        ("resnet18", 1.8e9),
        pytest.param("resnet34", 3.6e9, marks=pytest.mark.xfail(strict=True, reason=_ROUNDING)),
        pytest.param("resnet50", 3.8e9, marks=pytest.mark.xfail(strict=True, reason=_ROUNDING)),
        ("resnet101", 7.6e9),
        ("resnet152", 11.3e9),
        ("resnext50_32x4d", 4.2e9),  # Xie et al. 2017, Table 1
        pytest.param("resnext101_32x4d", 7.8e9, marks=pytest.mark.xfail(strict=True, reason=_ROUNDING)),
    ],
)
def test_macs_round_to_published(name, table1):
    macs = _macs(_model(name))
    assert get_meta(name).macs.value == table1
    assert round(macs / 1e8) == round(table1 / 1e8)


@pytest.mark.parametrize(
    "name, counted, table1",
    [("resnet34", 3.66e9, 3.6e9), ("resnet50", 3.86e9, 3.8e9), ("resnext101_32x4d", 7.97e9, 7.8e9)],
)
def test_unreproduced_digits_are_small_gaps(name, counted, table1):
    # The documented gaps: 1.7 %, 1.5 %, 2.2 % above the printed figure; never more than 2.5 %.
    macs = _macs(_model(name))
    assert macs == pytest.approx(counted, rel=2e-3)
    assert 0 < macs / table1 - 1 < 0.025


def test_resnet34_table1_figure_is_the_plain_net():
    # Section 3.3: the plain 34-layer baseline has 3.6 billion FLOPs; ResNet-34 B adds three projections.
    projections = _conv(1, 64, 128, 28) + _conv(1, 128, 256, 14) + _conv(1, 256, 512, 7)
    assert projections == 3 * 6_422_528
    plain34 = _macs(_model("resnet34")) - projections
    assert plain34 == 3_644_493_824
    assert round(plain34 / 1e8) == 36


def test_stride_placement_v1_vs_fb_resnet_torch():
    # v1 (Caffe release): the stride-2 of conv3_1 is in its first 1x1 conv; ResNeXt/WRN: in the 3x3.
    r50 = _model("resnet50")
    assert r50.conv3_x[0].conv1.stride == (2, 2) and r50.conv3_x[0].conv2.stride == (1, 1)
    for name in ["wide_resnet50_2"] + RESNEXTS:
        block = _model(name).conv4_x[0]
        assert block.conv1.stride == (1, 1) and block.conv2.stride == (2, 2)
    # Moving the stride to the 3x3 (torchvision's v1.5) keeps the params and costs 4.09e9 MACs.
    with torch.device("meta"):
        v15 = _bottleneck_resnet((3, 4, 6, 3), 1000, stride_in_1x1=False, pool_padding=1)
    assert _params(v15) == _params(r50)
    assert _macs(v15) == _bottleneck_macs((3, 4, 6, 3), stride_in_1x1=False) == 4_089_184_256


def test_resnext_grouped_conv_widths():
    # Table 1 of Xie et al.: conv2 of ResNeXt-50 (32x4d) is [1x1, 128; 3x3, 128, C=32; 1x1, 256].
    block = _model("resnext50_32x4d").conv2_x[0]
    assert (block.conv1.out_channels, block.conv2.groups, block.conv3.out_channels) == (128, 32, 256)
    block = _model("resnext101_64x4d").conv5_x[0]
    assert (block.conv2.in_channels, block.conv2.groups) == (2048, 64)
    block = _model("wide_resnet50_2").conv5_x[0]
    assert (block.conv1.out_channels, block.conv3.out_channels) == (1024, 2048)  # 2048-1024-2048


# --- parameters ------------------------------------------------------------------------------------------


def _bn(c: int) -> int:
    return 2 * c  # gamma and beta


def _bottleneck_params(depths, width=lambda c: c, groups=1) -> int:
    total = 7 * 7 * 3 * 64 + _bn(64)
    c_in = 64
    for n, c in zip(depths, _CHANNELS, strict=True):
        w = width(c)
        for b in range(n):
            total += c_in * w + _bn(w) + 9 * (w // groups) * w + _bn(w) + w * 4 * c + _bn(4 * c)
            if b == 0:
                total += c_in * 4 * c + _bn(4 * c)
            c_in = 4 * c
    return total + 2048 * 1000 + 1000


@pytest.mark.parametrize(
    "name, exact, arithmetic",
    [
        ("resnet18", 11_689_512, None),
        ("resnet34", 21_797_672, None),
        ("resnet50", 25_557_032, _bottleneck_params((3, 4, 6, 3))),
        ("resnet101", 44_549_160, _bottleneck_params((3, 4, 23, 3))),
        ("resnet152", 60_192_808, _bottleneck_params((3, 8, 36, 3))),
        ("wide_resnet50_2", 68_883_240, _bottleneck_params((3, 4, 6, 3), lambda c: 2 * c)),
        ("resnext50_32x4d", 25_028_904, _bottleneck_params((3, 4, 6, 3), lambda c: 2 * c, 32)),
        ("resnext101_32x4d", 44_177_704, _bottleneck_params((3, 4, 23, 3), lambda c: 2 * c, 32)),
        ("resnext101_64x4d", 83_455_272, _bottleneck_params((3, 4, 23, 3), lambda c: 4 * c, 64)),
    ],
)
def test_params_exact(name, exact, arithmetic):
    n = _params(_model(name))
    assert n == exact == get_meta(name).params.value
    if arithmetic is not None:
        assert n == arithmetic


@pytest.mark.parametrize(
    "name, millions",
    [("wide_resnet50_2", 68.9), ("resnext50_32x4d", 25.0)],  # WRN ImageNet table; Xie et al. Table 1
)
def test_params_round_to_paper(name, millions):
    assert round(_params(_model(name)) / 1e5) == round(millions * 10)


# --- structure and options -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_meta_output_shape(name):
    m = _model(name)
    assert m(torch.empty(2, 3, 224, 224, device="meta")).shape == (2, 1000)
    assert get_model(name, num_classes=10).fc.out_features == 10


def test_residual_add_and_relu_modules():
    block = _model("resnet18").conv3_x[0]
    assert isinstance(block.relu, nn.ReLU) and isinstance(block.shortcut[0], nn.Conv2d)
    assert _model("resnet18").conv3_x[1].shortcut is None  # identity where shapes match
    assert isinstance(_model("resnet50").maxpool, nn.MaxPool2d)


@pytest.mark.parametrize("bad", [0, -3, "ten"])
def test_invalid_num_classes(bad):
    with pytest.raises(ModelOptionError):
        get_model("resnet18", num_classes=bad)


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL)
def test_real_forward_cpu(name):
    # A small input: the stages run at 8, 4, 2, 1 instead of 56, 28, 14, 7.
    torch.manual_seed(0)
    m = get_model(name, device="cpu").eval()
    with torch.no_grad():
        y = m(torch.randn(1, 3, 32, 32))
    assert y.shape == (1, 1000) and torch.isfinite(y).all()
