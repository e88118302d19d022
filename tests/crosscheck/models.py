"""Small models for the cross-check tests (also loaded by the CLI as tests.crosscheck.models:NAME)."""

import torch
import torch.nn.functional as F
from torch import nn


class Mixed(nn.Module):
    """One of every op the conventions treat specially: batch norm with and without affine, group and
    layer norm, adaptive average pooling, nearest and bilinear upsampling, a 3-d linear, a matmul, a
    baddbmm, a bilinear layer and a transposed convolution."""

    input_size = (3, 8, 8)

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.bn_plain = nn.BatchNorm2d(4, affine=False)
        self.gn = nn.GroupNorm(2, 4)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.up_bilinear = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.deconv = nn.ConvTranspose2d(4, 2, 2, stride=2)
        self.ln = nn.LayerNorm(8)
        self.proj = nn.Linear(8, 5)
        self.bilinear = nn.Bilinear(5, 5, 3)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        x = self.gn(self.bn_plain(self.bn(self.conv(x))))  # 1x4x8x8
        u = self.up_bilinear(self.up(x))  # 1x4x32x32
        d = self.deconv(F.avg_pool2d(u, 4))  # 1x2x16x16
        t = self.proj(self.ln(x.flatten(2)[:, :, :8]))  # 1x4x5: a linear on a 3-d input
        m = torch.matmul(t, t.transpose(1, 2))  # 1x4x4
        b = torch.baddbmm(m, t, t.transpose(1, 2))  # 1x4x4
        y = self.bilinear(t[:, 0], t[:, 1])  # 1x3
        return torch.cat([self.pool(d).flatten(1), b.flatten(1), y], dim=1)


def mixed() -> nn.Module:
    return Mixed()


class DictOutput(nn.Module):
    """Returns a dict with a Python number in it: archcost analyses it, fvcore's jit trace cannot."""

    input_size = (3, 8, 8)

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        return {"features": self.bn(self.conv(x)), "stride": 1}


def dict_output() -> nn.Module:
    return DictOutput()


class WithEinsum(nn.Module):
    """A conv and an einsum: fvcore counts the einsum by numpy's contraction path, FlopCounterMode by the
    bmm torch runs (both written in the einsum's catalogue entry)."""

    input_size = (3, 4, 4)

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        f = self.conv(x).flatten(2)
        return torch.einsum("bcn,bdn->bcd", f, f)


def with_einsum() -> nn.Module:
    return WithEinsum()


class DirectConvolution(nn.Module):
    """Calls aten's convolution directly (``torch.convolution``), which archcost has no formula for and
    FlopCounterMode counts: the check cannot explain the difference."""

    input_size = (3, 4, 4)

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(4, 3, 1, 1))

    def forward(self, x):
        return torch.convolution(x, self.w, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1)


def direct_convolution() -> nn.Module:
    return DirectConvolution()


class Tied(nn.Module):
    """A linear layer whose weight is shared with a second one (tied weights)."""

    input_size = (6,)

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(6, 6)
        self.b = nn.Linear(6, 6)
        self.b.weight = self.a.weight

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


def tied() -> nn.Module:
    return Tied()
