"""Residual networks for CIFAR-10 (32x32 inputs): the 6n+2 ResNets of He et al. 2015 (section 4.2), the
pre-activation ResNet-164/1001 of He et al. 2016, and the wide residual networks WRN-d-k of Zagoruyko &
Komodakis 2016.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

import torch
import torch.nn.functional as F
from torch import nn

from archcost.errors import ModelOptionError
from archcost.zoo._meta import ModelMeta, Published
from archcost.zoo._registry import register_model
from archcost.zoo.resnet import BasicBlock

_PAPER = "Deep Residual Learning for Image Recognition"
_PREACT_PAPER = "Identity Mappings in Deep Residual Networks"
_WRN_PAPER = "Wide Residual Networks"


class _Dataset(TypedDict):
    """The ``ModelMeta`` fields every CIFAR-10 model shares."""

    input_size: tuple[int, ...]
    num_classes: int
    dataset: str


_CIFAR: _Dataset = {"input_size": (3, 32, 32), "num_classes": 10, "dataset": "CIFAR-10"}


def _check_num_classes(num_classes: int) -> None:
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ModelOptionError(f"num_classes must be a positive integer, got {num_classes!r}")


class ZeroPadShortcut(nn.Module):
    """Option A shortcut of He et al. 2015: identity, subsampled by ``stride`` and zero-padded to
    ``out_channels``. It has no parameters and no multiply-adds (a strided slice and a pad)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"option A cannot reduce channels ({in_channels} -> {out_channels})")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        # F.pad pads the last dimensions first: (W left, W right, H top, H bottom, C front, C back).
        return F.pad(x, (0, 0, 0, 0, 0, self.out_channels - self.in_channels))

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


# ---------------------------------------------------------------------------------------------------------
# ResNet-{20, 32, 44, 56, 110, 1202} (He et al. 2015, section 4.2)


