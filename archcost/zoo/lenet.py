"""LeNet-5 (LeCun et al. 1998): the paper's Fig. 2 network, with its trainable subsampling layers,
the partial C3 connection table (Table I), the scaled tanh squashing function and the RBF output layer.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from archcost.errors import ModelOptionError
from archcost.zoo._meta import ModelMeta, Published
from archcost.zoo._registry import register_model

_PAPER = "Gradient-Based Learning Applied to Document Recognition"

# Table I of the paper: for each C3 feature map, the S2 feature maps it is connected to, grouped as
# the table's column headers group them (3 adjacent maps, 4 adjacent maps, 4 non-adjacent, all 6).
C3_TABLE: tuple[tuple[str, tuple[tuple[int, ...], ...]], ...] = (
    ("three_adjacent", ((0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1))),
    ("four_adjacent", ((0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2))),
    ("four_scattered", ((0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5))),
    ("all_six", ((0, 1, 2, 3, 4, 5),)),
)


class ScaledTanh(nn.Module):
    """The paper's squashing function f(a) = A tanh(S a), with A = 1.7159 and S = 2/3 (Sec. II-B, App. A)."""

    def __init__(self, amplitude: float = 1.7159, slope: float = 2.0 / 3.0) -> None:
        super().__init__()
        self.amplitude = amplitude
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.amplitude * torch.tanh(self.slope * x)

    def extra_repr(self) -> str:
        return f"amplitude={self.amplitude}, slope={self.slope:.4f}"


