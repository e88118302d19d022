"""BN-Inception (Ioffe & Szegedy 2015) and Inception-v3 (Szegedy et al. 2016), with the Inception parts
(conv-BN-ReLU unit, filter concat) that ``inception_v4.py`` reuses."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from archcost.errors import ModelOptionError
from archcost.zoo._meta import ModelMeta, Published
from archcost.zoo._registry import register_model

_BN_PAPER = "Batch Normalization: Accelerating Deep Network Training by Reducing Internal Covariate Shift"
_V3_PAPER = "Rethinking the Inception Architecture for Computer Vision"


# --------------------------------------------------------------------------------------------------
# Parts shared by every Inception in the zoo
# --------------------------------------------------------------------------------------------------


class ConvBNReLU(nn.Sequential):
    """One box of an Inception figure: convolution (no bias: BN's shift replaces it) -> BN -> ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        *,
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
        eps: float = 1e-5,
    ) -> None:
        super().__init__(
            OrderedDict(
                conv=nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False),
                bn=nn.BatchNorm2d(out_channels, eps=eps),
                relu=nn.ReLU(inplace=True),
            )
        )


class FilterConcat(nn.Module):
    """Parallel branches whose outputs are concatenated along channels ("Filter concat")."""

    def __init__(self, **branches: nn.Module) -> None:
        super().__init__()
        if not branches:
            raise ValueError("a filter concat needs at least one branch")
        for name, branch in branches.items():
            self.add_module(name, branch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.children()], dim=1)


def _check_num_classes(num_classes: int) -> None:
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ModelOptionError(f"num_classes must be an integer >= 1, got {num_classes!r}")


def _head(in_features: int, num_classes: int, dropout: float) -> nn.Sequential:
    """Global average pool, (dropout,) linear: the classifier every Inception ends with."""
    layers: OrderedDict[str, nn.Module] = OrderedDict(avgpool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(1))
    if dropout > 0:
        layers["dropout"] = nn.Dropout(dropout)
    layers["fc"] = nn.Linear(in_features, num_classes)
    return nn.Sequential(layers)


# --------------------------------------------------------------------------------------------------
# BN-Inception (Inception-v2 of the Batch Normalization paper)
# --------------------------------------------------------------------------------------------------


def _bn_module(
    cin: int,
    n1x1: int,
    n3x3red: int,
    n3x3: int,
    ndblred: int,
    ndbl: int,
    pool: str,
    proj: int,
) -> FilterConcat:
    """One row of the BN paper's Figure 5 table (a stride-1 module).

    Columns: #1x1, #3x3 reduce, #3x3, double #3x3 reduce, double #3x3, Pool + proj.
    """
    pool_layer = nn.AvgPool2d(3, stride=1, padding=1) if pool == "avg" else nn.MaxPool2d(3, stride=1, padding=1)
    return FilterConcat(
        branch1x1=ConvBNReLU(cin, n1x1, 1),
        branch3x3=nn.Sequential(ConvBNReLU(cin, n3x3red, 1), ConvBNReLU(n3x3red, n3x3, 3, padding=1)),
        branch3x3dbl=nn.Sequential(
            ConvBNReLU(cin, ndblred, 1),
            ConvBNReLU(ndblred, ndbl, 3, padding=1),
            ConvBNReLU(ndbl, ndbl, 3, padding=1),
        ),
        branch_pool=nn.Sequential(pool_layer, ConvBNReLU(cin, proj, 1)),
    )


def _bn_reduction(cin: int, n3x3red: int, n3x3: int, ndblred: int, ndbl: int) -> FilterConcat:
    """Modules 3c and 4e: stride-2 convolutions and a max pool "+ pass through" before the concat."""
    return FilterConcat(
        branch3x3=nn.Sequential(ConvBNReLU(cin, n3x3red, 1), ConvBNReLU(n3x3red, n3x3, 3, stride=2, padding=1)),
        branch3x3dbl=nn.Sequential(
            ConvBNReLU(cin, ndblred, 1),
            ConvBNReLU(ndblred, ndbl, 3, padding=1),
            ConvBNReLU(ndbl, ndbl, 3, stride=2, padding=1),
        ),
        branch_pool=nn.MaxPool2d(3, stride=2, ceil_mode=True),
    )


