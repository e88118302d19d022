"""Calibration: time a designed set of one-layer kernels on one device and fit each kind's latency rule.

The kernel set (``kernels``) covers the layers real CNNs and transformers run, at the shapes they run them:
dense convolutions by kernel size (3, 5, 7), stride (1, 2) and channel/spatial class (stems at 224x224 down to
512 channels at 7x7), pointwise, depthwise and grouped convolutions (MobileNet, EfficientNet, ResNeXt shapes),
transposed convolutions, linear layers (classifier heads, ViT MLPs), batched matmuls and
``scaled_dot_product_attention``, batch/layer/group norms, softmax, activations, elementwise ops (with SE-style
broadcasting), max/avg and adaptive pooling, upsampling, concatenation, copies and no-op modules, at batch 1
and, where it is cheap, 8. ``mode="smoke"`` is a tiny set at small shapes, timed briefly (seconds, for tests).

Each kernel's FLOPs and bytes come from ``archcost.analyze`` of that one-layer module on the meta device, read
by ``kinds.row_features``, and its kind from ``kinds.kind_of`` of the row: so the predictor sees exactly the
features the analysis gives a real model's rows. The timing is ``archcost.profiling.timing.measure`` (warm-up,
calibrated iterations, median of several samples) under ``torch.inference_mode`` with the threads set as
``archcost profile`` sets them. A kernel that is an op in real models (``add``, ``cat``) is timed by calling its
forward directly, without a module call; a layer kernel is called as a module, as models call it.

Resumable: each timed point is appended to a partial JSON-lines file as it is measured; a rerun with the same
file skips the points it holds (a file from another device, threads, dtype or torch is refused).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from archcost.errors import InputError, InternalError
from archcost.predict.fit import (
    SINGLE_WEIGHT,
    FitError,
    Rule,
    fit_joint,
    fit_rule,
    peak_seconds_per_flop,
    sum_errors,
)
from archcost.predict.kinds import SMALL_HEAD_DIM, STEM_CHANNELS, kind_of, row_dispatches, row_features, row_large_bytes
from archcost.predict.profile import SCHEMA, SCHEMA_VERSION, CalibrationPoint, DeviceProfile, KindRule, Row

Shape = tuple[int, ...]
MODES = ("full", "smoke")
#: warm-up seconds, seconds per sample, samples, per mode (``archcost.profiling.timing.measure``)
TIMING = {"full": (0.1, 0.02, 5), "smoke": (0.002, 0.001, 3)}
#: a kernel with at least this many bytes of weights is timed with cold weights (``time_kernel``)
COLD_WEIGHT_BYTES = 4 * 2**20
COLD_TOTAL_BYTES = 768 * 2**20
MAX_COPIES = 192


@dataclass(frozen=True)
class Kernel:
    """One calibration kernel: ``key`` (stable, names the point in files), the ``kind`` it is designed to
    exercise, ``build()`` -> the one-layer module, the input ``shapes`` without the batch, the ``batch``, and
    ``op``: time ``forward`` directly (an op row in a model) instead of a module call; ``block``: a designed
    block of several layers (``archcost.predict.blocks``), kind ``"block"``."""

    key: str
    kind: str
    build: Callable[[], nn.Module]
    shapes: tuple[Shape, ...]
    batch: int = 1
    op: bool = False
    #: a designed block (``archcost.predict.blocks``): timed whole, its point keeps every row's kind and features
    block: bool = False


# -- the one-op modules ----------------------------------------------------------------------------------------


class Attention(nn.Module):
    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v)


class MatMul(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a @ b


class Add(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class Mul(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a * b


class Cat(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, 1)


class Softmax(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.softmax(-1)


class Mean(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(-1)


class SelfAttention(nn.Module):
    """``nn.MultiheadAttention`` on one sequence (q = k = v), as a model calls it: ``need_weights`` False (the
    fused ``scaled_dot_product_attention`` path) or True (its default: explicit scores, kind
    ``attention_weights``)."""

    def __init__(self, d: int, heads: int, need_weights: bool = False) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.need_weights = need_weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, need_weights=self.need_weights)[0]


class Recurrent(nn.Module):
    """An LSTM or GRU over a batch-first sequence, its outputs only."""

    def __init__(self, cell: str, i: int, h: int, layers: int = 1) -> None:
        super().__init__()
        self.rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(i, h, layers, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


class Pad(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (1, 1, 1, 1))


class Shuffle(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.channel_shuffle(x, 2)


# -- the kernel set --------------------------------------------------------------------------------------------


def _conv(kind: str, cin: int, cout: int, hw: int, k: int, s: int = 1, g: int = 1, b: int = 1) -> Kernel:
    def build() -> nn.Module:
        return nn.Conv2d(cin, cout, k, s, k // 2, groups=g, bias=False)

    return Kernel(f"conv2d {cin}->{cout} k{k} s{s} g{g} {hw}x{hw} b{b}", kind, build, ((cin, hw, hw),), b)


def _conv1d(cin: int, cout: int, length: int, k: int, b: int = 1) -> Kernel:
    def build() -> nn.Module:
        return nn.Conv1d(cin, cout, k, 1, k // 2, bias=False)

    return Kernel(f"conv1d {cin}->{cout} k{k} L{length} b{b}", "conv_1d", build, ((cin, length),), b)


def _module(kind: str, name: str, build: Callable[[], nn.Module], shape: Shape, b: int = 1) -> Kernel:
    return Kernel(f"{name} {'x'.join(map(str, shape))} b{b}", kind, build, (shape,), b)


def _op(kind: str, name: str, cls: type[nn.Module], shapes: Sequence[Shape], b: int = 1) -> Kernel:
    text = "+".join("x".join(map(str, s)) for s in shapes)
    return Kernel(f"{name} {text} b{b}", kind, cls, tuple(shapes), b, op=True)


def _smoke() -> list[Kernel]:
    out = [
        _conv("conv", 8, 8, 16, 3),
        _conv("conv", 16, 16, 8, 3),
        _conv("conv", 8, 16, 16, 3, 2),
        _conv("conv_stem", 3, 8, 16, 3),
        _conv("conv_pointwise", 8, 16, 16, 1),
        _conv("conv_pointwise", 16, 32, 8, 1),
        _conv("conv_depthwise", 16, 16, 16, 3, g=16),
        _conv("conv_depthwise", 32, 32, 8, 3, g=32),
    ]
    out += [
        _module("linear_gemv", "linear 64->32", partial(nn.Linear, 64, 32), (64,)),
        _module("linear", "linear 128->64", partial(nn.Linear, 128, 64), (128,), 4),
    ]
    out += [_module("batch_norm", f"batch_norm {c}", partial(nn.BatchNorm2d, c), (c, 16, 16)) for c in (8, 16)]
    out += [_module("activation", "relu", nn.ReLU, (c, 16, 16)) for c in (8, 32)]
    out += [_op("elementwise", "add", Add, [(c, 16, 16)] * 2) for c in (8, 32)]
    out += [_module("max_pool", "max_pool k2 s2", lambda: nn.MaxPool2d(2, 2), (c, 16, 16)) for c in (8, 32)]
    out += [_module("adaptive_pool", "global_avg_pool", lambda: nn.AdaptiveAvgPool2d(1), (c, 8, 8)) for c in (16, 64)]
    out += [_op("cat", "cat", Cat, [(c, 8, 8)] * 2) for c in (8, 32)]
    out += [_module("noop", "flatten", nn.Flatten, (c, 4, 4)) for c in (8, 32)]
    return out


def _full() -> list[Kernel]:
    out: list[Kernel] = []
    # dense convolutions: stems, then ResNet/VGG channel and spatial classes, 3x3 mostly, 5x5 and 7x7 some
    dense = [
        (3, 32, 224, 3, 2), (3, 64, 224, 7, 2), (3, 64, 224, 3, 1), (3, 16, 32, 3, 1), (16, 16, 32, 3, 1),
        (32, 32, 16, 3, 1), (64, 64, 8, 3, 1), (32, 32, 112, 3, 1), (64, 64, 56, 3, 1), (64, 128, 56, 3, 2),
        (128, 128, 28, 3, 1), (128, 256, 28, 3, 2), (256, 256, 14, 3, 1), (256, 512, 14, 3, 2), (512, 512, 7, 3, 1),
        (64, 192, 56, 3, 1), (192, 64, 28, 5, 1), (48, 64, 35, 5, 1), (128, 128, 17, 7, 1), (96, 96, 28, 5, 1),
        (512, 512, 14, 3, 1), (16, 32, 56, 5, 2), (384, 384, 13, 3, 1),
    ]  # fmt: skip
    for cin, cout, hw, k, s in dense:
        kind = "conv_stem" if cin <= STEM_CHANNELS else "conv"
        out.append(_conv(kind, cin, cout, hw, k, s))
        if cin * cout * k * k * (hw // s) ** 2 < 60e6:
            out.append(_conv(kind, cin, cout, hw, k, s, b=8))
    # more stems (AlexNet's 11x11 stride 4, Inception's 299x299, LeNet's grey 5x5, CIFAR's 3x3) and dense
    # convolutions on large maps at batch 8 (VGG's: activations far beyond the caches)
    for cin, cout, hw, k, s, b in (
        (3, 96, 224, 11, 4, 1), (3, 32, 299, 3, 2, 1), (1, 6, 32, 5, 1, 1), (1, 6, 32, 5, 1, 8), (3, 64, 32, 3, 1, 1),
        (3, 64, 32, 3, 1, 8), (3, 24, 224, 3, 2, 8), (64, 64, 112, 3, 1, 8), (128, 128, 56, 3, 1, 8),
        (256, 256, 28, 3, 1, 8),
    ):  # fmt: skip
        out.append(_conv("conv_stem" if cin <= STEM_CHANNELS else "conv", cin, cout, hw, k, s, b=b))
    # dense convolutions whose maps are large tensors at batch 8 (``kinds.LARGE_TENSOR_BYTES``: VGG's first
    # stages, ResNet's stem): on this project's CPU they ran at half the FLOP rate of the same convolution at batch 1
    for cin, cout, hw, k, s in ((3, 64, 224, 3, 1), (3, 64, 224, 7, 2), (64, 64, 224, 3, 1), (64, 128, 112, 3, 1),
                                (128, 128, 112, 3, 1), (128, 256, 56, 3, 1), (256, 256, 56, 3, 1)):  # fmt: skip
        out.append(_conv("conv_stem" if cin <= STEM_CHANNELS else "conv", cin, cout, hw, k, s, b=8))
    pointwise = [
        (64, 256, 56), (256, 64, 56), (128, 512, 28), (512, 128, 28), (256, 1024, 14), (1024, 256, 14),
        (512, 2048, 7), (2048, 512, 7), (32, 16, 112), (16, 96, 112), (96, 24, 56), (24, 144, 56), (144, 24, 56),
        (192, 32, 28), (384, 64, 14), (64, 384, 14), (960, 160, 7), (160, 960, 7), (320, 1280, 7), (16, 64, 32),
        (64, 16, 32), (256, 128, 8), (16, 48, 8), (16, 16, 8),
    ]  # fmt: skip
    for cin, cout, hw in pointwise:
        out.append(_conv("conv_pointwise", cin, cout, hw, 1))
        if cin * cout * hw * hw < 30e6:
            out.append(_conv("conv_pointwise", cin, cout, hw, 1, b=8))
    # pointwise convolutions at batch 8 on large maps (Xception's entry flow, DenseNet's bottlenecks)
    for cin, cout, hw in ((64, 128, 112), (128, 256, 56), (256, 128, 56), (512, 128, 28)):
        out.append(_conv("conv_pointwise", cin, cout, hw, 1, b=8))
    for cin, cout, hw in ((256, 512, 56), (1024, 2048, 14), (512, 1024, 28), (64, 128, 32), (128, 256, 16)):
        out.append(_conv("conv_pointwise_strided", cin, cout, hw, 1, 2))
    depthwise = [
        (32, 112, 3, 1), (96, 112, 3, 2), (144, 56, 3, 1), (144, 56, 3, 2), (192, 28, 3, 1), (384, 14, 3, 1),
        (576, 14, 3, 1), (960, 7, 3, 1), (240, 28, 5, 1), (672, 14, 5, 1), (1152, 7, 5, 1), (64, 32, 3, 1),
        (128, 16, 3, 1), (480, 14, 3, 1), (32, 56, 7, 1),
    ]  # fmt: skip
    for c, hw, k, s in depthwise:
        out.append(_conv("conv_depthwise", c, c, hw, k, s, g=c))
        out.append(_conv("conv_depthwise", c, c, hw, k, s, g=c, b=8))
    for c, hw in ((128, 112), (256, 56), (728, 19)):  # large maps at batch 8 (Xception's)
        out.append(_conv("conv_depthwise", c, c, hw, 3, 1, g=c, b=8))
    grouped = [
        (128, 56, 3, 32),
        (256, 28, 3, 32),
        (512, 14, 3, 32),
        (1024, 7, 3, 32),
        (256, 56, 3, 64),
        (240, 28, 1, 3),
    ]
    for c, hw, k, g in grouped:
        out.append(_conv("conv_grouped", c, c, hw, k, g=g))
        out.append(_conv("conv_grouped", c, c, hw, k, g=g, b=4))
    # depthwise and grouped convolutions of few channels on small maps (CIFAR-scale networks, LeNet's partial
    # connections and subsampling): a floor of tens of microseconds per call on this project's CPU, which the
    # large ones above cannot show; 2x2 stride-2 depthwise reads as conv_grouped (``kinds.conv_kind``)
    for c, hw, k, s, g in ((8, 16, 3, 1, 8), (16, 12, 3, 1, 16), (32, 8, 5, 1, 32), (8, 24, 2, 2, 8),
                           (16, 12, 3, 1, 4), (24, 10, 5, 1, 3), (48, 8, 3, 1, 8), (12, 16, 2, 2, 12)):  # fmt: skip
        kind = "conv_depthwise" if g == c and k % 2 else "conv_grouped"
        out.append(_conv(kind, c, c, hw, k, s, g=g))
        out.append(_conv(kind, c, c, hw, k, s, g=g, b=8))
    # LeNet-5's partial connections (C3): few input maps per group, 5x5, on 14x14 maps
    for cin, cout, g in ((18, 6, 6), (24, 6, 6), (12, 3, 3)):
        for b in (1, 8):
            out.append(_conv("conv_grouped", cin, cout, 14, 5, g=g, b=b))
    # 1-D convolutions (text and audio models): few channels on short sequences to wide ones on long
    for cin, cout, length, k, batches in ((16, 64, 16, 3, (1, 8)), (16, 32, 32, 3, (1, 8)), (32, 64, 100, 5, (1, 8)),
                                          (64, 64, 128, 3, (1, 8)), (128, 128, 256, 5, (1,)), (256, 256, 512, 3, (1,)),
                                          (64, 128, 128, 1, (1, 8))):  # fmt: skip
        out += [_conv1d(cin, cout, length, k, b) for b in batches]
    for cin, cout, hw, k in ((64, 32, 28, 2), (256, 128, 14, 2), (128, 64, 28, 4)):
        out.append(
            Kernel(
                f"conv_transpose2d {cin}->{cout} k{k} s2 {hw}x{hw} b1",
                "conv_transpose",
                partial(nn.ConvTranspose2d, cin, cout, k, 2, (k - 2) // 2),
                ((cin, hw, hw),),
            )
        )
    # linear layers: classifier heads at batch 1, 8 and 64; ViT/BERT MLPs on 197 / 64 tokens
    # (at batch 1 a matrix-vector product: kind linear_gemv)
    for i, o in ((512, 1000), (2048, 1000), (1280, 1000), (4096, 4096), (9216, 4096), (1024, 10), (256, 128)):
        for b in (1, 8, 64):
            if i * o * b < 80e6:
                kind = "linear_gemv" if b == 1 else "linear"
                out.append(_module(kind, f"linear {i}->{o}", partial(nn.Linear, i, o), (i,), b))
    for i, o, b in ((25088, 4096, 1), (25088, 4096, 8), (4096, 1000, 1), (400, 120, 1), (84, 10, 1), (9216, 4096, 8),
                    (4096, 4096, 8), (4096, 1000, 8)):  # fmt: skip
        kind = "linear_gemv" if b == 1 else "linear"
        out.append(_module(kind, f"linear {i}->{o}", partial(nn.Linear, i, o), (i,), b))
    for tokens, i, o in (
        (197, 768, 768),
        (197, 768, 3072),
        (197, 3072, 768),
        (64, 512, 512),
        (50, 384, 1152),
        (16, 64, 64),
    ):
        out.append(_module("linear", f"linear {i}->{o}", partial(nn.Linear, i, o), (tokens, i)))
    for h, n, d in ((12, 197, 64), (8, 64, 64), (6, 50, 64), (4, 256, 32), (16, 16, 16)):
        out.append(_op("matmul", "matmul", MatMul, [(h, n, d), (h, d, n)]))
        out.append(_op("attention", "sdpa", Attention, [(h, n, d)] * 3))
    out.append(_op("attention", "sdpa", Attention, [(12, 197, 64)] * 3, 8))
    # small heads (d = 8, as convolutional attention blocks use) and long sequences
    for h, n, d, b in ((2, 64, 8, 1), (2, 64, 8, 8), (8, 256, 8, 1), (8, 256, 8, 8), (4, 1024, 16, 1)):
        kind = "attention_small_head" if d <= SMALL_HEAD_DIM else "attention"
        out.append(_op(kind, "sdpa", Attention, [(h, n, d)] * 3, b))
    for n, d, h, b in ((16, 64, 4, 1), (64, 256, 8, 1), (197, 384, 6, 1), (16, 64, 4, 8), (50, 128, 4, 8),
                       (1024, 64, 8, 1)):  # fmt: skip
        out.append(_module("attention", f"multihead_attention d{d} h{h}", partial(SelfAttention, d, h), (n, d), b))
    # nn.MultiheadAttention as models call it by default (need_weights=True: explicit scores)
    for n, d, h, b in ((16, 64, 4, 1), (64, 256, 8, 1), (197, 384, 6, 1), (16, 64, 4, 8), (50, 128, 4, 8),
                       (256, 64, 8, 1), (256, 64, 8, 8), (1024, 64, 8, 1)):  # fmt: skip
        out.append(_module("attention_weights", f"multihead_attention d{d} h{h} weights",
                           partial(SelfAttention, d, h, True), (n, d), b))  # fmt: skip
    for cell, n, i, h, b in (("lstm", 16, 64, 128, 1), ("lstm", 32, 128, 256, 1), ("lstm", 16, 64, 128, 8),
                             ("gru", 16, 64, 128, 1), ("gru", 50, 256, 256, 8), ("lstm", 100, 32, 64, 1),
                             ("lstm", 4, 256, 256, 1), ("lstm", 64, 256, 256, 1), ("lstm", 4, 128, 64, 1),
                             ("lstm", 32, 128, 64, 8)):  # fmt: skip
        out.append(_module("recurrent", f"{cell} {i}->{h}", partial(Recurrent, cell, i, h), (n, i), b))
    out.append(_op("matmul", "matmul", MatMul, [(12, 197, 64), (12, 64, 197)], 8))
    # norms, softmax
    for c, hw in (
        (64, 112),
        (32, 112),
        (64, 56),
        (256, 56),
        (128, 28),
        (512, 28),
        (256, 14),
        (1024, 14),
        (2048, 7),
        (16, 32),
        (64, 8),
    ):
        out.append(_module("batch_norm", f"batch_norm {c}", partial(nn.BatchNorm2d, c), (c, hw, hw)))
        if c * hw * hw < 300e3:
            out.append(_module("batch_norm", f"batch_norm {c}", partial(nn.BatchNorm2d, c), (c, hw, hw), 8))
    for n, d in ((197, 768), (196, 384), (49, 1024), (3136, 96), (64, 512), (50, 384), (16, 64)):
        out.append(_module("layer_norm", f"layer_norm {d}", partial(nn.LayerNorm, d), (n, d)))
    for c, hw in ((256, 56), (512, 28), (64, 32)):
        out.append(_module("group_norm", f"group_norm 32x{c}", partial(nn.GroupNorm, 32, c), (c, hw, hw)))
    for c, hw in ((96, 55), (256, 27), (64, 56), (192, 28), (96, 109)):
        out.append(
            _module("local_response_norm", "local_response_norm 5", partial(nn.LocalResponseNorm, 5), (c, hw, hw))
        )
    for shape in ((12, 197, 197), (8, 64, 64), (1000,), (4, 256, 256)):
        out.append(_op("softmax", "softmax", Softmax, [shape]))
    for rows, cols in ((64, 16), (128, 100), (256, 3136), (197, 768), (512, 49)):
        out.append(_op("reduction", "mean", Mean, [(rows, cols)]))
    # activations and elementwise ops at feature-map sizes from 112x112 to 7x7, and token sizes
    maps = (
        (64, 112, 112),
        (32, 112, 112),
        (256, 56, 56),
        (64, 56, 56),
        (512, 28, 28),
        (1024, 14, 14),
        (2048, 7, 7),
        (16, 32, 32),
    )
    acts: dict[str, Callable[[], nn.Module]] = {
        "relu": nn.ReLU, "relu6": nn.ReLU6, "silu": nn.SiLU, "gelu": nn.GELU, "sigmoid": nn.Sigmoid,
        "hardswish": nn.Hardswish,
    }  # fmt: skip
    # and on LeNet- and CIFAR-sized tensors of a few thousand elements, where the fixed cost per call is most of
    # the time; tanh is a kind of its own (kinds.py)
    tiny = ((6, 28, 28), (16, 8, 8), (84,))
    for name, cls in acts.items():
        kind = "activation" if name in ("relu", "relu6", "hardswish") else "activation_transcendental"
        shapes = maps if name in ("relu", "silu") else maps[::3]
        for shape in (*shapes, *tiny[:2]) if name in ("relu", "sigmoid", "silu", "gelu") else shapes:
            out.append(_module(kind, name, cls, shape))
    out.append(_module("activation_transcendental", "gelu", nn.GELU, (197, 3072)))
    for shape in (*maps[::3], *tiny):
        out.append(_module("activation_tanh", "tanh", nn.Tanh, shape))
    out.append(_module("activation_tanh", "tanh", nn.Tanh, (6, 28, 28), 8))
    out.append(_module("activation", "relu", nn.ReLU, (64, 56, 56), 8))
    # feature maps far beyond the caches at batch 8 (VGG's and AlexNet's first layers: 25 MB to 100 MB)
    for c, hw in ((64, 224), (128, 112), (96, 55)):
        out.append(_module("activation", "relu", nn.ReLU, (c, hw, hw), 8))
        out.append(_module("batch_norm", f"batch_norm {c}", partial(nn.BatchNorm2d, c), (c, hw, hw), 8))
        out.append(_module("max_pool", "max_pool k2 s2", lambda: nn.MaxPool2d(2, 2), (c, hw, hw), 8))
    out.append(_module("local_response_norm", "local_response_norm 5", partial(nn.LocalResponseNorm, 5),
                       (96, 55, 55), 8))  # fmt: skip
    out.append(_op("elementwise", "add", Add, [(64, 112, 112)] * 2, 8))
    for shape in maps:
        out.append(_op("elementwise", "add", Add, [shape, shape]))
    for c, hw in ((96, 56), (240, 28), (672, 14), (1152, 7)):
        out.append(_op("elementwise", "mul", Mul, [(c, hw, hw), (c, 1, 1)]))
    out += [_op("elementwise", "add", Add, [(256, 56, 56)] * 2, 8), _op("elementwise", "mul", Mul, [(197, 768)] * 2)]
    out += [_op("elementwise", "add", Add, [shape] * 2) for shape in tiny]
    out.append(_op("elementwise", "mul", Mul, [(84,)] * 2))
    # pooling and upsampling
    for c, hw in ((64, 112), (64, 224), (128, 112), (256, 56), (512, 28), (512, 14), (192, 56), (16, 32)):
        out.append(_module("max_pool", "max_pool k3 s2", lambda: nn.MaxPool2d(3, 2, 1), (c, hw, hw)))
        out.append(_module("max_pool", "max_pool k2 s2", lambda: nn.MaxPool2d(2, 2), (c, hw, hw)))
    for c, hw in ((128, 56), (256, 28), (512, 14), (192, 35), (768, 17)):
        out.append(_module("avg_pool", "avg_pool k2 s2", lambda: nn.AvgPool2d(2, 2), (c, hw, hw)))
        out.append(_module("avg_pool", "avg_pool k3 s1", lambda: nn.AvgPool2d(3, 1, 1), (c, hw, hw)))
    for c, hw in ((512, 7), (2048, 7), (1280, 7), (1024, 7), (96, 112), (240, 28), (672, 14), (64, 8)):
        out.append(_module("adaptive_pool", "global_avg_pool", lambda: nn.AdaptiveAvgPool2d(1), (c, hw, hw)))
    out.append(_module("adaptive_pool", "global_avg_pool", lambda: nn.AdaptiveAvgPool2d(1), (2048, 7, 7), 8))
    for c, hw in ((256, 14), (128, 28), (64, 56), (512, 7)):
        out.append(_module("upsample", "upsample nearest x2", lambda: nn.Upsample(scale_factor=2), (c, hw, hw)))
        out.append(
            _module(
                "upsample",
                "upsample bilinear x2",
                lambda: nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                (c, hw, hw),
            )
        )
    # concatenation, copies, no-op modules
    cats = [
        [(64, 56, 56)] * 2, [(64, 28, 28)] * 4, [(256, 28, 28), (32, 28, 28)], [(512, 14, 14), (32, 14, 14)],
        [(128, 14, 14)] * 4, [(116, 28, 28)] * 2, [(1024, 7, 7), (32, 7, 7)], [(16, 32, 32)] * 2,
    ]  # fmt: skip
    out += [_op("cat", "cat", Cat, shapes) for shapes in cats]
    out.append(_op("cat", "cat", Cat, [(64, 56, 56)] * 2, 8))
    for shape in ((64, 56, 56), (256, 28, 28), (116, 28, 28), (1024, 7, 7)):
        out.append(_op("copy", "pad", Pad, [shape]))
        out.append(_op("copy", "channel_shuffle", Shuffle, [shape]))
    for shape in ((512, 7, 7), (2048, 1, 1), (64, 56, 56)):
        out.append(_module("noop", "flatten", nn.Flatten, shape))
        out.append(_module("noop", "dropout", lambda: nn.Dropout(0.5).eval(), shape))
        out.append(_module("noop", "identity", nn.Identity, shape))
    return out


def kernels(mode: str = "full") -> list[Kernel]:
    """The designed kernel set of ``mode`` (``"full"``: a few hundred kernels, minutes on a CPU; ``"smoke"``: a
    few dozen tiny ones, seconds), then its designed blocks (``blocks.designed_blocks``; full: at batch 1 and 8).
    Keys are unique. Raises ``ValueError`` for another mode."""
    if mode not in MODES:
        raise ValueError(f"unknown calibration mode {mode!r}: one of {MODES}")
    from archcost.predict.blocks import designed_blocks

    found = _full() if mode == "full" else _smoke()
    batches = (1, 8) if mode == "full" else (1,)
    found += [Kernel(f"{key} b{b}", "block", build, (shape,), b, block=True)
              for key, build, shape in designed_blocks(mode) for b in batches]  # fmt: skip
    keys = [k.key for k in found]
    if len(set(keys)) != len(keys):
        raise InternalError(f"calibration kernel keys repeat: {sorted(k for k in keys if keys.count(k) > 1)}")
    return found


def spread(kernel_set: Sequence[Kernel]) -> list[Kernel]:
    """``kernel_set`` reordered round-robin over its kinds (designed blocks being one): the first kernel of every
    kind, then the second of every kind, and so on, each kind's own kernels in their order. A calibration cut
    short by a ``deadline`` then still has points of as many kinds as it had time for."""
    by_kind: dict[str, list[Kernel]] = {}
    for k in kernel_set:
        by_kind.setdefault(k.kind, []).append(k)
    queues = list(by_kind.values())
    return [q[i] for i in range(max(map(len, queues), default=0)) for q in queues if i < len(q)]


# -- measuring -------------------------------------------------------------------------------------------------


def features(kernel: Kernel, dtype: str = "float32") -> tuple[str, float, float, tuple[Row, ...]]:
    """``(kind, flops, bytes, rows)`` of ``kernel`` as ``archcost.analyze`` of its module on the meta device
    gives them: ``rows`` every analysed row as ``(kind, flops, bytes, dispatches, large_bytes)``
    (``kinds.kind_of``, ``kinds.row_features``, ``kinds.row_dispatches``, ``kinds.row_large_bytes``); flops and
    bytes their sums; kind that of the row with the most FLOPs (``rows[0]`` of a single kernel is that row), or
    ``"block"`` for a designed block. Raises ``InternalError`` for a kernel whose analysis has no row."""
    from archcost.cost import analyze
    from archcost.units import DTYPES, dtype_bytes

    with torch.device("meta"):
        module = kernel.build()
    report = analyze(module, input_size=list(kernel.shapes), batch_size=kernel.batch, dtype=dtype, device="meta")
    if not report.layers:
        raise InternalError(f"calibration kernel {kernel.key}: the analysis has no row")
    element = dtype_bytes(DTYPES[dtype])
    rows = tuple(
        (kind_of(row), *row_features(row, element), float(row_dispatches(row)), row_large_bytes(row, element))
        for row in report.layers
    )
    flops, nbytes = sum(r[1] for r in rows), sum(r[2] for r in rows)
    if kernel.block:
        return "block", flops, nbytes, rows
    main = max(range(len(rows)), key=lambda i: (report.layers[i].flops, report.layers[i].activation_bytes))
    return rows[main][0], flops, nbytes, (rows[main], *rows[:main], *rows[main + 1 :])


def point_of(kernel: Kernel, dtype: str, median: float, p10: float, p90: float) -> CalibrationPoint:
    """The ``CalibrationPoint`` of ``kernel`` timed at ``median`` (``p10``, ``p90``) seconds: its ``features``;
    a block keeps its rows, a single kernel the dispatches of its main row."""
    kind, flops, nbytes, rows = features(kernel, dtype)
    if kernel.block:
        return CalibrationPoint(kernel.key, kind, flops, nbytes, median, p10, p90, rows)
    return CalibrationPoint(kernel.key, kind, flops, nbytes, median, p10, p90, (), rows[0][3], rows[0][4])


def time_kernel(
    kernel: Kernel, device: torch.device, dtype: torch.dtype, mode: str = "full"
) -> tuple[float, float, float]:
    """``(median, p10, p90)`` seconds of one call of ``kernel`` on ``device`` in ``dtype`` (random weights and
    inputs), timed by ``archcost.profiling.timing.measure`` with the ``TIMING`` of ``mode``. A layer with
    ``COLD_WEIGHT_BYTES`` or more of weights is timed cycling through copies of itself (up to ``COLD_TOTAL_BYTES``
    in all, at most ``MAX_COPIES``), so its weights come from memory as in a large model's forward: timed in a
    loop, a 67 MB Linear ran from this project's CPU's cache at twice the speed it reads cold weights."""
    from archcost.profiling.timing import measure

    warmup_s, min_time_s, repeats = TIMING[mode]
    generator = torch.Generator().manual_seed(0)
    module = kernel.build().to(device=device, dtype=dtype).eval()
    xs = [torch.randn(kernel.batch, *s, generator=generator).to(device=device, dtype=dtype) for s in kernel.shapes]
    weight_bytes = sum(p.numel() * p.element_size() for p in module.parameters())
    copies = [module]
    if not kernel.block and weight_bytes >= COLD_WEIGHT_BYTES:
        # weights as a forward of a large model reads them, from memory: cycle through copies that overflow caches
        copies += [copy.deepcopy(module) for _ in range(min(MAX_COPIES, COLD_TOTAL_BYTES // weight_bytes) - 1)]
    calls = itertools.cycle([m.forward if kernel.op else m for m in copies])
    with torch.inference_mode():
        timing = measure(lambda: next(calls)(*xs), device, warmup_s=warmup_s, min_time_s=min_time_s, repeats=repeats)
    s = timing.stats
    return s.median_s, s.p10_s, s.p90_s


# -- the partial file ------------------------------------------------------------------------------------------


def _identity(device: str, device_name: str, threads: int, dtype: str, mode: str) -> dict:
    return {
        "device": device,
        "device_name": device_name,
        "threads": threads,
        "dtype": dtype,
        "mode": mode,
        "torch": torch.__version__,
    }


def read_partial(path: str | Path, identity: dict) -> dict[str, CalibrationPoint]:
    """The points a partial file already holds, by key; {} when there is none. A line cut short (Ctrl-C
    while writing) is skipped. Raises ``InputError`` for a file made on another setup (``identity``: device,
    device_name, threads, dtype, mode, torch) or that is not a partial calibration file."""
    path = Path(path)
    if not path.exists():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        header = json.loads(lines[0]) if lines else {}
    except json.JSONDecodeError:
        header = {}
    if not isinstance(header, dict) or header.get("partial_of") != SCHEMA:
        raise InputError(
            f"{path} is not a partial calibration file", "delete it or give another --output: calibrate writes it"
        )
    theirs = header.get("identity", {})
    differ = [k for k in identity if theirs.get(k) != identity[k]]
    if differ:
        shown = ", ".join(f"{k} {theirs.get(k)!r} there, {identity[k]!r} now" for k in differ)
        raise InputError(
            f"the partial calibration {path} was timed on another setup ({shown})",
            "delete it to start again, or rerun with the setup it was made with",
        )
    points: dict[str, CalibrationPoint] = {}
    for line in lines[1:]:
        try:
            d = json.loads(line)
            point = CalibrationPoint(**d)
        except (json.JSONDecodeError, TypeError):
            continue  # a line cut short
        points[point.key] = point
    return points


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text + "\n")
        fh.flush()


# -- the calibration -------------------------------------------------------------------------------------------

#: ``on_point(done, total, key, skipped)``: after each kernel (``skipped``: it came from the partial file)
Progress = Callable[[int, int, str, bool], None]


def calibrate(
    device: str = "cpu",
    *,
    threads: int | None = None,
    dtype: str = "float32",
    mode: str = "full",
    partial: str | Path | None = None,
    on_point: Progress | None = None,
    kernel_set: Sequence[Kernel] | None = None,
    deadline: float | None = None,
) -> DeviceProfile:
    """Time the kernel set of ``mode`` (or ``kernel_set``) on ``device`` and fit one rule per kind.

    ``device``: ``cpu``, ``cuda`` or ``cuda:N`` (``auto``: CUDA when available); ``threads``: torch CPU threads
    during the timing (default torch's own; the profile records the count in force); ``dtype``: float32,
    float16 or bfloat16; ``partial``: a JSON-lines file that keeps each timed point and is read back on a
    rerun (the caller removes it once the profile is written); ``on_point``: progress (``Progress``);
    ``deadline``: a ``time.monotonic()`` instant after which no further kernel is started (the first always
    is): the profile fits the points timed by then (``len(profile.points)`` says how many; order the set with
    ``spread`` so that a cut set still has every kind).

    Returns the ``DeviceProfile``: per kind a ``fit.fit_rule`` rule and its ``fit.errors`` on its own points.
    Raises ``InputError`` for an unknown device, dtype or mode, more threads than CPUs, or a partial file of
    another setup; ``DeviceError`` for a CUDA device that is not there.
    """
    from archcost import __version__
    from archcost.profiling.environment import check_threads
    from archcost.profiling.sweep import measurement_setup, resolve_device
    from archcost.units import DTYPES

    if mode not in MODES:
        raise InputError(f"unknown calibration mode {mode!r}", f"use one of {', '.join(MODES)}")
    if dtype not in ("float32", "float16", "bfloat16"):
        raise InputError(f"calibration dtype {dtype!r} is not a float dtype", "use float32, float16 or bfloat16")
    dev = resolve_device(device)
    if dev.type == "cpu":
        check_threads(threads)
    chosen = list(kernel_set) if kernel_set is not None else kernels(mode)
    points: list[CalibrationPoint] = []
    with measurement_setup(dev, threads, dtype) as env:
        where = str(dev) if dev.type == "cuda" else "cpu"
        ident = _identity(where, env["env_device_name"], env["env_threads"], dtype, mode)
        done: dict[str, CalibrationPoint] = {}
        path = Path(partial) if partial is not None else None
        if path is not None:
            done = read_partial(path, ident)
            if not path.exists():
                _append(path, json.dumps({"partial_of": SCHEMA, "identity": ident}, sort_keys=True))
        for i, kernel in enumerate(chosen):
            if deadline is not None and points and time.monotonic() > deadline:
                break
            point = done.get(kernel.key)
            if point is None:
                point = point_of(kernel, dtype, *time_kernel(kernel, dev, DTYPES[dtype], mode))
                if path is not None:
                    _append(path, json.dumps(point.to_dict(), sort_keys=True))
            points.append(point)
            if on_point is not None:
                on_point(i + 1, len(chosen), kernel.key, kernel.key in done)
    return build_profile(points, env, where, dtype, mode, __version__)


def merge_profiles(profiles: Sequence[DeviceProfile]) -> DeviceProfile:
    """One profile from several calibrations of one setup, each made in a process of its own
    (``archcost calibrate --processes N``): per point, the median of the processes' median times (``p10_s`` and
    ``p90_s`` become the least and the most of them), then the rules fitted again (``build_profile``).

    Why: on this project's CPU identical fresh processes time the same kernel tens of percent apart (process
    state), and a profile from one process carries that process's state into every prediction; the blocks'
    own fit error moved from 8% to 11.5% median between two single-process calibrations of the same code.
    Raises ``InputError`` for no profiles, or profiles of another device, device name, threads, dtype, torch,
    mode or point set than the first."""
    import statistics

    if not profiles:
        raise InputError("no device profiles to merge", "give one or more profiles of one setup")
    first = profiles[0]

    def setup(p: DeviceProfile) -> tuple:
        return (p.device, p.device_name, p.threads, p.dtype, p.torch_version, p.mode, tuple(q.key for q in p.points))

    for p in profiles[1:]:
        if setup(p) != setup(first):
            raise InputError(
                f"device profile {p.path or '?'} is of another setup or point set than {first.path or 'the first'}",
                "merge only calibrations made with the same command on the same machine",
            )
    points = []
    for i, point in enumerate(first.points):
        times = [p.points[i].time_s for p in profiles]
        points.append(dataclasses.replace(point, time_s=statistics.median(times), p10_s=min(times), p90_s=max(times)))
    return with_points(first, points)


def with_points(profile: DeviceProfile, points: Sequence[CalibrationPoint]) -> DeviceProfile:
    """A profile of ``profile``'s setup (device, its name, threads, dtype, host, platform, cuDNN, heap, kernel mode,
    archcost version) fitted to ``points`` instead (``build_profile``): how ``merge_profiles``, ``refit`` and
    benchmarks/predict_check.py fit measured times again."""
    env = {
        "env_device_name": profile.device_name,
        "env_threads": profile.threads,
        "env_host": profile.host,
        "env_platform": profile.platform,
        "env_cudnn": profile.cudnn,
        "env_heap": profile.heap,
    }
    return build_profile(points, env, profile.device, profile.dtype, profile.mode, profile.archcost_version)


def refit(profile: DeviceProfile) -> DeviceProfile:
    """``profile``'s measured times fitted again by this archcost: each point's kind and features recomputed
    from its kernel (``point_of`` of the kernel of ``profile.mode`` with the point's key; a key this kernel set
    no longer has is dropped), then ``build_profile``. Nothing is timed: so a change of the kinds or of the fit
    is judged on the same measurements (benchmarks/predict_check.py --refit). Raises ``InputError`` when no
    point's key is in the kernel set."""
    by_key = {k.key: k for k in kernels(profile.mode)}
    points = [point_of(by_key[p.key], profile.dtype, p.time_s, p.p10_s, p.p90_s) for p in profile.points
              if p.key in by_key]  # fmt: skip
    if not points:
        raise InputError(
            f"device profile {profile.path or '?'}: none of its points is a kernel of this archcost's "
            f"{profile.mode!r} set", "calibrate again with this archcost"
        )  # fmt: skip
    return with_points(profile, points)


