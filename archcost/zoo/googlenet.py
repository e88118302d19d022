"""GoogLeNet (Szegedy et al. 2015, "Going Deeper with Convolutions"): Inception v1 as in Table 1.

Layer settings come from the paper (Table 1, Sect. 5 and Fig. 3) and, where the paper is silent
(padding, pooling rounding), from the authors' Caffe reference ``models/bvlc_googlenet`` in BVLC/caffe
(deploy.prototxt / train_val.prototxt), which was read for comparison; no code is copied:

* stem: conv 7x7/2 (pad 3) -> max pool 3x3/2 -> LRN -> conv 1x1 (64, "3x3 reduce") -> conv 3x3 (192,
  pad 1) -> LRN -> max pool 3x3/2. LRN: local_size 5, alpha 1e-4, beta 0.75, k 1 (Caffe; Caffe and
  ``nn.LocalResponseNorm`` both divide alpha by the window size, so the values carry over unchanged).
* every max pool 3x3/2 rounds up (Caffe's pooling default), giving Table 1's 56, 28, 14 and 7:
  ``nn.MaxPool2d(3, 2, ceil_mode=True)``.
* Inception module: 1x1 | 1x1 reduce -> 3x3 (pad 1) | 1x1 reduce -> 5x5 (pad 2) | max pool 3x3/1
  (pad 1) -> 1x1 projection; ReLU after every conv ("All convolutions, including those inside the
  Inception modules, use rectified linear activation"); branches concatenated along channels.
* head: avg pool 7x7/1 -> dropout 40% -> linear 1000 (no batch norm anywhere: it did not exist yet).
* auxiliary classifiers on 4a and 4d (Sect. 5): avg pool 5x5/3 (4x4 output), conv 1x1 128 + ReLU,
  fc 1024 + ReLU, dropout 70%, linear. Built only with ``aux_logits=True`` and evaluated only in
  training mode, where the forward returns ``GoogLeNetOutputs(logits, aux1, aux2)``.

Differences from torchvision's ``googlenet`` (read for comparison): torchvision uses BatchNorm after
every conv, no LRN, a 3x3 (not 5x5) conv in the 5x5 branch, ceil-mode 3x3/1 pool in the pool branch,
an adaptive average pool and dropout 0.2; it is a port of a TensorFlow re-implementation, not the paper.

Table 1's parameter and op counts count weights only (no biases, no LRN) and ops are multiply-adds.
They cannot all be reproduced from the table's own filter numbers; tests/zoo/test_googlenet.py lists
the rows that differ. In particular the first row (2.7K params, 34M ops) is not a 7x7/2 convolution
from 3 to 64 channels (9,408 weights, 118M MACs) but matches a depthwise separable 7x7/2 convolution
with depth multiplier 8 (7*7*3*8 + 3*8*64 = 2,712 weights; x 112*112 = 34.0M MACs). Chollet 2017
(Xception, Sect. 1.2) states that Inception V1's first layer was a depthwise separable convolution,
and Ioffe & Szegedy 2015 (BN-Inception, Appendix, Figure 5) use one with depth multiplier 8 in
the same place. The default
follows the paper's "convolution 7x7/2" and the Caffe reference; ``separable_stem=True`` builds the
separable variant (depthwise 7x7/2, 3 -> 24 channels, then pointwise 1x1, 24 -> 64, no activation
between them, as TF-slim's ``separable_conv2d``) so the first row of Table 1 can be reproduced.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import torch
from torch import Tensor, nn

from archcost.errors import ModelOptionError
from archcost.zoo._meta import ModelMeta, Published
from archcost.zoo._registry import register_model

_PAPER = "Going Deeper with Convolutions"

# Table 1: name, input channels, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
_INCEPTION = {
    "3a": (192, 64, 96, 128, 16, 32, 32),
    "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64),
    "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64),
    "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128),
    "5a": (832, 256, 160, 320, 32, 128, 128),
    "5b": (832, 384, 192, 384, 48, 128, 128),
}


class GoogLeNetOutputs(NamedTuple):
    """What a GoogLeNet built with ``aux_logits=True`` returns in training mode."""

    logits: Tensor
    aux1: Tensor
    aux2: Tensor


def _conv_relu(in_ch: int, out_ch: int, k: int) -> list[tuple[str, nn.Module]]:
    return [("conv", nn.Conv2d(in_ch, out_ch, kernel_size=k, padding=k // 2)), ("relu", nn.ReLU(True))]


class Inception(nn.Module):
    """One Inception module (Fig. 2b): four branches concatenated along the channel axis."""

    def __init__(self, in_ch: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool_proj: int) -> None:
        super().__init__()
        self.branch1x1 = nn.Sequential(OrderedDict(_conv_relu(in_ch, c1, 1)))
        self.branch3x3 = nn.Sequential(
            OrderedDict(
                [
                    ("reduce", nn.Conv2d(in_ch, c3r, kernel_size=1)),
                    ("relu_reduce", nn.ReLU(True)),
                    *_conv_relu(c3r, c3, 3),
                ]
            )
        )
        self.branch5x5 = nn.Sequential(
            OrderedDict(
                [
                    ("reduce", nn.Conv2d(in_ch, c5r, kernel_size=1)),
                    ("relu_reduce", nn.ReLU(True)),
                    *_conv_relu(c5r, c5, 5),
                ]
            )
        )
        self.branch_pool = nn.Sequential(
            OrderedDict(
                [
                    ("pool", nn.MaxPool2d(kernel_size=3, stride=1, padding=1)),
                    ("proj", nn.Conv2d(in_ch, pool_proj, kernel_size=1)),
                    ("relu", nn.ReLU(True)),
                ]
            )
        )
        self.out_channels = c1 + c3 + c5 + pool_proj

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch1x1(x), self.branch3x3(x), self.branch5x5(x), self.branch_pool(x)], 1)


def _aux_head(in_ch: int, num_classes: int) -> nn.Sequential:
    """Sect. 5: avg pool 5x5/3 -> 1x1 conv 128 + ReLU -> fc 1024 + ReLU -> dropout 70% -> linear."""
    return nn.Sequential(
        OrderedDict(
            [
                ("pool", nn.AvgPool2d(kernel_size=5, stride=3)),
                ("conv", nn.Conv2d(in_ch, 128, kernel_size=1)),
                ("relu_conv", nn.ReLU(True)),
                ("flatten", nn.Flatten(1)),
                ("fc", nn.Linear(128 * 4 * 4, 1024)),
                ("relu_fc", nn.ReLU(True)),
                ("dropout", nn.Dropout(0.7)),
                ("classifier", nn.Linear(1024, num_classes)),
            ]
        )
    )


def _lrn() -> nn.LocalResponseNorm:
    return nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=1.0)


def _pool() -> nn.MaxPool2d:
    return nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)


class GoogLeNet(nn.Module):
    """Table 1 top to bottom; module names follow the table (conv1, pool1, ..., inception3a, ...)."""

    def __init__(self, num_classes: int, aux_logits: bool, separable_stem: bool) -> None:
        super().__init__()
        self.conv1: nn.Module
        if separable_stem:
            self.conv1 = nn.Sequential(
                OrderedDict(
                    [
                        ("depthwise", nn.Conv2d(3, 24, 7, stride=2, padding=3, groups=3, bias=False)),
                        ("pointwise", nn.Conv2d(24, 64, kernel_size=1)),
                    ]
                )
            )
        else:
            self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3)
        self.relu1 = nn.ReLU(True)
        self.pool1 = _pool()
        self.norm1 = _lrn()
        self.conv2_reduce = nn.Conv2d(64, 64, kernel_size=1)
        self.relu2_reduce = nn.ReLU(True)
        self.conv2 = nn.Conv2d(64, 192, kernel_size=3, padding=1)
        self.relu2 = nn.ReLU(True)
        self.norm2 = _lrn()
        self.pool2 = _pool()
        self.inception3a = Inception(*_INCEPTION["3a"])
        self.inception3b = Inception(*_INCEPTION["3b"])
        self.pool3 = _pool()
        self.inception4a = Inception(*_INCEPTION["4a"])
        self.inception4b = Inception(*_INCEPTION["4b"])
        self.inception4c = Inception(*_INCEPTION["4c"])
        self.inception4d = Inception(*_INCEPTION["4d"])
        self.inception4e = Inception(*_INCEPTION["4e"])
        self.pool4 = _pool()
        self.inception5a = Inception(*_INCEPTION["5a"])
        self.inception5b = Inception(*_INCEPTION["5b"])
        self.avgpool = nn.AvgPool2d(kernel_size=7, stride=1)
        self.dropout = nn.Dropout(0.4)
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(1024, num_classes)
        self.aux1 = _aux_head(512, num_classes) if aux_logits else None
        self.aux2 = _aux_head(528, num_classes) if aux_logits else None

    def forward(self, x: Tensor) -> Tensor | GoogLeNetOutputs:
        x = self.norm1(self.pool1(self.relu1(self.conv1(x))))
        x = self.relu2_reduce(self.conv2_reduce(x))
        x = self.pool2(self.norm2(self.relu2(self.conv2(x))))
        x = self.pool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None
        x = self.pool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        logits = self.fc(self.flatten(self.dropout(self.avgpool(x))))
        if aux1 is not None and aux2 is not None:
            return GoogLeNetOutputs(logits, aux1, aux2)
        return logits


@register_model(
    ModelMeta(
        family="googlenet",
        paper=_PAPER,
        year=2015,
        input_size=(3, 224, 224),
        params=Published(
            6.8e6,
            "Howard et al. 2017 (MobileNets), Table 8: GoogleNet 6.8 million parameters "
            "(Szegedy et al. 2015, Table 1: params column sums to 6,798K, weights only)",
        ),
        macs=Published(
            1.5e9,
            "Szegedy et al. 2015, Table 1: the ops column (multiply-adds) sums to 1,502M "
            "(Sect. 1: 'a computational budget of 1.5 billion multiply-adds'); Howard et al. 2017 "
            "(MobileNets) Table 8 list 1550M mult-adds",
        ),
        top1=Published(69.8, "Howard et al. 2017 (MobileNets), Table 8: GoogleNet ImageNet accuracy 69.8%"),
        top5=Published(
            100 - 10.07,
            "Szegedy et al. 2015, Table 3: one model, one crop, top-5 error 10.07% (validation)",
        ),
        notes="Inception v1 as Table 1: LRN, 5x5 branches, no BN; aux heads only with aux_logits=True.",
    )
)
def googlenet(*, num_classes: int = 1000, aux_logits: bool = False, separable_stem: bool = False) -> nn.Module:
    """GoogLeNet (Inception v1) at 224x224, Table 1 of the paper; see the module docstring for sources.

    ``aux_logits``: also build the two auxiliary classifiers (on 4a and 4d); in training mode the
    forward then returns ``GoogLeNetOutputs(logits, aux1, aux2)``, in eval mode the logits only.
    ``separable_stem``: make conv1 a depthwise separable 7x7/2 conv with depth multiplier 8, the layer
    that Table 1's first row (2.7K params, 34M ops) counts; default False (a plain 7x7/2 conv, as the
    table's type column and the Caffe reference).
    """
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ModelOptionError(f"num_classes must be an integer >= 1, got {num_classes!r}")
    if not isinstance(aux_logits, bool):
        raise ModelOptionError(f"aux_logits must be True or False, got {aux_logits!r}")
    if not isinstance(separable_stem, bool):
        raise ModelOptionError(f"separable_stem must be True or False, got {separable_stem!r}")
    return GoogLeNet(num_classes, aux_logits, separable_stem)