class BNInception(nn.Module):
    """The Inception variant of Ioffe & Szegedy 2015, appendix Figure 5."""

    def __init__(self, *, num_classes: int, separable_conv1: bool) -> None:
        super().__init__()
        if separable_conv1:
            # "separable convolution with depth multiplier 8 on the first convolutional layer":
            # a 7x7/2 depthwise conv (3 -> 3 * 8 maps) then a 1x1 pointwise conv to 64, as TF-slim's
            # separable_conv2d; BN and ReLU follow the pointwise conv only.
            conv1: nn.Module = nn.Sequential(
                OrderedDict(
                    depthwise=nn.Conv2d(3, 24, 7, stride=2, padding=3, groups=3, bias=False),
                    pointwise=nn.Conv2d(24, 64, 1, bias=False),
                    bn=nn.BatchNorm2d(64),
                    relu=nn.ReLU(inplace=True),
                )
            )
        else:
            conv1 = ConvBNReLU(3, 64, 7, stride=2, padding=3)
        self.features = nn.Sequential(
            OrderedDict(
                conv1=conv1,  # 112 x 112 x 64
                pool1=nn.MaxPool2d(3, stride=2, ceil_mode=True),  # 56 x 56 x 64
                conv2_reduce=ConvBNReLU(64, 64, 1),
                conv2=ConvBNReLU(64, 192, 3, padding=1),  # 56 x 56 x 192
                pool2=nn.MaxPool2d(3, stride=2, ceil_mode=True),  # 28 x 28 x 192
                inception_3a=_bn_module(192, 64, 64, 64, 64, 96, "avg", 32),  # 256
                inception_3b=_bn_module(256, 64, 64, 96, 64, 96, "avg", 64),  # 320
                inception_3c=_bn_reduction(320, 128, 160, 64, 96),  # 14 x 14 x 576
                inception_4a=_bn_module(576, 224, 64, 96, 96, 128, "avg", 128),  # 576
                inception_4b=_bn_module(576, 192, 96, 128, 96, 128, "avg", 128),  # 576
                inception_4c=_bn_module(576, 160, 128, 160, 128, 160, "avg", 128),  # 608
                inception_4d=_bn_module(608, 96, 128, 192, 160, 192, "avg", 128),  # 608
                inception_4e=_bn_reduction(608, 128, 192, 192, 256),  # 7 x 7 x 1056
                inception_5a=_bn_module(1056, 352, 192, 320, 160, 224, "avg", 128),  # 1024
                inception_5b=_bn_module(1024, 352, 192, 320, 192, 224, "max", 128),  # 1024
            )
        )
        # avg pool 7x7/1 then the linear layer; the BN paper removed dropout ("Remove Dropout", 4.2.1).
        self.classifier = _head(1024, num_classes, dropout=0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register_model(
    ModelMeta(
        family="inception",
        paper=_BN_PAPER,
        year=2015,
        input_size=(3, 224, 224),
        params=None,
        macs=Published(
            2.0e9,
            "Szegedy et al. 2016 (Rethinking the Inception Architecture), Table 3, BN-Inception row, "
            "'Cost Bn Ops' 2.0 (multiply-adds)",
        ),
        top1=Published(74.8, "Ioffe & Szegedy 2015, Figure 4, 'BN-Inception single crop' top-1 error 25.2%"),
        top5=Published(92.18, "Ioffe & Szegedy 2015, Figure 4, 'BN-Inception single crop' top-5 error 7.82%"),
        notes="Inception-v2 / BN-Inception; 1x1 convs of every module included, BN after every conv.",
    )
)
def bn_inception(*, num_classes: int = 1000, separable_conv1: bool = True) -> nn.Module:
    """BN-Inception, as in the appendix table (Figure 5) of Ioffe & Szegedy 2015.

    GoogLeNet with each 5x5 replaced by two 3x3 convs, three 28x28 modules (3a-3c), stride-2
    modules 3c and 4e ("max + pass through") instead of pooling between stages, average or max
    pooling inside modules as the table's "Pool + proj" column says, BN after every convolution,
    no dropout and no LRN (Sec. 4.2.1). The paper has no auxiliary classifiers for this model, so
    none are built.

    ``separable_conv1=True`` (the paper): "Our model employed separable convolution with depth
    multiplier 8 on the first convolutional layer": a 7x7/2 depthwise conv producing 3 x 8 = 24 maps,
    then a 1x1 conv to 64, as TF-slim's ``inception_v2`` builds it. ``separable_conv1=False`` gives the
    plain 7x7/2 conv to 64 used by the widely shared Caffe model (Yuanjun Xiong's ``bn_inception``)
    and its PyTorch port (Cadene's ``pretrainedmodels.bninception``).

    Widths follow the table's filter columns exactly. The table's "output size" column is not
    consistent with them at 4c-4e: 4c outputs 160 + 160 + 160 + 128 = 608 maps (the table says
    576) and 4e outputs 192 + 256 + 608 = 1056 (the table says 1024). The Caffe model follows the
    columns too (its 4d and 5a take 608 and 1056 inputs); TF-slim's ``inception_v2`` instead uses a
    96-filter pool projection in 4c and 4d so the outputs are 576 and 1024.

    Differences from the Caffe/Cadene model, none of which changes the shape of the network:
    its convolutions carry a bias before BN (the paper drops it, Sec. 3.2: "the bias b can be
    ignored"), which adds one parameter per conv output channel; its first layer is a full 7x7
    conv (``separable_conv1=False`` here); its global pool is a fixed 7x7 average (here adaptive,
    identical at 224x224). With ``separable_conv1=False`` plus those biases, the parameter count is
    Cadene's 11,295,240 exactly.

    Published cost: Rethinking the Inception Architecture, Table 3, gives 2.0 Bn ops for
    BN-Inception; this build has 1.95 G MACs with the separable first layer and 2.03 G with the
    full 7x7 conv (Cadene's model, counted the same way, also has 2.03 G).
    """
    _check_num_classes(num_classes)
    if not isinstance(separable_conv1, bool):
        raise ModelOptionError(f"separable_conv1 must be True or False, got {separable_conv1!r}")
    return BNInception(num_classes=num_classes, separable_conv1=separable_conv1)


# --------------------------------------------------------------------------------------------------
# Inception-v3
# --------------------------------------------------------------------------------------------------

_V3_EPS = 1e-3  # TF-slim's batch-norm epsilon, kept by torchvision's port


def _v3_conv(cin: int, cout: int, kernel_size, **kw) -> ConvBNReLU:
    return ConvBNReLU(cin, cout, kernel_size, eps=_V3_EPS, **kw)


def _v3_module_35(cin: int, pool_proj: int) -> FilterConcat:
    """35x35 module (Mixed_5b-5d; Figure 5 of the paper, with the released 5x5 branch)."""
    return FilterConcat(
        branch1x1=_v3_conv(cin, 64, 1),
        branch5x5=nn.Sequential(_v3_conv(cin, 48, 1), _v3_conv(48, 64, 5, padding=2)),
        branch3x3dbl=nn.Sequential(
            _v3_conv(cin, 64, 1), _v3_conv(64, 96, 3, padding=1), _v3_conv(96, 96, 3, padding=1)
        ),
        branch_pool=nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1), _v3_conv(cin, pool_proj, 1)),
    )