def build_profile(
    points: Sequence[CalibrationPoint], env: dict, device: str, dtype: str, mode: str, archcost_version: str = ""
) -> DeviceProfile:
    """The profile of timed ``points``; ``env``: the ``env_*`` fields of
    ``archcost.profiling.environment.environment``.

    With designed blocks among the points: one ``"sum"`` rule per kind fitted to kernels and blocks at once
    (``fit.fit_joint``, single kernels weighted ``fit.SINGLE_WEIGHT``), each kind's ``fit_error`` on its own
    single kernels, and ``block_error`` on the blocks. Without: each kind's ``fit.fit_rule`` on its kernels."""
    singles = [p for p in points if not p.rows]
    blocks = [p for p in points if p.rows]
    by_kind: dict[str, list[CalibrationPoint]] = {}
    for p in singles:
        by_kind.setdefault(p.kind, []).append(p)
    if blocks:
        fitted = fit_joint(
            [p.parts for p in points],
            [p.time_s for p in points],
            [1.0 if p.rows else SINGLE_WEIGHT for p in points],
            min_seconds_per_flop=peak_seconds_per_flop([p.flops for p in points], [p.time_s for p in points]),
        )
    else:
        fitted = {kind: fit_rule(*_features(pts)) for kind, pts in by_kind.items()}

    def own_error(kind: str, rule: Rule) -> FitError:  # the rule on the kind's own single kernels
        pts = by_kind.get(kind, [])
        return sum_errors({kind: rule}, [p.parts for p in pts], [p.time_s for p in pts])

    rules = {k: KindRule(r, own_error(k, r)) for k, r in sorted(fitted.items())}
    block_error = sum_errors(fitted, [p.rows for p in blocks], [p.time_s for p in blocks]) if blocks else None
    cuda = device.startswith("cuda")
    return DeviceProfile(
        device=device,
        device_name=str(env["env_device_name"]),
        threads=int(env["env_threads"]),
        dtype=dtype,
        torch_version=torch.__version__,
        kinds=rules,
        points=tuple(points),
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        mode=mode,
        archcost_version=archcost_version,
        host=str(env.get("env_host") or ""),
        platform=str(env.get("env_platform") or ""),
        torch_git_version=getattr(torch.version, "git_version", None),
        cuda=torch.version.cuda if cuda else None,
        cudnn=env.get("env_cudnn"),
        float32_matmul_precision=torch.get_float32_matmul_precision(),
        heap=env.get("env_heap"),
        schema_version=SCHEMA_VERSION,
        block_error=block_error,
    )


def _features(pts: Sequence[CalibrationPoint]) -> tuple[list[float], list[float], list[float]]:
    return [p.flops for p in pts], [p.bytes for p in pts], [p.time_s for p in pts]
