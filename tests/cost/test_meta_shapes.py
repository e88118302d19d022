"""archcost's own meta shape rules (which keep sympy and torch._dynamo out of an analysis) give exactly
torch's shapes, and fall back to torch (and its error) for anything they do not cover."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from archcost.cost.meta_shapes import META_SHAPE, broadcast


def meta(*shape, dtype=torch.float32):
    return torch.empty(shape, device="meta", dtype=dtype)


@pytest.mark.parametrize(
    "k,s,p,d,g", [(k, s, p, d, g) for k, s, p, d, g in itertools.product((1, 3, 5), (1, 2), (0, 1, 2), (1, 2), (1, 4))]
)
def test_conv2d_shapes_equal_torchs(k, s, p, d, g):
    x, w = torch.randn(2, 8, 17, 12), torch.randn(12, 8 // g, k, k)
    want = F.conv2d(x, w, None, s, p, d, g).shape
    got = META_SHAPE["conv2d"](F.conv2d, meta(2, 8, 17, 12), meta(12, 8 // g, k, k), None, s, p, d, g)
    assert got.shape == want and got.device.type == "meta"


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_conv_string_padding(padding):
    want = F.conv1d(torch.randn(1, 4, 20), torch.randn(6, 4, 5), padding=padding).shape
    assert META_SHAPE["conv1d"](F.conv1d, meta(1, 4, 20), meta(6, 4, 5), None, 1, padding).shape == want


def test_conv_channel_mismatch_is_torchs_own_error():
    with pytest.raises(RuntimeError):
        META_SHAPE["conv2d"](F.conv2d, meta(1, 4, 8, 8), meta(6, 3, 3, 3))


@pytest.mark.parametrize("ceil", [False, True])
@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 1, 1), (3, 2, 0), (5, 3, 2)])
def test_pool_shapes_equal_torchs(k, s, p, ceil):
    x = torch.randn(1, 3, 13, 14)
    for name, fn in (("max_pool2d", F.max_pool2d), ("avg_pool2d", F.avg_pool2d)):
        want = fn(x, k, s, p, ceil_mode=ceil).shape
        assert META_SHAPE[name](fn, meta(1, 3, 13, 14), k, s, p, ceil_mode=ceil).shape == want


def test_max_pool_with_indices():
    values, indices = META_SHAPE["max_pool2d"](F.max_pool2d, meta(1, 3, 8, 8), 2, return_indices=True)
    assert values.shape == indices.shape == (1, 3, 4, 4) and indices.dtype == torch.int64


def test_cat_and_broadcast():
    assert META_SHAPE["cat"](torch.cat, [meta(1, 2, 4), meta(1, 3, 4)], 1).shape == (1, 5, 4)
    assert META_SHAPE["cat"](torch.cat, [meta(1, 2, 4), meta(1, 3, 4)], -2).shape == (1, 5, 4)
    assert broadcast((8, 1, 6, 1), (7, 1, 5)) == torch.broadcast_shapes((8, 1, 6, 1), (7, 1, 5))
    with pytest.raises(ValueError):
        broadcast((3, 4), (5, 4))


def test_unary_in_place_returns_its_input():
    x = meta(2, 3)
    assert META_SHAPE["relu"](torch.relu_, x) is x
    assert META_SHAPE["relu"](F.relu, x, inplace=True) is x
    y = META_SHAPE["silu"](F.silu, x)
    assert y is not x and y.shape == x.shape


def test_zoo_analysis_does_not_import_sympy():
    import subprocess
    import sys

    code = (
        "import sys, archcost\n"
        "for m in ('vgg16', 'resnet50', 'mobilenet_v2', 'inception_v3'):\n"
        "    archcost.analyze(archcost.get_model(m), archcost.get_meta(m).input_size, batch_size=32)\n"
        "print('sympy' in sys.modules, 'torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


@pytest.mark.parametrize(
    "name, fn, shape, args, kwargs",
    [
        ("layer_norm", F.layer_norm, (2, 5, 8), ((8,),), {}),
        ("layer_norm", F.layer_norm, (2, 5, 8), ([5, 8],), {}),
        ("group_norm", F.group_norm, (2, 6, 4, 4), (3,), {}),
        ("rms_norm", F.rms_norm, (2, 5, 8), ((8,),), {}),
        ("softmax", F.softmax, (2, 3, 7), (-1,), {}),
        ("log_softmax", F.log_softmax, (2, 3, 7), (1,), {}),
    ],
)
def test_norm_and_softmax_shapes_equal_torchs(name, fn, shape, args, kwargs):
    want = fn(torch.randn(shape), *args, **kwargs)
    got = META_SHAPE[name](fn, meta(*shape), *args, **kwargs)
    assert got.shape == want.shape and got.dtype == want.dtype and got.device.type == "meta"


def test_norm_and_softmax_fall_back_where_they_do_not_cover():
    with pytest.raises(RuntimeError):  # torch's own error for a normalized_shape the input does not end with
        META_SHAPE["layer_norm"](F.layer_norm, meta(2, 5, 8), (5,))
    with pytest.raises(RuntimeError):  # 6 channels do not split into 4 groups
        META_SHAPE["group_norm"](F.group_norm, meta(2, 6, 4, 4), 4)
    got = META_SHAPE["softmax"](F.softmax, meta(2, 3), -1, dtype=torch.float64)  # a dtype asked: torch's path
    assert got.dtype == torch.float64


@pytest.mark.parametrize(
    "q, k, v, kwargs",
    [
        ((2, 4, 10, 8), (2, 4, 12, 8), (2, 4, 12, 16), {}),
        ((2, 4, 10, 8), (2, 4, 10, 8), (2, 4, 10, 8), {"is_causal": True}),
        ((1, 8, 10, 8), (1, 2, 10, 8), (1, 2, 10, 8), {"enable_gqa": True}),
    ],
)
def test_sdpa_shape_equals_torchs(q, k, v, kwargs):
    want = F.scaled_dot_product_attention(torch.randn(q), torch.randn(k), torch.randn(v), **kwargs).shape
    got = META_SHAPE["scaled_dot_product_attention"](F.scaled_dot_product_attention, meta(*q), meta(*k), meta(*v),
                                                     **kwargs)  # fmt: skip
    assert got.shape == want
