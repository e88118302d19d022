"""DenseNet-BC (Huang et al. 2017): Table 1 networks and DenseNet-BC (L=100, k=12) on CIFAR."""

from __future__ import annotations

from functools import cache

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archcost.errors import ModelOptionError
from archcost.zoo import get_meta, get_model, list_models

IMAGENET = ["densenet121", "densenet161", "densenet169", "densenet201", "densenet264"]
ALL = IMAGENET + ["densenet_bc_100_12_cifar"]

# Table 1 (and densenet.lua for 161): layers per dense block and growth rate k.
CONFIGS = {
    "densenet121": ((6, 12, 24, 16), 32),
    "densenet161": ((6, 12, 36, 24), 48),
    "densenet169": ((6, 12, 32, 32), 32),
    "densenet201": ((6, 12, 48, 32), 32),
    "densenet264": ((6, 12, 64, 48), 32),
}


@cache
def _model(name: str) -> nn.Module:
    return get_model(name)


def _params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _macs(m: nn.Module, size: int) -> int:
    with FlopCounterMode(display=False) as counter:
        m(torch.empty(1, 3, size, size, device="meta"))
    return counter.get_total_flops() // 2


def test_all_registered():
    assert list_models("densenet") == sorted(ALL)


# --- Table 1 as arithmetic -------------------------------------------------------------------------------


def _densenet_bc(blocks, k: int, *, stem: int, classes: int, sizes=None):
    """Params and MACs of DenseNet-BC: each layer is BN-ReLU-1x1 conv (4k) - BN-ReLU-3x3 conv (k) on c
    input maps; each transition BN-ReLU-1x1 conv to floor(c / 2) maps then 2x2 average pooling."""
    c = 2 * k
    params = stem * 3 * c + (2 * c if stem == 49 else 0)  # ImageNet stem has BN after conv0
    macs = stem * 3 * c * (sizes[0] * 2) ** 2 if sizes else 0
    for i, n in enumerate(blocks):
        hw = sizes[i] if sizes else 0
        for _ in range(n):
            params += 2 * c + c * 4 * k + 2 * 4 * k + 9 * 4 * k * k
            macs += (c * 4 * k + 9 * 4 * k * k) * hw * hw
            c += k
        if i < len(blocks) - 1:
            params += 2 * c + c * (c // 2)
            macs += c * (c // 2) * hw * hw
            c //= 2
    params += 2 * c + c * classes + classes  # final BN, classifier
    macs += c * classes
    return params, macs


@pytest.mark.parametrize(
    "name, torchvision",
    [
        ("densenet121", 7_978_856),
        ("densenet161", 28_681_000),
        ("densenet169", 14_149_480),
        ("densenet201", 20_013_928),
        ("densenet264", None),  # no exact published count: 33,337,704 by Table 1's arithmetic
    ],
)
def test_imagenet_params(name, torchvision):
    blocks, k = CONFIGS[name]
    expected, _ = _densenet_bc(blocks, k, stem=49, classes=1000)
    count = _params(_model(name))
    assert count == expected
    if torchvision is not None:
        assert count == torchvision == get_meta(name).params.value
    else:
        assert count == 33_337_704 and get_meta(name).params is None


@pytest.mark.parametrize("name", IMAGENET)
def test_imagenet_macs(name):
    # Dense blocks at 56, 28, 14, 7 (Table 1 "output size"); conv0 at 112x112.
    blocks, k = CONFIGS[name]
    _, expected = _densenet_bc(blocks, k, stem=49, classes=1000, sizes=(56, 28, 14, 7))
    macs = _macs(_model(name), 224)
    assert macs == expected  # densenet121: 2,834,161,664
    published = get_meta(name).macs
    if published is not None:  # torchvision's "GFLOPS" for 169 and 201 are multiply-adds, 2 decimals
        assert round(macs / 1e7) == round(published.value / 1e7)


def test_densenet121_first_layers_read_like_table1():
    f = _model("densenet121").features
    assert (f.conv0.kernel_size, f.conv0.stride, f.conv0.out_channels) == ((7, 7), (2, 2), 64)
    layer = f.denseblock1.denselayer1
    assert (layer.conv1.in_channels, layer.conv1.out_channels, layer.conv2.out_channels) == (64, 128, 32)
    assert f.denseblock1.denselayer6.conv1.in_channels == 64 + 5 * 32
    assert (f.transition1.conv.in_channels, f.transition1.conv.out_channels) == (256, 128)
    assert isinstance(f.transition1.pool, nn.AvgPool2d)
    assert _model("densenet121").classifier.in_features == 1024


def test_growth_rate_option():
    m = get_model("densenet121", growth_rate=12)
    assert m.features.conv0.out_channels == 24 and m.features.denseblock1.denselayer1.conv2.out_channels == 12
    assert _params(m) == _densenet_bc((6, 12, 24, 16), 12, stem=49, classes=1000)[0]
    for bad in (0, -4):
        with pytest.raises(ModelOptionError):
            get_model("densenet121", growth_rate=bad)


def test_dense_layer_concatenates():
    layer = _model("densenet121").features.denseblock2.denselayer3
    x = torch.empty(1, layer.conv1.in_channels, 28, 28, device="meta")
    assert layer(x).shape == (1, layer.conv1.in_channels + 32, 28, 28)


# --- DenseNet-BC (L=100, k=12) on CIFAR -------------------------------------------------------------------


def test_cifar_bc_100_12():
    m = _model("densenet_bc_100_12_cifar")
    # (100 - 4) / 6 = 16 bottleneck layers per block; channels 24 -> 216 -> 108 -> 300 -> 150 -> 342.
    params, macs = _densenet_bc((16, 16, 16), 12, stem=9, classes=10, sizes=(32, 16, 8))
    macs -= 9 * 3 * 24 * (64 * 64 - 32 * 32)  # the CIFAR stem is a 3x3 conv at 32x32, no pooling
    assert _params(m) == params == 769_162
    assert round(params / 1e6, 1) == 0.8  # Table 2 / README: 0.8 M
    assert _macs(m, 32) == macs
    assert m.classifier.in_features == 342
    assert get_meta("densenet_bc_100_12_cifar").dataset == "CIFAR-10"


# --- all models ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_meta_output_shape(name):
    meta = get_meta(name)
    size = meta.input_size[-1]
    assert _model(name)(torch.empty(2, 3, size, size, device="meta")).shape == (2, meta.num_classes)
    assert get_model(name, num_classes=7).classifier.out_features == 7


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL)
def test_real_forward_cpu(name):
    # 32x32: the dataset size for the CIFAR net; for the ImageNet nets a small input (>= 29 is valid).
    torch.manual_seed(0)
    m = get_model(name, device="cpu").eval()
    with torch.no_grad():
        y = m(torch.randn(1, 3, 32, 32))
    assert y.shape == (1, get_meta(name).num_classes) and torch.isfinite(y).all()
