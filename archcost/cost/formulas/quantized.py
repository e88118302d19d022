"""torch.ao quantized layers (static and dynamic Linear, Conv1d/2d/3d, transposed convs, LSTM/GRU, embeddings)
and the quantize / dequantize ops: MACs from the same shape arithmetic as the float layers, counted as
integer MACs where the weights are integer, and the packed weights they hold outside ``nn.Parameter``.

A quantized layer does the float layer's multiply-accumulates in int8 x int8 -> int32 (fbgemm/x86/qnnpack
kernels), so ``macs`` equals the float model's and ``int_macs`` says which of them are integer; a dynamic
layer quantized to float16 (``quantize_dynamic(..., dtype=torch.float16)``) keeps float MACs. FLOPs keep the
float layer's count (2 per MAC + bias): the operations, whatever arithmetic runs them.
"""

from __future__ import annotations

import math

import torch
import torch.ao.nn.quantized as nnq
from torch import nn
from torch.ao.nn.quantized.dynamic.modules.rnn import RNNBase as DynamicRNNBase
from torch.ao.nn.quantized.modules.conv import _ConvNd

from archcost.cost._registry import Cost, register_cost, register_weights
from archcost.cost.formulas.conv import conv_macs, conv_transpose_macs, with_bias
from archcost.cost.formulas.linear import linear_macs
from archcost.cost.formulas.recurrent import recurrent_cost
from archcost.units import per_element

#: quantized dtypes: a weight in one of them makes the layer's MACs integer MACs
INT_DTYPES = (torch.qint8, torch.quint8, torch.qint32, torch.quint4x2, torch.int8, torch.uint8)


def _integer(weight: torch.Tensor) -> bool:
    return weight.dtype in INT_DTYPES


def _unpacked(module: nn.Module):
    """``module._weight_bias()`` unseen by the crawl's torch-function mode: unpacking is archcost reading the
    weights, not the model's work (no row, no allocation)."""
    with torch._C.DisableTorchFunction():
        return module._weight_bias()  # type: ignore[operator]


def _first(out) -> torch.Tensor:
    return out[0] if isinstance(out, tuple | list) else out


@register_weights(nnq.Linear, _ConvNd)
def _weight_bias(module: nn.Module) -> list:
    """The (quantized) weight and the float bias, unpacked from the layer's packed parameters."""
    weight, bias = _unpacked(module)
    return [weight] if bias is None else [weight, bias]


@register_weights(DynamicRNNBase)
def _recurrent_weights(module: nn.Module) -> list:
    """Every layer's and direction's weight matrices (quantized or float16) and float biases."""
    held = _unpacked(module)
    return [*held["weight"].values(), *held["bias"].values()]


@register_weights(nnq.Embedding)
def _embedding_weights(module: nn.Module) -> list:
    with torch._C.DisableTorchFunction():
        return [module._packed_params._weight()]  # type: ignore[union-attr,operator]


@register_cost(nnq.Linear)
def _linear(module: nn.Module, inputs: tuple, out) -> Cost:
    """Static (int8 activations) and dynamic (activations quantized on the fly) quantized linear layers;
    ``nnqd.Linear`` and the fused ``LinearReLU`` are subclasses."""
    weight, bias = _unpacked(module)
    y = _first(out)
    cost = with_bias(linear_macs(tuple(y.shape), weight.shape[-1]), y.numel(), bias is not None)
    return Cost(cost.macs, cost.flops, cost.macs if _integer(weight) else 0)


@register_cost(nnq.Conv1d, nnq.Conv2d, nnq.Conv3d)
def _conv(module: nn.Module, inputs: tuple, out) -> Cost:
    """Quantized convolutions (and the fused ConvReLU/ConvAdd layers, their subclasses): ``conv_macs``."""
    weight, bias = _unpacked(module)
    y = _first(out)
    cost = with_bias(conv_macs(tuple(y.shape), tuple(weight.shape)), y.numel(), bias is not None)
    return Cost(cost.macs, cost.flops, cost.macs if _integer(weight) else 0)


