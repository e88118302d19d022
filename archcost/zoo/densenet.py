"""DenseNet-BC (Huang et al. 2017): the ImageNet networks of Table 1 and DenseNet-BC (L=100, k=12) for CIFAR.

Structure as in the paper and the authors' Torch code (github.com/liuzhuang13/DenseNet, models/densenet.lua):

* stem: 7x7/2 convolution with 2k output channels, BN, ReLU, 3x3/2 max pool (padding 1) on ImageNet; a
  single 3x3 convolution with 2k channels on CIFAR;
* dense layer (the "B" of BC): BN-ReLU-1x1 conv (4k channels), BN-ReLU-3x3 conv (k channels), and its
  output is concatenated to its input (``torch.cat`` along channels, in forward);
* transition (the "C" of BC, compression 0.5): BN-ReLU-1x1 conv to floor(0.5 * channels), 2x2/2 average pool;
* head: BN-ReLU, global average pooling, fully connected layer.

Convolutions have no bias (the reference code drops them with cuDNN >= 4). The parameter counts equal
torchvision's densenet121/161/169/201.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from archcost.errors import ModelOptionError
from archcost.zoo._meta import ModelMeta, Published
from archcost.zoo._registry import register_model

_PAPER = "Densely Connected Convolutional Networks"
_README = "Huang et al., github.com/liuzhuang13/DenseNet README (Torch models, 224x224 1-crop top-1 error"
_TV = "torchvision {}_Weights.IMAGENET1K_V1: num_params {}"


def _check(num_classes: int, growth_rate: int) -> None:
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ModelOptionError(f"num_classes must be a positive integer, got {num_classes!r}")
    if not isinstance(growth_rate, int) or isinstance(growth_rate, bool) or growth_rate < 1:
        raise ModelOptionError(f"growth_rate must be a positive integer, got {growth_rate!r}")


class DenseLayer(nn.Module):
    """BN-ReLU-Conv(1x1, bn_size * k)-BN-ReLU-Conv(3x3, k); forward concatenates input and new maps."""

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int = 4) -> None:
        super().__init__()
        inner = bn_size * growth_rate
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, inner, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(inner)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(inner, growth_rate, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # relu1 runs in place on norm1's output, never on x, which is the first part of the concatenation.
        new = self.conv1(self.relu1(self.norm1(x)))
        new = self.conv2(self.relu2(self.norm2(new)))
        return torch.cat([x, new], 1)


class DenseBlock(nn.Sequential):
    """``num_layers`` dense layers; layer i sees in_channels + i * k channels."""

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int) -> None:
        super().__init__()
        for i in range(num_layers):
            self.add_module(f"denselayer{i + 1}", DenseLayer(in_channels + i * growth_rate, growth_rate))


class Transition(nn.Sequential):
    """BN-ReLU-Conv(1x1)-AvgPool(2x2, stride 2) between dense blocks."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.pool = nn.AvgPool2d(2, stride=2)


class DenseNet(nn.Module):
    """``features`` (stem, dense blocks, transitions, final BN-ReLU), global average pool, ``classifier``."""

    def __init__(
        self,
        block_config: Sequence[int],
        growth_rate: int,
        num_classes: int,
        imagenet_stem: bool,
        compression: float = 0.5,
    ) -> None:
        super().__init__()
        channels = 2 * growth_rate
        self.features = nn.Sequential()
        if imagenet_stem:
            self.features.add_module("conv0", nn.Conv2d(3, channels, 7, stride=2, padding=3, bias=False))
            self.features.add_module("norm0", nn.BatchNorm2d(channels))
            self.features.add_module("relu0", nn.ReLU(inplace=True))
            self.features.add_module("pool0", nn.MaxPool2d(3, stride=2, padding=1))
        else:
            self.features.add_module("conv0", nn.Conv2d(3, channels, 3, padding=1, bias=False))
        for i, num_layers in enumerate(block_config):
            self.features.add_module(f"denseblock{i + 1}", DenseBlock(num_layers, channels, growth_rate))
            channels += num_layers * growth_rate
            if i != len(block_config) - 1:
                out = int(channels * compression)  # floor, as math.floor in densenet.lua
                self.features.add_module(f"transition{i + 1}", Transition(channels, out))
                channels = out
        self.features.add_module(f"norm{len(block_config) + 1}", nn.BatchNorm2d(channels))
        self.features.add_module(f"relu{len(block_config) + 1}", nn.ReLU(inplace=True))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.avgpool(self.features(x))))


