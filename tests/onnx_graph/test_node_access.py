"""OnnxNode's typed accessors (issue 29): a required input or attribute of the wrong kind is a clear error."""

import pytest

from archcost.onnx_graph.errors import OnnxFileError, OnnxShapeError
from archcost.onnx_graph.ops import ONNX_COSTS, OnnxNode


def _node(**kw) -> OnnxNode:
    base = {"name": "n", "op": "Conv", "attrs": {}, "inputs": ((1, 3, 8, 8), (4, 3, 3, 3)), "outputs": ((1, 4, 6, 6),)}
    return OnnxNode(**{**base, **kw})


def test_shape_of_an_omitted_required_input_is_a_shape_error():
    node = _node(inputs=((1, 3, 8, 8), None))
    with pytest.raises(OnnxShapeError, match="lacks its input 1"):
        ONNX_COSTS["Conv"](node)
    with pytest.raises(OnnxShapeError, match="lacks its input 2"):
        node.shape(2)  # past the inputs given


def test_attributes_read_as_their_kind():
    node = _node(attrs={"group": 1, "alpha": 2, "kernel_shape": [3, 2], "mode": b"linear"})
    assert node.int_attr("group", 7) == 1 and node.int_attr("absent", 7) == 7
    assert node.float_attr("alpha", 1.0) == 2.0 and isinstance(node.float_attr("alpha", 1.0), float)
    assert node.ints_attr("kernel_shape") == (3, 2)
    with pytest.raises(KeyError):
        node.int_attr("size")  # required, no default
    with pytest.raises(OnnxFileError, match="'mode'.*not a number"):
        node.int_attr("mode", 0)
    with pytest.raises(OnnxFileError, match="not a list of integers"):
        _node(attrs={"kernel_shape": [3.0, 2]}).ints_attr("kernel_shape")


def test_conv_cost_unchanged_through_the_accessors():
    # 1x4x6x6 outputs, each 3*3*3 MACs, no bias
    cost = ONNX_COSTS["Conv"](_node(attrs={"group": 1}))
    assert cost.macs == 1 * 4 * 6 * 6 * 3 * 3 * 3
