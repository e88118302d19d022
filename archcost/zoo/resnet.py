"""ResNet (He et al. 2015) for ImageNet, with its wide (WRN-50-2) and aggregated (ResNeXt) descendants.

The five ResNets follow the paper's Table 1 and the authors' released Caffe models
(github.com/KaimingHe/deep-residual-networks, ``prototxt/ResNet-101-deploy.prototxt``): "v1", i.e.

* a down-sampling bottleneck carries its stride in its FIRST 1x1 convolution (``res3a_branch2a`` has
  ``stride: 2``), unlike torchvision's "v1.5", which moves it to the 3x3 convolution;
* projection shortcuts (option B of section 3.3) only where the shape changes: a 1x1 convolution with the
  block's stride, followed by BN (``res3a_branch1`` + ``bn3a_branch1``);
* BN after every convolution, convolutions without bias, ReLU after the residual addition;
* ``pool1`` is a 3x3/2 max pool with no padding and Caffe's ceil rounding (112 -> 56 at 224x224), which
  we write as ``nn.MaxPool2d(3, 2, ceil_mode=True)``; the head is global average pooling and a 1000-way fc.

Parameter counts do not depend on where the stride sits, so they equal torchvision's exactly. The MACs do:
with the stride in the 1x1 the first 1x1 of each down-sampling block runs at the output resolution.

WRN-50-2 and the ResNeXts were trained with fb.resnet.torch-derived code (github.com/facebook/fb.resnet.torch,
github.com/facebookresearch/ResNeXt ``models/resnext.lua``), which puts the stride in the 3x3 convolution
and pads the stem max pool by one; we build them that way (it is also what torchvision builds).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from archcost.errors import ModelOptionError
from archcost.zoo._meta import ModelMeta, Published
from archcost.zoo._registry import register_model

_PAPER = "Deep Residual Learning for Image Recognition"
_WRN_PAPER = "Wide Residual Networks"
_RESNEXT_PAPER = "Aggregated Residual Transformations for Deep Neural Networks"
_CAFFE = "He et al., github.com/KaimingHe/deep-residual-networks README"
_TABLE1 = "He et al. 2015, Table 1: FLOPs row; the text (section 3.3) says these FLOPs are multiply-adds"


def _check_num_classes(num_classes: int) -> None:
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ModelOptionError(f"num_classes must be a positive integer, got {num_classes!r}")


def _projection(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """Option B shortcut: 1x1 convolution with the block's stride, then BN."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
        nn.BatchNorm2d(out_channels),
    )


