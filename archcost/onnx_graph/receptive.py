"""The receptive-field geometry of ONNX nodes, for the same graph propagation as torch models."""

from __future__ import annotations

import onnx

from archcost.cost.receptive import COLLAPSE, POINTWISE, Unknown, Window

_POINTWISE = frozenset(
    """Relu LeakyRelu PRelu Elu Selu Sigmoid HardSigmoid HardSwish Tanh Softplus Softsign Gelu Mish Clip Erf Exp Log
    Sqrt Reciprocal Neg Abs Add Sub Mul Div Pow Max Min Sum Mean BatchNormalization InstanceNormalization
    LayerNormalization GroupNormalization LRN Dropout Identity Cast Softmax LogSoftmax Split Unsqueeze Squeeze
    Transpose Expand Where""".split()
)


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def node_step(node: onnx.NodeProto, in_shape: tuple[int, ...], out_shape: tuple[int, ...], axes: int,
              values: list | None = None):  # fmt: skip
    """The geometry of ``node`` on an input of ``in_shape`` (N, C, *spatial) with ``axes`` spatial dims;
    ``values`` are the constant inputs' values (None where an input is not constant)."""
    op, n = node.op_type, axes
    values = list(values or []) + [None] * 5
    a = _attrs(node)
    if op in ("Conv", "MaxPool", "AveragePool", "LpPool"):
        k = tuple(a.get("kernel_shape") or ())
        if op == "Conv" and not k:
            return Unknown("Conv without kernel_shape")
        s = tuple(a.get("strides") or (1,) * n)
        d = tuple(a.get("dilations") or (1,) * n) if op != "AveragePool" else (1,) * n
        pads = list(a.get("pads") or (0,) * (2 * n))
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            for i in range(n):
                total = max((out_shape[2 + i] - 1) * s[i] + d[i] * (k[i] - 1) + 1 - in_shape[2 + i], 0)
                pads[i] = total // 2 if auto == "SAME_UPPER" else total - total // 2
        if (
            op != "Conv"
            and all(o == 1 for o in out_shape[-n:])
            and all(k[i] + pads[i] + pads[n + i] >= in_shape[2 + i] for i in range(n))
        ):
            return COLLAPSE  # one window over the whole map: global pooling
        return Window(k, s, tuple(float(p) for p in pads[:n]), d)
    if op in ("GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceMax", "ReduceSum"):
        if op.startswith("Global") or len(out_shape) < len(in_shape) or tuple(out_shape[-n:]) != tuple(in_shape[-n:]):
            return COLLAPSE
        return POINTWISE
    if op == "Gather":  # picking channels (LeNet's connection table) keeps every spatial position
        axis = a.get("axis", 0) % max(len(in_shape), 1)
        return POINTWISE if axis < len(in_shape) - n else Unknown("Gather along a spatial axis")
    if op == "Concat":
        axis = a.get("axis", 1) % max(len(out_shape), 1)
        return POINTWISE if axis < len(out_shape) - n else Unknown("Concat along a spatial axis")
    if op in _POINTWISE:
        return POINTWISE
    if op in ("Flatten", "Reshape", "Gemm", "MatMul"):
        if len(out_shape) >= n + 2 and tuple(out_shape[-n:]) == tuple(in_shape[-n:]):
            return POINTWISE
        return COLLAPSE if len(out_shape) <= 2 else Unknown(f"{op} that mixes spatial axes")
    if op == "Pad":
        pads = a.get("pads", values[1])
        if pads is None:
            if tuple(in_shape[-n:]) == tuple(out_shape[-n:]):
                # pads computed at run time (torch's F.pad export) that leave the map's size alone: the
                # padding is on other axes (channels, as in CIFAR ResNets' option-A shortcut)
                return POINTWISE
            return Unknown("Pad with pads computed at run time")
        pads = [int(p) for p in list(pads)]
        rank = len(pads) // 2
        return Window((1,) * n, (1,) * n, tuple(float(p) for p in pads[rank - n : rank]), (1,) * n)
    if op == "Slice":
        step = _slice(in_shape, n, values)
        if isinstance(step, Unknown) and tuple(in_shape[-n:]) == tuple(out_shape[-n:]):
            return POINTWISE  # bounds computed at run time, map size unchanged: a slice of channels
        return step
    return Unknown(op)


def _slice(in_shape, n: int, values: list):
    """``x[:, :, ::2, ::2]`` as a 1x1 window of stride 2, a start offset shifting the centre."""
    starts, _ends, axes_, steps = values[1], values[2], values[3], values[4]
    if starts is None:
        return Unknown("Slice with starts computed at run time")
    rank = len(in_shape)
    axes_ = [int(x) % rank for x in (axes_ if axes_ is not None else range(len(starts)))]
    steps = [int(x) for x in (steps if steps is not None else [1] * len(axes_))]
    k, s, p = [1] * n, [1] * n, [0.0] * n
    for axis, start, step in zip(axes_, [int(x) for x in starts], steps, strict=True):
        if axis >= rank - n:
            if step < 1 or start < 0:
                return Unknown("Slice backwards or from the end of a spatial axis")
            s[axis - (rank - n)], p[axis - (rank - n)] = step, -float(start)
    return Window(tuple(k), tuple(s), tuple(p), (1,) * n)
