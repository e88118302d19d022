"""The MAC / FLOP / byte conventions archcost counts by, and the one place numbers become text.

Conventions (the README's "What the numbers mean" repeats them):

* ``macs``: multiply-accumulates of convolutions, transposed convolutions, linear, bilinear and matrix
  products only (what papers call mult-adds). One MAC = one multiply plus one add.
* ``flops``: every floating-point operation: 2 per MAC, plus one per output element for a bias, plus
  the per-element work of normalisation, activation, pooling and elementwise layers listed in
  ``FLOPS_PER_ELEMENT`` below. A transcendental function (exp, tanh, erf, pow, sqrt) counts as one.
* ``*_bytes``: bytes in the chosen dtype (float32 = 4, float16/bfloat16 = 2, int8 = 1). Sizes are
  printed in decimal units: 1 KB = 1000 bytes, 1 MB = 10^6 bytes.
"""

from __future__ import annotations

import math

import torch

#: Floating-point operations per output element, with the reasoning for each count.
FLOPS_PER_ELEMENT: dict[str, tuple[int, str]] = {
    "relu": (1, "one comparison with 0"),
    "relu6": (2, "two comparisons (clamp to [0, 6])"),
    "hardtanh": (2, "two comparisons (clamp)"),
    "leaky_relu": (2, "comparison, multiply by the slope"),
    "prelu": (2, "comparison, multiply by the learned slope"),
    "elu": (3, "comparison, exp, multiply-subtract"),
    "selu": (4, "comparison, exp, multiply-subtract, scale"),
    "threshold": (1, "one comparison"),
    "tanh": (1, "one transcendental"),
    "sigmoid": (3, "exp, add 1, divide"),
    "hardsigmoid": (3, "add 3, divide by 6, clamp"),
    "hardswish": (4, "hardsigmoid (3), multiply"),
    "silu": (4, "sigmoid (3), multiply"),
    "mish": (5, "exp, log1p (softplus), tanh, multiply, add"),
    "gelu": (5, "divide by sqrt 2, erf, add 1, multiply by x, multiply by 0.5"),
    "softplus": (3, "exp, add 1, log"),
    "softmax": (5, "max, subtract, exp, sum, divide"),
    "log_softmax": (5, "max, subtract, exp, sum, log-subtract"),
    "add": (1, "one add per output element (broadcast included)"),
    "sub": (1, "one subtract per output element"),
    "mul": (1, "one multiply per output element"),
    "div": (1, "one divide per output element"),
    "pow": (1, "one power per output element"),
    "sqrt": (1, "one square root"),
    "rsqrt": (1, "one reciprocal square root"),
    "exp": (1, "one exp"),
    "log": (1, "one log"),
    "abs": (1, "one absolute value"),
    "neg": (1, "one negation"),
    "clamp": (2, "two comparisons"),
    "maximum": (1, "one comparison"),
    "minimum": (1, "one comparison"),
    "batch_norm_eval": (2, "(x - mean) / sqrt(var + eps) * gamma + beta folded to x * a + b: multiply, add"),
    "norm_train": (
        5,
        "statistics at run time: mean (1 add), variance (subtract, square-accumulate: 2), normalise "
        "(subtract mean, multiply by 1/std: 2)",
    ),
    "norm_affine": (2, "scale by gamma, add beta"),
    "dropout_train": (1, "multiply by the scaled mask"),
    "transcendental": (
        1,
        "one transcendental function: sin, cos, tan, their inverses and hyperbolics, atan2, erf, erfc, erfinv, "
        "exp2, expm1, log2, log10, log1p",
    ),
    "rounding": (1, "one rounding or sign function: floor, ceil, round, trunc, frac, sign"),
    "comparison": (1, "one comparison: eq, ne, lt, le, gt, ge, isnan, isinf, isfinite, clamp_min, clamp_max"),
    "logical": (1, "one logical or bitwise operation: logical_and, logical_or, logical_xor, logical_not"),
    "addcmul": (3, "input + value * t1 * t2: two multiplies, one add"),
    "addcdiv": (3, "input + value * t1 / t2: divide, multiply, add"),
    "lerp": (3, "start + weight * (end - start): subtract, multiply, add"),
    "complex_add": (2, "complex add or subtract: real and imaginary parts"),
    "complex_mul": (6, "complex multiply (a+bi)(c+di): 4 multiplies, 2 adds"),
    "complex_div": (11, "complex divide: c^2+d^2 (3), the two cross sums (6), two divides (2)"),
    "attention_scale": (1, "attention, per score: multiply by the scale (1/sqrt(head dim) by default)"),
    "attention_mask": (1, "attention, per score: add a float mask, or select by a boolean or causal mask"),
    "rms_norm": (
        3,
        "per element: square, accumulate, multiply by 1/rms (the mean, eps and rsqrt per group are not counted "
        "per element); a weight adds 1 more",
    ),
    "vector_norm_p2": (2, "2-norm, per input element: square, accumulate (the root per output replaces one add)"),
    "vector_norm_p": (3, "p-norm for other p, per input element: abs, power, accumulate (root per output)"),
    "vector_norm_p1": (2, "1-norm, inf-norm or 0-norm, per input element: abs (or compare), accumulate"),
    "var": (
        4,
        "variance, per input element: mean (add), subtract the mean, square, accumulate; the two divides per "
        "group replace the two missing adds",
    ),
    "cumsum": (1, "cumulative sum or product: one add (multiply) per element after the first of each line"),
    "lstm_cell": (
        19,
        "LSTM, per hidden unit and step, besides the matrix products and biases: add the input and hidden "
        "projections (4 gates), 3 sigmoids (3 each), 2 tanh, c = f*c + i*g (3), h = o*tanh(c) (1)",
    ),
    "gru_cell": (
        15,
        "GRU, per hidden unit and step, besides the matrix products and biases: add r and z projections (2), "
        "2 sigmoids (3 each), n = tanh(in + r*hn) (3), h = (1-z)*n + z*h (4)",
    ),
    "rnn_cell": (2, "Elman RNN, per hidden unit and step: add the two projections, tanh or relu"),
    "grid_coordinate": (2, "grid_sample, per grid coordinate: scale and shift from [-1, 1] to pixels"),
}

