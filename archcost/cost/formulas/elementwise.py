"""Elementwise arithmetic (residual adds, gating multiplies), reductions, and resampling."""

from __future__ import annotations

from archcost.cost._registry import Cost, register_cost
from archcost.cost.formulas._args import arg, out_numel, tensors
from archcost.cost.formulas.pool import adaptive_elements
from archcost.units import per_element

_ELEMENTWISE = (
    "add", "sub", "mul", "div", "pow", "sqrt", "rsqrt", "exp", "log", "abs", "neg", "clamp",
    "maximum", "minimum",
)  # fmt: skip


def _per_element(op: str):
    def cost(args: tuple, kwargs: dict, out) -> Cost:
        return Cost(flops=out_numel(out) * per_element(op))

    return cost


for _op in _ELEMENTWISE:
    register_cost(_op)(_per_element(_op))
register_cost("true_divide")(_per_element("div"))
register_cost("clip")(_per_element("clamp"))
register_cost("square")(_per_element("mul"))


def reduction_flops(in_elements: int, out_elements: int, *, mean: bool) -> int:
    """Reducing n values to one takes n - 1 adds (or comparisons); a mean adds one divide per output."""
    return in_elements - out_elements + (out_elements if mean else 0)


@register_cost("sum", "amax", "amin", "max", "min", "logsumexp")
def _reduce(args: tuple, kwargs: dict, out) -> Cost:
    x = arg(args, kwargs, 0, "input")
    if len(tensors(x)) != 1:  # torch.max(a, b) is elementwise
        return Cost(flops=out_numel(out))
    return Cost(flops=reduction_flops(x.numel(), out_numel(out[0] if isinstance(out, tuple) else out), mean=False))


@register_cost("mean")
def _mean(args: tuple, kwargs: dict, out) -> Cost:
    x = arg(args, kwargs, 0, "input")
    return Cost(flops=reduction_flops(x.numel(), out_numel(out), mean=True))


#: FLOPs per output element of each interpolation mode: linear interpolation is a lerp
#: ``a + w * (b - a)`` of 3 FLOPs; bilinear takes 3 lerps, trilinear 7; bicubic a 16-tap weighted sum
#: (2 per tap); nearest copies.
INTERPOLATE_FLOPS = {"nearest": 0, "nearest-exact": 0, "linear": 3, "bilinear": 9, "trilinear": 21, "bicubic": 32}


@register_cost("interpolate", "upsample", "upsample_nearest", "upsample_bilinear")
def _interpolate(args: tuple, kwargs: dict, out) -> Cost:
    mode = arg(args, kwargs, 3, "mode", "nearest")
    if mode == "area":
        x = arg(args, kwargs, 0, "input")
        return Cost(flops=adaptive_elements(tuple(x.shape), tuple(out.shape), x.dim() - 2))
    return Cost(flops=out.numel() * INTERPOLATE_FLOPS[mode])


def _free(args: tuple, kwargs: dict, out) -> Cost:
    """Data movement and views: no arithmetic."""
    return Cost()


#: Ops that only move, copy, view or create data.
DATA_MOVEMENT = (
    "cat", "concat", "concatenate", "stack", "flatten", "unflatten", "view", "view_as", "reshape",
    "permute", "transpose", "t", "contiguous", "getitem", "setitem", "squeeze", "unsqueeze", "expand",
    "expand_as", "chunk", "split", "tensor_split", "unbind", "narrow", "select", "index_select",
    "pad", "clone", "to", "float", "half", "bfloat16", "double", "type", "type_as", "detach", "repeat",
    "roll", "flip", "channel_shuffle", "pixel_shuffle", "pixel_unshuffle", "zeros", "ones", "empty",
    "full", "zeros_like", "ones_like", "empty_like", "full_like", "new_zeros", "new_ones", "new_empty",
    "new_full", "arange", "identity", "gather", "masked_fill", "fill", "zero", "copy", "movedim",
    "swapaxes", "as_strided", "one_hot",
)  # fmt: skip
register_cost(*DATA_MOVEMENT)(_free)
