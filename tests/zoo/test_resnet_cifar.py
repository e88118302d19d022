"""CIFAR ResNets (He et al. 2015, Table 6), pre-activation ResNet-164/1001 (He et al. 2016) and WRN-16-8,
WRN-28-10 (Zagoruyko & Komodakis 2016): params, MACs, option A shortcuts, pre-activation structure."""

from __future__ import annotations

from functools import cache

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archcost.errors import ModelOptionError
from archcost.zoo import get_meta, get_model, list_models
from archcost.zoo.resnet_cifar import ZeroPadShortcut

CIFAR_RESNETS = [f"resnet{d}_cifar" for d in (20, 32, 44, 56, 110, 1202)]
PREACT = ["preact_resnet164_cifar", "preact_resnet1001_cifar"]
WRNS = ["wrn_16_8_cifar", "wrn_28_10_cifar"]
ALL = CIFAR_RESNETS + PREACT + WRNS


@cache
def _model(name: str) -> nn.Module:
    return get_model(name)  # meta device; shared by the tests that only read the default build


def _params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _macs(m: nn.Module) -> int:
    with FlopCounterMode(display=False) as counter:
        m(torch.empty(1, 3, 32, 32, device="meta"))
    return counter.get_total_flops() // 2


def test_all_registered():
    assert list_models("resnet_cifar") == sorted(CIFAR_RESNETS)
    assert list_models("preact_resnet") == sorted(PREACT)
    assert set(WRNS) <= set(list_models("wide_resnet"))


# --- He et al. 2015, section 4.2 and Table 6 -------------------------------------------------------------


def _cifar_resnet_params(n: int) -> int:
    """6n+2 layers: 3x3 conv (16), 2n 3x3 convs on each of 16 / 32 / 64 filters, BN after each conv,
    option A shortcuts (no parameters), 10-way fc."""

    def conv_bn(c_in: int, c_out: int) -> int:
        return 9 * c_in * c_out + 2 * c_out

    total = conv_bn(3, 16)
    total += 2 * n * conv_bn(16, 16)
    total += conv_bn(16, 32) + (2 * n - 1) * conv_bn(32, 32)
    total += conv_bn(32, 64) + (2 * n - 1) * conv_bn(64, 64)
    return total + 64 * 10 + 10


def _cifar_resnet_macs(n: int) -> int:
    first = 9 * 3 * 16 * 32 * 32
    stage1 = 2 * n * 9 * 16 * 16 * 32 * 32
    stage2 = (9 * 16 * 32 + (2 * n - 1) * 9 * 32 * 32) * 16 * 16
    stage3 = (9 * 32 * 64 + (2 * n - 1) * 9 * 64 * 64) * 8 * 8
    return first + stage1 + stage2 + stage3 + 64 * 10