#: FLOPs of one complex FFT of N points, in units of N log2 N: the radix-2 Cooley-Tukey count that FFTW's
#: benchmarks use to report speed ("mflops = 5 N log2(N) / time", https://www.fftw.org/speed/method.html).
#: A transform of real input (rfft) or to real output (irfft) counts half.
FFT_FLOPS_PER_N_LOG2_N = 5

#: Bytes per element of the dtypes the CLI accepts.
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int8": torch.int8,
}


def per_element(op: str) -> int:
    """FLOPs per output element of ``op`` (see ``FLOPS_PER_ELEMENT``)."""
    return FLOPS_PER_ELEMENT[op][0]


def dtype_bytes(dtype: torch.dtype) -> int:
    """Bytes of one element of ``dtype``."""
    return torch.empty((), dtype=dtype, device="meta").element_size()


def numel(shape: tuple[int, ...] | torch.Size) -> int:
    """Number of elements of a shape."""
    return math.prod(shape)


_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K"))


def format_count(value: float | int | None, digits: int = 2) -> str:
    """A count with an SI prefix: 15_470_000_000 -> '15.47 G'; small values stay whole."""
    if value is None:
        return "?"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    for scale, prefix in _PREFIXES:
        if abs(value) >= scale:
            return f"{value / scale:.{digits}f} {prefix}"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:.{digits}f}"


def format_bytes(value: float | int | None, digits: int = 2) -> str:
    """Bytes in decimal units: 553_433_152 -> '553.43 MB'."""
    if value is None:
        return "?"
    text = format_count(value, digits)
    return f"{text}B" if text[-1].isalpha() else f"{text} B"


def inner_tensors(t: torch.Tensor) -> list[torch.Tensor]:
    """The plain tensors that hold ``t``'s data: for a wrapper tensor subclass (torch's traceable-wrapper
    protocol, ``__tensor_flatten__``; torchao's quantized tensors: int8 or packed int4 ``qdata`` beside float
    ``scale`` and ``zero_point``) its inner tensors, recursively; ``[t]`` for a plain tensor. A wrapper's own
    ``dtype`` is what it computes as (float32 for an int8 weight-only tensor), not what it stores."""
    from torch.utils._python_dispatch import is_traceable_wrapper_subclass

    if not is_traceable_wrapper_subclass(t):
        return [t]
    names, _ = getattr(t, "__tensor_flatten__")()  # noqa: B009 (the protocol's method; Tensor does not declare it)
    return [leaf for name in names for leaf in inner_tensors(getattr(t, name))]


def bytes_by_dtype(t: torch.Tensor) -> dict[str, int]:
    """``stored_bytes`` of ``t`` split by the dtype each part is stored in (``{"int8": 32768, "float32": 512}``
    for a torchao int8 weight of 128 x 256 with one scale per row and int8 zero points)."""
    out: dict[str, int] = {}
    for leaf in inner_tensors(t):
        name = str(leaf.dtype).removeprefix("torch.")
        out[name] = out.get(name, 0) + _plain_bytes(leaf)
    return out


def stored_bytes(t: torch.Tensor) -> int:
    """Bytes ``t`` occupies as stored: its elements at their own dtype, and for a quantized tensor
    (``qint8``, ``quint8``, ...) its quantization parameters as torch keeps them: one float64 scale and one
    int64 zero point per tensor (``PerTensorAffineQuantizer``), or a scale and zero-point tensor of one entry
    per channel (``PerChannelAffineQuantizer``: ``q_per_channel_scales``/``q_per_channel_zero_points``). A
    wrapper tensor subclass (torchao) occupies the bytes of its inner tensors (``inner_tensors``)."""
    return sum(_plain_bytes(leaf) for leaf in inner_tensors(t))


def _plain_bytes(t: torch.Tensor) -> int:
    data = t.numel() * t.element_size()
    if not t.is_quantized:
        return data
    if t.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric):
        return data + 8 + 8
    scales, zeros = t.q_per_channel_scales(), t.q_per_channel_zero_points()
    return data + scales.numel() * scales.element_size() + zeros.numel() * zeros.element_size()
