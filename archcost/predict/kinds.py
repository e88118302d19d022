"""Layer kinds: which latency rule prices a cost-table row, and the two features the rule reads from it.

A kind is a family of kernels that run alike on one device (dense 3x3 convolutions, depthwise convolutions,
batch norms, ...). nn-Meter (Zhang et al., MobiSys 2021) predicts per *kernel* for the same reason: a MAC in a
depthwise convolution costs many times a MAC in a dense one, so one device-wide MACs-per-second misleads.

A row's kind comes from the ops the analysis recorded for it (``LayerCost.type`` for an op row, else the op
of the row's parts that has the most FLOPs), looked up in the table that ``@classifies(*ops)`` fills: each
registered function maps a row to its kind (a duplicate op raises). Convolutions are split by their shapes
alone (``conv_kind``). An op no function classifies is kind ``"other"``, priced by a rule chosen from its
features and flagged (``fallbacks``): never silently.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

#: a dense convolution with at most this many input channels is ``conv_stem`` (``conv_kind``)
STEM_CHANNELS = 4

#: a tensor of at least this many bytes is *large* (``row_large_bytes``): glibc maps an allocation this large
#: afresh every time (``DEFAULT_MMAP_THRESHOLD_MAX`` on 64-bit, the ceiling of its dynamic mmap threshold:
#: mallopt(3)), so a fresh output of this size is faulted in page by page on every call unless the heap already
#: holds that much free memory. Measured in session 11 on this project's CPU (an AMD EPYC VM, 4 KiB pages,
#: transparent huge pages ``madvise``; hot loops, 1 thread, fresh processes): a ReLU on 8x64x224x224 (98 MiB)
#: took 25,091 minor faults and 45-80 ms per call, and 1 fault and 6 ms in a process whose heap already held the
#: memory; a 64->64 3x3 convolution ran 14% slower on 12 MiB maps, 87% on 24 MiB maps and 100% on 98 MiB maps
#: than with ``THP_MEM_ALLOC_ENABLE=1`` (2 MiB pages: page walks as well as faults). Held-out models refitted with
#: thresholds of 8 to 64 MiB (before the fit's FLOP-rate bound) came within +-10% for 35-41% of points (16 MiB:
#: 37%, 32 MiB: 40%): the mechanism chose the value, and the held-out figures, seen too, do not turn on it
LARGE_TENSOR_BYTES = 32 * 2**20

#: Every kind, with the kinds that price it, nearest first, when a device profile has no data for it.
FALLBACKS: dict[str, tuple[str, ...]] = {
    "conv": ("conv_pointwise", "conv_grouped", "linear"),
    "conv_stem": ("conv", "conv_pointwise"),
    "conv_pointwise": ("conv", "linear", "matmul"),
    "conv_pointwise_strided": ("conv_pointwise", "conv"),
    "conv_depthwise": ("conv_grouped", "conv", "avg_pool"),
    "conv_grouped": ("conv_depthwise", "conv", "conv_pointwise"),
    "conv_transpose": ("conv", "conv_pointwise"),
    "conv_1d": ("conv", "conv_pointwise", "linear"),
    "linear": ("matmul", "conv_pointwise", "conv"),
    "linear_gemv": ("linear", "matmul"),
    "matmul": ("linear", "conv_pointwise"),
    "attention": ("matmul", "linear"),
    "attention_small_head": ("attention", "matmul", "linear"),
    "attention_weights": ("attention", "matmul", "linear"),
    "recurrent": ("linear", "matmul"),
    "batch_norm": ("layer_norm", "elementwise", "activation"),
    "layer_norm": ("group_norm", "batch_norm", "softmax", "elementwise"),
    "group_norm": ("layer_norm", "batch_norm", "elementwise"),
    "local_response_norm": ("avg_pool", "softmax", "elementwise"),
    "softmax": ("layer_norm", "elementwise", "activation"),
    "activation": ("elementwise", "batch_norm"),
    "activation_transcendental": ("activation", "elementwise"),
    "activation_tanh": ("activation_transcendental", "activation", "elementwise"),
    "elementwise": ("activation", "batch_norm"),
    "reduction": ("adaptive_pool", "elementwise"),
    "max_pool": ("avg_pool", "adaptive_pool", "conv_depthwise"),
    "avg_pool": ("max_pool", "adaptive_pool", "conv_depthwise"),
    "adaptive_pool": ("avg_pool", "reduction", "max_pool"),
    "upsample": ("copy", "elementwise", "cat"),
    "cat": ("copy", "elementwise"),
    "copy": ("cat", "elementwise"),
    "noop": (),
    "other": (),  # chosen by features: other_fallbacks
}

KINDS = tuple(FALLBACKS)

Classifier = Callable[[Any], str]
_CLASSIFIERS: dict[str, Classifier] = {}


def classifies(*ops: str) -> Callable[[Classifier], Classifier]:
    """Register the decorated ``fn(row) -> kind`` for the analysis op names ``ops`` (``"conv2d"``); an op
    classified twice raises ``ValueError``, as does a kind not in ``FALLBACKS``."""

    def register(fn: Classifier) -> Classifier:
        for op in ops:
            known = _CLASSIFIERS.get(op)
            if known is not None and known is not fn:
                raise ValueError(f"op {op!r} is already classified by {known.__qualname__}")
            _CLASSIFIERS[op] = fn
        return fn

    return register


def _constant(kind: str, *ops: str) -> None:
    if kind not in FALLBACKS:
        raise ValueError(f"unknown kind {kind!r}")

    def fn(row: Any) -> str:
        return kind

    fn.__qualname__ = f"kind {kind}"
    classifies(*ops)(fn)


def _spatial(shape: object) -> tuple[int, ...] | None:
    if isinstance(shape, tuple) and len(shape) >= 3 and all(isinstance(d, int) for d in shape):
        return shape
    return None


@classifies("conv1d", "conv2d", "conv3d")
def conv_kind(row: Any) -> str:
    """Dense, pointwise (1x1), depthwise or grouped, from the row's shapes and MACs alone.

    A dense 1-D convolution (pointwise included: a text or audio model's) is ``conv_1d``: on this project's CPU
    (session 12, 1 thread) a 16->64 k3 on 16 steps took 12 us where the 2-D rule gave 40 us, and a 256->256 k3 on
    512 steps 1.9 ms where it gave 1.2 ms: another kernel, with another fixed cost and another rate.

    A dense ``k x k`` convolution of at most ``STEM_CHANNELS`` input channels (an RGB or grey image: a
    network's stem) is ``conv_stem``: its reduction dimension ``C_in * k * k`` is too short for the blocked
    kernels dense convolutions get, and on this project's CPU it ran 3x slower per FLOP than the rule that
    prices the others (a 3->64 3x3 at 224x224: 17 ms measured, 6 ms from the dense rule).

    With input ``(N, C_in, *S)`` and output ``(N, C_out, *S_out)``, MACs per output element are
    ``C_in / groups * prod(kernel)``. Equal to ``C_in``: a 1x1 dense convolution (``conv_pointwise``, or
    ``conv_pointwise_strided`` when its output has fewer positions than its input: a ResNet shortcut, which
    CPU kernels run several times slower per FLOP); a multiple of it: a dense ``k x k`` one (``conv``); else
    an odd ``k ** ndim`` (1 input channel per group, ``groups = C_in``): ``conv_depthwise``; anything else:
    ``conv_grouped``. (A grouped convolution whose channels per group times kernel area is an odd square,
    9 channels per group with a 3x3 kernel, reads as depthwise: rare in real models.)
    """
    x = _spatial(row.input_shapes[0]) if row.input_shapes else None
    out = _spatial(row.output_shape)
    if x is None or out is None or not row.macs:
        return "conv"
    c_in = x[1]
    per_out = row.macs / math.prod(out)
    pointwise = math.isclose(per_out, c_in)
    dense = pointwise or (per_out > c_in and math.isclose(per_out / c_in, round(per_out / c_in)))
    if dense and len(x) == 3:
        return "conv_1d"
    if pointwise:
        strided = math.prod(out[2:]) < math.prod(x[2:])
        return "conv_pointwise_strided" if strided else "conv_pointwise"
    if dense:
        return "conv_stem" if c_in <= STEM_CHANNELS else "conv"
    ndim = len(x) - 2
    k = round(per_out ** (1 / ndim))
    if k % 2 == 1 and k**ndim == round(per_out) and math.isclose(per_out, round(per_out)):
        return "conv_depthwise"
    return "conv_grouped"


_constant("conv_transpose", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")


@classifies("linear", "addmm", "bilinear")
def linear_kind(row: Any) -> str:
    """``linear_gemv`` when the input is a single row (``prod(shape[:-1]) == 1``: a classifier at batch 1, a
    matrix-vector product, BLAS level 2, bound by reading the weights), else ``linear`` (a matrix-matrix
    product, level 3). On this project's CPU one rule for both was 30% slow on the batch-1 heads of AlexNet and
    VGG (cold weights, 150 MB and more) and 30% fast on small layers at batch 64."""
    x = row.input_shapes[0] if row.input_shapes else None
    if isinstance(x, tuple) and x and all(isinstance(d, int) for d in x) and math.prod(x[:-1]) == 1:
        return "linear_gemv"
    return "linear"


_constant("linear_gemv", "addmv", "mv")
_constant("matmul", "matmul", "mm", "bmm", "baddbmm", "addbmm", "einsum", "dot", "vdot", "inner", "outer", "ger")
#: ``scaled_dot_product_attention`` with heads of at most this many channels is ``attention_small_head``
SMALL_HEAD_DIM = 8


@classifies("scaled_dot_product_attention")
def attention_kind(row: Any) -> str:
    """``attention_small_head`` when the query's last dimension (the head size ``d`` of ``(N, h, L, d)``) is at
    most ``SMALL_HEAD_DIM``, as in a convolutional block's attention; else ``attention``. A score costs a softmax
    exponential and ``4 d`` FLOPs, so with few channels per head the exponentials weigh: on this project's CPU
    (session 14's calibration, 1 thread) ``d = 8`` ran at 16-22 GFLOP/s (2x64x8 at batch 8: 156 us; 8x256x8:
    0.9 ms) and ``d = 16`` to ``64`` at 58-63 GFLOP/s, and one rule for both priced case 04's 2x64x8 at 71 us."""
    q = row.input_shapes[0] if row.input_shapes else None
    if isinstance(q, tuple) and q and isinstance(q[-1], int) and q[-1] <= SMALL_HEAD_DIM:
        return "attention_small_head"
    return "attention"


@classifies("multi_head_attention_forward")
def multi_head_attention_kind(row: Any) -> str:
    """``attention_weights`` for an ``nn.MultiheadAttention`` that returns its attention weights (its default,
    ``need_weights=True``): torch then computes the scores explicitly (``bmm``, ``softmax``, ``bmm``, and the
    heads' mean of the weights), writing and reading ``batch x heads x L x L`` scores, instead of calling the
    fused ``scaled_dot_product_attention``; else ``attention``. On this project's CPU a model of such a layer (d=8
    heads, L=256, batch 8: ``../shared/cases/03_mha_hybrid_cnn.py``) took 4x what the fused path's rule gave it."""
    ops = [p[0] for p in row.parts] or list(row.ops)
    return "attention_weights" if "softmax" in ops and "scaled_dot_product_attention" not in ops else "attention"


_constant("recurrent", "lstm", "gru", "rnn_tanh", "rnn_relu", "lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell")
_constant("batch_norm", "batch_norm")
_constant("layer_norm", "layer_norm", "rms_norm")
_constant("group_norm", "group_norm", "instance_norm")
_constant("local_response_norm", "local_response_norm")
_constant("softmax", "softmax", "log_softmax")
_constant(
    "activation",
    *("relu", "relu6", "hardswish", "hardsigmoid", "hardtanh", "leaky_relu", "prelu", "threshold", "clamp"),
    *("clamp_min", "clamp_max", "clip"),
)
#: activations that evaluate exp or erf: several times the time per element of a ReLU on a CPU
_constant("activation_transcendental", "silu", "gelu", "sigmoid", "elu", "selu", "mish", "softplus")
#: tanh apart: on this project's CPU (session 12, torch 2.13, 1 thread) 2.3-2.4 ns per element on 4.7 K and 200 K
#: elements, where sigmoid took 0.3-0.5, SiLU 0.26-0.6 and ReLU 0.09-0.23: one rule for both was 5x off for one
_constant("activation_tanh", "tanh")
_constant(
    "elementwise",
    *("add", "sub", "rsub", "mul", "multiply", "div", "divide", "true_divide", "subtract", "neg", "negative"),
    *("exp", "log", "sqrt", "rsqrt", "pow", "square", "abs", "reciprocal", "maximum", "minimum", "addcmul"),
    *("addcdiv", "lerp", "erf", "sin", "cos", "floor", "ceil", "round"),
)
_constant("reduction", "sum", "mean", "amax", "amin", "max", "min", "std", "var", "logsumexp", "prod", "nanmean")
_constant("max_pool", "max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices", "max_pool2d_with_indices")
_constant("max_pool", "max_pool3d_with_indices")
_constant("avg_pool", "avg_pool1d", "avg_pool2d", "avg_pool3d")
_constant(
    "adaptive_pool",
    *("adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool1d"),
    *("adaptive_max_pool2d", "adaptive_max_pool3d", "adaptive_max_pool2d_with_indices"),
)
_constant("upsample", "interpolate", "upsample", "upsample_nearest", "upsample_bilinear")
_constant("cat", "cat", "concat", "concatenate", "stack", "hstack", "vstack", "dstack", "column_stack")
_constant(
    "copy",
    *("clone", "copy", "repeat", "repeat_interleave", "tile", "roll", "flip", "pad", "channel_shuffle"),
    *("native_channel_shuffle", "pixel_shuffle", "pixel_unshuffle", "embedding", "gather", "index_select"),
    *("masked_fill", "where", "index"),
)
_constant(
    "noop",
    *("view", "reshape", "flatten", "unflatten", "permute", "transpose", "t", "squeeze", "unsqueeze", "expand"),
    *("contiguous", "chunk", "split", "split_with_sizes", "unbind", "narrow", "select", "detach", "to", "float"),
    "getitem",
    *("dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"),
)


def dominant_op(row: Any) -> str | None:
    """The op that decides a row's kind: an op row's own op where it is classified; else, of the ops summed
    into the row (``LayerCost.parts``, or ``ops`` where a module formula costs the layer whole), the one with
    the most FLOPs, then one that is not plain ``elementwise`` arithmetic, then the most output elements,
    skipping ``noop`` ones while any other is there.
    None for a row that ran no op (``nn.Identity``)."""
    if row.kind == "op" and row.type in _CLASSIFIERS:
        return str(row.type)
    parts = list(row.parts) or [(op, 0, 0, 0, 0, 0) for op in row.ops]
    if not parts:
        return None

    def weight(p: Sequence) -> tuple:
        name = p[0]
        kind = _CLASSIFIERS[name](row) if name in _CLASSIFIERS else "other"
        # of parts of equal FLOPs, an activation's over the elementwise arithmetic around it (LeNet-5's
        # ``a * tanh(s * x)`` is a tanh, not a multiply)
        return (kind != "noop", p[2], kind != "elementwise", p[5] if len(p) > 5 else 0)

    return str(max(parts, key=weight)[0])


def kind_of(row: Any) -> str:
    """The kind of one ``LayerCost`` row (see the module docstring): ``"noop"`` for a row with no op,
    ``"other"`` for an op nothing classifies."""
    op = dominant_op(row)
    if op is None:
        return "noop"
    fn = _CLASSIFIERS.get(op)
    return fn(row) if fn is not None else "other"


def other_fallbacks(macs: int, flops: int, activation_bytes: int) -> tuple[str, ...]:
    """The kinds that price a row of kind ``"other"``, nearest first, from what it does: MACs (a contraction),
    FLOPs without MACs (per-element math), only new memory (a copy), nothing (bookkeeping)."""
    if macs > 0:
        return ("matmul", "linear", "conv")
    if flops > 0:
        return ("elementwise", "activation", "batch_norm")
    if activation_bytes > 0:
        return ("copy", "cat", "elementwise")
    return ("noop",)


def rule_chain(kind: str, macs: int = 0, flops: int = 0, activation_bytes: int = 0) -> tuple[str, ...]:
    """The kinds to try for a row of ``kind``, nearest first: itself, its ``FALLBACKS``, then the kinds its
    features point to (``other_fallbacks``). Raises ``KeyError`` for a kind not in ``FALLBACKS``."""
    chain = (kind, *FALLBACKS[kind], *other_fallbacks(macs, flops, activation_bytes))
    return tuple(dict.fromkeys(chain))


def row_features(row: Any, element_bytes: int) -> tuple[float, float]:
    """``(flops, bytes)`` of one ``LayerCost`` row: its FLOPs (``LayerCost.flops``, 2 per MAC) and the bytes it
    moves if nothing stays in cache (``archcost.profiling.roofline.row_traffic_bytes``: inputs read at
    ``element_bytes`` each, parameters read, output written), the features ``profile --layers`` reports."""
    from archcost.profiling.roofline import row_traffic_bytes

    return float(row.flops), float(row_traffic_bytes(row, element_bytes) + score_bytes(row, element_bytes))


#: passes over an explicit attention-score matrix in ``nn.MultiheadAttention`` with its weights: written by the
#: scores' ``bmm``, read and written by ``softmax``, read by the ``bmm`` with the values
SCORE_PASSES = 4


def score_bytes(row: Any, element_bytes: int) -> float:
    """Bytes an ``attention_weights`` row moves through its explicit score matrix: ``SCORE_PASSES`` x the
    ``softmax`` part's outputs (``N h L_q L_k`` scores) x ``element_bytes``; 0 for any other row. The scores never
    leave the row, so ``row_traffic_bytes`` (inputs, parameters, output) does not see them, and with few
    channels per head they are most of the work: on this project's CPU one FLOP rule for these layers was off by
    a median 56% on its own calibration points (d = 8 heads at 19 GFLOP/s, d = 64 at 82)."""
    if kind_of(row) != "attention_weights":
        return 0.0
    scores = sum(part.outputs for part in row.parts if part.op == "softmax")
    return float(SCORE_PASSES * scores * element_bytes)


def row_large_bytes(row: Any, element_bytes: int) -> float:
    """Bytes of one ``LayerCost`` row's *large* tensors: each input (``input_shapes`` x ``element_bytes``) and the
    output (``activation_bytes``) of at least ``LARGE_TENSOR_BYTES``, summed; 0 for a row whose tensors are all
    smaller. The third feature of a kind's rule (``fit.Rule.seconds_per_large_byte``): on a CPU with 4 KiB
    pages each byte of such a tensor costs page walks (and, for a fresh output, a page fault) on top of its
    share of the traffic, which no cache-sized tensor shows."""
    from archcost.profiling.roofline import row_input_elements

    sizes = [n * element_bytes for n in row_input_elements(row)] + [int(row.activation_bytes)]
    return float(sum(b for b in sizes if b >= LARGE_TENSOR_BYTES))


def row_dispatches(row: Any) -> int:
    """How many ops of one ``LayerCost`` row run a kernel, each paying its dispatch (on a CPU, several
    microseconds of the framework per op: the overhead term of a kind's rule is paid per op). The row's
    ops (``LayerCost.parts``, or ``ops``) other than the ``noop`` ones (views, reshapes, dropout in eval);
    at least 1. A ``Conv2d`` is 1; LeNet-5's scaled tanh, ``a * tanh(s * x)``, 3."""
    parts = [p[0] for p in row.parts] or list(row.ops)
    busy = sum(1 for op in parts if op not in _CLASSIFIERS or _CLASSIFIERS[op](row) != "noop")
    return max(1, busy)


def row_chain_for(kind: str, row: Any) -> tuple[str, ...]:
    """``rule_chain`` of a ``LayerCost`` row of ``kind`` (its MACs, FLOPs and new bytes pick the last resorts)."""
    return rule_chain(kind, int(row.macs), int(row.flops), int(row.activation_bytes))
