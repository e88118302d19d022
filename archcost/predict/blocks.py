"""Designed blocks: small networks of the motifs CNNs and transformers are built from, timed whole in calibration.

A layer timed alone in a loop finds its input, weights and output buffers warm; in a network it follows another
kind of kernel, reads what that one just wrote and writes a fresh tensor (``benchmarks/predict_context.py``
measured the sum of a model's layers timed alone 6-34% below the model on this project's CPU). So the
calibration also times **blocks** whole: two or three repeats of one motif (conv-bn-relu stacks, basic and
bottleneck residual blocks, inverted residuals with and without squeeze-excitation, channel-shuffle units, dense
units, fire and inception modules, transformer encoder blocks, MLP heads, small LeNet-style stacks) at channel and
spatial classes spread over the ranges real models use. The fit (``fit.fit_joint``) then asks each kind's rule
to add up to every block's measured time as well as to match the single kernels.

The motifs are the generic ones of the literature (He et al. 2016; Sandler et al. 2018; Hu et al. 2018; Ma et
al. 2018; Huang et al. 2017; Iandola et al. 2016; Szegedy et al. 2015; Vaswani et al. 2017), built here with
shapes of the calibration's own choosing: no zoo model, and no model that ``benchmarks/predict_check.py``
scores, is built or timed in calibration.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn


def _cbr(cin: int, cout: int, k: int = 3, s: int = 1, g: int = 1, act: Callable[[], nn.Module] = nn.ReLU) -> list:
    return [nn.Conv2d(cin, cout, k, s, k // 2, groups=g, bias=False), nn.BatchNorm2d(cout), act()]


class Residual(nn.Module):
    """``body(x) + x`` (an identity shortcut)."""

    def __init__(self, body: list[nn.Module]) -> None:
        super().__init__()
        self.body = nn.Sequential(*body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + x


class SqueezeExcite(nn.Module):
    """Hu et al. 2018 with the SiLU of EfficientNet: global pool, 1x1 reduce, 1x1 expand, sigmoid, scale."""

    def __init__(self, c: int, r: int = 4) -> None:
        super().__init__()
        self.reduce, self.expand = nn.Conv2d(c, c // r, 1), nn.Conv2d(c // r, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.expand(F.silu(self.reduce(F.adaptive_avg_pool2d(x, 1)))))


class Branches(nn.Module):
    """Parallel branches concatenated on channels (fire, inception)."""

    def __init__(self, *branches: list[nn.Module]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(nn.Sequential(*b) for b in branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([b(x) for b in self.branches], 1)


class DenseUnit(nn.Module):
    """Huang et al. 2017 bottleneck unit: bn-relu-1x1 (4 x growth), bn-relu-3x3 (growth), concatenated to x."""

    def __init__(self, c: int, growth: int) -> None:
        super().__init__()
        self.f = nn.Sequential(
            nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, 4 * growth, 1, bias=False),
            nn.BatchNorm2d(4 * growth), nn.ReLU(), nn.Conv2d(4 * growth, growth, 3, 1, 1, bias=False),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.f(x)], 1)


class ShuffleUnit(nn.Module):
    """Ma et al. 2018 stride-1 unit: split, pointwise-depthwise-pointwise on one half, concatenate, shuffle."""

    def __init__(self, c: int) -> None:
        super().__init__()
        h = c // 2
        self.f = nn.Sequential(
            *_cbr(h, h, 1), nn.Conv2d(h, h, 3, 1, 1, groups=h, bias=False), nn.BatchNorm2d(h), *_cbr(h, h, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, 1)
        return F.channel_shuffle(torch.cat([a, self.f(b)], 1), 2)


class EncoderBlock(nn.Module):
    """Pre-norm transformer encoder block: layer norm, fused QKV, scaled_dot_product_attention, projection, MLP."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        x = x + self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.norm2(x))


def _inverted_residual(c: int, e: int, k: int, se: bool, act: Callable[[], nn.Module]) -> nn.Module:
    h = c * e
    body = [*_cbr(c, h, 1, act=act), *_cbr(h, h, k, 1, h, act=act)]
    body += [SqueezeExcite(h)] if se else []
    return Residual([*body, nn.Conv2d(h, c, 1, bias=False), nn.BatchNorm2d(c)])


def _bottleneck(c: int) -> nn.Module:
    m = c // 4
    return nn.Sequential(
        Residual([*_cbr(c, m, 1), *_cbr(m, m, 3), nn.Conv2d(m, c, 1, bias=False), nn.BatchNorm2d(c)]), nn.ReLU()
    )


def _basic(c: int) -> nn.Module:
    return nn.Sequential(Residual([*_cbr(c, c), nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c)]), nn.ReLU())


