"""MobileNet v1 (Howard et al. 2017: Table 1 body, width multiplier, Table 4 full-conv baseline) and v2.

Counting conventions of the MobileNet papers: "mult-adds" are multiply-accumulates of the convolution and
fully connected layers; "parameters" are the convolution and FC weights. Neither counts batch norm
(folded into the convolutions at inference) nor biases. The built modules do carry BatchNorm2d layers
(and the FC bias), so ``sum(p.numel())`` is larger than the paper's figure; the tests compare the paper
figure with the weight count and say so.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from archcost.errors import ModelOptionError
from archcost.zoo._meta import ModelMeta, Published
from archcost.zoo._registry import register_model

_PAPER_V1 = "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications"
_PAPER_V2 = "MobileNetV2: Inverted Residuals and Linear Bottlenecks"

# Table 1 of Howard et al.: (output channels, stride) of each depthwise-separable layer after conv0.
_V1_BODY: tuple[tuple[int, int], ...] = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),  # Table 1 prints "Conv dw / s2" at 7x7 input; the output stays 7x7, so the stride is 1
)


def _conv_bn_relu(cin: int, cout: int, kernel: int, stride: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, groups=groups, bias=False),
            bn=nn.BatchNorm2d(cout),
            relu=nn.ReLU(inplace=True),
        )
    )


class DepthwiseSeparable(nn.Module):
    """Fig. 3 (right) of Howard et al.: 3x3 depthwise conv, BN, ReLU, then 1x1 pointwise conv, BN, ReLU."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.depthwise = _conv_bn_relu(cin, cin, 3, stride, groups=cin)
        self.pointwise = _conv_bn_relu(cin, cout, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class MobileNetV1(nn.Module):
    """Table 1 body: conv0 (3x3/2, 32), 13 depthwise-separable layers, global average pool, FC.

    ``separable=False`` builds the "Conv MobileNet" baseline of Table 4: each depthwise-separable pair is
    replaced by one standard 3x3 convolution (same stride, same output channels), followed by BN and ReLU.
    """

    def __init__(self, *, num_classes: int, width_mult: float, separable: bool = True) -> None:
        super().__init__()

        def ch(c: int) -> int:
            # TF-Slim mobilenet_v1 reference: depth = max(int(d * depth_multiplier), min_depth=8).
            return max(int(c * width_mult), 8)

        layers: OrderedDict[str, nn.Module] = OrderedDict()
        cin = ch(32)
        layers["conv0"] = _conv_bn_relu(3, cin, 3, 2)
        for i, (cout, stride) in enumerate(_V1_BODY, start=1):
            cout = ch(cout)
            if separable:
                layers[f"block{i}"] = DepthwiseSeparable(cin, cout, stride)
            else:
                layers[f"conv{i}"] = _conv_bn_relu(cin, cout, 3, stride)
            cin = cout
        self.features = nn.Sequential(layers)
        # Table 1: "Avg Pool / s1, Pool 7x7" at 224; adaptive so that any input resolution works.
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.avgpool(self.features(x))))


def _check_common(num_classes: int) -> None:
    if num_classes < 1:
        raise ModelOptionError(f"num_classes must be >= 1, got {num_classes}")


def _v1(num_classes: int, width_mult: float) -> MobileNetV1:
    _check_common(num_classes)
    if not 0.0 < width_mult <= 1.0:
        raise ModelOptionError(f"width_mult must be in (0, 1] (the paper's alpha), got {width_mult}")
    return MobileNetV1(num_classes=num_classes, width_mult=width_mult)


def _v1_meta(alpha: str, macs_m: int, params_m: float, top1: float) -> ModelMeta:
    src = f"Howard et al. 2017, Table 6 ({alpha} MobileNet-224)"
    return ModelMeta(
        family="mobilenet",
        paper=_PAPER_V1,
        year=2017,
        params=Published(params_m * 1e6, f"{src}: {params_m} M; conv+FC weights, no BN, no biases"),
        macs=Published(macs_m * 1e6, f"{src}: {macs_m} million mult-adds"),
        top1=Published(top1, f"{src}, ImageNet accuracy"),
        notes="Paper counts exclude batch norm and biases. Resolution multiplier = feed a smaller input "
        "(Table 7: 192/160/128; its figures scale the 224 total by rho^2, FC included).",
    )


