"""Pooling: max, average, and adaptive (global) pooling in 1, 2 and 3 dimensions."""

from __future__ import annotations

import math

from archcost.cost._registry import Cost, register_cost
from archcost.cost.formulas._args import arg, tensor_arg
from archcost.cost.formulas._tools import FV_ADAPTIVE_AVG_POOL2D


def _window(kernel_size: object, dims: int) -> int:
    if isinstance(kernel_size, int):
        return kernel_size**dims
    if isinstance(kernel_size, (list, tuple)):
        return math.prod(kernel_size)
    raise TypeError(f"kernel_size is {type(kernel_size).__name__}, not an int or a sequence of them")


def max_pool_flops(out_elements: int, window: int) -> int:
    """A max over ``window`` values takes ``window - 1`` comparisons per output."""
    return out_elements * (window - 1)


def avg_pool_flops(out_elements: int, window: int) -> int:
    """An average of ``window`` values: ``window - 1`` adds and one divide per output."""
    return out_elements * window


def adaptive_window_sum(in_size: int, out_size: int) -> int:
    """Total length of the windows adaptive pooling uses along one axis: output i covers
    ``[floor(i * in / out), ceil((i + 1) * in / out))``."""
    return sum(-(-(i + 1) * in_size // out_size) - (i * in_size // out_size) for i in range(out_size))


def adaptive_elements(in_shape: tuple[int, ...], out_shape: tuple[int, ...], dims: int) -> int:
    """Input elements read over all adaptive windows (axes are separable)."""
    lead = math.prod(out_shape[:-dims])
    return lead * math.prod(adaptive_window_sum(i, o) for i, o in zip(in_shape[-dims:], out_shape[-dims:], strict=True))


def _pool(dims: int, kind: str):
    def cost(args: tuple, kwargs: dict, out) -> Cost:
        output = out[0] if isinstance(out, tuple) else out  # return_indices=True gives (values, indices)
        window = _window(arg(args, kwargs, 1, "kernel_size"), dims)
        fn = max_pool_flops if kind == "max" else avg_pool_flops
        return Cost(flops=fn(output.numel(), window))

    return cost


def _adaptive(dims: int, kind: str):
    def cost(args: tuple, kwargs: dict, out) -> Cost:
        output = out[0] if isinstance(out, tuple) else out
        x = tensor_arg(args, kwargs, 0, "input")
        read = adaptive_elements(tuple(x.shape), tuple(output.shape), dims)
        return Cost(flops=read if kind == "avg" else read - output.numel())

    return cost


for _d in (1, 2, 3):
    register_cost(f"max_pool{_d}d", f"max_pool{_d}d_with_indices")(_pool(_d, "max"))
    register_cost(f"avg_pool{_d}d")(_pool(_d, "avg"))
    register_cost(f"adaptive_avg_pool{_d}d", fvcore=FV_ADAPTIVE_AVG_POOL2D if _d == 2 else None)(_adaptive(_d, "avg"))
    register_cost(f"adaptive_max_pool{_d}d", f"adaptive_max_pool{_d}d_with_indices")(_adaptive(_d, "max"))