def _imagenet(block_config: Sequence[int], growth_rate: int, num_classes: int) -> DenseNet:
    _check(num_classes, growth_rate)
    return DenseNet(block_config, growth_rate, num_classes, imagenet_stem=True)


@register_model(
    ModelMeta(
        family="densenet",
        paper=_PAPER,
        year=2017,
        params=Published(7_978_856, _TV.format("DenseNet121", 7978856) + " (same network)"),
        top1=Published(75.0, _README + " 25.0 %)"),
    )
)
def densenet121(*, num_classes: int = 1000, growth_rate: int = 32) -> nn.Module:
    """DenseNet-121 (Table 1): dense blocks of 6, 12, 24, 16 layers, k=32 by default."""
    return _imagenet((6, 12, 24, 16), growth_rate, num_classes)


@register_model(
    ModelMeta(
        family="densenet",
        paper=_PAPER,
        year=2017,
        params=Published(28_681_000, _TV.format("DenseNet161", 28681000) + " (same network)"),
        top1=Published(77.8, _README + " 22.2 %)"),
    )
)
def densenet161(*, num_classes: int = 1000, growth_rate: int = 48) -> nn.Module:
    """DenseNet-161: dense blocks of 6, 12, 36, 24 layers with k=48 (stem 96 channels); the authors' README
    and densenet.lua, not Table 1 (which lists k=32 networks only)."""
    return _imagenet((6, 12, 36, 24), growth_rate, num_classes)


@register_model(
    ModelMeta(
        family="densenet",
        paper=_PAPER,
        year=2017,
        params=Published(14_149_480, _TV.format("DenseNet169", 14149480) + " (same network)"),
        macs=Published(3.36e9, "torchvision DenseNet169_Weights: 'GFLOPS' 3.36 (counts multiply-adds)"),
        top1=Published(76.4, _README + " 23.6 %)"),
    )
)
def densenet169(*, num_classes: int = 1000, growth_rate: int = 32) -> nn.Module:
    """DenseNet-169 (Table 1): dense blocks of 6, 12, 32, 32 layers, k=32 by default."""
    return _imagenet((6, 12, 32, 32), growth_rate, num_classes)


@register_model(
    ModelMeta(
        family="densenet",
        paper=_PAPER,
        year=2017,
        params=Published(20_013_928, _TV.format("DenseNet201", 20013928) + " (same network)"),
        macs=Published(4.29e9, "torchvision DenseNet201_Weights: 'GFLOPS' 4.29 (counts multiply-adds)"),
        top1=Published(77.5, _README + " 22.5 %)"),
    )
)
def densenet201(*, num_classes: int = 1000, growth_rate: int = 32) -> nn.Module:
    """DenseNet-201 (Table 1): dense blocks of 6, 12, 48, 32 layers, k=32 by default."""
    return _imagenet((6, 12, 48, 32), growth_rate, num_classes)


@register_model(
    ModelMeta(
        family="densenet",
        paper=_PAPER,
        year=2017,
        notes="No exact parameter or multiply-add count published; this network: see densenet264().",
    )
)
def densenet264(*, num_classes: int = 1000, growth_rate: int = 32) -> nn.Module:
    """DenseNet-264 (Table 1): dense blocks of 6, 12, 64, 48 layers, k=32 by default. Not in torchvision; the
    paper publishes no exact parameter count. This network has
    33,337,704 parameters, checked against the Table 1 arithmetic in tests/zoo/test_densenet.py."""
    return _imagenet((6, 12, 64, 48), growth_rate, num_classes)


@register_model(
    ModelMeta(
        family="densenet",
        paper=_PAPER,
        year=2017,
        input_size=(3, 32, 32),
        num_classes=10,
        dataset="CIFAR-10",
        params=Published(0.8e6, "Huang et al. 2017, Table 2 and the authors' README: DenseNet-BC (L=100, k=12), 0.8 M"),
        top1=Published(95.49, "Huang et al. 2017, Table 2 and README: C10+ error 4.51 % (standard augmentation)"),
    )
)
def densenet_bc_100_12_cifar(*, num_classes: int = 10, growth_rate: int = 12) -> nn.Module:
    """DenseNet-BC (L=100, k=12) for CIFAR: 3x3 stem with 2k=24 channels, three dense blocks of
    (100 - 4) / 6 = 16 bottleneck layers, compression 0.5 (24 -> 216 -> 108 -> 300 -> 150 -> 342 channels
    with k=12), BN-ReLU, global average pooling (8x8), fc. As densenet.lua with -depth 100 -growthRate 12."""
    _check(num_classes, growth_rate)
    return DenseNet((16, 16, 16), growth_rate, num_classes, imagenet_stem=False)