@register_model(_v1_meta("1.0", 569, 4.2, 70.6))
def mobilenet_v1(*, num_classes: int = 1000, width_mult: float = 1.0) -> nn.Module:
    """MobileNet v1, Table 1 of Howard et al.; ``width_mult`` is the width multiplier alpha in (0, 1].

    Channels are ``max(int(c * alpha), 8)`` as in the TF-Slim reference (mobilenet_v1.py, min_depth=8);
    for the paper's alphas 1, 0.75, 0.5, 0.25 this is exact. Every conv is followed by BN and ReLU
    (Fig. 3), convs carry no bias. Table 1 lists the last depthwise layer as "s2" at a 7x7 input,
    but its output stays 7x7 (and the TF reference uses stride 1): stride 1 is used here. Any input
    resolution works (global average pool), which is how Table 7's resolution multiplier is applied.

    Reproduced: Table 1 arithmetic (568,740,352 mult-adds, 4,209,088 weights), Tables 6 and 7, and
    Table 2's shares except one: Table 2 prints 1.19% of mult-adds for the first 3x3 conv, the count
    gives 1.91% (and only 1.91 makes the column sum to 100%), a digit swap in the paper. Table 7's
    figures are 569 M x rho^2 with the FC layer scaled too; exact counts are 418.1 / 290.7 / 186.4 M
    at 192 / 160 / 128, so 160 rounds to 291 M where the paper prints 290.
    """
    return _v1(num_classes, width_mult)


@register_model(_v1_meta("0.75", 325, 2.6, 68.4))
def mobilenet_v1_075(*, num_classes: int = 1000) -> nn.Module:
    """MobileNet v1 with width multiplier 0.75 (Table 6)."""
    return _v1(num_classes, 0.75)


@register_model(_v1_meta("0.5", 149, 1.3, 63.7))
def mobilenet_v1_050(*, num_classes: int = 1000) -> nn.Module:
    """MobileNet v1 with width multiplier 0.5 (Table 6)."""
    return _v1(num_classes, 0.5)


@register_model(_v1_meta("0.25", 41, 0.5, 50.6))
def mobilenet_v1_025(*, num_classes: int = 1000) -> nn.Module:
    """MobileNet v1 with width multiplier 0.25 (Table 6)."""
    return _v1(num_classes, 0.25)


@register_model(
    ModelMeta(
        family="mobilenet",
        paper=_PAPER_V1,
        year=2017,
        params=Published(29.3e6, "Howard et al. 2017, Table 4 (Conv MobileNet): 29.3 M, weights only"),
        macs=Published(4866e6, "Howard et al. 2017, Table 4 (Conv MobileNet): 4866 million mult-adds"),
        top1=Published(71.7, "Howard et al. 2017, Table 4 (Conv MobileNet), ImageNet accuracy"),
        notes="Table 4's 4866 M equals this model's conv mult-adds without the FC layer (1.024 M); "
        "with the FC layer the count is 4867.3 M.",
    )
)
def mobilenet_v1_conv(*, num_classes: int = 1000) -> nn.Module:
    """The full-convolution baseline of Table 4 ("Conv MobileNet").

    Each depthwise-separable pair of Table 1 becomes one standard 3x3 conv with the pair's stride and
    output channels, followed by BN and ReLU. The paper does not print this network; this reading
    reproduces Table 4's 29.3 M parameters, and its 4866 M mult-adds to within the FC layer's 1.02 M
    (our count is 4867.3 M with the FC layer, 4866.3 M without it).
    """
    _check_common(num_classes)
    return MobileNetV1(num_classes=num_classes, width_mult=1.0, separable=False)


# ---------------------------------------------------------------------------------------------- v2