class CifarBasicBlock(BasicBlock):
    """Post-activation basic block: conv-BN-ReLU-conv-BN, add the option A shortcut, ReLU."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__(in_channels, channels, stride, shortcut=ZeroPadShortcut)


class CifarResNet(nn.Module):
    """3x3 conv (16), three stages of n basic blocks at 32x32 / 16x16 / 8x8 with 16 / 32 / 64 filters
    (the first block of stages 2 and 3 subsamples with stride 2), global average pooling, fc."""

    def __init__(self, n: int, num_classes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        in_ch, stages = 16, []
        for i, ch in enumerate((16, 32, 64)):
            blocks = []
            for b in range(n):
                blocks.append(CifarBasicBlock(in_ch, ch, stride=2 if (b == 0 and i > 0) else 1))
                in_ch = ch
            stages.append(nn.Sequential(*blocks))
        self.stage1, self.stage2, self.stage3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.stage3(self.stage2(self.stage1(x)))
        return self.fc(self.flatten(self.avgpool(x)))


def _cifar_resnet(depth: int, num_classes: int) -> CifarResNet:
    _check_num_classes(num_classes)
    return CifarResNet((depth - 2) // 6, num_classes)


def _table6(depth: int, params_m: float, error: float) -> ModelMeta:
    return ModelMeta(
        family="resnet_cifar",
        paper=_PAPER,
        year=2015,
        params=Published(params_m * 1e6, f"He et al. 2015, Table 6: ResNet-{depth}, {params_m} M"),
        top1=Published(
            round(100.0 - error, 2), f"He et al. 2015, Table 6: ResNet-{depth} CIFAR-10 test error {error} %"
        ),
        notes="Option A shortcuts (zero-padding identity, section 4.2); no multiply-add count published.",
        **_CIFAR,
    )


_CIFAR_DOC = """ResNet-{depth} for CIFAR-10 (He et al. 2015, section 4.2): 6n+2 layers with n={n},
    16/32/64 filters, option A (parameter-free) shortcuts, global average pooling and a 10-way fc.
    Reference implementation of the shortcut: github.com/akamaster/pytorch_resnet_cifar10 (strided slice and
    zero channel padding); we pad the extra channels after the existing ones (akamaster splits them on
    both sides; the cost is the same)."""


@register_model(_table6(20, 0.27, 8.75))
def resnet20_cifar(*, num_classes: int = 10) -> nn.Module:
    return _cifar_resnet(20, num_classes)


@register_model(_table6(32, 0.46, 7.51))
def resnet32_cifar(*, num_classes: int = 10) -> nn.Module:
    return _cifar_resnet(32, num_classes)


@register_model(_table6(44, 0.66, 7.17))
def resnet44_cifar(*, num_classes: int = 10) -> nn.Module:
    return _cifar_resnet(44, num_classes)


@register_model(_table6(56, 0.85, 6.97))
def resnet56_cifar(*, num_classes: int = 10) -> nn.Module:
    return _cifar_resnet(56, num_classes)


@register_model(_table6(110, 1.7, 6.43))
def resnet110_cifar(*, num_classes: int = 10) -> nn.Module:
    return _cifar_resnet(110, num_classes)


@register_model(_table6(1202, 19.4, 7.93))
def resnet1202_cifar(*, num_classes: int = 10) -> nn.Module:
    return _cifar_resnet(1202, num_classes)


for _fn, _depth in (
    (resnet20_cifar, 20),
    (resnet32_cifar, 32),
    (resnet44_cifar, 44),
    (resnet56_cifar, 56),
    (resnet110_cifar, 110),
    (resnet1202_cifar, 1202),
):
    _fn.__doc__ = _CIFAR_DOC.format(depth=_depth, n=(_depth - 2) // 6)


# ---------------------------------------------------------------------------------------------------------
# Pre-activation units (He et al. 2016) and wide residual networks (Zagoruyko & Komodakis 2016)


class PreActBottleneck(nn.Module):
    """Full pre-activation bottleneck (Fig. 4(e) of He et al. 2016): BN-ReLU-1x1, BN-ReLU-3x3, BN-ReLU-1x1,
    then the addition, with nothing after it.

    As in the authors' code (github.com/KaimingHe/resnet-1k-layers, resnet-pre-act.lua) the down-sampling
    stride sits in the first 1x1 convolution, and a unit that changes the shape shares its first BN-ReLU
    with a 1x1 projection shortcut (convolution only, no BN); other units add the raw input.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        width = out_channels // 4
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, width, 1, stride=stride, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.relu3 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
            if stride != 1 or in_channels != out_channels
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.relu1(self.bn1(x))
        identity = x if self.shortcut is None else self.shortcut(pre)
        out = self.conv1(pre)
        out = self.conv2(self.relu2(self.bn2(out)))
        out = self.conv3(self.relu3(self.bn3(out)))
        return out + identity


class WideBasicBlock(nn.Module):
    """WRN block B(3,3) (Fig. 1(c)/(d) of Zagoruyko & Komodakis): BN-ReLU-3x3, BN-ReLU-[dropout]-3x3, add.

    As in the authors' code (github.com/szagoruyko/wide-residual-networks, pytorch/resnet.py) the stride
    sits in the first 3x3 convolution and a width-changing block applies a 1x1 projection to the
    pre-activated input.
    """

    def __init__(self, in_channels: int, channels: int, stride: int, dropout_rate: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu2 = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout_rate) if dropout_rate > 0 else None
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.shortcut = (
            nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False)
            if stride != 1 or in_channels != channels
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.relu1(self.bn1(x))
        identity = x if self.shortcut is None else self.shortcut(pre)
        out = self.relu2(self.bn2(self.conv1(pre)))
        if self.dropout is not None:
            out = self.dropout(out)
        out = self.conv2(out)
        return out + identity


