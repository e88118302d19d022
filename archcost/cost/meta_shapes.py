"""Shape rules for a few ops on meta tensors, where torch's own meta path is slow to start.

torch's meta implementations of linear, batch norm, elementwise arithmetic and adaptive average pooling go
through decompositions whose first call imports ``torch._dynamo`` (1-5 s of every CLI run). These rules
compute the output shape directly and fall back to torch for real tensors or anything they do not cover.
"""

from __future__ import annotations

import torch


def _linear_meta(func, input, weight, bias=None):
    """``F.linear`` on meta tensors, by its shape rule. torch's own meta path for linear goes through the
    ``addmm`` decomposition, whose first call imports torch._dynamo: 3 to 5 s of every CLI run."""
    if input.device.type != "meta" or input.shape[-1] != weight.shape[-1]:
        return func(input, weight, bias)  # real data, or let torch raise its error
    return input.new_empty((*input.shape[:-1], weight.shape[0]))


def _batch_norm_meta(func, input, running_mean, running_var, weight=None, bias=None, training=False, *args, **kwargs):
    """``F.batch_norm`` on meta tensors: the output has the input's shape. torch's meta path goes through
    the ``native_batch_norm`` decomposition, whose first call imports torch._dynamo (about 1 s)."""
    channels = next((t.numel() for t in (weight, running_mean) if t is not None), None)
    if input.device.type != "meta" or input.dim() < 2 or (channels is not None and channels != input.shape[1]):
        return func(input, running_mean, running_var, weight, bias, training, *args, **kwargs)
    return input.new_empty(input.shape)


def broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> torch.Size:
    """NumPy broadcasting of two shapes (``torch.broadcast_shapes`` imports sympy on its first call).
    Raises ValueError where they do not broadcast."""
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        x, y = (a[-i] if i <= len(a) else 1), (b[-i] if i <= len(b) else 1)
        if x != y and 1 not in (x, y):
            raise ValueError(f"shapes {a} and {b} do not broadcast")
        out.append(y if x == 1 else x)
    return torch.Size(reversed(out))


def _elementwise_meta(func, a, b, *args, **kwargs):
    """``a + b`` (and -, *, /, in place or not) on meta tensors, by broadcasting. torch's meta path goes
    through a primitive reference whose first call imports torch._dynamo (about 1 s)."""
    if not (isinstance(a, torch.Tensor) and a.device.type == "meta") or (
        isinstance(b, torch.Tensor) and b.device.type != "meta"
    ):
        return func(a, b, *args, **kwargs)
    try:
        shape = broadcast(tuple(a.shape), tuple(b.shape) if isinstance(b, torch.Tensor) else ())
    except ValueError:
        return func(a, b, *args, **kwargs)  # torch's own error
    name = getattr(func, "__name__", "")
    if name.endswith("_") and not name.endswith("__") or name.startswith("__i"):  # in place: returns a
        return a if shape == a.shape else func(a, b, *args, **kwargs)
    if name.startswith("__r"):  # 2 - x: the tensor is still the first argument here
        a, b = b, a
    return torch.empty(shape, dtype=torch.result_type(a, b), device="meta")


def _adaptive_avg_pool_meta(func, input, output_size):
    """``F.adaptive_avg_pool{1,2,3}d`` on meta tensors: the output is the requested size. torch's meta
    path decomposes to a mean whose first call imports torch._dynamo (about 1 s)."""
    dims = int(getattr(func, "__name__", "2d")[-2])
    size = (output_size,) * dims if isinstance(output_size, int) else tuple(output_size)
    if input.device.type != "meta" or input.dim() < dims + 1 or len(size) != dims or min(input.shape[-dims:]) < 1:
        return func(input, output_size)
    spatial = tuple(s if o is None else o for s, o in zip(input.shape[-dims:], size, strict=True))
    return input.new_empty((*input.shape[:-dims], *spatial))


META_SHAPE = {
    "adaptive_avg_pool1d": _adaptive_avg_pool_meta,
    "adaptive_avg_pool2d": _adaptive_avg_pool_meta,
    "adaptive_avg_pool3d": _adaptive_avg_pool_meta,
    "linear": _linear_meta,
    "batch_norm": _batch_norm_meta,
    "add": _elementwise_meta,
    "sub": _elementwise_meta,
    "mul": _elementwise_meta,
}


