"""Cost formulas for ONNX op types, built on archcost's own shape math (``archcost.cost.formulas``) and
per-element counts (``archcost.units``), so an ONNX ``Conv`` costs exactly what a torch ``conv2d`` costs.

Each formula takes an ``OnnxNode`` (the node's attributes and the inferred shapes of its inputs and
outputs) and returns a ``Cost``, or ``None`` when the node's settings are outside what archcost can cost
(it is then listed as unsupported). ``PARAM_SLOTS`` says which inputs of an op hold parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from archcost.cost._registry import Cost
from archcost.cost.formulas.attention import sdpa_cost
from archcost.cost.formulas.conv import conv_macs, conv_transpose_macs, with_bias
from archcost.cost.formulas.einsum import einsum_cost, torch_path
from archcost.cost.formulas.elementwise import INTERPOLATE_FLOPS, reduction_flops
from archcost.cost.formulas.linear import linear_macs, matmul_macs
from archcost.cost.formulas.norm import batch_norm_flops, lrn_flops, norm_flops
from archcost.cost.formulas.pool import adaptive_elements, avg_pool_flops, max_pool_flops
from archcost.cost.formulas.recurrent import recurrent_cost
from archcost.onnx_graph.errors import OnnxFileError, OnnxShapeError
from archcost.units import per_element

if TYPE_CHECKING:
    import numpy as np

Shape = tuple[int, ...]


@dataclass(frozen=True)
class OnnxNode:
    """What a formula sees of one node: its settings and the inferred shapes around it."""

    name: str
    op: str
    attrs: dict[str, object]
    inputs: tuple[Shape | None, ...]  # one per input slot, None for an omitted optional input
    outputs: tuple[Shape, ...]
    values: tuple[np.ndarray | None, ...] = field(default=())  # small constant inputs as numpy arrays, else None
    opset: int = 0

    def has(self, slot: int) -> bool:
        return slot < len(self.inputs) and self.inputs[slot] is not None

    def shape(self, slot: int) -> Shape:
        """The shape of input ``slot``, which the op requires: raises ``OnnxShapeError`` if it is omitted."""
        shape = self.inputs[slot] if slot < len(self.inputs) else None
        if shape is None:
            raise OnnxShapeError(
                f"node {self.name!r} ({self.op}) lacks its input {slot}, which the op requires",
                "the graph is malformed: export it again",
            )
        return shape

    def value(self, slot: int) -> np.ndarray | None:
        return self.values[slot] if slot < len(self.values) else None

    def int_attr(self, key: str, default: int | None = None) -> int:
        """The integer attribute ``key``: ``default`` when absent, ``KeyError`` when absent without one."""
        value = self.attrs[key] if default is None else self.attrs.get(key, default)
        if not isinstance(value, int | float):
            raise self._bad_attr(key, value, "a number")
        return int(value)

    def float_attr(self, key: str, default: float) -> float:
        """The float attribute ``key`` (``default`` when absent)."""
        value = self.attrs.get(key, default)
        if not isinstance(value, int | float):
            raise self._bad_attr(key, value, "a number")
        return float(value)

    def ints_attr(self, key: str) -> tuple[int, ...]:
        """The list-of-integers attribute ``key``, which the op requires (``KeyError`` when absent)."""
        value = self.attrs[key]
        if not isinstance(value, list | tuple) or not all(isinstance(v, int) for v in value):
            raise self._bad_attr(key, value, "a list of integers")
        return tuple(value)

    def _bad_attr(self, key: str, value: object, kind: str) -> OnnxFileError:
        return OnnxFileError(
            f"node {self.name!r} ({self.op}) has attribute {key!r} = {value!r}, not {kind}",
            "the graph is malformed: export it again",
        )

    @property
    def out(self) -> Shape:
        return self.outputs[0]

    @property
    def out_elements(self) -> int:
        return math.prod(self.outputs[0])


Formula = Callable[[OnnxNode], "Cost | None"]
ONNX_COSTS: dict[str, Formula] = {}


def onnx_cost(*ops: str) -> Callable[[Formula], Formula]:
    """Register ``fn`` as the cost of these ONNX op types; a type registered twice raises."""

    def wrap(fn: Formula) -> Formula:
        for op in ops:
            if op in ONNX_COSTS:
                raise ValueError(f"ONNX op {op!r} already has a cost formula")
            ONNX_COSTS[op] = fn
        return fn

    return wrap


#: Inputs that never hold parameters although they may be stored float tensors: batch norm's running
#: statistics (buffers in torch, not parameters), clip bounds, exponents, resize scales, pad values,
#: dropout ratios. Every other stored float input of a node that reads an activation is a parameter,
#: except a single number fed to an elementwise op (``x * 0.5``), which is a constant.
NON_PARAM_SLOTS: dict[str, frozenset[int]] = {
    "BatchNormalization": frozenset({3, 4}),
    "Clip": frozenset({1, 2}),
    "Pow": frozenset({1}),
    "Resize": frozenset({1, 2, 3}),
    "Upsample": frozenset({1}),
    "Pad": frozenset({1, 2, 3}),
    "Dropout": frozenset({1, 2}),
    "Reshape": frozenset({1}),
    "Expand": frozenset({1}),
    "Tile": frozenset({1}),
    "Slice": frozenset({1, 2, 3, 4}),
    "ConstantOfShape": frozenset({0}),
    # recurrent layers: sequence lengths and initial states are inputs, not parameters
    "LSTM": frozenset({4, 5, 6}),
    "GRU": frozenset({4, 5}),
    "RNN": frozenset({4, 5}),
    # attention: the mask and the cached keys and values
    "Attention": frozenset({3, 4, 5}),
}
ELEMENTWISE_OPS = frozenset({"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Where"})


def is_param_slot(op: str, slot: int, elements: int) -> bool:
    """Whether a stored float tensor of ``elements`` elements at input ``slot`` of ``op`` is a parameter."""
    if slot in NON_PARAM_SLOTS.get(op, ()):
        return False
    return not (op in ELEMENTWISE_OPS and elements == 1)


def _check(condition: bool, node: OnnxNode, what: str) -> None:
    if not condition:
        raise OnnxShapeError(
            f"node {node.name!r} ({node.op}) has inconsistent shapes: {what}",
            "the graph does not fit this input: analyse it at the input and batch size it was exported with "
            "(a fixed Reshape keeps its batch), or fix the graph",
        )


# -- convolution, fully connected, matrix products ---------------------------------------------------
@onnx_cost("Conv")
def _conv(n: OnnxNode) -> Cost:
    x, w = n.shape(0), n.shape(1)
    group = n.int_attr("group", 1)
    _check(x[1] == w[1] * group, n, f"input channels {x[1]} != weight {list(w)} x group {group}")
    return with_bias(conv_macs(n.out, w), n.out_elements, n.has(2))


@onnx_cost("ConvTranspose")
def _conv_transpose(n: OnnxNode) -> Cost:
    x, w = n.shape(0), n.shape(1)
    _check(x[1] == w[0], n, f"input channels {x[1]} != weight {list(w)}")
    return with_bias(conv_transpose_macs(x, w), n.out_elements, n.has(2))


@onnx_cost("Gemm")
def _gemm(n: OnnxNode) -> Cost:
    """``alpha * A' B' + beta * C``: a linear layer when alpha = beta = 1; other factors cost a multiply
    per output element (alpha) or per element of C (beta)."""
    a, b = n.shape(0), n.shape(1)
    k = a[0] if n.attrs.get("transA", 0) else a[1]
    k_b = b[1] if n.attrs.get("transB", 0) else b[0]
    _check(k == k_b, n, f"A {list(a)} and B {list(b)} disagree on the inner dimension")
    alpha, beta = n.float_attr("alpha", 1.0), n.float_attr("beta", 1.0)
    bias = n.has(2) and beta != 0.0
    cost = with_bias(linear_macs(n.out, k), n.out_elements, bias)
    extra = (n.out_elements if alpha != 1.0 else 0) + (math.prod(n.shape(2)) if bias and beta != 1.0 else 0)
    return Cost(macs=cost.macs, flops=cost.flops + extra)


@onnx_cost("MatMul")
def _matmul(n: OnnxNode) -> Cost:
    a, b = n.shape(0), n.shape(1)
    _check(a[-1] == (b[-2] if len(b) > 1 else b[0]), n, f"A {list(a)} and B {list(b)} cannot be multiplied")
    macs = matmul_macs(a, n.out)
    return Cost(macs=macs, flops=2 * macs)


# -- normalisation ----------------------------------------------------------------------------------
@onnx_cost("BatchNormalization")
def _batch_norm(n: OnnxNode) -> Cost:
    # Opset 14 added training_mode; before it, a training-mode node declares its extra outputs.
    training = bool(n.attrs.get("training_mode", 0)) or (n.opset < 14 and len(n.outputs) > 1)
    return Cost(flops=batch_norm_flops(n.out_elements, training=training, affine=True))


@onnx_cost("InstanceNormalization", "LayerNormalization", "GroupNormalization")
def _norm(n: OnnxNode) -> Cost:
    return Cost(flops=norm_flops(n.out_elements, affine=n.has(1)))


@onnx_cost("LRN")
def _lrn(n: OnnxNode) -> Cost:
    return Cost(flops=lrn_flops(n.out_elements, n.int_attr("size")))


# -- pooling ----------------------------------------------------------------------------------------
@onnx_cost("MaxPool")
def _max_pool(n: OnnxNode) -> Cost:
    return Cost(flops=max_pool_flops(n.out_elements, math.prod(n.ints_attr("kernel_shape"))))


@onnx_cost("AveragePool")
def _avg_pool(n: OnnxNode) -> Cost:
    return Cost(flops=avg_pool_flops(n.out_elements, math.prod(n.ints_attr("kernel_shape"))))


@onnx_cost("GlobalAveragePool")
def _global_avg_pool(n: OnnxNode) -> Cost:
    return Cost(flops=adaptive_elements(n.shape(0), n.out, len(n.out) - 2))


@onnx_cost("GlobalMaxPool")
def _global_max_pool(n: OnnxNode) -> Cost:
    return Cost(flops=adaptive_elements(n.shape(0), n.out, len(n.out) - 2) - n.out_elements)


# -- activations and elementwise arithmetic: units.FLOPS_PER_ELEMENT ---------------------------------
#: ONNX op type -> archcost's per-element op name. ``Clip`` is torch's relu6 / hardtanh / clamp (2).
#: ``Erf`` counts as one transcendental function, like ``exp`` (units.py).
PER_ELEMENT: dict[str, str] = {
    "Relu": "relu", "LeakyRelu": "leaky_relu", "PRelu": "prelu", "Elu": "elu", "Selu": "selu",
    "ThresholdedRelu": "threshold", "Tanh": "tanh", "Sigmoid": "sigmoid", "HardSigmoid": "hardsigmoid",
    "HardSwish": "hardswish", "Swish": "silu", "Mish": "mish", "Gelu": "gelu", "Softplus": "softplus",
    "Softmax": "softmax", "LogSoftmax": "log_softmax", "Clip": "clamp",
    "Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Reciprocal": "div", "Pow": "pow",
    "Sqrt": "sqrt", "Exp": "exp", "Log": "log", "Erf": "exp", "Abs": "abs", "Neg": "neg",
}  # fmt: skip


def _per_element(key: str) -> Formula:
    def cost(n: OnnxNode) -> Cost:
        return Cost(flops=n.out_elements * per_element(key))

    return cost


for _op, _key in PER_ELEMENT.items():
    onnx_cost(_op)(_per_element(_key))


def _variadic(key: str, mean: bool = False) -> Formula:
    """``Sum``/``Max``/``Min``/``Mean`` of k inputs: k - 1 binary ops per output, and a divide for a mean."""

    def cost(n: OnnxNode) -> Cost:
        k = sum(1 for s in n.inputs if s is not None)
        return Cost(flops=n.out_elements * ((k - 1) * per_element(key) + (per_element("div") if mean else 0)))

    return cost


onnx_cost("Sum")(_variadic("add"))
onnx_cost("Max")(_variadic("maximum"))
onnx_cost("Min")(_variadic("minimum"))
onnx_cost("Mean")(_variadic("add", mean=True))


@onnx_cost("ReduceSum", "ReduceMax", "ReduceMin")
def _reduce(n: OnnxNode) -> Cost:
    return Cost(flops=reduction_flops(math.prod(n.shape(0)), n.out_elements, mean=False))


@onnx_cost("ReduceMean")
def _reduce_mean(n: OnnxNode) -> Cost:
    return Cost(flops=reduction_flops(math.prod(n.shape(0)), n.out_elements, mean=True))


@onnx_cost("Dropout")
def _dropout(n: OnnxNode) -> Cost:
    """Free at inference; with ``training_mode`` true (opset 12+), one multiply per element by the mask."""
    flag = n.value(2)  # a constant bool tensor, or None (absent or computed: taken as inference)
    training = flag is not None and bool(flag.reshape(-1)[0])
    return Cost(flops=n.out_elements * per_element("dropout_train") if training else 0)


@onnx_cost("Resize", "Upsample")
def _resize(n: OnnxNode) -> Cost | None:
    """Interpolation per output element, as torch's ``interpolate``: the mode and the spatial rank
    (rank - 2) name the torch mode (linear on 4-d input is bilinear)."""
    mode = _attr_str(n.attrs.get("mode"), "nearest")
    dims = len(n.out) - 2
    torch_mode: str | None
    if mode == "nearest":
        torch_mode = "nearest"
    elif mode in ("linear", "bilinear"):
        torch_mode = {1: "linear", 2: "bilinear", 3: "trilinear"}.get(dims)
    elif mode == "cubic":
        torch_mode = "bicubic" if dims == 2 else None
    else:
        torch_mode = None
    if torch_mode is None:
        return None
    return Cost(flops=n.out_elements * INTERPOLATE_FLOPS[torch_mode])


#: Ops that only move, copy, view, cast or create data: 0 FLOPs (as archcost's DATA_MOVEMENT).
DATA_MOVEMENT = (
    "Concat", "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Split", "Slice", "Gather",
    "GatherElements", "GatherND", "Identity", "Pad", "Cast", "CastLike", "Expand", "Tile", "DepthToSpace",
    "SpaceToDepth", "ConstantOfShape", "Constant",
)  # fmt: skip
onnx_cost(*DATA_MOVEMENT)(lambda n: Cost())


# -- attention, einsum, recurrent layers: the torch formulas (archcost.cost.formulas) ------------------
def _attr_str(value: object, default: str) -> str:
    if value is None:
        return default
    return value.decode() if isinstance(value, bytes) else str(value)


@onnx_cost("Einsum")
def _einsum(n: OnnxNode) -> Cost:
    """The contractions torch would run for the same equation (``formulas.einsum``)."""
    equation = _attr_str(n.attrs.get("equation"), "")
    shapes = [s for s in n.inputs if s is not None]
    return einsum_cost(equation, shapes, torch_path(equation, shapes))


@onnx_cost("Attention")
def _attention(n: OnnxNode) -> Cost | None:
    """ONNX ``Attention`` (opset 23): Q, K, V of rank 4 ``(B, heads, L, E)``, or rank 3 ``(B, L, heads * E)``
    with ``q_num_heads``/``kv_num_heads``; costed as ``scaled_dot_product_attention``. Without cached keys
    only (``past_key``/``past_value`` lengthen K and V: their length is then the output's ``present_key``)."""
    q, k, v = n.shape(0), n.shape(1), n.shape(2)
    if len(q) == 3:
        hq, hkv = n.int_attr("q_num_heads", 0), n.int_attr("kv_num_heads", 0)
        if not hq or not hkv:
            return None
        q = (q[0], hq, q[1], q[2] // hq)
        k = (k[0], hkv, k[1], k[2] // hkv)
        v = (v[0], hkv, v[1], v[2] // hkv)
    if n.has(4) and len(n.outputs) > 1:
        k = (*k[:-2], n.outputs[1][-2], k[-1])  # present_key: past + new keys
    masked = n.has(3) or bool(n.attrs.get("is_causal", 0))
    return sdpa_cost(tuple(q), tuple(k), tuple(v), masked=masked)


def _recurrent(kind: str, gates: int) -> Formula:
    """ONNX ``LSTM``/``GRU``/``RNN``: one layer, forward, reverse or bidirectional. ``X`` is
    ``(seq, batch, input)`` (``layout`` 1: batch first), ``W`` ``(dirs, gates * H, input)``, ``R``
    ``(dirs, gates * H, H)``, ``B`` ``(dirs, 2 * gates * H)``; the same count as torch's layers. An LSTM's
    peepholes (``P``) add a multiply and an add per gate that reads the cell, 3 per hidden unit."""

    def cost(n: OnnxNode) -> Cost:
        x, w, r = n.shape(0), n.shape(1), n.shape(2)
        dirs, hidden = w[0], w[1] // gates
        positions = x[0] * x[1]
        weights = [tuple(w[1:]), tuple(r[1:])] * dirs
        if n.has(3):
            weights += [(n.shape(3)[1],)] * dirs
        c = recurrent_cost(kind, positions, weights, hidden=hidden, layers_directions=dirs)
        if kind == "lstm" and n.has(7):
            c = c + Cost(flops=positions * dirs * 3 * hidden * 2)
        return c

    return cost


onnx_cost("LSTM")(_recurrent("lstm", 4))
onnx_cost("GRU")(_recurrent("gru", 3))
onnx_cost("RNN")(_recurrent("rnn_tanh", 1))