def _v3_reduction_35_to_17(cin: int) -> FilterConcat:
    """Mixed_6a: 35x35x288 -> 17x17x768 grid reduction (Figure 10 of the paper)."""
    return FilterConcat(
        branch3x3=_v3_conv(cin, 384, 3, stride=2),
        branch3x3dbl=nn.Sequential(_v3_conv(cin, 64, 1), _v3_conv(64, 96, 3, padding=1), _v3_conv(96, 96, 3, stride=2)),
        branch_pool=nn.MaxPool2d(3, stride=2),
    )


def _v3_module_17(c7: int) -> FilterConcat:
    """17x17 module with n = 7 asymmetric factorisation (Mixed_6b-6e; Figure 6 of the paper)."""
    return FilterConcat(
        branch1x1=_v3_conv(768, 192, 1),
        branch7x7=nn.Sequential(
            _v3_conv(768, c7, 1),
            _v3_conv(c7, c7, (1, 7), padding=(0, 3)),
            _v3_conv(c7, 192, (7, 1), padding=(3, 0)),
        ),
        branch7x7dbl=nn.Sequential(
            _v3_conv(768, c7, 1),
            _v3_conv(c7, c7, (7, 1), padding=(3, 0)),
            _v3_conv(c7, c7, (1, 7), padding=(0, 3)),
            _v3_conv(c7, c7, (7, 1), padding=(3, 0)),
            _v3_conv(c7, 192, (1, 7), padding=(0, 3)),
        ),
        branch_pool=nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1), _v3_conv(768, 192, 1)),
    )


