"""Elementwise arithmetic (residual adds, gating multiplies), transcendental functions, comparisons, complex
arithmetic, reductions, and resampling."""

from __future__ import annotations

import torch

from archcost.cost._registry import Cost, register_cost
from archcost.cost.formulas._args import arg, out_numel, tensor_arg, tensors
from archcost.cost.formulas._tools import FV_INTERPOLATE
from archcost.cost.formulas.pool import adaptive_elements
from archcost.units import per_element

_ELEMENTWISE = (
    "add", "sub", "mul", "div", "pow", "sqrt", "rsqrt", "exp", "log", "abs", "neg", "clamp",
    "maximum", "minimum",
)  # fmt: skip

#: op -> the FLOPS_PER_ELEMENT entry it is counted by.
_ALIASES = {
    "true_divide": "div", "clip": "clamp", "square": "mul", "multiply": "mul", "divide": "div", "subtract": "sub",
    "negative": "neg", "absolute": "abs", "rsub": "sub", "float_power": "pow", "fmax": "maximum", "fmin": "minimum",
    "floor_divide": "div", "floordiv": "div", "mod": "div", "remainder": "div", "fmod": "div", "reciprocal": "div",
    "positive": "comparison",
    "sin": "transcendental", "cos": "transcendental", "tan": "transcendental", "asin": "transcendental",
    "acos": "transcendental", "atan": "transcendental", "arcsin": "transcendental", "arccos": "transcendental",
    "arctan": "transcendental", "sinh": "transcendental", "cosh": "transcendental", "asinh": "transcendental",
    "acosh": "transcendental", "atanh": "transcendental", "arcsinh": "transcendental", "arccosh": "transcendental",
    "arctanh": "transcendental", "atan2": "transcendental", "arctan2": "transcendental", "erf": "transcendental",
    "erfc": "transcendental", "erfinv": "transcendental", "exp2": "transcendental", "expm1": "transcendental",
    "log2": "transcendental", "log10": "transcendental", "log1p": "transcendental", "lgamma": "transcendental",
    "digamma": "transcendental", "sinc": "transcendental", "angle": "transcendental", "logit": "transcendental",
    "floor": "rounding", "ceil": "rounding", "round": "rounding", "trunc": "rounding", "fix": "rounding",
    "frac": "rounding", "sign": "rounding", "sgn": "rounding", "signbit": "rounding",
    "eq": "comparison", "ne": "comparison", "lt": "comparison", "le": "comparison", "gt": "comparison",
    "ge": "comparison", "greater": "comparison", "greater_equal": "comparison", "less": "comparison",
    "less_equal": "comparison", "not_equal": "comparison", "isnan": "comparison", "isinf": "comparison",
    "isfinite": "comparison", "isposinf": "comparison", "isneginf": "comparison", "isclose": "comparison",
    "clamp_min": "comparison", "clamp_max": "comparison", "bernoulli": "comparison", "nan_to_num": "comparison",
    "logical_and": "logical", "logical_or": "logical", "logical_xor": "logical", "logical_not": "logical",
    "bitwise_and": "logical", "bitwise_or": "logical", "bitwise_xor": "logical", "bitwise_not": "logical",
    "xor": "logical", "invert": "logical",
    "addcmul": "addcmul", "addcdiv": "addcdiv", "lerp": "lerp",
}  # fmt: skip

#: Real op -> the complex-arithmetic entry used when the output is complex.
_COMPLEX = {"add": "complex_add", "sub": "complex_add", "mul": "complex_mul", "div": "complex_div"}


def _per_element(op: str):
    def cost(args: tuple, kwargs: dict, out) -> Cost:
        outs = tensors(out)
        key = _COMPLEX.get(op, op) if outs and outs[0].is_complex() else op
        return Cost(flops=out_numel(out) * per_element(key))

    return cost


for _op in _ELEMENTWISE:
    register_cost(_op)(_per_element(_op))
for _op, _key in _ALIASES.items():
    register_cost(_op)(_per_element(_key))


def reduction_flops(in_elements: int, out_elements: int, *, mean: bool) -> int:
    """Reducing n values to one takes n - 1 adds (or comparisons); a mean adds one divide per output."""
    return in_elements - out_elements + (out_elements if mean else 0)


@register_cost("sum", "amax", "amin", "max", "min", "logsumexp", "prod", "nansum", "all", "any", "aminmax")
def _reduce(args: tuple, kwargs: dict, out) -> Cost:
    x = tensor_arg(args, kwargs, 0, "input")
    other = arg(args, kwargs, 1, "other")
    if isinstance(other, torch.Tensor):  # torch.max(a, b) is elementwise
        return Cost(flops=out_numel(out))
    return Cost(flops=reduction_flops(x.numel(), out_numel(out[0] if isinstance(out, tuple) else out), mean=False))


@register_cost("mean", "nanmean")
def _mean(args: tuple, kwargs: dict, out) -> Cost:
    x = tensor_arg(args, kwargs, 0, "input")
    return Cost(flops=reduction_flops(x.numel(), out_numel(out), mean=True))


#: FLOPs per output element of each interpolation mode: linear interpolation is a lerp
#: ``a + w * (b - a)`` of 3 FLOPs; bilinear takes 3 lerps, trilinear 7; bicubic a 16-tap weighted sum
#: (2 per tap); nearest copies.
INTERPOLATE_FLOPS = {"nearest": 0, "nearest-exact": 0, "linear": 3, "bilinear": 9, "trilinear": 21, "bicubic": 32}


@register_cost("interpolate", "upsample", "upsample_nearest", "upsample_bilinear", fvcore=FV_INTERPOLATE)
def _interpolate(args: tuple, kwargs: dict, out) -> Cost:
    mode = arg(args, kwargs, 3, "mode", "nearest")
    if mode == "area":
        x = tensor_arg(args, kwargs, 0, "input")
        return Cost(flops=adaptive_elements(tuple(x.shape), tuple(out.shape), x.dim() - 2))
    if not isinstance(mode, str):
        raise TypeError(f"interpolate's mode is {type(mode).__name__}, not a name")
    return Cost(flops=out.numel() * INTERPOLATE_FLOPS[mode])