class PreActCifarNet(nn.Module):
    """conv1 (3x3, 16), three stages of pre-activation units, final BN-ReLU, global average pooling, fc."""

    def __init__(self, stages: Sequence[Sequence[nn.Module]], out_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.stage1 = nn.Sequential(*stages[0])
        self.stage2 = nn.Sequential(*stages[1])
        self.stage3 = nn.Sequential(*stages[2])
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(out_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage3(self.stage2(self.stage1(self.conv1(x))))
        x = self.relu(self.bn(x))
        return self.fc(self.flatten(self.avgpool(x)))


def _preact_resnet(depth: int, num_classes: int) -> PreActCifarNet:
    """Depth 9n+2: three stages of n bottlenecks with outputs 64 / 128 / 256 (inner widths 16 / 32 / 64)."""
    _check_num_classes(num_classes)
    n = (depth - 2) // 9
    stages, in_ch = [], 16
    for i, out_ch in enumerate((64, 128, 256)):
        blocks = []
        for b in range(n):
            blocks.append(PreActBottleneck(in_ch, out_ch, stride=2 if (b == 0 and i > 0) else 1))
            in_ch = out_ch
        stages.append(blocks)
    return PreActCifarNet(stages, 256, num_classes)


def _wrn(depth: int, k: int, num_classes: int, dropout_rate: float) -> PreActCifarNet:
    """WRN-depth-k: depth 6n+4, three groups of n blocks with 16k / 32k / 64k channels (Table 1)."""
    _check_num_classes(num_classes)
    if not 0.0 <= dropout_rate < 1.0:
        raise ModelOptionError(f"dropout_rate must be in [0, 1), got {dropout_rate!r}")
    n = (depth - 4) // 6
    stages, in_ch = [], 16
    for i, ch in enumerate((16 * k, 32 * k, 64 * k)):
        blocks = []
        for b in range(n):
            stride = 2 if (b == 0 and i > 0) else 1
            blocks.append(WideBasicBlock(in_ch, ch, stride, dropout_rate))
            in_ch = ch
        stages.append(blocks)
    return PreActCifarNet(stages, 64 * k, num_classes)


@register_model(
    ModelMeta(
        family="preact_resnet",
        paper=_PREACT_PAPER,
        year=2016,
        params=Published(1.7e6, "He et al. 2016, CIFAR comparison table (#params): ResNet-164, 1.7 M"),
        notes="No multiply-add count published.",
        **_CIFAR,
    )
)
def preact_resnet164_cifar(*, num_classes: int = 10) -> nn.Module:
    """Pre-activation ResNet-164: 9n+2 layers with n=18 bottleneck units per stage (16-channel stem conv,
    stage outputs 64 / 128 / 256), final BN-ReLU before pooling; structure from resnet-pre-act.lua."""
    return _preact_resnet(164, num_classes)


@register_model(
    ModelMeta(
        family="preact_resnet",
        paper=_PREACT_PAPER,
        year=2016,
        params=Published(10.2e6, "He et al. 2016, CIFAR comparison table (#params): ResNet-1001, 10.2 M"),
        top1=Published(95.38, "He et al. 2016, abstract: 4.62 % CIFAR-10 test error with ResNet-1001"),
        notes="No multiply-add count published.",
        **_CIFAR,
    )
)
def preact_resnet1001_cifar(*, num_classes: int = 10) -> nn.Module:
    """Pre-activation ResNet-1001: n=111 bottleneck units per stage; otherwise as ResNet-164."""
    return _preact_resnet(1001, num_classes)


@register_model(
    ModelMeta(
        family="wide_resnet",
        paper=_WRN_PAPER,
        year=2016,
        params=Published(11.0e6, "Zagoruyko & Komodakis 2016, CIFAR results table: WRN-16-8, 11.0 M"),
        notes="No multiply-add count published.",
        **_CIFAR,
    )
)
def wrn_16_8_cifar(*, num_classes: int = 10, dropout_rate: float = 0.0) -> nn.Module:
    """WRN-16-8: n=2 blocks per group, widths 128 / 256 / 512. ``dropout_rate`` > 0 inserts the paper's
    dropout between the two convolutions of each block (section 2.4; 0.3 in its experiments)."""
    return _wrn(16, 8, num_classes, dropout_rate)


@register_model(
    ModelMeta(
        family="wide_resnet",
        paper=_WRN_PAPER,
        year=2016,
        params=Published(36.5e6, "Zagoruyko & Komodakis 2016, CIFAR results table: WRN-28-10, 36.5 M"),
        notes="No multiply-add count published.",
        **_CIFAR,
    )
)
def wrn_28_10_cifar(*, num_classes: int = 10, dropout_rate: float = 0.0) -> nn.Module:
    """WRN-28-10: n=4 blocks per group, widths 160 / 320 / 640; ``dropout_rate`` as in wrn_16_8_cifar."""
    return _wrn(28, 10, num_classes, dropout_rate)