class BasicBlock(nn.Module):
    """Two 3x3 convolutions (Fig. 5 left); the first carries the stride. ``shortcut`` builds the path
    taken where the shape changes: option B's projection here, option A's zero padding on CIFAR."""

    def __init__(
        self, in_channels: int, channels: int, stride: int = 1, *, shortcut: Callable[..., nn.Module] | None = None
    ) -> None:
        super().__init__()
        shortcut = shortcut or _projection
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = shortcut(in_channels, channels, stride) if stride != 1 or in_channels != channels else None
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out + identity
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (grouped for ResNeXt), 1x1 expand (Fig. 5 right).

    ``stride_in_1x1`` puts the down-sampling stride in the first 1x1 convolution (the paper's models) or,
    when False, in the 3x3 convolution (fb.resnet.torch, ResNeXt, WRN-50-2, torchvision v1.5).
    """

    def __init__(
        self,
        in_channels: int,
        width: int,
        out_channels: int,
        stride: int = 1,
        groups: int = 1,
        stride_in_1x1: bool = True,
    ) -> None:
        super().__init__()
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = nn.Conv2d(in_channels, width, 1, stride=s1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, width, 3, stride=s3, padding=1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.shortcut = (
            _projection(in_channels, out_channels, stride) if stride != 1 or in_channels != out_channels else None
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out = out + identity
        return self.relu(out)


class ResNet(nn.Module):
    """Stem (conv1 + max pool), stages conv2_x .. conv5_x as named in Table 1, global average pool, fc."""

    def __init__(
        self,
        stages: Sequence[Sequence[nn.Module]],
        out_channels: int,
        num_classes: int,
        pool_padding: int,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        # pool_padding=0 with ceil rounding is the Caffe pool1; 1 with floor rounding is fb.resnet.torch's.
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=pool_padding, ceil_mode=pool_padding == 0)
        self.conv2_x = nn.Sequential(*stages[0])
        self.conv3_x = nn.Sequential(*stages[1])
        self.conv4_x = nn.Sequential(*stages[2])
        self.conv5_x = nn.Sequential(*stages[3])
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(out_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.conv5_x(self.conv4_x(self.conv3_x(self.conv2_x(x))))
        return self.fc(self.flatten(self.avgpool(x)))


_STAGE_CHANNELS = (64, 128, 256, 512)


def _basic_resnet(depths: Sequence[int], num_classes: int) -> ResNet:
    _check_num_classes(num_classes)
    stages, in_ch = [], 64
    for i, (n, ch) in enumerate(zip(depths, _STAGE_CHANNELS, strict=True)):
        blocks = []
        for b in range(n):
            blocks.append(BasicBlock(in_ch, ch, stride=2 if (b == 0 and i > 0) else 1))
            in_ch = ch
        stages.append(blocks)
    return ResNet(stages, 512, num_classes, pool_padding=0)


def _bottleneck_resnet(
    depths: Sequence[int],
    num_classes: int,
    *,
    groups: int = 1,
    width_per_group: int = 64,
    stride_in_1x1: bool = True,
    pool_padding: int = 0,
) -> ResNet:
    """Bottleneck network; a stage's inner width is ``floor(ch * width_per_group / 64) * groups``.

    With ``groups=1, width_per_group=64`` this is the paper's ResNet (inner width = 64, 128, 256, 512);
    ``width_per_group=128`` doubles the inner width (WRN-50-2); ``groups=32, width_per_group=4`` is
    ResNeXt 32x4d (``D = floor(n * baseWidth / 64)``, width ``D * C`` as in resnext.lua).
    """
    _check_num_classes(num_classes)
    stages, in_ch = [], 64
    for i, (n, ch) in enumerate(zip(depths, _STAGE_CHANNELS, strict=True)):
        width = (ch * width_per_group // 64) * groups
        out_ch = ch * 4
        blocks = []
        for b in range(n):
            stride = 2 if (b == 0 and i > 0) else 1
            blocks.append(Bottleneck(in_ch, width, out_ch, stride, groups, stride_in_1x1))
            in_ch = out_ch
        stages.append(blocks)
    return ResNet(stages, 2048, num_classes, pool_padding=pool_padding)


# ---------------------------------------------------------------------------------------------------------
# ResNet v1 (He et al. 2015)


@register_model(
    ModelMeta(
        family="resnet",
        paper=_PAPER,
        year=2015,
        params=Published(11_689_512, "exact count of Table 1's 18-layer net (equals torchvision resnet18)"),
        macs=Published(1.8e9, _TABLE1),
        notes="ResNet v1; no single-crop accuracy published for the 18-layer net (Table 2 is 10-crop).",
    )
)
def resnet18(*, num_classes: int = 1000) -> nn.Module:
    """ResNet-18: basic blocks [2, 2, 2, 2] (Table 1); projection shortcuts at conv3_1, conv4_1, conv5_1."""
    return _basic_resnet((2, 2, 2, 2), num_classes)


@register_model(
    ModelMeta(
        family="resnet",
        paper=_PAPER,
        year=2015,
        params=Published(21_797_672, "exact count of Table 1's 34-layer net (equals torchvision resnet34)"),
        macs=Published(3.6e9, _TABLE1 + " (the 3.6 is the plain-34 baseline of section 3.3)"),
        notes=(
            "ResNet-34 option B. Counted conv+fc MACs are 3.664e9; Table 1 prints 3.6e9, which is the "
            "plain-34 count (3.6e9 in section 3.3; the three projection shortcuts add 1.9e7): see resnet34()."
        ),
    )
)
def resnet34(*, num_classes: int = 1000) -> nn.Module:
    """ResNet-34: basic blocks [3, 4, 6, 3] (Table 1), option B shortcuts (projections only where shapes
    change: three 1x1/2 convolutions).

    Not reproduced exactly: the conv+fc multiply-adds of this model are 3,663,761,408 (3.7e9 rounded),
    while Table 1 prints 3.6e9. Section 3.3 gives 3.6 billion FLOPs for the *plain* 34-layer baseline and
    says the shortcuts add no computation; the plain net's count is 3,644,493,824 (3.6e9), the difference
    being the three projection shortcuts (3 x 6,422,528 MACs). Table 1 therefore prints the plain-net
    figure; we keep the option-B model and document the 0.6 % gap rather than bend the network.
    """
    return _basic_resnet((3, 4, 6, 3), num_classes)


@register_model(
    ModelMeta(
        family="resnet",
        paper=_PAPER,
        year=2015,
        params=Published(25_557_032, "exact count of Table 1's 50-layer net (equals torchvision resnet50)"),
        macs=Published(3.8e9, _TABLE1),
        notes="Counted conv+fc MACs are 3.858e9 (rounds to 3.9e9, Table 1 prints 3.8e9): see resnet50().",
        top1=Published(75.3, _CAFFE + ", 1-crop 224x224 val error 24.7 %"),
        top5=Published(92.2, _CAFFE + ", 1-crop 224x224 val error 7.8 %"),
    )
)
def resnet50(*, num_classes: int = 1000) -> nn.Module:
    """ResNet-50: bottlenecks [3, 4, 6, 3], stride in the first 1x1 of conv3_1/conv4_1/conv5_1 (the released
    Caffe model). torchvision's resnet50 (v1.5, stride in the 3x3) has the same parameters but 4.09e9 MACs.

    Not reproduced to the printed digit: the conv+fc multiply-adds are 3,857,973,248, which rounds to 3.9e9;
    Table 1 prints 3.8e9 (1.5 % lower). The paper does not say what its count leaves out; the stride
    placement is not the cause (v1.5 would move the count up, not down). Test: tests/zoo/test_resnet.py.
    """
    return _bottleneck_resnet((3, 4, 6, 3), num_classes)


@register_model(
    ModelMeta(
        family="resnet",
        paper=_PAPER,
        year=2015,
        params=Published(44_549_160, "exact count of Table 1's 101-layer net (equals torchvision resnet101)"),
        macs=Published(7.6e9, _TABLE1),
        top1=Published(76.4, _CAFFE + ", 1-crop 224x224 val error 23.6 %"),
        top5=Published(92.9, _CAFFE + ", 1-crop 224x224 val error 7.1 %"),
    )
)
def resnet101(*, num_classes: int = 1000) -> nn.Module:
    """ResNet-101: bottlenecks [3, 4, 23, 3]; v1 stride placement as in ResNet-50."""
    return _bottleneck_resnet((3, 4, 23, 3), num_classes)


@register_model(
    ModelMeta(
        family="resnet",
        paper=_PAPER,
        year=2015,
        params=Published(60_192_808, "exact count of Table 1's 152-layer net (equals torchvision resnet152)"),
        macs=Published(11.3e9, _TABLE1),
        top1=Published(77.0, _CAFFE + ", 1-crop 224x224 val error 23.0 %"),
        top5=Published(93.3, _CAFFE + ", 1-crop 224x224 val error 6.7 %"),
    )
)
def resnet152(*, num_classes: int = 1000) -> nn.Module:
    """ResNet-152: bottlenecks [3, 8, 36, 3]; v1 stride placement as in ResNet-50."""
    return _bottleneck_resnet((3, 8, 36, 3), num_classes)


# ---------------------------------------------------------------------------------------------------------
# Wide ResNet-50-2 (Zagoruyko & Komodakis 2016, ImageNet section)


@register_model(
    ModelMeta(
        family="wide_resnet",
        paper=_WRN_PAPER,
        year=2016,
        params=Published(
            68_883_240,
            "Zagoruyko & Komodakis 2016, ImageNet table: WRN-50-2-bottleneck 68.9 M; exact count is "
            "torchvision wide_resnet50_2's",
        ),
        top1=Published(78.1, "Zagoruyko & Komodakis 2016, ImageNet table: single-crop top-1 error 21.9 %"),
        top5=Published(93.97, "Zagoruyko & Komodakis 2016, ImageNet table: single-crop top-5 error 6.03 %"),
        notes="The paper publishes no multiply-add count for WRN-50-2 (this network: 11.40e9).",
    )
)
def wide_resnet50_2(*, num_classes: int = 1000) -> nn.Module:
    """WRN-50-2-bottleneck: ResNet-50 with every bottleneck's inner (1x1 -> 3x3) width doubled; the outer
    widths (256 .. 2048) are unchanged. Trained with fb.resnet.torch-based code, so the stride sits in the
    3x3 convolution and the stem pool is padded (as in torchvision's wide_resnet50_2)."""
    return _bottleneck_resnet((3, 4, 6, 3), num_classes, width_per_group=128, stride_in_1x1=False, pool_padding=1)


# ---------------------------------------------------------------------------------------------------------
# ResNeXt (Xie et al. 2017), form (c) of Fig. 3: grouped 3x3 convolution


@register_model(
    ModelMeta(
        family="resnext",
        paper=_RESNEXT_PAPER,
        year=2017,
        params=Published(
            25_028_904,
            "Xie et al. 2017, Table 1: 25.0 x 10^6; exact count is torchvision resnext50_32x4d's",
        ),
        macs=Published(4.2e9, "Xie et al. 2017, Table 1: FLOPs 4.2 x 10^9 (multiply-adds)"),
        top1=Published(77.8, "Xie et al. 2017, Table 3: top-1 error 22.2 % (224x224 single crop)"),
    )
)
def resnext50_32x4d(*, num_classes: int = 1000) -> nn.Module:
    """ResNeXt-50 (32x4d), Table 1: cardinality 32, 4 channels per group in conv2 (inner width 128, 256,
    512, 1024). Stride in the grouped 3x3, as in the authors' code (github.com/facebookresearch/ResNeXt,
    models/resnext.lua, resnext_bottleneck_C: D = floor(n * baseWidth / 64), width D * C, option B)."""
    return _bottleneck_resnet(
        (3, 4, 6, 3), num_classes, groups=32, width_per_group=4, stride_in_1x1=False, pool_padding=1
    )


@register_model(
    ModelMeta(
        family="resnext",
        paper=_RESNEXT_PAPER,
        year=2017,
        params=Published(44_177_704, "exact count of ResNeXt-101 32x4d (timm resnext101_32x4d: 44.18 M)"),
        macs=Published(
            7.8e9,
            "Xie et al. 2017, Table 3 caption: the 101-layer models have ~7.8 billion FLOPs (multiply-adds)",
        ),
        notes="Counted conv+fc MACs are 7.97e9; the paper's ~7.8e9 is the preserved ResNet-101 budget.",
        top1=Published(78.8, "Xie et al. 2017, Table 3: top-1 error 21.2 % (224x224 single crop)"),
    )
)
def resnext101_32x4d(*, num_classes: int = 1000) -> nn.Module:
    """ResNeXt-101 (32x4d): blocks [3, 4, 23, 3], cardinality 32, 4 channels per group; stride in the grouped
    3x3 as in the authors' resnext.lua.

    Not reproduced to the printed digit: this network has 7,969,996,800 multiply-adds (8.0e9). The ~7.8e9
    of Table 3 is the complexity of the ResNet-101 baseline that the ablation "preserves" approximately
    (ResNeXt-50 32x4d likewise sits at 4.2e9 in Table 1 against the ~4.1e9 ResNet-50 baseline)."""
    return _bottleneck_resnet(
        (3, 4, 23, 3), num_classes, groups=32, width_per_group=4, stride_in_1x1=False, pool_padding=1
    )


@register_model(
    ModelMeta(
        family="resnext",
        paper=_RESNEXT_PAPER,
        year=2017,
        params=Published(83_455_272, "exact count of torchvision resnext101_64x4d (num_params 83455272)"),
        macs=Published(15.46e9, "torchvision ResNeXt101_64X4D_Weights: 'GFLOPS' 15.46 (counts multiply-adds)"),
        notes="Xie et al. 2017 (Table 4) give no count, only that it has ~2x the FLOPs of ResNet-101.",
    )
)
def resnext101_64x4d(*, num_classes: int = 1000) -> nn.Module:
    """ResNeXt-101 (64x4d): blocks [3, 4, 23, 3], cardinality 64, 4 channels per group (inner width 256,
    512, 1024, 2048); stride in the grouped 3x3 as in the authors' resnext.lua."""
    return _bottleneck_resnet(
        (3, 4, 23, 3), num_classes, groups=64, width_per_group=4, stride_in_1x1=False, pool_padding=1
    )
