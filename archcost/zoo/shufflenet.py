"""ShuffleNet V2 (Ma et al. 2018): channel split, two branches, concat and channel shuffle (Table 5, 1x)."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from archcost.errors import ModelOptionError
from archcost.zoo._meta import ModelMeta, Published
from archcost.zoo._registry import register_model

_PAPER = "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design"


class ChannelShuffle(nn.Module):
    """Channel shuffle (Zhang et al. 2017, Fig. 1c): reshape (N, g, C/g, H, W), swap g and C/g, flatten back.

    Pure data movement: no parameters, no multiply-adds. Written with reshape/transpose so it runs on the
    meta device.
    """

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        x = x.reshape(n, self.groups, c // self.groups, h, w).transpose(1, 2)
        return x.reshape(n, c, h, w)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


def _conv_bn(cin: int, cout: int, kernel: int, stride: int, groups: int = 1, relu: bool = True) -> nn.Sequential:
    layers: OrderedDict[str, nn.Module] = OrderedDict(
        conv=nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        bn=nn.BatchNorm2d(cout),
    )
    if relu:
        layers["relu"] = nn.ReLU(inplace=True)
    return nn.Sequential(layers)


class ShuffleV2Block(nn.Module):
    """Fig. 3 (c) and (d) of Ma et al.

    Stride 1 (c): split the channels in half; the left half passes through, the right half goes through
    1x1 conv-BN-ReLU, 3x3 depthwise conv-BN, 1x1 conv-BN-ReLU; concat, then shuffle.
    Stride 2 (d): no split; the left branch is 3x3 depthwise (stride 2)-BN, 1x1 conv-BN-ReLU, the right
    branch as in (c) with a stride-2 depthwise conv; concat doubles the channels; shuffle.
    """

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        self.stride = stride
        branch = cout // 2
        if stride == 1 and cin != cout:
            raise ValueError(f"a stride-1 unit keeps its channels, got {cin} -> {cout}")
        self.branch1: nn.Sequential | None
        if stride == 2:
            self.branch1 = nn.Sequential(
                OrderedDict(
                    depthwise=_conv_bn(cin, cin, 3, 2, groups=cin, relu=False),
                    pointwise=_conv_bn(cin, branch, 1, 1),
                )
            )
        else:
            self.branch1 = None
        right_in = cin if stride == 2 else branch
        self.branch2 = nn.Sequential(
            OrderedDict(
                pointwise1=_conv_bn(right_in, branch, 1, 1),
                depthwise=_conv_bn(branch, branch, 3, stride, groups=branch, relu=False),
                pointwise2=_conv_bn(branch, branch, 1, 1),
            )
        )
        self.shuffle = ChannelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.branch1 is None:
            left, right = x.chunk(2, dim=1)
            out = torch.cat((left, self.branch2(right)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return self.shuffle(out)


class ShuffleNetV2(nn.Module):
    # set by name in __init__ (stage2, stage3, stage4)
    stage2: nn.Sequential
    stage3: nn.Sequential
    stage4: nn.Sequential

    def __init__(self, *, stage_repeats: tuple[int, ...], channels: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        c0 = channels[0]
        self.conv1 = _conv_bn(3, c0, 3, 2)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        cin = c0
        for idx, (repeats, cout) in enumerate(zip(stage_repeats, channels[1:-1], strict=True), start=2):
            units = [ShuffleV2Block(cin, cout, 2)]
            units += [ShuffleV2Block(cout, cout, 1) for _ in range(repeats - 1)]
            setattr(self, f"stage{idx}", nn.Sequential(*units))
            cin = cout
        self.conv5 = _conv_bn(cin, channels[-1], 1, 1)
        self.globalpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(channels[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        x = self.stage4(self.stage3(self.stage2(x)))
        return self.fc(self.flatten(self.globalpool(self.conv5(x))))


@register_model(
    ModelMeta(
        family="shufflenet",
        paper=_PAPER,
        year=2018,
        params=Published(2_278_604, "torchvision shufflenet_v2_x1_0 (with BN); Ma et al. 2018 Table 5: 2.3 M"),
        macs=Published(146e6, "Ma et al. 2018, Table 5 (ShuffleNet v2 1x): 146 M FLOPs, i.e. mult-adds"),
        top1=Published(69.4, "Ma et al. 2018, Table 8 (ShuffleNet v2 1x): 30.6% top-1 error"),
        notes="The paper's FLOPs are multiply-adds. Conv+FC count here: 144.9 M (Table 5: 146 M). "
        "ChannelShuffle is a reshape/transpose module with no parameters and no MACs.",
    )
)
def shufflenet_v2_x1_0(*, num_classes: int = 1000) -> nn.Module:
    """ShuffleNet V2 1x, Table 5 of Ma et al.: conv1 (24, 3x3/2), max pool (3x3/2), stages 2-4 with
    4, 8, 4 units and 116, 232, 464 output channels (the first unit of each stage has stride 2),
    conv5 (1x1, 1024), global average pool, FC. All convs without bias and followed by BN; ReLU after
    the 1x1 convs and conv1, none after the depthwise convs (Fig. 3). Channel split in half,
    channel shuffle with 2 groups. Matches torchvision's shufflenet_v2_x1_0 (2,278,604 parameters).

    Conv and FC multiply-adds at 224: 144,907,992, which is 0.7% below Table 5's 146 M; the paper does
    not say what else its count includes, so the 146 M is not reproduced exactly.
    """
    if num_classes < 1:
        raise ModelOptionError(f"num_classes must be >= 1, got {num_classes}")
    return ShuffleNetV2(stage_repeats=(4, 8, 4), channels=(24, 116, 232, 464, 1024), num_classes=num_classes)