def _make_divisible(v: float, divisor: int = 8) -> int:
    """Round channels to a multiple of 8, never below 90% of ``v`` (TF/torchvision MobileNetV2 rule)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def _conv_bn_relu6(cin: int, cout: int, kernel: int, stride: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, groups=groups, bias=False),
            bn=nn.BatchNorm2d(cout),
            relu6=nn.ReLU6(inplace=True),
        )
    )


class InvertedResidual(nn.Module):
    """Table 1 of Sandler et al.: 1x1 expand (ReLU6), 3x3 depthwise (ReLU6), 1x1 linear projection.

    The shortcut is added when stride is 1 and input and output channels match. With expansion t = 1
    (the first bottleneck) there is no expand layer, as in the reference implementations.
    """

    def __init__(self, cin: int, cout: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = cin * expand_ratio
        self.use_res_connect = stride == 1 and cin == cout
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        if expand_ratio != 1:
            layers["expand"] = _conv_bn_relu6(cin, hidden, 1, 1)
        layers["depthwise"] = _conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden)
        layers["project"] = nn.Conv2d(hidden, cout, 1, bias=False)
        layers["project_bn"] = nn.BatchNorm2d(cout)
        self.conv = nn.Sequential(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


# Table 2 of Sandler et al.: expansion t, output channels c, repeats n, first stride s.
_V2_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class MobileNetV2(nn.Module):
    def __init__(self, *, num_classes: int, width_mult: float, dropout: float = 0.2) -> None:
        super().__init__()
        cin = _make_divisible(32 * width_mult)
        last = _make_divisible(1280 * max(1.0, width_mult))
        layers: OrderedDict[str, nn.Module] = OrderedDict(conv0=_conv_bn_relu6(3, cin, 3, 2))
        for stage, (t, c, n, s) in enumerate(_V2_SETTINGS, start=1):
            cout = _make_divisible(c * width_mult)
            for i in range(n):
                layers[f"bottleneck{stage}_{i + 1}"] = InvertedResidual(cin, cout, s if i == 0 else 1, t)
                cin = cout
        layers["conv_last"] = _conv_bn_relu6(cin, last, 1, 1)
        self.features = nn.Sequential(layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Sequential(OrderedDict(dropout=nn.Dropout(dropout), fc=nn.Linear(last, num_classes)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.avgpool(self.features(x))))


@register_model(
    ModelMeta(
        family="mobilenet",
        paper=_PAPER_V2,
        year=2018,
        params=Published(
            3_504_872,
            "torchvision mobilenet_v2 (3,504,872, incl. BN and FC bias); Sandler et al. 2018, Table 4: 3.4 M",
        ),
        macs=Published(300e6, "Sandler et al. 2018, Table 4 (MobileNetV2 1.0, 224): 300 M mult-adds"),
        top1=Published(72.0, "Sandler et al. 2018, Table 4, ImageNet top-1"),
        notes="Paper Table 4 gives 3.4 M params; the torchvision model with BN has 3,504,872.",
    )
)
def mobilenet_v2(*, num_classes: int = 1000, width_mult: float = 1.0) -> nn.Module:
    """MobileNetV2 (Sandler et al. 2018, Table 2 body), width multiplier ``width_mult`` in (0, 2].

    Channel rounding to multiples of 8 and the last conv's width ``1280 * max(1, alpha)`` follow the
    paper's text and the TF/torchvision reference. ReLU6 after expand and depthwise convs, linear
    projection, dropout 0.2 before the classifier (torchvision). Parameter count equals torchvision's
    mobilenet_v2 (3,504,872); the paper's Table 4 says 3.4 M, while the conv and FC weights alone come
    to 3,469,760 (3.47 M), so the paper's figure is not reproduced exactly (truncated, or a slightly
    different count).
    """
    _check_common(num_classes)
    if not 0.0 < width_mult <= 2.0:
        raise ModelOptionError(f"width_mult must be in (0, 2], got {width_mult}")
    return MobileNetV2(num_classes=num_classes, width_mult=width_mult)
