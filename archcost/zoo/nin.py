"""Network in Network (Lin et al. 2014): the authors' ImageNet model (4 mlpconv blocks) and their
CIFAR-10 model (3 mlpconv blocks), both ending in global average pooling instead of fully connected
layers."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from archcost.errors import ModelOptionError
from archcost.zoo._meta import ModelMeta, Published
from archcost.zoo._registry import register_model

_PAPER = "Network In Network"


def mlpconv(
    in_channels: int, widths: tuple[int, int, int], kernel: int, stride: int, padding: int, first: int
) -> nn.Sequential:
    """An mlpconv layer (Sec. 3.1): a ``kernel`` x ``kernel`` convolution followed by two 1x1
    convolutions (the paper's "cascaded cross channel parametric pooling", Caffe's ``cccp`` layers),
    each followed by a ReLU. ``first`` numbers the two cccp layers as in the authors' prototxts."""
    conv, cccp_a, cccp_b = widths
    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(in_channels, conv, kernel_size=kernel, stride=stride, padding=padding),
            relu=nn.ReLU(inplace=True),
            **{
                f"cccp{first}": nn.Conv2d(conv, cccp_a, kernel_size=1),
                f"relu_cccp{first}": nn.ReLU(inplace=True),
                f"cccp{first + 1}": nn.Conv2d(cccp_a, cccp_b, kernel_size=1),
                f"relu_cccp{first + 1}": nn.ReLU(inplace=True),
            },
        )
    )


class NiN(nn.Module):
    """``features`` (mlpconv blocks, pooling, dropout) -> global average pooling -> flatten.

    The last mlpconv layer has one map per class, so the averaged maps are the class scores.
    """

    def __init__(self, features: nn.Sequential) -> None:
        super().__init__()
        self.features = features
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.flatten(self.global_pool(self.features(x)))


def _check_num_classes(num_classes: int) -> None:
    if num_classes < 1:
        raise ModelOptionError(f"num_classes must be >= 1, got {num_classes}")


@register_model(
    ModelMeta(
        family="nin",
        paper=_PAPER,
        year=2014,
        input_size=(3, 224, 224),
        top1=Published(
            59.36,
            "NIN-ImageNet Caffe model-zoo readme (gist d802a5849de39225bcc6): 59.36% top-1 on "
            "ILSVRC-2012 val (centre crop; 10 crops 'should obtain a bit higher')",
        ),
        notes="The readme quotes a 29 MB snapshot (about 7.6 M float32 parameters); no exact count.",
    )
)
def nin(*, num_classes: int = 1000) -> nn.Module:
    """NIN for ImageNet as in the authors' Caffe model zoo model (nin_imagenet, gist d802a58...).

    The paper reports its ImageNet results only in text; the architecture is that of the released
    prototxt (also ethereon/caffe-tensorflow examples/imagenet/models/nin.py):
    mlpconv 96@11x11/4-96-96 -> 3x3/2 max -> mlpconv 256@5x5 (pad 2)-256-256 -> 3x3/2 max ->
    mlpconv 384@3x3 (pad 1)-384-384 -> 3x3/2 max -> dropout 0.5 -> mlpconv 1024@3x3 (pad 1)-1024-C
    -> 6x6 global average pooling. Sizes 224 -> 54 -> 27 -> 27 -> 13 -> 13 -> 6 -> 6 -> 1.
    Pooling uses Caffe's ceil rounding. The final cccp layer is followed by a ReLU, as in the prototxt.
    """
    _check_num_classes(num_classes)
    features = nn.Sequential(
        OrderedDict(
            mlpconv1=mlpconv(3, (96, 96, 96), kernel=11, stride=4, padding=0, first=1),
            pool1=nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            mlpconv2=mlpconv(96, (256, 256, 256), kernel=5, stride=1, padding=2, first=3),
            pool2=nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            mlpconv3=mlpconv(256, (384, 384, 384), kernel=3, stride=1, padding=1, first=5),
            pool3=nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            drop3=nn.Dropout(0.5),
            mlpconv4=mlpconv(384, (1024, 1024, num_classes), kernel=3, stride=1, padding=1, first=7),
        )
    )
    return NiN(features)


@register_model(
    ModelMeta(
        family="nin",
        paper=_PAPER,
        year=2014,
        input_size=(3, 32, 32),
        num_classes=10,
        dataset="CIFAR-10",
        top1=Published(89.59, "Lin et al. 2014, Table 1: NIN + Dropout, 10.41% CIFAR-10 test error"),
        notes="With data augmentation the paper reports 8.81% error (Table 1).",
    )
)
def nin_cifar(*, num_classes: int = 10) -> nn.Module:
    """NIN for CIFAR-10 as in the authors' own configuration for the paper
    (mavenlin/cuda-convnet, NIN/cifar-10_def).

    mlpconv 192@5x5 (pad 2)-160-96 -> 3x3/2 max -> dropout -> mlpconv 192@5x5 (pad 2)-192-192 ->
    3x3/2 max -> dropout -> mlpconv 192@3x3 (pad 1)-192-C -> 8x8 global average pooling, a ReLU after
    every convolution including the last. Sizes 32 -> 32 -> 16 -> 16 -> 8 -> 8 -> 1: cuda-convnet
    rounds pooled sizes up (ceil_mode=True).
    """
    _check_num_classes(num_classes)
    features = nn.Sequential(
        OrderedDict(
            mlpconv1=mlpconv(3, (192, 160, 96), kernel=5, stride=1, padding=2, first=1),
            pool1=nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            drop1=nn.Dropout(0.5),
            mlpconv2=mlpconv(96, (192, 192, 192), kernel=5, stride=1, padding=2, first=3),
            pool2=nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            drop2=nn.Dropout(0.5),
            mlpconv3=mlpconv(192, (192, 192, num_classes), kernel=3, stride=1, padding=1, first=5),
        )
    )
    return NiN(features)
