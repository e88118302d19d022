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


def _elementwise_meta(func, a, b, *args, **kwargs):
    """``a + b`` (and -, *, /, in place or not) on meta tensors, by broadcasting. torch's meta path goes
    through a primitive reference whose first call imports torch._dynamo (about 1 s)."""
    if not (isinstance(a, torch.Tensor) and a.device.type == "meta") or (
        isinstance(b, torch.Tensor) and b.device.type != "meta"
    ):
        return func(a, b, *args, **kwargs)
    try:
        shape = torch.broadcast_shapes(a.shape, b.shape if isinstance(b, torch.Tensor) else ())
    except RuntimeError:
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
