"""EfficientNet-B0 (Tan & Le 2019): the baseline of Table 1, MBConv blocks with squeeze-and-excitation."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from archcost.errors import ModelOptionError
from archcost.zoo._meta import ModelMeta, Published
from archcost.zoo._registry import register_model

_PAPER = "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks"
_BN_EPS = 1e-3  # the TF reference's batch-norm epsilon (torchvision uses it too); irrelevant to cost


def _conv_bn_act(cin: int, cout: int, kernel: int, stride: int, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: OrderedDict[str, nn.Module] = OrderedDict(
        conv=nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        bn=nn.BatchNorm2d(cout, eps=_BN_EPS),
    )
    if act:
        layers["silu"] = nn.SiLU(inplace=True)
    return nn.Sequential(layers)


class SqueezeExcitation(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018) as used in MBConv: global average pool, 1x1 conv to
    ``squeeze`` channels, SiLU, 1x1 conv back, sigmoid, then scale the input channel-wise.

    The two 1x1 convs carry biases and run on a 1x1 map. The final product is an element-wise multiply
    (one per input element), written functionally in ``forward``.
    """

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.silu = nn.SiLU(inplace=True)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.sigmoid(self.fc2(self.silu(self.fc1(self.avgpool(x)))))
        return x * scale


class MBConv(nn.Module):
    """Mobile inverted bottleneck (Sandler et al. 2018; Tan et al. 2019 MnasNet) with SE ratio 0.25.

    1x1 expand conv-BN-SiLU (omitted when the expansion ratio is 1), kxk depthwise conv-BN-SiLU, SE
    (squeeze channels = max(1, input channels // 4), as in the reference implementations), 1x1
    projection conv-BN without activation; identity shortcut when stride is 1 and channels match.
    Stochastic depth (drop-connect) on the shortcut branch is a training-time device and an identity at
    inference, so it is omitted.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = cin * expand_ratio
        self.use_res_connect = stride == 1 and cin == cout
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        if expand_ratio != 1:
            layers["expand"] = _conv_bn_act(cin, hidden, 1, 1)
        layers["depthwise"] = _conv_bn_act(hidden, hidden, kernel, stride, groups=hidden)
        layers["se"] = SqueezeExcitation(hidden, max(1, cin // 4))
        layers["project"] = _conv_bn_act(hidden, cout, 1, 1, act=False)
        self.block = nn.Sequential(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        if self.use_res_connect:
            out = out + x
        return out


# Table 1 of Tan & Le: (expansion, kernel, stride, output channels, layers) of stages 2-8.
_B0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)


class EfficientNet(nn.Module):
    def __init__(self, *, num_classes: int, dropout: float = 0.2) -> None:
        super().__init__()
        layers: OrderedDict[str, nn.Module] = OrderedDict(stem=_conv_bn_act(3, 32, 3, 2))
        cin = 32
        for stage, (t, k, s, c, n) in enumerate(_B0_STAGES, start=2):
            blocks = [MBConv(cin if i == 0 else c, c, k, s if i == 0 else 1, t) for i in range(n)]
            layers[f"stage{stage}"] = nn.Sequential(*blocks)
            cin = c
        layers["head"] = _conv_bn_act(cin, 1280, 1, 1)
        self.features = nn.Sequential(layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Sequential(OrderedDict(dropout=nn.Dropout(dropout), fc=nn.Linear(1280, num_classes)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.avgpool(self.features(x))))


@register_model(
    ModelMeta(
        family="efficientnet",
        paper=_PAPER,
        year=2019,
        params=Published(5_288_548, "torchvision efficientnet_b0 (incl. BN); Tan & Le 2019, Table 2: 5.3 M"),
        macs=Published(0.39e9, "Tan & Le 2019, Table 2 (EfficientNet-B0): 0.39 B FLOPs, i.e. mult-adds"),
        top1=Published(77.1, "Tan & Le 2019, Table 2 (EfficientNet-B0), ImageNet top-1"),
        top5=Published(93.3, "Tan & Le 2019, Table 2 (EfficientNet-B0), ImageNet top-5"),
        notes="Stochastic depth omitted (identity at inference). SE blocks are counted: their 1x1 convs "
        "on 1x1 maps add about 1.3 M MACs.",
    )
)
def efficientnet_b0(*, num_classes: int = 1000) -> nn.Module:
    """EfficientNet-B0, Table 1 of Tan & Le: stem 3x3/2 conv (32), seven MBConv stages
    (MBConv1 k3 16 x1; MBConv6 k3 24 x2; k5 40 x2; k3 80 x3; k5 112 x3; k5 192 x4; k3 320 x1),
    head 1x1 conv (1280), global average pool, dropout 0.2, FC. SiLU (swish) activations, SE ratio
    0.25 of the block input channels. Matches torchvision's efficientnet_b0 (5,288,548 parameters);
    stochastic depth is omitted (identity at inference).
    """
    if num_classes < 1:
        raise ModelOptionError(f"num_classes must be >= 1, got {num_classes}")
    return EfficientNet(num_classes=num_classes)