class Subsampling(nn.Module):
    """LeNet's trainable subsampling (layers S2 and S4).

    Each output unit adds the ``window x window`` non-overlapping inputs of its map, multiplies the sum
    by one trainable coefficient of that map and adds one trainable bias of that map. It is computed as
    a depthwise convolution whose kernel is the map's coefficient repeated over the window, so its cost
    is the real one: ``window**2`` multiply-adds per output unit, plus the bias.
    """

    def __init__(self, channels: int, window: int = 2) -> None:
        super().__init__()
        if channels < 1 or window < 1:
            raise ValueError(f"channels and window must be >= 1, got {channels}, {window}")
        self.channels = channels
        self.window = window
        self.weight = nn.Parameter(torch.empty(channels))
        self.bias = nn.Parameter(torch.empty(channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Appendix A: weights uniform in +-2.4 / fan-in (fan-in = window**2 here).
        bound = 2.4 / self.window**2
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = self.weight.view(-1, 1, 1, 1).expand(-1, 1, self.window, self.window)
        return F.conv2d(x, kernel, self.bias, stride=self.window, groups=self.channels)

    def extra_repr(self) -> str:
        return f"{self.channels}, window={self.window}"


class ConnectionTableConv2d(nn.Module):
    """A convolution in which each output map sees only a chosen subset of the input maps.

    ``table`` is a sequence of named blocks; each block lists, for each of its output maps, the input
    maps it reads, all of the same count. A block is one grouped ``nn.Conv2d`` over the input maps
    gathered in order, so the parameters and multiply-adds are exactly those of the table (LeNet-5's C3:
    1,516 parameters, 60 input-map connections x 25 taps x 100 positions = 150,000 multiply-adds).
    Output maps are concatenated in table order.
    """

    def __init__(
        self,
        in_channels: int,
        table: tuple[tuple[str, tuple[tuple[int, ...], ...]], ...],
        kernel_size: int,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.blocks = nn.ModuleDict()
        self.inputs: dict[str, tuple[int, ...]] = {}
        for name, maps in table:
            fan_in = len(maps[0])
            if any(len(m) != fan_in for m in maps):
                raise ValueError(f"block {name!r}: every output map must read the same number of inputs")
            if any(not 0 <= i < in_channels for m in maps for i in m):
                raise ValueError(f"block {name!r}: input map index out of range 0..{in_channels - 1}")
            self.inputs[name] = tuple(i for m in maps for i in m)
            self.blocks[name] = nn.Conv2d(fan_in * len(maps), len(maps), kernel_size, groups=len(maps))
        self.out_channels = sum(b.out_channels for b in self.blocks.values() if isinstance(b, nn.Conv2d))  # all

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([conv(x[:, list(self.inputs[n])]) for n, conv in self.blocks.items()], dim=1)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}"


class EuclideanRBF(nn.Module):
    """The output layer: unit i computes y_i = sum_j (x_j - w_ij)^2 (Sec. II-B, Eq. 7).

    The parameter vectors ``centers`` are registered as parameters (they are part of the model and of
    its 60,840-parameter count) but with ``requires_grad=False``: the paper chose them by hand (+1/-1
    stylised 7x12 bitmaps of the characters) and kept them fixed "at least initially". The hand-drawn
    bitmaps are not reproduced here; the centres are initialised to random +-1 codes of the same kind.
    The squared distance is expanded as ||x||^2 - 2 x.w + ||w||^2 so that its 84 x num_classes
    multiply-adds appear as one matrix product (the paper's 840 "connections" of this layer).
    A smaller output means a better match.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.centers = nn.Parameter(torch.empty(out_features, in_features), requires_grad=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.centers.bernoulli_(0.5).mul_(2.0).sub_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cross = F.linear(x, self.centers)
        return (x * x).sum(dim=1, keepdim=True) - 2.0 * cross + (self.centers * self.centers).sum(dim=1)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class LeNet5(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                c1=nn.Conv2d(1, 6, kernel_size=5),
                c1_act=ScaledTanh(),
                s2=Subsampling(6),
                s2_act=ScaledTanh(),
                c3=ConnectionTableConv2d(6, C3_TABLE, kernel_size=5),
                c3_act=ScaledTanh(),
                s4=Subsampling(16),
                s4_act=ScaledTanh(),
                c5=nn.Conv2d(16, 120, kernel_size=5),
                c5_act=ScaledTanh(),
            )
        )
        self.classifier = nn.Sequential(
            OrderedDict(
                flatten=nn.Flatten(),
                f6=nn.Linear(120, 84),
                f6_act=ScaledTanh(),
                output=EuclideanRBF(84, num_classes),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register_model(
    ModelMeta(
        family="lenet",
        paper=_PAPER,
        year=1998,
        input_size=(1, 32, 32),
        num_classes=10,
        dataset="MNIST",
        params=Published(
            60_840,
            "LeCun et al. 1998, Sec. II-B: C1 156 + S2 12 + C3 1,516 + S4 32 + C5 48,120 + F6 10,164 "
            "trainable parameters (the paper's '60,000 trainable free parameters', Sec. II-B) plus the "
            "10 x 84 hand-set RBF parameter vectors",
        ),
        top1=Published(99.05, "LeCun et al. 1998, Sec. III-C / Fig. 14: 0.95% test error on MNIST without distortions"),
        notes=(
            "The paper counts 340,908 connections (C1 122,304, S2 5,880, C3 151,600, S4 2,000, "
            "C5 48,120, F6 10,164, output 840): multiply-adds plus one bias per unit. "
            "The 840 RBF parameters are fixed (requires_grad=False)."
        ),
    )
)
def lenet5(*, num_classes: int = 10) -> nn.Module:
    """LeNet-5 exactly as in Sec. II-B of the paper.

    C1 6@5x5 -> S2 trainable 2x2 subsampling -> C3 16@5x5 over Table I's partial connections ->
    S4 -> C5 120@5x5 -> F6 84 -> 10 Euclidean RBF units, with f(a) = 1.7159 tanh(2a/3) after every layer
    up to F6. Unlike the common "LeNet" re-implementations (max pooling, full C3, ReLU, softmax), the
    subsampling, the C3 table and the RBF output are the paper's own, so the parameter and connection
    counts reproduce Sec. II-B layer by layer. ``num_classes`` sets the number of RBF output units.
    Custom layers: ``Subsampling`` (a depthwise ``F.conv2d``), ``ConnectionTableConv2d`` (grouped
    ``nn.Conv2d`` blocks over gathered input maps) and ``EuclideanRBF`` (one ``F.linear`` plus norms).
    """
    if num_classes < 1:
        raise ModelOptionError(f"num_classes must be >= 1, got {num_classes}")
    return LeNet5(num_classes)