def _v3_reduction_17_to_8() -> FilterConcat:
    """Mixed_7a: 17x17x768 -> 8x8x1280 grid reduction."""
    return FilterConcat(
        branch3x3=nn.Sequential(_v3_conv(768, 192, 1), _v3_conv(192, 320, 3, stride=2)),
        branch7x7x3=nn.Sequential(
            _v3_conv(768, 192, 1),
            _v3_conv(192, 192, (1, 7), padding=(0, 3)),
            _v3_conv(192, 192, (7, 1), padding=(3, 0)),
            _v3_conv(192, 192, 3, stride=2),
        ),
        branch_pool=nn.MaxPool2d(3, stride=2),
    )


def _v3_module_8(cin: int) -> FilterConcat:
    """8x8 module with expanded filter bank outputs (Mixed_7b, 7c; Figure 7 of the paper)."""

    def split(c: int) -> FilterConcat:
        return FilterConcat(
            conv1x3=_v3_conv(c, 384, (1, 3), padding=(0, 1)),
            conv3x1=_v3_conv(c, 384, (3, 1), padding=(1, 0)),
        )

    return FilterConcat(
        branch1x1=_v3_conv(cin, 320, 1),
        branch3x3=nn.Sequential(_v3_conv(cin, 384, 1), split(384)),
        branch3x3dbl=nn.Sequential(_v3_conv(cin, 448, 1), _v3_conv(448, 384, 3, padding=1), split(384)),
        branch_pool=nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1), _v3_conv(cin, 192, 1)),
    )