def _inception(c: int) -> nn.Module:
    return Branches(
        _cbr(c, c // 4, 1),
        [*_cbr(c, c // 8, 1), *_cbr(c // 8, c // 4, 3)],
        [*_cbr(c, c // 16, 1), *_cbr(c // 16, c // 8, 5)],
        [nn.MaxPool2d(3, 1, 1), *_cbr(c, c // 8, 1)],
    )


def _repeat(block: Callable[..., nn.Module], times: int, *args: object) -> nn.Module:
    return nn.Sequential(*(block(*args) for _ in range(times)))


def _cbr_stack(c: int) -> nn.Module:
    return nn.Sequential(*_cbr(c, c), *_cbr(c, c), nn.MaxPool2d(2, 2))


def _dense(c: int, growth: int) -> nn.Module:
    return nn.Sequential(*(DenseUnit(c + i * growth, growth) for i in range(3)))


def _fire(c: int) -> nn.Module:
    s = c // 8
    return nn.Sequential(*_cbr(c, s, 1), Branches(_cbr(s, c // 2, 1), _cbr(s, c // 2, 3)))


def _mlp(i: int, hidden: int, o: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(i, hidden), nn.ReLU(), nn.Dropout(), nn.Linear(hidden, o))


def _small(c: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(c, 16, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2),
    )  # fmt: skip


#: (key, build, input shape without the batch)
BlockSpec = tuple[str, Callable[[], nn.Module], tuple[int, ...]]


def designed_blocks(mode: str = "full") -> list[BlockSpec]:
    """The block set of ``mode``: ``"full"`` 64 blocks (each timed at batch 1 and 8 by the calibration);
    ``"smoke"`` three tiny ones. Keys name the motif, its widths and its input."""
    if mode == "smoke":
        return [
            ("block cbr c8 8x16x16", partial(_cbr_stack, 8), (8, 16, 16)),
            ("block basic c8 8x8x8", partial(_basic, 8), (8, 8, 8)),
            ("block ir c8 e2 k3 8x8x8", partial(_inverted_residual, 8, 2, 3, False, nn.ReLU6), (8, 8, 8)),
        ]
    out: list[BlockSpec] = []

    def add(name: str, build: Callable[[], nn.Module], shape: tuple[int, ...]) -> None:
        out.append((f"block {name} {'x'.join(map(str, shape))}", build, shape))

    for c, hw in ((16, 32), (32, 56), (64, 28), (128, 14), (256, 7), (64, 56), (32, 16)):
        add(f"cbr c{c}", partial(_cbr_stack, c), (c, hw, hw))
        add(f"basic c{c}", partial(_repeat, _basic, 2, c), (c, hw, hw))
    add("cbr c64", partial(_cbr_stack, 64), (64, 224, 224))  # VGG's first stage: large tensors at batch 8
    for c, hw in ((256, 56), (512, 28), (1024, 14), (64, 32), (128, 16)):
        add(f"bottleneck c{c}", partial(_repeat, _bottleneck, 2, c), (c, hw, hw))
    for c, hw, e, k in ((16, 112, 6, 3), (24, 56, 6, 3), (32, 28, 6, 5), (64, 14, 6, 3), (96, 14, 4, 5),
                        (160, 7, 6, 3), (40, 28, 3, 5)):  # fmt: skip
        add(f"ir c{c} e{e} k{k}", partial(_repeat, _inverted_residual, 2, c, e, k, False, nn.ReLU6), (c, hw, hw))
        add(f"ir-se c{c} e{e} k{k}", partial(_repeat, _inverted_residual, 2, c, e, k, True, nn.SiLU), (c, hw, hw))
    for c, hw in ((58, 28), (116, 28), (232, 14), (464, 7), (24, 56)):
        add(f"shuffle c{c}", partial(_repeat, ShuffleUnit, 3, c), (c, hw, hw))
    for c, hw, g in ((64, 56, 32), (128, 28, 32), (256, 14, 32), (512, 7, 32), (24, 32, 12)):
        add(f"dense c{c} g{g}", partial(_dense, c, g), (c, hw, hw))
    for c, hw in ((96, 56), (128, 28), (256, 14), (512, 13)):
        add(f"fire c{c}", partial(_fire, c), (c, hw, hw))
        add(f"inception c{c}", partial(_inception, c), (c, hw, hw))
    for d, n, h in ((192, 197, 3), (384, 50, 6), (256, 64, 4), (64, 16, 4)):
        add(f"encoder d{d} h{h}", partial(_repeat, EncoderBlock, 2, d, h), (n, d))
    for i, hidden, o in ((512 * 7 * 7, 4096, 1000), (256 * 6 * 6, 1024, 10), (1024, 512, 10), (400, 120, 84)):
        add(f"mlp {i}-{hidden}-{o}", partial(_mlp, i, hidden, o), (i,))
    for c, hw in ((6, 28), (16, 10), (1, 32), (3, 32)):
        add(f"small c{c}", partial(_small, c), (c, hw, hw))
    return out
