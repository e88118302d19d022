"""Per-node costs of hand-built ONNX graphs: the same conventions as the torch analysis, as arithmetic."""

import pytest
from onnx import helper
from torch import nn

from archcost.cost import analyze
from archcost.onnx_graph import analyze_onnx
from tests.onnx_graph.graphs import ints, save, weight

node = helper.make_node


def one(tmp_path, nodes, x_shape, inits=(), **kw):
    """Analysis of a one-input graph at the batch size it was written with."""
    return analyze_onnx(save(tmp_path / "m.onnx", nodes, x_shape, inits, **kw), batch_size=x_shape[0])


def test_conv_groups_dilation_pads_strides(tmp_path):
    # 8 -> 16 channels in 2 groups, 3x3 kernel dilated by 2, stride 2, pad 1 on a 16x16 input:
    # out = floor((16 + 2 - 2 * (3 - 1) - 1) / 2) + 1 = 7.
    conv = node("Conv", ["x", "w", "b"], ["y"], group=2, dilations=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1])
    r = one(tmp_path, [conv], (1, 8, 16, 16), [weight("w", 16, 4, 3, 3), weight("b", 16)])
    (row,) = r.layers
    assert row.output_shape == (1, 16, 7, 7)
    assert row.macs == (16 * 7 * 7) * (4 * 3 * 3)  # 28,224: each output sums C_in/groups * k*k products
    assert row.flops == 2 * row.macs + 16 * 7 * 7  # plus one bias add per output
    assert row.params == 16 * 4 * 3 * 3 + 16
    assert row.param_bytes == 4 * row.params
    assert row.activation_bytes == 4 * 16 * 7 * 7
    assert row.sources == (-1,)
    assert row.name == "/conv0/Conv" and row.module == "conv0"

    torch_row = analyze(nn.Conv2d(8, 16, 3, stride=2, padding=1, dilation=2, groups=2), (8, 16, 16)).layers[0]
    assert (row.params, row.macs, row.flops) == (torch_row.params, torch_row.macs, torch_row.flops)


def test_conv_transpose_and_depthwise(tmp_path):
    # Transposed 2x2 stride 2, 4 -> 6 channels on 5x5: every input element scatters to 6 * 2 * 2 outputs.
    up = node("ConvTranspose", ["x", "w"], ["t"], strides=[2, 2])
    # Depthwise 3x3 on the 6 channels of the 10x10 result, padding 1: 9 MACs per output.
    dw = node("Conv", ["t", "d"], ["y"], group=6, pads=[1, 1, 1, 1])
    r = one(tmp_path, [up, dw], (1, 4, 5, 5), [weight("w", 4, 6, 2, 2), weight("d", 6, 1, 3, 3)])
    assert [x.macs for x in r.layers] == [(4 * 5 * 5) * (6 * 2 * 2), (6 * 10 * 10) * 9]
    assert [x.flops for x in r.layers] == [2 * 4 * 5 * 5 * 24, 2 * 6 * 10 * 10 * 9]  # no bias
    assert [x.params for x in r.layers] == [4 * 6 * 2 * 2, 6 * 9]
    assert r.layers[1].sources == (0,)


def test_gemm_matmul_and_their_torch_equivalents(tmp_path):
    gemm = node("Gemm", ["x", "w", "b"], ["h"], transB=1)  # nn.Linear(20, 30): x W^T + b
    mm = node("MatMul", ["h", "m"], ["y"])
    r = one(tmp_path, [gemm, mm], (4, 20), [weight("w", 30, 20), weight("b", 30), weight("m", 30, 5)])
    g, m = r.layers
    assert (g.params, g.macs, g.flops) == (30 * 20 + 30, 4 * 30 * 20, 2 * 4 * 30 * 20 + 4 * 30)
    assert (m.params, m.macs, m.flops) == (30 * 5, 4 * 5 * 30, 2 * 4 * 5 * 30)
    t = analyze(nn.Linear(20, 30), (20,), batch_size=4).layers[0]
    assert (g.params, g.macs, g.flops) == (t.params, t.macs, t.flops)


def test_gemm_scale_factors_cost_a_multiply(tmp_path):
    gemm = node("Gemm", ["x", "w", "b"], ["y"], transB=1, alpha=0.5, beta=2.0)
    (row,) = one(tmp_path, [gemm], (2, 8), [weight("w", 3, 8), weight("b", 3)]).layers
    assert row.flops == 2 * (2 * 3 * 8) + 2 * 3 + 2 * 3 + 3  # products, bias add, alpha on outputs, beta on C