class InceptionV3Aux(nn.Module):
    """The auxiliary classifier on top of the last 17x17 layer (Figure 8 of the paper)."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(5, stride=3)  # 17x17 -> 5x5
        self.conv0 = _v3_conv(in_channels, 128, 1)
        self.conv1 = _v3_conv(128, 768, 5)  # 5x5 -> 1x1
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # identity at 299x299; larger inputs leave > 1x1
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.avgpool(self.conv1(self.conv0(self.pool(x))))))


class InceptionV3(nn.Module):
    def __init__(self, *, num_classes: int, aux_logits: bool) -> None:
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                Conv2d_1a_3x3=_v3_conv(3, 32, 3, stride=2),  # 149 x 149 x 32
                Conv2d_2a_3x3=_v3_conv(32, 32, 3),  # 147 x 147 x 32
                Conv2d_2b_3x3=_v3_conv(32, 64, 3, padding=1),  # 147 x 147 x 64
                MaxPool_3a_3x3=nn.MaxPool2d(3, stride=2),  # 73 x 73 x 64
                Conv2d_3b_1x1=_v3_conv(64, 80, 1),  # 73 x 73 x 80
                Conv2d_4a_3x3=_v3_conv(80, 192, 3),  # 71 x 71 x 192
                MaxPool_5a_3x3=nn.MaxPool2d(3, stride=2),  # 35 x 35 x 192
                Mixed_5b=_v3_module_35(192, 32),  # 35 x 35 x 256
                Mixed_5c=_v3_module_35(256, 64),  # 35 x 35 x 288
                Mixed_5d=_v3_module_35(288, 64),  # 35 x 35 x 288
                Mixed_6a=_v3_reduction_35_to_17(288),  # 17 x 17 x 768
                Mixed_6b=_v3_module_17(128),
                Mixed_6c=_v3_module_17(160),
                Mixed_6d=_v3_module_17(160),
                Mixed_6e=_v3_module_17(192),  # 17 x 17 x 768
                Mixed_7a=_v3_reduction_17_to_8(),  # 8 x 8 x 1280
                Mixed_7b=_v3_module_8(1280),  # 8 x 8 x 2048
                Mixed_7c=_v3_module_8(2048),  # 8 x 8 x 2048
            )
        )
        self.aux = InceptionV3Aux(768, num_classes) if aux_logits else None
        self.classifier = _head(2048, num_classes, dropout=0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        aux = None
        for name, layer in self.features.named_children():
            x = layer(x)
            if name == "Mixed_6e" and self.aux is not None:
                aux = self.aux(x)
        logits = self.classifier(x)
        if aux is None:
            return logits
        return logits, aux


@register_model(
    ModelMeta(
        family="inception",
        paper=_V3_PAPER,
        year=2016,
        input_size=(3, 299, 299),
        params=Published(
            23_834_568,
            "torchvision Inception3(aux_logits=False, transform_input=False), exact count; the paper "
            "says 'less than 25 million parameters' (abstract)",
        ),
        macs=Published(
            5.713e9,
            "torchvision Inception_V3_Weights.IMAGENET1K_V1 metadata, 5.713 'GFLOPS' (which are GMACs). "
            "The paper gives 4.8 Bn ops (Table 3) and '5 billion multiply-adds' (abstract)",
        ),
        top1=Published(78.8, "Szegedy et al. 2016, Table 3, Inception-v3 (BN-auxiliary row), top-1 error 21.2%"),
        top5=Published(94.4, "Szegedy et al. 2016, Table 3, Inception-v3 (BN-auxiliary row), top-5 error 5.6%"),
        notes="Released (TF-slim / torchvision) architecture; the paper's Table 1 differs in the stem.",
    )
)
def inception_v3(*, num_classes: int = 1000, aux_logits: bool = False) -> nn.Module:
    """Inception-v3 as released (TF-slim ``inception_v3``, ported by torchvision as ``Inception3``).

    The paper does not give filter counts per module, so the released model, which the paper's
    accuracy figures come from, fixes the widths. It differs from the paper's Table 1 and figures:

    - Stem: after the first max pool the release has a 1x1 conv to 80 maps, a 3x3 conv to 192 and
      a second 3x3/2 max pool, where Table 1 lists 3x3 convolutions only.
    - 35x35 modules (Mixed_5b-5d): the release keeps a 1x1(48) -> 5x5(64) branch next to the
      double-3x3 branch, where Figure 5 shows two 3x3 convs in place of every 5x5.
    - 17x17: a grid-reduction module (Mixed_6a, as in Figure 10) followed by 4 modules of Figure 6
      (7x7 factorised into 1x7 and 7x1; 128, 160, 160, 192 filters inside), where Table 1
      says 5 x Inception; 8x8: grid reduction Mixed_7a and 2 modules of Figure 7.

    Parameter count is torchvision's exactly (23,834,568 without the auxiliary head); MACs at
    299x299 are 5,713,216,096, torchvision's 5.713 G. The paper's 4.8 Bn ops (Table 3) and
    "5 billion multiply-adds" (abstract) are not reproduced by the released architecture.

    ``aux_logits=True`` adds the auxiliary classifier on top of the last 17x17 layer (Mixed_6e):
    5x5/3 average pool, 1x1 conv to 128, 5x5 conv to 768, linear; the model then returns
    ``(logits, aux_logits)``. As in torchvision and TF-slim, the auxiliary head's linear layer has no
    BN (the paper's "BN-auxiliary" batch-normalises it). The final dropout is TF-slim's keep
    probability 0.8 (torchvision uses p=0.5); neither changes the cost. torchvision's optional input
    transform (``transform_input``) is not part of the network and is not built.
    """
    _check_num_classes(num_classes)
    if not isinstance(aux_logits, bool):
        raise ModelOptionError(f"aux_logits must be True or False, got {aux_logits!r}")
    return InceptionV3(num_classes=num_classes, aux_logits=aux_logits)
