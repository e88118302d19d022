"""CNN-F, CNN-M, CNN-M-2048 and CNN-S of Chatfield et al. 2014, "Return of the Devil in the Details"
(Table 1), as released in the authors' Caffe models VGG_CNN_F / M / M_2048 / S."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from archcost.errors import ModelOptionError
from archcost.zoo._meta import ModelMeta
from archcost.zoo._registry import register_model

_PAPER = "Return of the Devil in the Details: Delving Deep into Convolutional Nets"

# Table 1, one row per convolutional layer:
# (filters, kernel, stride, padding, LRN after it, max pooling (size, stride) or None)
_TABLE = {
    "f": (
        (64, 11, 4, 0, True, (3, 2)),
        (256, 5, 1, 2, True, (3, 2)),
        (256, 3, 1, 1, False, None),
        (256, 3, 1, 1, False, None),
        (256, 3, 1, 1, False, (3, 2)),
    ),
    "m": (
        (96, 7, 2, 0, True, (3, 2)),
        (256, 5, 2, 1, True, (3, 2)),
        (512, 3, 1, 1, False, None),
        (512, 3, 1, 1, False, None),
        (512, 3, 1, 1, False, (3, 2)),
    ),
    "s": (
        (96, 7, 2, 0, True, (3, 3)),
        (256, 5, 1, 1, False, (2, 2)),  # pad 1 as in Table 1; the Caffe/Lasagne release has pad 0
        (512, 3, 1, 1, False, None),
        (512, 3, 1, 1, False, None),
        (512, 3, 1, 1, False, (3, 3)),
    ),
}


class ChatfieldNet(nn.Module):
    """``features`` (conv1-conv5) -> flatten -> ``classifier`` (full6, full7, full8)."""

    def __init__(self, arch: str, fc7: int = 4096, num_classes: int = 1000) -> None:
        super().__init__()
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        channels = 3
        for i, (out, kernel, stride, pad, lrn, pool) in enumerate(_TABLE[arch], start=1):
            layers[f"conv{i}"] = nn.Conv2d(channels, out, kernel_size=kernel, stride=stride, padding=pad)
            layers[f"relu{i}"] = nn.ReLU(inplace=True)
            if lrn:
                # Caffe lrn_param: local_size 5, alpha 0.0005 (divided by the size, as in PyTorch), beta
                # 0.75, k 2, i.e. AlexNet's settings.
                layers[f"norm{i}"] = nn.LocalResponseNorm(size=5, alpha=5e-4, beta=0.75, k=2.0)
            if pool is not None:
                # "x2 pool" / "x3 pool" = the downsampling factor; Caffe rounds output sizes up.
                layers[f"pool{i}"] = nn.MaxPool2d(kernel_size=pool[0], stride=pool[1], ceil_mode=True)
            channels = out
        self.features = nn.Sequential(layers)
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            OrderedDict(
                fc6=nn.Linear(channels * 6 * 6, 4096),
                relu6=nn.ReLU(inplace=True),
                drop6=nn.Dropout(0.5),
                fc7=nn.Linear(4096, fc7),
                relu7=nn.ReLU(inplace=True),
                drop7=nn.Dropout(0.5),
                fc8=nn.Linear(fc7, num_classes),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.features(x)))


def _check_num_classes(num_classes: int) -> None:
    if num_classes < 1:
        raise ModelOptionError(f"num_classes must be >= 1, got {num_classes}")


def _meta(top5_error: float, model: str) -> ModelMeta:
    return ModelMeta(
        family="chatfield",
        paper=_PAPER,
        year=2014,
        input_size=(3, 224, 224),
        notes=(
            f"{top5_error}% top-5 error on ILSVRC-2012 val (Chatfield et al. 2014, Sec. 4 / Table 2; "
            f"and the {model} Caffe model-zoo readme). The evaluation protocol of that figure (crops) "
            "is not stated as single-crop, so it is not recorded as top5. No parameter or operation "
            "counts are published."
        ),
    )


@register_model(_meta(16.7, "VGG_CNN_F"))
def cnn_f(*, num_classes: int = 1000) -> nn.Module:
    """CNN-F ("fast", Table 1): AlexNet-like, 64@11x11/4 then 256@5x5 and three 256@3x3 layers.

    224x224 -> conv1 54x54 -> pool 27x27 -> conv2 27x27 -> pool 13x13 -> conv3-5 13x13 -> pool 6x6.
    Unlike AlexNet there is no two-GPU grouping and conv3-5 are narrower. Pooling is 3x3 / 2 with
    Caffe's ceil rounding (VGG_CNN_F deploy.prototxt), which the sizes above need.
    """
    _check_num_classes(num_classes)
    return ChatfieldNet("f", num_classes=num_classes)


@register_model(_meta(13.7, "VGG_CNN_M"))
def cnn_m(*, num_classes: int = 1000) -> nn.Module:
    """CNN-M ("medium", Table 1): ZF-like, 96@7x7/2, 256@5x5/2 (pad 1), three 512@3x3 layers.

    224x224 -> conv1 109x109 -> pool 54x54 -> conv2 26x26 -> pool 13x13 -> conv3-5 13x13 -> pool 6x6,
    with 3x3 / 2 ceil-rounded pooling as in the VGG_CNN_M Caffe deploy.prototxt.
    """
    _check_num_classes(num_classes)
    return ChatfieldNet("m", num_classes=num_classes)


@register_model(_meta(13.5, "VGG_CNN_M_2048"))
def cnn_m_2048(*, num_classes: int = 1000) -> nn.Module:
    """CNN-M with a 2048-d full7 layer instead of 4096 (the paper's "CNN M 2048"; the released
    VGG_CNN_M_2048 deploy.prototxt)."""
    _check_num_classes(num_classes)
    return ChatfieldNet("m", fc7=2048, num_classes=num_classes)


@register_model(_meta(13.1, "VGG_CNN_S"))
def cnn_s(*, num_classes: int = 1000) -> nn.Module:
    """CNN-S ("slow", Table 1): OverFeat-accurate-like, 96@7x7/2 with x3 pooling, 256@5x5 (stride 1,
    pad 1) with x2 pooling, three 512@3x3 layers and a final x3 pooling; LRN after conv1 only.

    224x224 -> conv1 109x109 -> 3x3/3 pool 37x37 -> conv2 35x35 -> 2x2/2 pool 18x18 -> conv3-5 18x18
    -> 3x3/3 pool 6x6 (Caffe ceil rounding). Sources disagree on conv2's padding: Table 1 of the
    paper gives pad 1, the Lasagne port of the released VGG_CNN_S (Lasagne Recipes,
    modelzoo/vgg_cnn_s.py) uses none (33x33 -> 17x17 -> 6x6). The paper is followed; the weights are
    the same either way; with the padding conv2-5 cost 12% more MACs (2.93 G in all instead of 2.64 G).
    """
    _check_num_classes(num_classes)
    return ChatfieldNet("s", num_classes=num_classes)
