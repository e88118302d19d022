"""Inception-v4, Inception-ResNet-v1 and Inception-ResNet-v2 (Szegedy, Ioffe, Vanhoucke & Alemi 2017)."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from archcost.zoo._meta import ModelMeta, Published
from archcost.zoo._registry import register_model
from archcost.zoo.inception import ConvBNReLU, FilterConcat, _check_num_classes, _head

_PAPER = "Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning"
_EPS = 1e-3  # TF-slim's batch-norm epsilon
_TABLE2 = "Szegedy et al. 2017, Table 2 (single crop, single model, non-blacklisted ILSVRC-2012 val)"


def _conv(cin: int, cout: int, kernel_size, **kw) -> ConvBNReLU:
    """A figure box: "V" (valid) convs get padding=0, the others are same-padded by the caller."""
    return ConvBNReLU(cin, cout, kernel_size, eps=_EPS, **kw)


def _same(k: int | tuple[int, int]) -> int | tuple[int, int]:
    return (k[0] // 2, k[1] // 2) if isinstance(k, tuple) else k // 2


def _c(cin: int, cout: int, k: int | tuple[int, int] = 1) -> ConvBNReLU:
    """Same-padded, stride-1 conv (a figure box without "V")."""
    return _conv(cin, cout, k, padding=_same(k))


def _avg_pool_same() -> nn.AvgPool2d:
    # TF 'SAME' average pooling does not count the padding
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


# --------------------------------------------------------------------------------------------------
# Inception-v4 / Inception-ResNet-v2 stem (Figure 3) and the reductions (Figures 7, 8, 12, 18)
# --------------------------------------------------------------------------------------------------


def _stem_v4() -> nn.Sequential:
    """Figure 3: 299x299x3 -> 35x35x384."""
    return nn.Sequential(
        OrderedDict(
            conv1=_conv(3, 32, 3, stride=2),  # 149 x 149 x 32 (V)
            conv2=_conv(32, 32, 3),  # 147 x 147 x 32 (V)
            conv3=_c(32, 64, 3),  # 147 x 147 x 64
            mixed_3a=FilterConcat(  # 73 x 73 x 160
                maxpool=nn.MaxPool2d(3, stride=2), conv=_conv(64, 96, 3, stride=2)
            ),
            mixed_4a=FilterConcat(  # 71 x 71 x 192
                branch0=nn.Sequential(_c(160, 64), _conv(64, 96, 3)),
                branch1=nn.Sequential(_c(160, 64), _c(64, 64, (1, 7)), _c(64, 64, (7, 1)), _conv(64, 96, 3)),
            ),
            mixed_5a=FilterConcat(  # 35 x 35 x 384
                conv=_conv(192, 192, 3, stride=2), maxpool=nn.MaxPool2d(3, stride=2)
            ),
        )
    )


def _reduction_a(cin: int, k: int, l: int, m: int, n: int) -> FilterConcat:  # noqa: E741
    """Figure 7, 35x35 -> 17x17, with the k, l, m, n of Table 1."""
    return FilterConcat(
        branch0=_conv(cin, n, 3, stride=2),
        branch1=nn.Sequential(_c(cin, k), _c(k, l, 3), _conv(l, m, 3, stride=2)),
        branch_pool=nn.MaxPool2d(3, stride=2),
    )


# --------------------------------------------------------------------------------------------------
# Inception-v4
# --------------------------------------------------------------------------------------------------


def _inception_a() -> FilterConcat:
    """Figure 4: 35x35x384 -> 35x35x384."""
    return FilterConcat(
        branch0=_c(384, 96),
        branch1=nn.Sequential(_c(384, 64), _c(64, 96, 3)),
        branch2=nn.Sequential(_c(384, 64), _c(64, 96, 3), _c(96, 96, 3)),
        branch_pool=nn.Sequential(_avg_pool_same(), _c(384, 96)),
    )


def _inception_b() -> FilterConcat:
    """Figure 5: 17x17x1024 -> 17x17x1024."""
    return FilterConcat(
        branch0=_c(1024, 384),
        branch1=nn.Sequential(_c(1024, 192), _c(192, 224, (1, 7)), _c(224, 256, (7, 1))),
        branch2=nn.Sequential(
            _c(1024, 192),
            _c(192, 192, (7, 1)),
            _c(192, 224, (1, 7)),
            _c(224, 224, (7, 1)),
            _c(224, 256, (1, 7)),
        ),
        branch_pool=nn.Sequential(_avg_pool_same(), _c(1024, 128)),
    )


def _reduction_b_v4() -> FilterConcat:
    """Figure 8: 17x17x1024 -> 8x8x1536."""
    return FilterConcat(
        branch0=nn.Sequential(_c(1024, 192), _conv(192, 192, 3, stride=2)),
        branch1=nn.Sequential(_c(1024, 256), _c(256, 256, (1, 7)), _c(256, 320, (7, 1)), _conv(320, 320, 3, stride=2)),
        branch_pool=nn.MaxPool2d(3, stride=2),
    )


def _split(cin: int, cout: int) -> FilterConcat:
    """The 1x3 / 3x1 fan-out at the top of the 8x8 branches."""
    return FilterConcat(conv1x3=_c(cin, cout, (1, 3)), conv3x1=_c(cin, cout, (3, 1)))


def _inception_c() -> FilterConcat:
    """Figure 6: 8x8x1536 -> 8x8x1536."""
    return FilterConcat(
        branch0=_c(1536, 256),
        branch1=nn.Sequential(_c(1536, 384), _split(384, 256)),
        branch2=nn.Sequential(_c(1536, 384), _c(384, 448, (3, 1)), _c(448, 512, (1, 3)), _split(512, 256)),
        branch_pool=nn.Sequential(_avg_pool_same(), _c(1536, 256)),
    )


class InceptionNet(nn.Module):
    """``features`` (stem, blocks, reductions, in order) then the pooled linear ``classifier``."""

    def __init__(self, features: OrderedDict[str, nn.Module], width: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(features)
        # average pooling, dropout with keep probability 0.8, softmax layer (Figures 9 and 15)
        self.classifier = _head(width, num_classes, dropout=0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _numbered(prefix: str, count: int, make) -> list[tuple[str, nn.Module]]:
    return [(f"{prefix}{i}", make(i)) for i in range(1, count + 1)]


@register_model(
    ModelMeta(
        family="inception",
        paper=_PAPER,
        year=2017,
        input_size=(3, 299, 299),
        params=Published(
            42_679_816,
            "timm 1.0.31 inception_v4 (Cadene's port of the TF-slim checkpoint), exact count at "
            "num_classes=1000; the paper publishes no count",
        ),
        macs=None,
        top1=Published(80.0, f"{_TABLE2}, Inception-v4 top-1 error 20.0%"),
        top5=Published(95.0, f"{_TABLE2}, Inception-v4 top-5 error 5.0%"),
    )
)
def inception_v4(*, num_classes: int = 1000) -> nn.Module:
    """Inception-v4, Figure 9: stem (Figure 3), 4 x Inception-A (Figure 4), Reduction-A (Figure 7
    with k, l, m, n = 192, 224, 256, 384 from Table 1), 7 x Inception-B (Figure 5), Reduction-B
    (Figure 8), 3 x Inception-C (Figure 6), average pooling, dropout (keep 0.8), linear.

    Paper and released TF-slim ``inception_v4`` agree on every width. The figures are not always
    self-consistent about layout and the code is taken where they are not: the stem's last 3x3
    conv (192, "V") needs stride 2 to give the 35x35x384 output Figure 3 states, as in the code;
    where the figures and the code order a 1x7 and a 7x1 (or 1x3 and 3x1) differently, the code's
    order is used, which changes neither parameters nor MACs. Parameters: 42,679,816, equal
    to timm's and Cadene's PyTorch ports. TF-slim's auxiliary classifier (on Mixed_6h) is not in
    the paper and is not built. The paper gives no MAC count (it says only that Inception-v4's cost
    is about that of Inception-ResNet-v2); this build has 12.25 G MACs at 299x299.
    """
    _check_num_classes(num_classes)
    features: OrderedDict[str, nn.Module] = OrderedDict(stem=_stem_v4())
    features.update(_numbered("inception_a", 4, lambda i: _inception_a()))
    features["reduction_a"] = _reduction_a(384, 192, 224, 256, 384)  # 17 x 17 x 1024
    features.update(_numbered("inception_b", 7, lambda i: _inception_b()))
    features["reduction_b"] = _reduction_b_v4()  # 8 x 8 x 1536
    features.update(_numbered("inception_c", 3, lambda i: _inception_c()))
    return InceptionNet(features, 1536, num_classes)


# --------------------------------------------------------------------------------------------------
# Inception-ResNet
# --------------------------------------------------------------------------------------------------


class ScaledResidual(nn.Module):
    """An Inception-ResNet block: ``relu(x + scale * up(branches(x)))``.

    ``up`` is the figures' "1x1 Conv (... Linear)": a convolution with bias and no BN or activation
    that restores the input width. ``scale`` is the residual scaling of Section 3.3 / Figure 20.
    """

    def __init__(self, branches: FilterConcat, up: nn.Conv2d, scale: float, activate: bool = True) -> None:
        super().__init__()
        self.branches = branches
        self.up = up
        self.scale = float(scale)
        self.relu = nn.ReLU(inplace=True) if activate else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(x + self.scale * self.up(self.branches(x)))

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


def _linear_1x1(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, bias=True)


# Residual scales of TF-slim's inception_resnet_v2 (block35 0.17, block17 0.10, block8 0.20); the paper
# says only "between 0.1 and 0.3". Used for both Inception-ResNets.
_SCALE_A, _SCALE_B, _SCALE_C = 0.17, 0.10, 0.20


def _stem_resnet_v1() -> nn.Sequential:
    """Figure 14: 299x299x3 -> 35x35x256."""
    return nn.Sequential(
        OrderedDict(
            conv1=_conv(3, 32, 3, stride=2),  # 149 x 149 x 32 (V)
            conv2=_conv(32, 32, 3),  # 147 x 147 x 32 (V)
            conv3=_c(32, 64, 3),  # 147 x 147 x 64
            maxpool=nn.MaxPool2d(3, stride=2),  # 73 x 73 x 64 (V)
            conv4=_c(64, 80),  # 73 x 73 x 80
            conv5=_conv(80, 192, 3),  # 71 x 71 x 192 (V)
            conv6=_conv(192, 256, 3, stride=2),  # 35 x 35 x 256 (V)
        )
    )


def _resnet_v1_a(scale: float) -> ScaledResidual:
    """Figure 10: Inception-ResNet-A of v1 (35x35x256)."""
    return ScaledResidual(
        FilterConcat(
            branch0=_c(256, 32),
            branch1=nn.Sequential(_c(256, 32), _c(32, 32, 3)),
            branch2=nn.Sequential(_c(256, 32), _c(32, 32, 3), _c(32, 32, 3)),
        ),
        _linear_1x1(96, 256),
        scale,
    )


def _resnet_v1_b(scale: float) -> ScaledResidual:
    """Figure 11: Inception-ResNet-B of v1 (17x17x896)."""
    return ScaledResidual(
        FilterConcat(
            branch0=_c(896, 128),
            branch1=nn.Sequential(_c(896, 128), _c(128, 128, (1, 7)), _c(128, 128, (7, 1))),
        ),
        _linear_1x1(256, 896),
        scale,
    )


def _reduction_b_resnet(cin: int, w: tuple[int, int, int, int]) -> FilterConcat:
    """Figures 12 (v1) and 18 (v2): 17x17 -> 8x8; w = widths of the three stride-2 convs and the
    middle conv of the third branch."""
    a, b, c, mid = w
    return FilterConcat(
        branch0=nn.Sequential(_c(cin, 256), _conv(256, a, 3, stride=2)),
        branch1=nn.Sequential(_c(cin, 256), _conv(256, b, 3, stride=2)),
        branch2=nn.Sequential(_c(cin, 256), _c(256, mid, 3), _conv(mid, c, 3, stride=2)),
        branch_pool=nn.MaxPool2d(3, stride=2),
    )


def _resnet_v1_c(scale: float) -> ScaledResidual:
    """Figure 13: Inception-ResNet-C of v1 (8x8x1792)."""
    return ScaledResidual(
        FilterConcat(
            branch0=_c(1792, 192),
            branch1=nn.Sequential(_c(1792, 192), _c(192, 192, (1, 3)), _c(192, 192, (3, 1))),
        ),
        _linear_1x1(384, 1792),
        scale,
    )


@register_model(
    ModelMeta(
        family="inception",
        paper=_PAPER,
        year=2017,
        input_size=(3, 299, 299),
        params=None,
        macs=None,
        top1=Published(78.7, f"{_TABLE2}, Inception-ResNet-v1 top-1 error 21.3%"),
        top5=Published(94.5, f"{_TABLE2}, Inception-ResNet-v1 top-5 error 5.5%"),
    )
)
def inception_resnet_v1(*, num_classes: int = 1000) -> nn.Module:
    """Inception-ResNet-v1, Figure 15 with the blocks of Figures 14, 10, 7, 11, 12 and 13.

    Stem (Figure 14) to 35x35x256, 5 x Inception-ResNet-A, Reduction-A (Figure 7 with k, l, m, n =
    192, 192, 256, 384) to 17x17x896, 10 x Inception-ResNet-B, Reduction-B (Figure 12) to
    8x8x1792, 5 x Inception-ResNet-C, average pooling, dropout (keep 0.8), linear. The paper's
    widths are self-consistent for this model and are followed as printed.

    No reference implementation from the authors was released. BN is on every conv except the
    "Linear" 1x1 convs that restore the width before each addition (Section 3.2: no BN on top of
    the summations), which keep their bias. Every block ends with a ReLU after the addition, as the
    figures draw it. Residual scales are TF-slim's Inception-ResNet-v2 values (0.17, 0.10, 0.20;
    the paper says only "between 0.1 and 0.3"); they change no count.

    Check against a reference: facenet-pytorch's ``InceptionResnetV1`` (David Sandberg's facenet
    layout) has the same stem, blocks and reductions, but 6 Inception-ResNet-C blocks (5 scaled
    plus a final unscaled one without ReLU, TF-slim's convention) where Figure 15 has 5, and a
    face-embedding head. Its body (everything before the head, 22,564,096 parameters) equals this
    body plus one C block (1,600,768). The paper gives neither a parameter nor a MAC count (it says
    only that the cost is about Inception-v3's); this build has 22,756,328 parameters and 6.21 G
    MACs at 299x299 (Inception-v3: 23.8 M, 5.71 G).
    """
    _check_num_classes(num_classes)
    features: OrderedDict[str, nn.Module] = OrderedDict(stem=_stem_resnet_v1())
    features.update(_numbered("inception_resnet_a", 5, lambda i: _resnet_v1_a(_SCALE_A)))
    features["reduction_a"] = _reduction_a(256, 192, 192, 256, 384)  # 17 x 17 x 896
    features.update(_numbered("inception_resnet_b", 10, lambda i: _resnet_v1_b(_SCALE_B)))
    features["reduction_b"] = _reduction_b_resnet(896, (384, 256, 256, 256))  # 8 x 8 x 1792
    features.update(_numbered("inception_resnet_c", 5, lambda i: _resnet_v1_c(_SCALE_C)))
    return InceptionNet(features, 1792, num_classes)


def _stem_resnet_v2() -> nn.Sequential:
    """TF-slim's Inception-ResNet-v2 stem: 299x299x3 -> 35x35x320 (not the paper's Figure 3)."""
    return nn.Sequential(
        OrderedDict(
            conv1=_conv(3, 32, 3, stride=2),  # 149 x 149 x 32
            conv2=_conv(32, 32, 3),  # 147 x 147 x 32
            conv3=_c(32, 64, 3),  # 147 x 147 x 64
            maxpool1=nn.MaxPool2d(3, stride=2),  # 73 x 73 x 64
            conv4=_c(64, 80),  # 73 x 73 x 80
            conv5=_conv(80, 192, 3),  # 71 x 71 x 192
            maxpool2=nn.MaxPool2d(3, stride=2),  # 35 x 35 x 192
            mixed_5b=FilterConcat(  # 35 x 35 x 320
                branch0=_c(192, 96),
                branch1=nn.Sequential(_c(192, 48), _c(48, 64, 5)),
                branch2=nn.Sequential(_c(192, 64), _c(64, 96, 3), _c(96, 96, 3)),
                branch_pool=nn.Sequential(_avg_pool_same(), _c(192, 64)),
            ),
        )
    )


def _resnet_v2_a(scale: float) -> ScaledResidual:
    """Figure 16: Inception-ResNet-A of v2 (TF-slim block35, 35x35x320)."""
    return ScaledResidual(
        FilterConcat(
            branch0=_c(320, 32),
            branch1=nn.Sequential(_c(320, 32), _c(32, 32, 3)),
            branch2=nn.Sequential(_c(320, 32), _c(32, 48, 3), _c(48, 64, 3)),
        ),
        _linear_1x1(128, 320),
        scale,
    )


def _resnet_v2_b(scale: float) -> ScaledResidual:
    """Figure 17: Inception-ResNet-B of v2 (TF-slim block17, 17x17x1088)."""
    return ScaledResidual(
        FilterConcat(
            branch0=_c(1088, 192),
            branch1=nn.Sequential(_c(1088, 128), _c(128, 160, (1, 7)), _c(160, 192, (7, 1))),
        ),
        _linear_1x1(384, 1088),
        scale,
    )


def _resnet_v2_c(scale: float, activate: bool = True) -> ScaledResidual:
    """Figure 19: Inception-ResNet-C of v2 (TF-slim block8, 8x8x2080)."""
    return ScaledResidual(
        FilterConcat(
            branch0=_c(2080, 192),
            branch1=nn.Sequential(_c(2080, 192), _c(192, 224, (1, 3)), _c(224, 256, (3, 1))),
        ),
        _linear_1x1(448, 2080),
        scale,
        activate,
    )


@register_model(
    ModelMeta(
        family="inception",
        paper=_PAPER,
        year=2017,
        input_size=(3, 299, 299),
        params=Published(
            55_843_464,
            "timm 1.0.31 inception_resnet_v2 (Cadene's port of the TF-slim checkpoint), exact count "
            "at num_classes=1000; the paper publishes no count",
        ),
        macs=None,
        top1=Published(80.1, f"{_TABLE2}, Inception-ResNet-v2 top-1 error 19.9%"),
        top5=Published(95.1, f"{_TABLE2}, Inception-ResNet-v2 top-5 error 4.9%"),
        notes="Released TF-slim architecture: the paper's Figures 15-19 cannot be built as printed.",
    )
)
def inception_resnet_v2(*, num_classes: int = 1000) -> nn.Module:
    """Inception-ResNet-v2 as released by the authors (TF-slim ``inception_resnet_v2``).

    The paper's description cannot be built as printed: the "Linear" 1x1 conv of Inception-
    ResNet-B (Figure 17) outputs 1154 maps, but Reduction-A with Table 1's k, l, m, n = 256, 256,
    384, 384 on the 384-map stem of Figure 3 gives 384 + 384 + 384 = 1152; Reduction-B (Figure 18)
    then gives 1152 + 384 + 288 + 320 = 2144 maps, but Inception-ResNet-C's 1x1 (Figure 19) outputs
    2048. A residual addition needs equal widths, so the released model is used, as the brief's
    reference count (about 55.8 M) also implies. It differs from the paper as follows:

    - Stem: the Inception-v3 stem (3x3/2 32, 3x3 32, 3x3 64, max pool, 1x1 80, 3x3 192, max pool)
      then an Inception module (Mixed_5b: 1x1 96 | 1x1 48 -> 5x5 64 | 1x1 64 -> 3x3 96 -> 3x3 96 |
      avg pool -> 1x1 64), 35x35x320, instead of Figure 3's 35x35x384.
    - Reduction-A (k, l, m, n = 256, 256, 384, 384, as Table 1) gives 384 + 384 + 320 = 1088 maps;
      Inception-ResNet-B restores 1088 (not 1154). Reduction-B's branches are Figure 18's (384, 288,
      320) and give 2080 maps; Inception-ResNet-C restores 2080 (not 2048).
    - 10 x A, 20 x B and 10 x C blocks, twice the 5 / 10 / 5 of Figure 15; the last C block has no
      residual scaling and no ReLU; a 1x1 conv to 1536 maps (``conv_7b``) precedes the pooling.
    - Residual scales 0.17 (A), 0.10 (B), 0.20 (C); the paper says only "between 0.1 and 0.3".

    Block widths inside A, B and C are the figures' (A: 32 | 32, 32 | 32, 48, 64; B: 192 | 128,
    160, 192; C: 192 | 192, 224, 256). BN everywhere except the bias-carrying "Linear" 1x1 convs.
    Parameters: 55,843,464, equal to timm's and Cadene's ports (with BN scale; TF-slim's own batch
    norm has no scale, ``scale=False``, so the checkpoint holds fewer variables). TF-slim's
    auxiliary classifier is not in the paper and is not built. The paper gives no MAC count; this
    build has 13.16 G MACs at 299x299.
    """
    _check_num_classes(num_classes)
    features: OrderedDict[str, nn.Module] = OrderedDict(stem=_stem_resnet_v2())
    features.update(_numbered("inception_resnet_a", 10, lambda i: _resnet_v2_a(_SCALE_A)))
    features["reduction_a"] = _reduction_a(320, 256, 256, 384, 384)  # 17 x 17 x 1088
    features.update(_numbered("inception_resnet_b", 20, lambda i: _resnet_v2_b(_SCALE_B)))
    features["reduction_b"] = _reduction_b_resnet(1088, (384, 288, 320, 288))  # 8 x 8 x 2080
    features.update(_numbered("inception_resnet_c", 10, lambda i: _resnet_v2_c(_SCALE_C if i < 10 else 1.0, i < 10)))
    features["conv_7b"] = _c(2080, 1536)  # 8 x 8 x 1536
    return InceptionNet(features, 1536, num_classes)
