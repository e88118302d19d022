"""ZFNet (Zeiler & Fergus 2013): the 8-layer convnet of Fig. 3 of "Visualizing and Understanding
Convolutional Networks"."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from archcost.errors import ModelOptionError
from archcost.zoo._meta import ModelMeta
from archcost.zoo._registry import register_model

_PAPER = "Visualizing and Understanding Convolutional Networks"


class ZFNet(nn.Module):
    """``features`` (five convolutional layers) -> flatten -> ``classifier`` (three fully connected)."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(3, 96, kernel_size=7, stride=2, padding=1),
                relu1=nn.ReLU(inplace=True),
                pool1=nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
                norm1=_contrast_norm(),
                conv2=nn.Conv2d(96, 256, kernel_size=5, stride=2),
                relu2=nn.ReLU(inplace=True),
                pool2=nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
                norm2=_contrast_norm(),
                conv3=nn.Conv2d(256, 384, kernel_size=3, padding=1),
                relu3=nn.ReLU(inplace=True),
                conv4=nn.Conv2d(384, 384, kernel_size=3, padding=1),
                relu4=nn.ReLU(inplace=True),
                conv5=nn.Conv2d(384, 256, kernel_size=3, padding=1),
                relu5=nn.ReLU(inplace=True),
                pool5=nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            )
        )
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            OrderedDict(
                fc6=nn.Linear(256 * 6 * 6, 4096),
                relu6=nn.ReLU(inplace=True),
                drop6=nn.Dropout(0.5),
                fc7=nn.Linear(4096, 4096),
                relu7=nn.ReLU(inplace=True),
                drop7=nn.Dropout(0.5),
                fc8=nn.Linear(4096, num_classes),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.features(x)))


def _contrast_norm() -> nn.LocalResponseNorm:
    # The paper says only "contrast normalized across feature maps"; its settings are not given.
    # AlexNet's cross-map response normalisation (n = 5, per-term alpha 1e-4, beta 0.75, k = 2) is used.
    return nn.LocalResponseNorm(size=5, alpha=5e-4, beta=0.75, k=2.0)


@register_model(
    ModelMeta(
        family="zfnet",
        paper=_PAPER,
        year=2013,
        input_size=(3, 224, 224),
        notes=(
            "The paper publishes no parameter or operation count. Table 2: one convnet as in Fig. 3 "
            "reaches 38.4% / 16.5% top-1 / top-5 validation error (multi-view, not single-crop). "
            "The ILSVRC-2013 winner 'Clarifai' (Zeiler's company) was an ensemble built on this model."
        ),
    )
)
def zfnet(*, num_classes: int = 1000) -> nn.Module:
    """The Fig. 3 network: AlexNet with a 7x7 / 2 first layer and a 5x5 / 2 second layer, on one GPU.

    224x224x3 -> conv1 96@7x7/2 (110x110) -> 3x3/2 max pool (55x55) -> contrast norm ->
    conv2 256@5x5/2 (26x26) -> 3x3/2 max pool (13x13) -> contrast norm -> conv3 384@3x3 ->
    conv4 384@3x3 -> conv5 256@3x3 -> 3x3/2 max pool (6x6) -> fc6 4096 -> fc7 4096 -> C-way softmax.
    Fig. 3 gives the map sizes but not the paddings: conv1 needs a padding of 1 to give 110x110 and the
    poolings need Caffe-style ceil rounding to give 55x55 and 13x13, as chosen here. Normalisation
    follows pooling, in the caption's order (ReLU, pool, normalise). No grouping: the model was
    trained on a single GPU and connects layers 3, 4, 5 densely (Sec. 3). Dropout 0.5 on fc6 and fc7
    as in Krizhevsky et al. (Sec. 3). Sec. 5's larger variant (512-1024-512 maps in layers 3-5) and the
    Clarifai ensemble are not built.
    """
    if num_classes < 1:
        raise ModelOptionError(f"num_classes must be >= 1, got {num_classes}")
    return ZFNet(num_classes)
