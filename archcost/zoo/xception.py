"""Xception (Chollet 2017, "Xception: Deep Learning with Depthwise Separable Convolutions"), at 299x299.

The architecture of the paper's Figure 5: an entry flow (two 3x3 convs, then three residual modules
of two separable convs and a 3x3/2 max pool, with a strided 1x1 conv on the shortcut), a middle flow
of eight residual modules of three separable convs at 19x19x728, and an exit flow (one more
downsampling module, then separable convs to 1536 and 2048 channels, global average pooling, a
logistic regression layer). Every conv and separable conv is followed by batch normalisation; a
separable conv is a depthwise 3x3 followed by a pointwise 1x1 with no non-linearity between them
(Sect. 3 and 4.7), depth multiplier 1. Layer settings (unpadded stem convs, no biases, where the
ReLUs sit, which shortcuts are identities) follow the Keras reference the paper names
(``keras/applications/xception.py``, read for comparison, nothing copied); names follow it too
(block1 ... block14, sepconv1, sepconv1_bn, ...).

Differences from the Keras reference, none of which changes a parameter or a multiply-add:

* A dropout of rate 0.5 before the logistic regression layer, as the paper's ImageNet experiments
  used (Sect. 4.3); Keras leaves it out.
* Keras pads the 3x3/2 max pools 'same' (TensorFlow: extra padding at the end on even sizes);
  here they are padded 1 on each side, which gives the same output sizes (74, 37, 19, 10 at 299)
  with the window shifted by one on the even 74x74 input.
* BatchNorm2d has eps=1e-3, the Keras default. Its running mean and variance are buffers, not
  parameters, so the parameter count is Keras' *trainable* count (22,855,952), which is the paper's
  Table 3 figure; Keras' total (22,910,480) adds the 54,528 moving statistics.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

from archcost.errors import ModelOptionError
from archcost.zoo._meta import ModelMeta, Published
from archcost.zoo._registry import register_model

_PAPER = "Xception: Deep Learning with Depthwise Separable Convolutions"
_BN_EPS = 1e-3


class SeparableConv2d(nn.Module):
    """Depthwise 3x3 (one filter per channel, stride 1, padding 1) then pointwise 1x1; no bias, no ReLU."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_ch, in_ch, kernel_size=3, padding=1, groups=in_ch, bias=False)
        self.pointwise = nn.Conv2d(in_ch, out_ch, kernel_size=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.pointwise(self.depthwise(x))


def _sep_layers(i: int, in_ch: int, out_ch: int, relu_before: bool) -> list[tuple[str, nn.Module]]:
    # The ReLU that opens a block must not be in place: the shortcut reads the block's input.
    relu = [(f"sepconv{i}_act", nn.ReLU(inplace=i > 1))] if relu_before else []
    return [
        *relu,
        (f"sepconv{i}", SeparableConv2d(in_ch, out_ch)),
        (f"sepconv{i}_bn", nn.BatchNorm2d(out_ch, eps=_BN_EPS)),
    ]


class XceptionBlock(nn.Module):
    """A residual module: ``body`` (separable convs, optionally a 3x3/2 max pool) + ``shortcut``.

    The shortcut is a strided 1x1 conv + BN when the body downsamples, the identity otherwise.
    """

    def __init__(self, in_ch: int, widths: tuple[int, ...], *, downsample: bool, relu_first: bool) -> None:
        super().__init__()
        layers: list[tuple[str, nn.Module]] = []
        c = in_ch
        for i, w in enumerate(widths, start=1):
            layers += _sep_layers(i, c, w, relu_before=relu_first or i > 1)
            c = w
        if downsample:
            layers.append(("pool", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)))
            self.shortcut: nn.Module | None = nn.Sequential(
                OrderedDict(
                    [
                        ("conv", nn.Conv2d(in_ch, c, kernel_size=1, stride=2, bias=False)),
                        ("bn", nn.BatchNorm2d(c, eps=_BN_EPS)),
                    ]
                )
            )
        else:
            self.shortcut = None
        self.body = nn.Sequential(OrderedDict(layers))

    def forward(self, x: Tensor) -> Tensor:
        skip = x if self.shortcut is None else self.shortcut(x)
        return self.body(x) + skip


class Xception(nn.Module):
    """``entry_flow`` -> ``middle_flow`` -> ``exit_flow`` -> ``avgpool``, ``dropout``, ``fc`` (Figure 5)."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        stem = nn.Sequential(
            OrderedDict(
                [
                    ("conv1", nn.Conv2d(3, 32, kernel_size=3, stride=2, bias=False)),
                    ("conv1_bn", nn.BatchNorm2d(32, eps=_BN_EPS)),
                    ("conv1_act", nn.ReLU(inplace=True)),
                    ("conv2", nn.Conv2d(32, 64, kernel_size=3, bias=False)),
                    ("conv2_bn", nn.BatchNorm2d(64, eps=_BN_EPS)),
                    ("conv2_act", nn.ReLU(inplace=True)),
                ]
            )
        )
        self.entry_flow = nn.Sequential(
            OrderedDict(
                [
                    ("block1", stem),
                    # block2 follows block1's ReLU, so it opens with no ReLU of its own.
                    ("block2", XceptionBlock(64, (128, 128), downsample=True, relu_first=False)),
                    ("block3", XceptionBlock(128, (256, 256), downsample=True, relu_first=True)),
                    ("block4", XceptionBlock(256, (728, 728), downsample=True, relu_first=True)),
                ]
            )
        )
        self.middle_flow = nn.Sequential(
            OrderedDict(
                (f"block{i}", XceptionBlock(728, (728, 728, 728), downsample=False, relu_first=True))
                for i in range(5, 13)
            )
        )
        block14 = nn.Sequential(
            OrderedDict(
                [
                    *_sep_layers(1, 1024, 1536, relu_before=False),
                    ("sepconv1_act", nn.ReLU(inplace=True)),
                    *_sep_layers(2, 1536, 2048, relu_before=False),
                    ("sepconv2_act", nn.ReLU(inplace=True)),
                ]
            )
        )
        self.exit_flow = nn.Sequential(
            OrderedDict(
                [
                    ("block13", XceptionBlock(728, (728, 1024), downsample=True, relu_first=True)),
                    ("block14", block14),
                ]
            )
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # "global average pooling" (Figure 5)
        self.flatten = nn.Flatten(1)
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.exit_flow(self.middle_flow(self.entry_flow(x)))
        return self.fc(self.dropout(self.flatten(self.avgpool(x))))


@register_model(
    ModelMeta(
        family="xception",
        paper=_PAPER,
        year=2017,
        input_size=(3, 299, 299),
        params=Published(
            22_855_952,
            "Chollet 2017, Table 3 (ImageNet, 1000 classes, no fully-connected layers); equals the "
            "trainable parameter count of the Keras reference keras.applications.Xception",
        ),
        macs=None,
        top1=Published(79.0, "Chollet 2017, Table 1: ImageNet single crop, single model, top-1 0.790"),
        top5=Published(94.5, "Chollet 2017, Table 1: ImageNet single crop, single model, top-5 0.945"),
        notes="The paper publishes no operation count.",
    )
)
def xception(*, num_classes: int = 1000) -> nn.Module:
    """Xception at 299x299, the paper's Figure 5 with the layer settings of the Keras reference.

    Global average pooling lets any input from Keras' minimum, 71x71, up run; 299x299 is the paper's.
    """
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ModelOptionError(f"num_classes must be an integer >= 1, got {num_classes!r}")
    return Xception(num_classes)