def test_batch_norm_running_stats_are_buffers_not_params(tmp_path):
    bn = node("BatchNormalization", ["x", "g", "b", "mean", "var"], ["y"])
    inits = [weight("g", 6), weight("b", 6), weight("mean", 6), weight("var", 6)]
    (row,) = one(tmp_path, [bn], (2, 6, 4, 4), inits).layers
    assert row.params == 2 * 6  # weight and bias; running mean and variance are buffers, as in torch
    assert row.flops == 2 * (2 * 6 * 4 * 4)  # inference: x * a + b
    t = analyze(nn.BatchNorm2d(6).eval(), (6, 4, 4), batch_size=2).layers[0]
    assert (row.params, row.flops) == (t.params, t.flops)


def test_lrn_and_pooling(tmp_path):
    nodes = [
        node("LRN", ["x"], ["a"], size=5, alpha=1e-4, beta=0.75, bias=2.0),
        node("MaxPool", ["a"], ["b"], kernel_shape=[3, 3], strides=[2, 2]),  # 13x13 -> 6x6
        node("AveragePool", ["b"], ["c"], kernel_shape=[2, 2], strides=[2, 2]),  # 6x6 -> 3x3
        node("GlobalAveragePool", ["c"], ["d"]),
        node("GlobalMaxPool", ["c"], ["e"]),
        node("Add", ["d", "e"], ["y"]),
    ]
    r = one(tmp_path, nodes, (1, 8, 13, 13))
    assert [x.flops for x in r.layers] == [
        (8 * 13 * 13) * (2 * 5 + 3),  # LRN: 2 * size + 3 per element
        (8 * 6 * 6) * (9 - 1),  # a max over 9 values: 8 comparisons
        (8 * 3 * 3) * 4,  # an average of 4: 3 adds and a divide
        8 * 3 * 3,  # global average: every input read once (adds and the divide)
        8 * 3 * 3 - 8,  # global max: n - 1 comparisons per channel
        8,  # one add per output element
    ]
    assert r.layers[-1].sources == (3, 4)
    assert all(x.macs == 0 and x.params == 0 for x in r.layers)


@pytest.mark.parametrize(
    ("op", "attrs", "per_element"),
    [
        ("Relu", {}, 1),
        ("Sigmoid", {}, 3),  # exp, add 1, divide
        ("Tanh", {}, 1),
        ("LeakyRelu", {"alpha": 0.1}, 2),
        ("HardSwish", {}, 4),
        ("Softmax", {"axis": 1}, 5),  # max, subtract, exp, sum, divide
        ("Elu", {}, 3),
    ],
)
def test_activations_cost_per_element(tmp_path, op, attrs, per_element):
    (row,) = one(tmp_path, [node(op, ["x"], ["y"], **attrs)], (2, 10)).layers
    assert row.flops == 20 * per_element and row.type == op


def test_clip_is_relu6(tmp_path):
    # torch exports nn.ReLU6 as Clip(0, 6): the bounds are constants, not parameters.
    clip = node("Clip", ["x", "lo", "hi"], ["y"])
    r = one(tmp_path, [clip], (1, 3, 4, 4), [weight("lo"), weight("hi")])
    assert (r.layers[0].params, r.layers[0].flops) == (0, 2 * 3 * 4 * 4)


def test_data_movement_dropout_and_resize(tmp_path):
    nodes = [
        node("Flatten", ["x"], ["f"], axis=1),  # (2, 48)
        node("Reshape", ["f", "shape"], ["r"]),  # (2, 3, 4, 4)
        node("Concat", ["r", "r"], ["c"], axis=1),  # (2, 6, 4, 4)
        node("Dropout", ["c"], ["d"]),
        node("Resize", ["d", "", "scales"], ["z"], mode="linear"),  # (2, 6, 8, 8), bilinear
        node("Resize", ["z", "", "scales"], ["y"], mode="nearest"),  # (2, 6, 16, 16)
    ]
    inits = [ints("shape", [2, 3, 4, 4]), weight("scales", 4)]
    inits[1].ClearField("raw_data")
    inits[1].float_data[:] = [1.0, 1.0, 2.0, 2.0]
    r = one(tmp_path, nodes, (2, 3, 4, 4), inits)
    assert [x.output_shape for x in r.layers] == [
        (2, 48),
        (2, 3, 4, 4),
        (2, 6, 4, 4),
        (2, 6, 4, 4),
        (2, 6, 8, 8),
        (2, 6, 16, 16),
    ]
    assert [x.flops for x in r.layers] == [0, 0, 0, 0, (2 * 6 * 8 * 8) * 9, 0]  # bilinear: 3 lerps of 3
    assert r.layers[2].sources == (1,)
    assert r.totals["params"] == 0  # shapes and scales are not parameters


