"""Building small ONNX files by hand for the tests."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def weight(name: str, *shape: int, dtype=np.float32) -> onnx.TensorProto:
    """An initializer of distinct values (so no exporter would merge two of them)."""
    size = int(np.prod(shape)) if shape else 1
    return numpy_helper.from_array(np.arange(1, size + 1, dtype=dtype).reshape(shape), name)


def ints(name: str, values) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)


def save(
    path,
    nodes,
    x_shape,
    inits=(),
    *,
    output: str = "y",
    opset: int = 17,
    x_dims=None,
) -> str:
    """A one-input graph ``x -> ... -> output`` written to ``path``; ``x_dims`` may hold symbols."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, x_dims if x_dims is not None else list(x_shape))
    y = helper.make_tensor_value_info(output, TensorProto.FLOAT, None)
    for i, n in enumerate(nodes):
        if not n.name:
            n.name = f"/{n.op_type.lower()}{i}/{n.op_type}"
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    if x_dims is None:  # declare the output's shape, as exporters do (the checker wants one)
        model = onnx.shape_inference.infer_shapes(model)
    if not model.graph.output[0].type.tensor_type.HasField("shape"):
        model.graph.output[0].type.tensor_type.shape.SetInParent()
    onnx.save(model, str(path))
    return str(path)