def _tuple(value, dims: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * dims
    value = tuple(value)
    return value * dims if len(value) == 1 else value


def _window_out(size: int, k: int, s: int, p: int, d: int, ceil: bool) -> int:
    """Output length of a sliding window (convolution or pooling) along one axis: torch's formula,
    ``floor((size + 2p - d(k - 1) - 1) / s) + 1``, and with ``ceil_mode`` the last window must start inside
    the input or its left padding."""
    span = size + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= size + p:
        out -= 1
    return out


def _conv_meta(func, input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """``F.conv{1,2,3}d`` on meta tensors by torch's shape formula. torch's meta path checks its
    arguments with ``torch._check``, whose first call imports sympy (about 0.3 s of every first analysis)."""
    dims = weight.dim() - 2 if isinstance(weight, torch.Tensor) else -1
    if (
        not isinstance(input, torch.Tensor)
        or input.device.type != "meta"
        or dims < 1
        or input.dim() != dims + 2
        or input.shape[1] != weight.shape[1] * groups
        or (bias is not None and bias.shape != (weight.shape[0],))
    ):
        return func(input, weight, bias, stride, padding, dilation, groups)  # real data, or torch's error
    kernel = tuple(weight.shape[2:])
    s, d = _tuple(stride, dims), _tuple(dilation, dims)
    if isinstance(padding, str):
        if padding == "same" and any(v != 1 for v in s):
            return func(input, weight, bias, stride, padding, dilation, groups)
        out = tuple(input.shape[2:]) if padding == "same" else None
        p = (0,) * dims
    else:
        p, out = _tuple(padding, dims), None
    if out is None:
        out = tuple(
            _window_out(n, k, si, pi, di, False)
            for n, k, si, pi, di in zip(input.shape[2:], kernel, s, p, d, strict=True)
        )
    if min(out) < 1:
        return func(input, weight, bias, stride, padding, dilation, groups)
    return input.new_empty((input.shape[0], weight.shape[0], *out))


def _pool_meta(dims: int, kind: str):
    """``F.max_pool{n}d`` / ``F.avg_pool{n}d`` on meta tensors by torch's shape formula (torch's meta
    path imports sympy through ``torch._check`` on its first call)."""

    names = (
        ("dilation", "ceil_mode", "return_indices")
        if kind == "max"
        else ("ceil_mode", "count_include_pad", "divisor_override")
    )

    def rule(func, input, kernel_size, stride=None, padding=0, *rest, **kwargs):
        given = dict(zip(names, rest, strict=False)) | kwargs
        if (
            not isinstance(input, torch.Tensor)
            or input.device.type != "meta"
            or input.dim() != dims + 2
            or not set(given) <= set(names)
        ):
            return func(input, kernel_size, stride, padding, *rest, **kwargs)
        dilation, ceil, indices = given.get("dilation", 1), given.get("ceil_mode", False), given.get("return_indices")
        k = _tuple(kernel_size, dims)
        s = _tuple(stride, dims) if stride not in (None, [], ()) else k
        p, d = _tuple(padding, dims), _tuple(dilation, dims)
        if any(2 * pi > ki for pi, ki in zip(p, k, strict=True)):
            return func(input, kernel_size, stride, padding, *rest, **kwargs)  # torch's error
        out = tuple(
            _window_out(n, ki, si, pi, di, bool(ceil))
            for n, ki, si, pi, di in zip(input.shape[2:], k, s, p, d, strict=True)
        )
        if min(out) < 1:
            return func(input, kernel_size, stride, padding, *rest, **kwargs)
        values = input.new_empty((*input.shape[:2], *out))
        return (values, torch.empty(values.shape, dtype=torch.int64, device="meta")) if indices else values

    return rule


META_SHAPE.update({f"conv{n}d": _conv_meta for n in (1, 2, 3)})
META_SHAPE.update({f"max_pool{n}d": _pool_meta(n, "max") for n in (1, 2, 3)})
META_SHAPE.update({f"avg_pool{n}d": _pool_meta(n, "avg") for n in (1, 2, 3)})


def _same_shape_meta(func, input, *args, **kwargs):
    """An op whose output has its input's shape (local response norm): on meta, that shape directly.
    torch's implementation runs elementwise ops whose meta path imports torch._dynamo (about 1 s)."""
    if not isinstance(input, torch.Tensor) or input.device.type != "meta" or input.dim() < 3:
        return func(input, *args, **kwargs)
    return input.new_empty(input.shape)


META_SHAPE["local_response_norm"] = _same_shape_meta


def _cat_meta(func, tensors, dim=0, *args, **kwargs):
    """``torch.cat`` of meta tensors: sizes add along ``dim``, every other size must agree. torch's meta
    path goes through a decomposition whose first call imports torch._dynamo (about 1 s)."""
    ts = list(tensors) if isinstance(tensors, (list, tuple)) else None
    if (
        not ts
        or args
        or kwargs
        or not all(isinstance(t, torch.Tensor) and t.device.type == "meta" for t in ts)
        or len({t.dim() for t in ts}) != 1
        or ts[0].dim() == 0
        or not isinstance(dim, int)
    ):
        return func(tensors, dim, *args, **kwargs)
    axis = dim % ts[0].dim()
    rest = {tuple(s for i, s in enumerate(t.shape) if i != axis) for t in ts}
    if len(rest) != 1 or len({t.dtype for t in ts}) != 1:
        return func(tensors, dim, *args, **kwargs)  # torch's error, or its type promotion
    shape = list(ts[0].shape)
    shape[axis] = sum(t.shape[axis] for t in ts)
    return torch.empty(shape, dtype=ts[0].dtype, device="meta")


META_SHAPE.update({"cat": _cat_meta, "concat": _cat_meta, "concatenate": _cat_meta})


_UNARY = (
    "relu", "relu6", "hardtanh", "leaky_relu", "elu", "selu", "celu", "silu", "mish", "gelu", "sigmoid", "tanh",
    "hardsigmoid", "hardswish", "softplus", "threshold", "dropout", "dropout1d", "dropout2d", "dropout3d",
    "alpha_dropout", "feature_alpha_dropout", "exp", "log", "sqrt", "rsqrt", "abs", "neg", "erf",
)  # fmt: skip


def _unary_meta(func, input, *args, **kwargs):
    """A shape-preserving unary op (activation, dropout) on a meta tensor: an in-place call returns its
    input, any other a new tensor of its shape and dtype. torch's meta paths of several of these go
    through references whose first call imports torch._dynamo (about 1 s)."""
    if not isinstance(input, torch.Tensor) or input.device.type != "meta" or not input.is_floating_point():
        return func(input, *args, **kwargs)
    if any(isinstance(a, torch.Tensor) for a in [*args, *kwargs.values()]) or "out" in kwargs:
        return func(input, *args, **kwargs)  # prelu's weight, threshold's tensors: torch's own path
    name = getattr(func, "__name__", "")
    if (
        (name.endswith("_") and not name.endswith("__"))
        or kwargs.get("inplace") is True
        or any(a is True for a in args)
    ):
        return input
    return input.new_empty(input.shape)


META_SHAPE.update({op: _unary_meta for op in _UNARY})


def _norm_meta(func, input, *args, **kwargs):
    """A normalisation (``F.layer_norm``, ``F.group_norm``, ``F.rms_norm``) on a meta tensor: a new tensor of
    its input's shape and dtype. torch's meta path runs the Python reference of the op (``torch._refs``
    through its decomposition: about 3.5 ms per call; a ViT-B analysis spent a third of its time there)."""
    if not isinstance(input, torch.Tensor) or input.device.type != "meta" or not input.is_floating_point():
        return func(input, *args, **kwargs)
    if any(isinstance(a, torch.Tensor) and a.device.type != "meta" for a in [*args, *kwargs.values()]):
        return func(input, *args, **kwargs)
    shape = args[0] if args else kwargs.get("normalized_shape", kwargs.get("num_groups"))
    if getattr(func, "__name__", "") in ("layer_norm", "rms_norm"):
        shape = tuple(shape) if isinstance(shape, (list, tuple, torch.Size)) else (shape,)
        if tuple(input.shape[-len(shape) :]) != shape:
            return func(input, *args, **kwargs)  # torch's own error
    elif not isinstance(shape, int) or input.dim() < 2 or input.shape[1] % shape:
        return func(input, *args, **kwargs)
    return input.new_empty(input.shape)


META_SHAPE.update({op: _norm_meta for op in ("layer_norm", "group_norm", "rms_norm")})


def _softmax_meta(func, input, dim=None, *args, **kwargs):
    """``softmax`` / ``log_softmax`` on a meta tensor: its input's shape and dtype (torch's meta path goes
    through the ``safe_softmax`` decomposition and references)."""
    dtype = kwargs.get("dtype", args[1] if len(args) > 1 else None)
    if (
        not isinstance(input, torch.Tensor)
        or input.device.type != "meta"
        or not input.is_floating_point()
        or dtype is not None
        or not isinstance(dim, int)
        or not -max(input.dim(), 1) <= dim < max(input.dim(), 1)
    ):
        return func(input, dim, *args, **kwargs)
    return input.new_empty(input.shape)


META_SHAPE.update({op: _softmax_meta for op in ("softmax", "log_softmax")})


def _sdpa_meta(func, query, key, value, *args, **kwargs):
    """``F.scaled_dot_product_attention`` on meta tensors: ``(*query.shape[:-1], value.shape[-1])``. torch's
    meta path decomposes the math kernel through references (about 4 ms per call)."""
    ts = (query, key, value)
    if (
        not all(isinstance(t, torch.Tensor) and t.device.type == "meta" and t.dim() >= 2 for t in ts)
        or query.shape[-1] != key.shape[-1]
        or key.shape[-2] != value.shape[-2]
        or not (query.shape[:-3] == key.shape[:-3] == value.shape[:-3])  # leading batch dims: no broadcasting
        or len({t.dtype for t in ts}) != 1
        or any(isinstance(a, torch.Tensor) and a.device.type != "meta" for a in [*args, *kwargs.values()])
    ):
        return func(query, key, value, *args, **kwargs)
    return query.new_empty((*query.shape[:-1], value.shape[-1]))


META_SHAPE["scaled_dot_product_attention"] = _sdpa_meta
