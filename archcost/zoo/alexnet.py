"""AlexNet: the two-tower network of Krizhevsky et al. 2012 and the single-tower "One weird trick"
network of Krizhevsky 2014 (torchvision's ``alexnet``)."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from archcost.errors import ModelOptionError
from archcost.zoo._meta import ModelMeta, Published
from archcost.zoo._registry import register_model

_PAPER = "ImageNet Classification with Deep Convolutional Neural Networks"
_OWT_PAPER = "One weird trick for parallelizing convolutional neural networks"


def _check_num_classes(num_classes: int) -> None:
    if num_classes < 1:
        raise ModelOptionError(f"num_classes must be >= 1, got {num_classes}")


class AlexNet(nn.Module):
    """``features`` (convolutions and pooling) -> flatten -> ``classifier`` (fully connected)."""

    def __init__(self, features: nn.Sequential, classifier: nn.Sequential, pool: nn.Module | None = None):
        super().__init__()
        self.features = features
        self.avgpool = pool
        self.flatten = nn.Flatten()
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        if self.avgpool is not None:
            x = self.avgpool(x)
        return self.classifier(self.flatten(x))


def _lrn() -> nn.LocalResponseNorm:
    # Sec. 3.3: k = 2, n = 5, alpha = 1e-4, beta = 0.75, with alpha multiplying each squared activity.
    # nn.LocalResponseNorm divides alpha by n, so alpha = 5 * 1e-4 gives the paper's per-term 1e-4.
    return nn.LocalResponseNorm(size=5, alpha=5e-4, beta=0.75, k=2.0)


@register_model(
    ModelMeta(
        family="alexnet",
        paper=_PAPER,
        year=2012,
        input_size=(3, 227, 227),
        params=Published(
            60_965_224,
            "Krizhevsky et al. 2012, Sec. 3 / abstract (60 million); exact count of the two-tower "
            "Caffe reference bvlc_alexnet (deploy.prototxt, groups=2 in conv2/4/5)",
        ),
        macs=Published(
            724e6,
            "Sze et al. 2017, 'Efficient Processing of Deep Neural Networks: A Tutorial and Survey', "
            "Table III (AlexNet, 227x227: 666M conv + 58.6M FC multiply-accumulates)",
        ),
        top1=Published(
            57.1, "Caffe bvlc_alexnet model readme: 57.1% top-1, ILSVRC-2012 val, centre crop (re-training)"
        ),
        top5=Published(
            80.2, "Caffe bvlc_alexnet model readme: 80.2% top-5, ILSVRC-2012 val, centre crop (re-training)"
        ),
        notes=(
            "The paper reports 40.7% / 18.2% top-1 / top-5 error for one CNN (Table 2), averaged over "
            "10 patches, not single-crop. Its neuron counts 186,624-64,896-64,896-43,264-4096-4096-1000 "
            "are reproduced; its first figure 253,440 is not (55 x 55 x 96 = 290,400)."
        ),
    )
)
def alexnet(*, num_classes: int = 1000) -> nn.Module:
    """AlexNet as in the paper (Sec. 3, Fig. 2), with the two GPU towers as grouped convolutions.

    conv2, conv4 and conv5 see only the kernel maps on their own GPU (``groups=2``); conv3 and the
    fully connected layers see both. ReLU after every layer, local response normalisation after the
    ReLUs of conv1 and conv2, overlapping 3x3 / 2 max pooling after the LRNs and conv5 (Sec. 3.3-3.5),
    dropout on the outputs of fc6 and fc7 (Sec. 4.2, as in Caffe's bvlc_alexnet).

    Input: the paper says 224x224, but its 55x55x96 conv1 output needs (227 - 11) / 4 + 1 = 55, so the
    input is 227x227 as in the Caffe reference (bvlc_alexnet deploy.prototxt); at 224 without padding
    conv1 would give 54x54. LRN follows the paper's k = 2 (Caffe's bvlc_alexnet uses k = 1).
    """
    _check_num_classes(num_classes)
    features = nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(3, 96, kernel_size=11, stride=4),
            relu1=nn.ReLU(inplace=True),
            norm1=_lrn(),
            pool1=nn.MaxPool2d(kernel_size=3, stride=2),
            conv2=nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=2),
            relu2=nn.ReLU(inplace=True),
            norm2=_lrn(),
            pool2=nn.MaxPool2d(kernel_size=3, stride=2),
            conv3=nn.Conv2d(256, 384, kernel_size=3, padding=1),
            relu3=nn.ReLU(inplace=True),
            conv4=nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=2),
            relu4=nn.ReLU(inplace=True),
            conv5=nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=2),
            relu5=nn.ReLU(inplace=True),
            pool5=nn.MaxPool2d(kernel_size=3, stride=2),
        )
    )
    classifier = nn.Sequential(
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
    return AlexNet(features, classifier)


@register_model(
    ModelMeta(
        family="alexnet",
        paper=_OWT_PAPER,
        year=2014,
        input_size=(3, 224, 224),
        params=Published(61_100_840, "torchvision.models.alexnet (AlexNet_Weights.IMAGENET1K_V1 num_params)"),
        macs=Published(
            0.714e9,
            "torchvision.models.alexnet (AlexNet_Weights.IMAGENET1K_V1 _ops: 0.714 'GFLOPS', which "
            "torchvision counts as multiply-accumulates)",
        ),
        top1=Published(56.522, "torchvision AlexNet_Weights.IMAGENET1K_V1: acc@1 56.522, centre crop"),
        top5=Published(79.066, "torchvision AlexNet_Weights.IMAGENET1K_V1: acc@5 79.066, centre crop"),
    )
)
def alexnet_owt(*, num_classes: int = 1000) -> nn.Module:
    """Single-tower AlexNet of "One weird trick" (Krizhevsky 2014), as torchvision's ``alexnet``.

    64-192-384-256-256 convolution filters with no grouping and no LRN, conv1 padded by 2 so a
    224x224 input gives 55x55, and torchvision's adaptive 6x6 average pooling (an identity at 224)
    before the classifier, whose dropout precedes fc6 and fc7 as in torchvision.
    """
    _check_num_classes(num_classes)
    features = nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            relu1=nn.ReLU(inplace=True),
            pool1=nn.MaxPool2d(kernel_size=3, stride=2),
            conv2=nn.Conv2d(64, 192, kernel_size=5, padding=2),
            relu2=nn.ReLU(inplace=True),
            pool2=nn.MaxPool2d(kernel_size=3, stride=2),
            conv3=nn.Conv2d(192, 384, kernel_size=3, padding=1),
            relu3=nn.ReLU(inplace=True),
            conv4=nn.Conv2d(384, 256, kernel_size=3, padding=1),
            relu4=nn.ReLU(inplace=True),
            conv5=nn.Conv2d(256, 256, kernel_size=3, padding=1),
            relu5=nn.ReLU(inplace=True),
            pool5=nn.MaxPool2d(kernel_size=3, stride=2),
        )
    )
    classifier = nn.Sequential(
        OrderedDict(
            drop6=nn.Dropout(0.5),
            fc6=nn.Linear(256 * 6 * 6, 4096),
            relu6=nn.ReLU(inplace=True),
            drop7=nn.Dropout(0.5),
            fc7=nn.Linear(4096, 4096),
            relu7=nn.ReLU(inplace=True),
            fc8=nn.Linear(4096, num_classes),
        )
    )
    return AlexNet(features, classifier, pool=nn.AdaptiveAvgPool2d((6, 6)))