@pytest.mark.parametrize(
    "depth, table6_millions",
    [(20, 0.27), (32, 0.46), (44, 0.66), (56, 0.85), (110, 1.7), (1202, 19.4)],
)
def test_cifar_resnet_params_table6(depth, table6_millions):
    name, n = f"resnet{depth}_cifar", (depth - 2) // 6
    count = _params(_model(name))
    assert count == _cifar_resnet_params(n)  # e.g. 269,722 for ResNet-20
    digits = 2 if table6_millions < 1 else 1  # Table 6 prints 0.27 M but 1.7 M, 19.4 M
    assert round(count / 1e6, digits) == table6_millions
    assert get_meta(name).params.value == pytest.approx(table6_millions * 1e6)


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110, 1202])
def test_cifar_resnet_macs(depth):
    # No published count; the arithmetic of section 4.2 (ResNet-20: 40,551,040 multiply-adds).
    assert _macs(_model(f"resnet{depth}_cifar")) == _cifar_resnet_macs((depth - 2) // 6)


def test_option_a_shortcut_is_parameter_free_and_zero_padded():
    m = _model("resnet20_cifar")
    shortcut = m.stage2[0].shortcut
    assert isinstance(shortcut, ZeroPadShortcut) and _params(shortcut) == 0
    assert m.stage1[0].shortcut is None and m.stage2[1].shortcut is None
    x = torch.arange(2 * 16 * 4 * 4, dtype=torch.float32).reshape(2, 16, 4, 4)
    y = shortcut(x)
    assert y.shape == (2, 32, 2, 2)
    assert torch.equal(y[:, :16], x[:, :, ::2, ::2]) and not y[:, 16:].any()
    meta = shortcut(torch.empty(1, 16, 32, 32, device="meta"))
    assert meta.shape == (1, 32, 16, 16)


# --- He et al. 2016: pre-activation ResNet-164 / 1001 ----------------------------------------------------


def _preact_params(n: int, *, with_bn: bool = True) -> int:
    """9n+2 layers: conv 3x3 (16); per stage n units [BN-ReLU-1x1, w; BN-ReLU-3x3, w; BN-ReLU-1x1, 4w]
    with w = 16, 32, 64, a 1x1 projection (no BN) in the first unit, a final BN, and the fc."""
    bn = 2 if with_bn else 0
    total, c_in = 9 * 3 * 16, 16
    for w in (16, 32, 64):
        for b in range(n):
            total += bn * c_in + c_in * w + bn * w + 9 * w * w + bn * w + w * 4 * w
            if b == 0:
                total += c_in * 4 * w
            c_in = 4 * w
    return total + bn * 256 + 256 * 10 + 10


@pytest.mark.parametrize("name, n, millions", [("preact_resnet164_cifar", 18, 1.7)])
def test_preact164_params(name, n, millions):
    count = _params(_model(name))
    assert count == _preact_params(n) == 1_703_258
    assert round(count / 1e6, 1) == millions


def test_preact1001_params_paper_counts_weights_without_bn():
    # He et al. 2016 print 10.2 M. With BN's gamma/beta the network has 10,327,706 (10.3 M); its conv
    # and fc weights alone are 10,178,490 (10.2 M): the paper's figure leaves the BN affine terms out.
    # (He et al. 2015's 19.4 M for ResNet-1202 includes them: 19,421,274, and 19.33 M without.)
    m = _model("preact_resnet1001_cifar")
    count = _params(m)
    bn = sum(p.numel() for mod in m.modules() if isinstance(mod, nn.BatchNorm2d) for p in mod.parameters())
    assert count == _preact_params(111) == 10_327_706
    assert count - bn == _preact_params(111, with_bn=False) == 10_178_490
    assert round((count - bn) / 1e6, 1) == 10.2
    assert round(count / 1e6, 1) == 10.3  # documented, not bent


def test_preact_unit_structure():
    m = _model("preact_resnet164_cifar")
    unit = m.stage2[0]
    # Authors' resnet-pre-act.lua: the stride sits in the first 1x1; projection is a bare 1x1 conv.
    assert unit.conv1.stride == (2, 2) and unit.conv2.stride == (1, 1)
    assert isinstance(unit.shortcut, nn.Conv2d) and unit.shortcut.stride == (2, 2)
    assert m.stage2[1].shortcut is None
    assert [type(c) for c in unit.children()][:3] == [nn.BatchNorm2d, nn.ReLU, nn.Conv2d]  # BN-ReLU-conv
    assert isinstance(m.bn, nn.BatchNorm2d) and m.bn.num_features == 256  # final BN-ReLU before pooling


# --- Zagoruyko & Komodakis 2016: WRN-d-k ----------------------------------------------------------------


def _wrn_params(depth: int, k: int) -> int:
    """conv 3x3 (16); three groups of n = (d - 4) / 6 blocks [BN-ReLU-3x3; BN-ReLU-3x3] with 16k, 32k, 64k
    channels, a 1x1 projection in each group's first block, final BN, fc."""
    n = (depth - 4) // 6
    total, c_in = 9 * 3 * 16, 16
    for c in (16 * k, 32 * k, 64 * k):
        for b in range(n):
            total += 2 * c_in + 9 * c_in * c + 2 * c + 9 * c * c
            if b == 0:
                total += c_in * c
            c_in = c
    return total + 2 * 64 * k + 64 * k * 10 + 10


@pytest.mark.parametrize(
    "name, depth, k, millions",
    [("wrn_16_8_cifar", 16, 8, 11.0), ("wrn_28_10_cifar", 28, 10, 36.5)],
)
def test_wrn_params(name, depth, k, millions):
    count = _params(_model(name))
    assert count == _wrn_params(depth, k)  # 10,961,370 and 36,479,194
    assert round(count / 1e6, 1) == millions


def test_wrn_28_10_macs():
    # Per group at 32x32, 16x16, 8x8: 3x3 convs plus the first block's 1x1 projection.
    n, k = 4, 10
    stem = 9 * 3 * 16 * 32 * 32
    g1 = (9 * 16 * 160 + 16 * 160 + 9 * 160 * 160 + (n - 1) * 2 * 9 * 160 * 160) * 32 * 32
    g2 = (9 * 160 * 320 + 160 * 320 + 9 * 320 * 320 + (n - 1) * 2 * 9 * 320 * 320) * 16 * 16
    g3 = (9 * 320 * 640 + 320 * 640 + 9 * 640 * 640 + (n - 1) * 2 * 9 * 640 * 640) * 8 * 8
    assert _macs(_model("wrn_28_10_cifar")) == stem + g1 + g2 + g3 + 64 * k * 10  # 5,243,328,768


def test_wrn_dropout_option():
    assert not any(isinstance(x, nn.Dropout) for x in _model("wrn_16_8_cifar").modules())
    m = get_model("wrn_16_8_cifar", dropout_rate=0.3)
    assert sum(isinstance(x, nn.Dropout) for x in m.modules()) == 6  # one per block, 3 groups x 2
    assert _params(m) == _params(_model("wrn_16_8_cifar"))
    with pytest.raises(ModelOptionError):
        get_model("wrn_28_10_cifar", dropout_rate=1.5)


# --- all models ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_meta_output_shape(name):
    meta = get_meta(name)
    assert meta.input_size == (3, 32, 32) and meta.num_classes == 10 and meta.dataset == "CIFAR-10"
    assert _model(name)(torch.empty(2, 3, 32, 32, device="meta")).shape == (2, 10)
    assert get_model(name, num_classes=100)(torch.empty(1, 3, 32, 32, device="meta")).shape == (1, 100)


@pytest.mark.parametrize("bad", [0, -1])
def test_invalid_num_classes(bad):
    with pytest.raises(ModelOptionError):
        get_model("resnet20_cifar", num_classes=bad)


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL)
def test_real_forward_cpu(name):
    torch.manual_seed(0)
    m = get_model(name, device="cpu").eval()
    with torch.no_grad():
        y = m(torch.randn(1, 3, 32, 32))
    assert y.shape == (1, 10) and torch.isfinite(y).all()