@register_cost(nnq.ConvTranspose1d, nnq.ConvTranspose2d, nnq.ConvTranspose3d)
def _conv_transpose(module: nn.Module, inputs: tuple, out) -> Cost:
    weight, bias = _unpacked(module)
    y = _first(out)
    cost = with_bias(conv_transpose_macs(tuple(inputs[0].shape), tuple(weight.shape)), y.numel(), bias is not None)
    return Cost(cost.macs, cost.flops, cost.macs if _integer(weight) else 0)


@register_cost(DynamicRNNBase)
def _recurrent(module: nn.Module, inputs: tuple, out) -> Cost:
    """Dynamic quantized LSTM/GRU stacks: ``recurrent_cost`` of the float layer on the unpacked weights."""
    held = _unpacked(module)
    x = inputs[0]
    positions = math.prod(x.shape[:-1])  # (T, B), (B, T) or (T,); a packed sequence's data: its rows
    dirs = 2 if module.bidirectional else 1
    weights = [*held["weight"].values(), *held["bias"].values()]
    kind = str(module.mode).lower()
    cost = recurrent_cost(
        kind,
        positions,
        [tuple(w.shape) for w in weights],
        hidden=int(module.hidden_size),  # type: ignore[arg-type]
        layers_directions=int(module.num_layers) * dirs,  # type: ignore[arg-type]
    )
    integer = all(_integer(w) for w in held["weight"].values())
    return Cost(cost.macs, cost.flops, cost.macs if integer else 0)


@register_cost(nnq.Embedding)
def _embedding(module: nn.Module, inputs: tuple, out) -> Cost:
    """A lookup: no arithmetic. ``EmbeddingBag`` (a subclass) adds the rows of each bag: one add per
    element looked up (and one multiply with ``per_sample_weights``), one divide per output in mean mode."""
    if not isinstance(module, nnq.EmbeddingBag):
        return Cost()
    indices = inputs[0]
    dim = int(module.embedding_dim)  # type: ignore[arg-type]
    weighted = len(inputs) > 2 and inputs[2] is not None
    flops = indices.numel() * dim * (2 if weighted else 1)
    if module.mode == "mean":
        flops += _first(out).numel()
    return Cost(0, flops)


@register_cost("quantize_per_tensor", "quantize_per_channel")
def _quantize(args: tuple, kwargs: dict, out) -> Cost:
    """``q = round(x / scale) + zero_point``: a divide and an add per element (the rounding is not counted)."""
    return Cost(0, 2 * sum(t.numel() for t in (out if isinstance(out, tuple | list) else [out])))


@register_cost("dequantize")
def _dequantize(args: tuple, kwargs: dict, out) -> Cost:
    """``x = (q - zero_point) * scale``: a subtract and a multiply per element."""
    return Cost(0, 2 * sum(t.numel() for t in (out if isinstance(out, tuple | list) else [out])))


def _elements(out) -> int:
    return sum(t.numel() for t in (out if isinstance(out, tuple | list) else [out]))


# the quantized elementwise ops of FloatFunctional/QFunctional (residual adds of quantized ResNets, MobileNets):
# the float ops' per-element FLOPs (units.FLOPS_PER_ELEMENT), with the fused ReLU's added
_QUANTIZED_ELEMENTWISE = {
    torch.ops.quantized.add: ("add",),
    torch.ops.quantized.add_relu: ("add", "relu"),
    torch.ops.quantized.add_scalar: ("add",),
    torch.ops.quantized.mul: ("mul",),
    torch.ops.quantized.mul_relu: ("mul", "relu"),
    torch.ops.quantized.mul_scalar: ("mul",),
}


def _elementwise(ops: tuple[str, ...]):
    def cost(args: tuple, kwargs: dict, out) -> Cost:
        return Cost(0, _elements(out) * sum(per_element(op) for op in ops))

    return cost


for _op, _names in _QUANTIZED_ELEMENTWISE.items():
    register_cost(_op)(_elementwise(_names))


@register_cost(torch.ops.quantized.cat)
def _cat(args: tuple, kwargs: dict, out) -> Cost:
    """Concatenation (requantized to one scale): data movement, as the float ``cat``."""
    return Cost()