def test_scalar_constants_are_not_params_but_vectors_are(tmp_path):
    nodes = [
        node("Mul", ["x", "half"], ["a"]),  # x * 0.5: a constant
        node("Add", ["a", "bias"], ["y"]),  # + a learned per-feature vector: a parameter
    ]
    r = one(tmp_path, nodes, (2, 5), [weight("half"), weight("bias", 5)])
    assert [x.params for x in r.layers] == [0, 5]
    assert [x.flops for x in r.layers] == [10, 10]


def test_exporter_identity_aliases_count_as_params_and_shared_weights_once(tmp_path):
    # The TorchScript exporter stores equal initializers once and aliases the rest through Identity.
    nodes = [
        node("Identity", ["w"], ["w_alias"], name="Identity_0"),
        node("MatMul", ["x", "w"], ["a"]),
        node("MatMul", ["a", "w_alias"], ["b"]),
        node("MatMul", ["b", "w"], ["y"]),  # the same tensor again: a shared weight counts once
    ]
    r = one(tmp_path, nodes, (1, 4), [weight("w", 4, 4)])
    assert [x.params for x in r.layers] == [16, 16, 0]
    assert r.totals["params"] == 2 * 4 * 4


def test_weight_only_work_is_a_row_and_unused_initializers_are_listed(tmp_path):
    nodes = [
        node("Pow", ["w", "two"], ["w2"]),  # ||w||^2 computed at every forward, as LeNet's RBF layer does
        node("ReduceSum", ["w2"], ["n"], keepdims=0),
        node("Add", ["x", "n"], ["y"]),
    ]
    r = one(tmp_path, nodes, (1, 4), [weight("w", 4), weight("two"), weight("spare", 3, 3)])
    assert [x.type for x in r.layers] == ["Pow", "ReduceSum", "Add", "unused parameters"]
    assert [x.flops for x in r.layers] == [4, 3, 4, 0]
    assert [x.params for x in r.layers] == [4, 0, 0, 9]
    assert r.layers[0].sources == () and r.layers[2].sources == (-1, 1)


def test_unknown_op_is_listed_unsupported(tmp_path):
    nodes = [node("Relu", ["x"], ["a"]), node("CumSum", ["a", "axis"], ["y"])]
    r = one(tmp_path, nodes, (2, 8), [ints("axis", 1)])
    assert not r.layers[1].supported and r.layers[1].flops == 0
    assert [(u.layer, u.op) for u in r.unsupported] == [(r.layers[1].name, "CumSum")]
    assert r.layers[1].output_shape == (2, 8)


def test_shape_ops_are_not_rows_and_dtype_sets_bytes(tmp_path):
    nodes = [
        node("Shape", ["x"], ["s"]),
        node("Relu", ["x"], ["a"]),
        node("Reshape", ["a", "s"], ["y"]),
    ]
    path = save(tmp_path / "m.onnx", nodes, (2, 3))
    r = analyze_onnx(path, batch_size=2, dtype="float16")
    assert [x.type for x in r.layers] == ["Relu", "Reshape"]
    assert r.layers[0].activation_bytes == 2 * 6 and r.dtype == "float16"


def test_dynamic_dims_take_input_size_and_batch(tmp_path):
    conv = node("Conv", ["x", "w"], ["y"])
    path = save(tmp_path / "m.onnx", [conv], None, [weight("w", 4, 3, 3, 3)], x_dims=["N", 3, "H", "W"])
    r = analyze_onnx(path, input_size=(3, 10, 12), batch_size=5)
    assert r.input_shape == (5, 3, 10, 12)
    assert r.layers[0].output_shape == (5, 4, 8, 10)
    assert r.layers[0].macs == (5 * 4 * 8 * 10) * (3 * 3 * 3)
