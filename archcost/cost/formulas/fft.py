"""Fast Fourier transforms (``torch.fft``): ``5 N log2 N`` FLOPs per complex transform of ``N`` points,
the radix-2 Cooley-Tukey count FFTW's benchmarks report speed by (``units.FFT_FLOPS_PER_N_LOG2_N``, with its
source). A transform of real input (``rfft``) or to real output (``irfft``, ``hfft``) counts half. A transform
over several axes of ``N1 x N2 x ...`` points is one along each axis: ``5 N log2 N`` with ``N = N1 * N2 * ...``
(the sum over axes of ``(N / Ni) * 5 Ni log2 Ni``). Counts are rounded to whole FLOPs.
"""

from __future__ import annotations

import math

from archcost.cost._registry import Cost, register_cost
from archcost.cost.formulas._args import arg, tensor_arg
from archcost.units import FFT_FLOPS_PER_N_LOG2_N


def fft_flops(transforms: int, points: int, *, real: bool) -> int:
    """``transforms`` transforms of ``points`` points each (complex, or real: half)."""
    if points <= 1:
        return 0
    flops = transforms * FFT_FLOPS_PER_N_LOG2_N * points * math.log2(points)
    return round(flops / 2 if real else flops)


def _ints(value: object, name: str) -> tuple[int, ...]:
    """An int-list argument (``s``, ``dim``) as a tuple: torch takes a single int for a list of one."""
    if isinstance(value, int):
        return (value,)
    if isinstance(value, (list, tuple)):
        return tuple(value)
    raise TypeError(f"{name} is {type(value).__name__}, not an int or a sequence of them")


def _axes(name: str, x_dim: int, args: tuple, kwargs: dict) -> list[int]:
    dims = arg(args, kwargs, 2, "dim", None)  # fft(input, n, dim), fft2/fftn(input, s, dim)
    if name.endswith("2") and dims is None:
        dims = (-2, -1)
    if dims is None and name.endswith("n"):
        s = arg(args, kwargs, 1, "s", None)
        dims = tuple(range(-len(_ints(s, "s")), 0)) if s is not None else tuple(range(x_dim))
    if dims is None:
        dims = (-1,)
    return [d % x_dim for d in _ints(dims, "dim")]


def _fft(name: str):
    real = "rfft" in name or "hfft" in name

    def cost(args: tuple, kwargs: dict, out) -> Cost:
        x = tensor_arg(args, kwargs, 0, "input")
        axes = _axes(name, x.dim(), args, kwargs)
        # the signal length per axis: the real side's length (input of rfft, output of irfft/hfft) or the
        # complex output's length
        real_side = x if name.startswith(("fft_rfft", "fft_ihfft")) else out
        points = math.prod(real_side.shape[a] for a in axes)
        transforms = real_side.numel() // points if points else 0
        size = arg(args, kwargs, 1, "s" if name[-1] in "2n" else "n", None)
        if real_side is x and size is not None:  # rfft(x, n=...): the signal is padded or cut to n
            points = math.prod(_ints(size, "s" if name[-1] in "2n" else "n"))
        return Cost(flops=fft_flops(transforms, points, real=real))

    return cost


for _name in (
    "fft_fft", "fft_ifft", "fft_fft2", "fft_ifft2", "fft_fftn", "fft_ifftn", "fft_rfft", "fft_irfft", "fft_rfft2",
    "fft_irfft2", "fft_rfftn", "fft_irfftn", "fft_hfft", "fft_ihfft", "fft_hfft2", "fft_ihfft2", "fft_hfftn",
    "fft_ihfftn",
):  # fmt: skip
    register_cost(_name)(_fft(_name))
