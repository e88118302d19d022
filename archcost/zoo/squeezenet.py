"""SqueezeNet (Iandola et al. 2016): v1.0 (Table 1), v1.1 (reference repository), bypass variants (Fig. 2)."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from archcost.errors import ModelOptionError
from archcost.zoo._meta import ModelMeta, Published
from archcost.zoo._registry import register_model

_PAPER = "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model size"


class Fire(nn.Module):
    """Fire module (Sec. 3.2): 1x1 squeeze conv, then 1x1 and 3x3 expand convs concatenated, ReLU after each.

    ``bypass`` adds the module input to its output (Sec. 6, Fig. 2): ``"simple"`` is an identity wire
    (in and out channels must match), ``"complex"`` a 1x1 convolution with as many filters as the module
    has output channels. The sum is taken after the expand ReLUs, as in the residual SqueezeNet
    prototxt (github.com/songhan/SqueezeNet-Residual).
    """

    def __init__(self, cin: int, squeeze: int, e1x1: int, e3x3: int, bypass: str | None = None) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.squeeze_relu = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, e1x1, 1)
        self.expand1x1_relu = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, e3x3, 3, padding=1)
        self.expand3x3_relu = nn.ReLU(inplace=True)
        cout = e1x1 + e3x3
        self.simple_bypass = bypass == "simple"
        if self.simple_bypass and cin != cout:
            raise ValueError(f"a simple bypass needs equal channels, got {cin} -> {cout}")
        self.bypass = nn.Conv2d(cin, cout, 1) if bypass == "complex" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze_relu(self.squeeze(x))
        out = torch.cat([self.expand1x1_relu(self.expand1x1(s)), self.expand3x3_relu(self.expand3x3(s))], 1)
        if self.simple_bypass:
            out = out + x
        elif self.bypass is not None:
            out = out + self.bypass(x)
        return out


def _pool() -> nn.MaxPool2d:
    # Caffe rounds pooling output sizes up; torchvision uses ceil_mode=True to match.
    return nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)


# Table 1: (name, squeeze s1x1, expand e1x1, expand e3x3); the input channels follow from the previous layer.
_FIRES_V1_0 = (
    ("fire2", 16, 64, 64),
    ("fire3", 16, 64, 64),
    ("fire4", 32, 128, 128),
    ("fire5", 32, 128, 128),
    ("fire6", 48, 192, 192),
    ("fire7", 48, 192, 192),
    ("fire8", 64, 256, 256),
    ("fire9", 64, 256, 256),
)


class SqueezeNet(nn.Module):
    def __init__(self, *, version: str, num_classes: int, bypass: str | None = None) -> None:
        super().__init__()
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        if version == "1_0":
            layers["conv1"] = nn.Conv2d(3, 96, kernel_size=7, stride=2)
            cin, pools_after = 96, {"fire4": "pool4", "fire8": "pool8"}
        else:
            layers["conv1"] = nn.Conv2d(3, 64, kernel_size=3, stride=2)
            cin, pools_after = 64, {"fire3": "pool3", "fire5": "pool5"}
        layers["relu_conv1"] = nn.ReLU(inplace=True)
        layers["pool1"] = _pool()
        for name, s, e1, e3 in _FIRES_V1_0:
            idx = int(name[4:])
            kind = None
            if bypass is not None:
                # Fig. 2: simple bypass around fire3, 5, 7, 9; the complex variant adds 1x1-conv
                # bypasses around fire2, 4, 6, 8, whose input and output channels differ.
                if idx % 2 == 1:
                    kind = "simple"
                elif bypass == "complex":
                    kind = "complex"
            layers[name] = Fire(cin, s, e1, e3, bypass=kind)
            cin = e1 + e3
            if name in pools_after:
                layers[pools_after[name]] = _pool()
        self.features = nn.Sequential(layers)
        self.classifier = nn.Sequential(
            OrderedDict(
                drop9=nn.Dropout(p=0.5),
                conv10=nn.Conv2d(cin, num_classes, kernel_size=1),
                relu_conv10=nn.ReLU(inplace=True),
                pool10=nn.AdaptiveAvgPool2d(1),
                flatten=nn.Flatten(1),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _check(num_classes: int) -> None:
    if num_classes < 1:
        raise ModelOptionError(f"num_classes must be >= 1, got {num_classes}")


_TV = "torchvision squeezenet docs"
_NOTES = (
    "Table 1 prints a 224x224x3 input but 111x111 conv1 outputs, which is what the Caffe reference's "
    "227x227 input gives; torchvision and archcost default to 224 (both work). MobileNet (Howard et "
    "al. 2017, Table 9) quotes 1700 M mult-adds for SqueezeNet, about twice the conv MAC count "
    "(0.82 G at 224): it is not reproduced and looks like a FLOP (2 per MAC) figure."
)


@register_model(
    ModelMeta(
        family="squeezenet",
        paper=_PAPER,
        year=2016,
        params=Published(1_248_424, "Iandola et al. 2016, Table 1 (sum of per-layer counts); torchvision"),
        macs=Published(0.82e9, f"{_TV} (squeezenet1_0: 0.82 'GFLOPS', which count MACs) at 224x224"),
        top1=Published(57.5, "Iandola et al. 2016, Table 2 (SqueezeNet, uncompressed 32-bit)"),
        top5=Published(80.3, "Iandola et al. 2016, Table 2 (SqueezeNet, uncompressed 32-bit)"),
        notes=_NOTES,
    )
)
def squeezenet1_0(*, num_classes: int = 1000) -> nn.Module:
    """SqueezeNet v1.0, Table 1 of Iandola et al.: conv1 (96, 7x7/2), fire2-9, conv10 (1x1), global avg pool.

    Max pools (3x3/2, ceil) after conv1, fire4, fire8; dropout 0.5 before conv10. The Caffe
    deploy.prototxt (github.com/forresti/SqueezeNet, SqueezeNet_v1.0) gives conv10 ``pad: 1``, which would
    make it 15x15 rather than Table 1's 13x13; we follow Table 1 and torchvision (no padding). Conv
    MACs: 818.9 M at 224, 832.7 M at 227; the padded Caffe conv10 adds 28.7 M, which is the 861.34 M
    "MACC" that the SimpleNet README (github.com/Coderx7/SimpleNet) lists for SqueezeNet.
    """
    _check(num_classes)
    return SqueezeNet(version="1_0", num_classes=num_classes)


@register_model(
    ModelMeta(
        family="squeezenet",
        paper=_PAPER,
        year=2016,
        params=Published(1_235_496, f"{_TV} (squeezenet1_1); github.com/forresti/SqueezeNet SqueezeNet_v1.1"),
        macs=Published(0.35e9, f"{_TV} (squeezenet1_1: 0.35 'GFLOPS', which count MACs) at 224x224"),
        top1=Published(58.178, f"{_TV} (squeezenet1_1, ImageNet-1K single crop)"),
        top5=Published(80.624, f"{_TV} (squeezenet1_1, ImageNet-1K single crop)"),
        notes="Not in the paper: the reference repository's v1.1 README says '2.4x less computation than "
        "v1.0, without sacrificing accuracy'.",
    )
)
def squeezenet1_1(*, num_classes: int = 1000) -> nn.Module:
    """SqueezeNet v1.1 (reference repository, SqueezeNet_v1.1/README.md): conv1 is 64 filters of 3x3/2,
    and the pools move earlier, to after conv1, fire3 and fire5. Fire modules are those of v1.0.
    """
    _check(num_classes)
    return SqueezeNet(version="1_1", num_classes=num_classes)


@register_model(
    ModelMeta(
        family="squeezenet",
        paper=_PAPER,
        year=2016,
        params=Published(1_248_424, "Iandola et al. 2016, Table 3: same 4.8 MB model size as vanilla"),
        top1=Published(60.4, "Iandola et al. 2016, Table 3 (SqueezeNet + simple bypass)"),
        top5=Published(82.5, "Iandola et al. 2016, Table 3 (SqueezeNet + simple bypass)"),
        notes="Simple bypass adds no parameters; the sums cost one add per output element.",
    )
)
def squeezenet1_0_bypass(*, num_classes: int = 1000) -> nn.Module:
    """SqueezeNet v1.0 with simple bypass (Fig. 2, middle): identity shortcuts around fire3, 5, 7, 9.

    Only these modules have equal input and output channels. Same parameters as v1.0 (Table 3: 4.8 MB).
    """
    _check(num_classes)
    return SqueezeNet(version="1_0", num_classes=num_classes, bypass="simple")


@register_model(
    ModelMeta(
        family="squeezenet",
        paper=_PAPER,
        year=2016,
        top1=Published(58.8, "Iandola et al. 2016, Table 3 (SqueezeNet + complex bypass)"),
        top5=Published(82.0, "Iandola et al. 2016, Table 3 (SqueezeNet + complex bypass)"),
        notes="Table 3 gives a 7.7 MB model (about 1.9-2.0 M 32-bit parameters); the Fig. 2 reading built "
        "here has 1,589,672 parameters (6.4 MB): not reproduced, see the builder docstring.",
    )
)
def squeezenet1_0_complex_bypass(*, num_classes: int = 1000) -> nn.Module:
    """SqueezeNet v1.0 with complex bypass (Fig. 2, right).

    Simple (identity) bypasses around fire3, 5, 7, 9 plus 1x1-conv bypasses (with bias, no activation)
    around fire2, 4, 6, 8, each with as many filters as the module's output channels (Sec. 6). The extra
    convs add (96*128 + 128*256 + 256*384 + 384*512) weights + 1,280 biases = 341,248 parameters, for
    1,589,672 in total. Table 3 reports 7.7 MB against 4.8 MB for vanilla, i.e. about 0.7 M extra
    32-bit parameters; no released prototxt shows where the rest would come from, so Table 3's size is
    not reproduced and no parameter figure is recorded as published.
    """
    _check(num_classes)
    return SqueezeNet(version="1_0", num_classes=num_classes, bypass="complex")
