"""VGG (Simonyan & Zisserman 2015): configurations A, A-LRN, B, C, D, E of Table 1, and the BN variants.

Layer settings are those of the paper, Sect. 2.1 and Table 1: 3x3 convolutions with stride 1 and
padding 1 (1x1 convolutions, stride 1, no padding, in configuration C), ReLU after every weight layer,
five 2x2/2 max-pools, then FC-4096, FC-4096, FC-1000 with dropout 0.5 after the first two FC layers
(Sect. 3.1). Layers are named as in the authors' Caffe release (conv1_1 ... conv5_3, pool1 ... pool5,
fc6, fc7, fc8), so the per-layer table reads like the paper.

Differences from torchvision's ``vgg.py`` (read for comparison, nothing copied):

* No ``AdaptiveAvgPool2d((7, 7))``. The paper's network is defined at 224x224, where pool5 already
  gives 7x7x512; torchvision adds the adaptive pool only so that other input sizes reach the
  classifier. Here the classifier is a plain flatten + FC, so the model takes 224x224 input only
  (as the paper's training crops), and the cost table has no pooling row the paper does not have.
* Configurations A-LRN and C, which torchvision does not provide.
* The ``_bn`` variants follow torchvision (conv -> BatchNorm2d -> ReLU); they are not in the paper.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from archcost.errors import ModelOptionError
from archcost.zoo._meta import ModelMeta, Published
from archcost.zoo._registry import register_model

_PAPER = "Very Deep Convolutional Networks for Large-Scale Image Recognition"
_TABLE3 = "Simonyan & Zisserman 2015, Table 3 (train S=256, test Q=256; single test scale, dense evaluation)"

# Table 1, one entry per stage: a list of (kernel size, output channels) for the conv layers in it.
_S = tuple[tuple[int, int], ...]
_CONFIGS: dict[str, tuple[_S, ...]] = {
    "A": (((3, 64),), ((3, 128),), ((3, 256), (3, 256)), ((3, 512), (3, 512)), ((3, 512), (3, 512))),
    "B": (
        ((3, 64), (3, 64)),
        ((3, 128), (3, 128)),
        ((3, 256), (3, 256)),
        ((3, 512), (3, 512)),
        ((3, 512), (3, 512)),
    ),
    "C": (
        ((3, 64), (3, 64)),
        ((3, 128), (3, 128)),
        ((3, 256), (3, 256), (1, 256)),
        ((3, 512), (3, 512), (1, 512)),
        ((3, 512), (3, 512), (1, 512)),
    ),
    "D": (
        ((3, 64), (3, 64)),
        ((3, 128), (3, 128)),
        ((3, 256), (3, 256), (3, 256)),
        ((3, 512), (3, 512), (3, 512)),
        ((3, 512), (3, 512), (3, 512)),
    ),
    "E": (
        ((3, 64), (3, 64)),
        ((3, 128), (3, 128)),
        ((3, 256), (3, 256), (3, 256), (3, 256)),
        ((3, 512), (3, 512), (3, 512), (3, 512)),
        ((3, 512), (3, 512), (3, 512), (3, 512)),
    ),
}

# Krizhevsky et al. 2012, Sect. 3.3: k = 2, n = 5, alpha = 1e-4, beta = 0.75, with the sum over the n
# neighbouring channels multiplied by alpha. nn.LocalResponseNorm multiplies by alpha / n (as Caffe),
# so alpha = n * 1e-4 reproduces the paper's formula.
_LRN_SIZE = 5
_LRN_ALPHA = _LRN_SIZE * 1e-4
_LRN_BETA = 0.75
_LRN_K = 2.0


class VGG(nn.Module):
    """``features`` (conv stages and pools) -> ``classifier`` (flatten, fc6, fc7, fc8)."""

    def __init__(self, features: nn.Sequential, num_classes: int) -> None:
        super().__init__()
        self.features = features
        self.classifier = nn.Sequential(
            OrderedDict(
                [
                    ("flatten", nn.Flatten(1)),
                    ("fc6", nn.Linear(512 * 7 * 7, 4096)),
                    ("relu6", nn.ReLU(inplace=True)),
                    ("drop6", nn.Dropout(0.5)),
                    ("fc7", nn.Linear(4096, 4096)),
                    ("relu7", nn.ReLU(inplace=True)),
                    ("drop7", nn.Dropout(0.5)),
                    ("fc8", nn.Linear(4096, num_classes)),
                ]
            )
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def _features(config: str, *, batch_norm: bool, lrn: bool) -> nn.Sequential:
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    in_ch = 3
    for stage, convs in enumerate(_CONFIGS[config], start=1):
        for i, (k, out_ch) in enumerate(convs, start=1):
            name = f"{stage}_{i}"
            layers[f"conv{name}"] = nn.Conv2d(in_ch, out_ch, kernel_size=k, stride=1, padding=k // 2)
            if batch_norm:
                layers[f"bn{name}"] = nn.BatchNorm2d(out_ch)
            layers[f"relu{name}"] = nn.ReLU(inplace=True)
            if lrn and stage == 1 and i == 1:
                layers["norm1"] = nn.LocalResponseNorm(_LRN_SIZE, alpha=_LRN_ALPHA, beta=_LRN_BETA, k=_LRN_K)
            in_ch = out_ch
        layers[f"pool{stage}"] = nn.MaxPool2d(kernel_size=2, stride=2)
    return nn.Sequential(layers)


def _vgg(config: str, num_classes: int, *, batch_norm: bool = False, lrn: bool = False) -> VGG:
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ModelOptionError(f"num_classes must be an integer >= 1, got {num_classes!r}")
    return VGG(_features(config, batch_norm=batch_norm, lrn=lrn), num_classes)


def _meta(params: Published, macs: Published | None, top1: float, top5: float, src: str, notes: str = "") -> ModelMeta:
    return ModelMeta(
        family="vgg",
        paper=_PAPER,
        year=2015,
        input_size=(3, 224, 224),
        params=params,
        macs=macs,
        top1=Published(top1, src),
        top5=Published(top5, src),
        notes=notes,
    )


def _table2(millions: int, config: str) -> Published:
    return Published(millions * 1e6, f"Simonyan & Zisserman 2015, Table 2 ({millions} M, configuration {config})")


def _tv_macs(gmacs: float, weights: str) -> Published:
    return Published(
        gmacs * 1e9,
        f"torchvision {weights} metadata, 'GFLOPS' {gmacs} (torchvision counts one per multiply-add, "
        "so this is GMACs); the paper publishes no operation count",
    )


@register_model(
    _meta(_table2(133, "A"), _tv_macs(7.61, "VGG11_Weights.IMAGENET1K_V1"), 100 - 29.6, 100 - 10.4, _TABLE3)
)
def vgg11(*, num_classes: int = 1000) -> nn.Module:
    """Configuration A (11 weight layers): 8 conv + 3 FC. Same layers as torchvision ``vgg11``."""
    return _vgg("A", num_classes)


@register_model(
    _meta(
        _table2(133, "A-LRN"),
        None,
        100 - 29.7,
        100 - 10.5,
        _TABLE3,
        notes="LRN after the first conv; the paper found it does not help (Sect. 4.1).",
    )
)
def vgg11_lrn(*, num_classes: int = 1000) -> nn.Module:
    """Configuration A-LRN: A with Local Response Normalisation after the first conv layer (``norm1``).

    The paper takes the LRN parameters from Krizhevsky et al. 2012 (Sect. 2.2, footnote): n = 5,
    k = 2, alpha = 1e-4, beta = 0.75. The LRN sits after conv1_1's ReLU, before pool1, as in AlexNet.
    ``nn.LocalResponseNorm`` divides alpha by the window size, so it is given alpha = 5e-4 to match the
    paper's formula. LRN has no parameters, so the count equals A's (Table 2 lists A and A-LRN together).
    """
    return _vgg("A", num_classes, lrn=True)


@register_model(
    _meta(_table2(133, "B"), _tv_macs(11.31, "VGG13_Weights.IMAGENET1K_V1"), 100 - 28.7, 100 - 9.9, _TABLE3)
)
def vgg13(*, num_classes: int = 1000) -> nn.Module:
    """Configuration B (13 weight layers): two 3x3 convs in every stage. Same as torchvision ``vgg13``."""
    return _vgg("B", num_classes)


@register_model(_meta(_table2(134, "C"), None, 100 - 28.1, 100 - 9.4, _TABLE3))
def vgg16_c(*, num_classes: int = 1000) -> nn.Module:
    """Configuration C (16 weight layers): B plus a 1x1 conv (conv3_3, conv4_3, conv5_3) in stages 3-5.

    The 1x1 convs keep the channel count (256, 512, 512) and have stride 1, no padding (Sect. 2.2:
    "a linear projection onto the space of the same dimensionality"). Not in torchvision.
    """
    return _vgg("C", num_classes)


@register_model(
    _meta(
        Published(
            138_357_544,
            "Simonyan & Zisserman 2015, Table 2 (138 M, configuration D); exact count from "
            "torchvision VGG16_Weights.IMAGENET1K_V1 num_params",
        ),
        _tv_macs(15.47, "VGG16_Weights.IMAGENET1K_V1"),
        100 - 27.0,
        100 - 8.8,
        _TABLE3,
    )
)
def vgg16(*, num_classes: int = 1000) -> nn.Module:
    """Configuration D (16 weight layers): three 3x3 convs in stages 3-5. Same as torchvision ``vgg16``."""
    return _vgg("D", num_classes)


@register_model(
    _meta(_table2(144, "E"), _tv_macs(19.63, "VGG19_Weights.IMAGENET1K_V1"), 100 - 27.3, 100 - 9.0, _TABLE3)
)
def vgg19(*, num_classes: int = 1000) -> nn.Module:
    """Configuration E (19 weight layers): four 3x3 convs in stages 3-5. Same as torchvision ``vgg19``."""
    return _vgg("E", num_classes)


def _tv_bn_meta(params: int, gmacs: float, top1: float, top5: float, weights: str) -> ModelMeta:
    src = f"torchvision {weights} metadata (single 224 crop)"
    return _meta(
        Published(params, f"torchvision {weights} metadata, num_params"),
        _tv_macs(gmacs, weights),
        top1,
        top5,
        src,
        notes="BatchNorm2d after every conv (torchvision); not in the paper.",
    )


@register_model(_tv_bn_meta(132_868_840, 7.61, 70.370, 89.810, "VGG11_BN_Weights.IMAGENET1K_V1"))
def vgg11_bn(*, num_classes: int = 1000) -> nn.Module:
    """Configuration A with BatchNorm2d between each conv and its ReLU, as torchvision ``vgg11_bn``."""
    return _vgg("A", num_classes, batch_norm=True)


@register_model(_tv_bn_meta(133_053_736, 11.31, 71.586, 90.374, "VGG13_BN_Weights.IMAGENET1K_V1"))
def vgg13_bn(*, num_classes: int = 1000) -> nn.Module:
    """Configuration B with BatchNorm2d between each conv and its ReLU, as torchvision ``vgg13_bn``."""
    return _vgg("B", num_classes, batch_norm=True)


@register_model(_tv_bn_meta(138_365_992, 15.47, 73.360, 91.516, "VGG16_BN_Weights.IMAGENET1K_V1"))
def vgg16_bn(*, num_classes: int = 1000) -> nn.Module:
    """Configuration D with BatchNorm2d between each conv and its ReLU, as torchvision ``vgg16_bn``."""
    return _vgg("D", num_classes, batch_norm=True)


@register_model(_tv_bn_meta(143_678_248, 19.63, 74.218, 91.842, "VGG19_BN_Weights.IMAGENET1K_V1"))
def vgg19_bn(*, num_classes: int = 1000) -> nn.Module:
    """Configuration E with BatchNorm2d between each conv and its ReLU, as torchvision ``vgg19_bn``."""
    return _vgg("E", num_classes, batch_norm=True)
