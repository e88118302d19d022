"""Bad ONNX input: each a clear ArchcostError (what is wrong, what to do) that the CLI exits 2 on."""

import onnx
import pytest
from onnx import helper

from archcost.errors import ArchcostError
from archcost.onnx_graph import OnnxFileError, OnnxShapeError, analyze_onnx
from tests.onnx_graph.graphs import ints, save, weight


def conv_file(tmp_path, **kw):
    conv = helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1])
    inits = [weight("w", 64, 3, 3, 3), weight("b", 64)]  # 1,728 weights: stored as raw bytes
    return save(tmp_path / "conv.onnx", [conv], (1, 3, 8, 8), inits, **kw)


def error_of(path, **kw) -> ArchcostError:
    with pytest.raises(ArchcostError) as info:
        analyze_onnx(path, **kw)
    assert info.value.exit_code == 2 and info.value.hint  # the CLI prints message and hint, exits 2
    return info.value


def test_missing_file(tmp_path):
    err = error_of(tmp_path / "nope.onnx")
    assert isinstance(err, OnnxFileError) and "no such file" in err.message


def test_a_file_that_is_not_onnx(tmp_path):
    path = tmp_path / "notes.onnx"
    path.write_text("these are my notes, not a network\n" * 20)
    err = error_of(path)
    assert isinstance(err, OnnxFileError) and "not" in err.message and "ONNX" in err.message


def test_an_empty_file(tmp_path):
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    assert isinstance(error_of(path), OnnxFileError)


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9, 0.99])
def test_a_truncated_file(tmp_path, keep):
    data = open(conv_file(tmp_path), "rb").read()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: int(len(data) * keep)])
    err = error_of(cut)
    assert isinstance(err, OnnxFileError)
    assert "truncated" in err.hint or "truncated" in err.message


def test_a_corrupt_file(tmp_path):
    data = bytearray(open(conv_file(tmp_path), "rb").read())
    data[:16] = b"\xff" * 16  # the header bytes destroyed
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(bytes(data))
    assert isinstance(error_of(bad), OnnxFileError)


@pytest.mark.parametrize("channels", [64, 256])  # 1,728 weights (checked by onnx) and 6,912 (by archcost)
def test_a_weight_with_fewer_bytes_than_its_shape(tmp_path, channels):
    conv = helper.make_node("Conv", ["x", "w"], ["y"])
    path = save(tmp_path / "conv.onnx", [conv], (1, 3, 8, 8), [weight("w", channels, 3, 3, 3)])
    model = onnx.load(path)
    w = model.graph.initializer[0]
    w.raw_data = w.raw_data[: len(w.raw_data) // 2]  # parses, but half of the weights are gone
    onnx.save(model, path)
    err = error_of(path)
    assert isinstance(err, OnnxFileError) and "corrupt" in err.message + err.hint
    assert "too small" in err.message or f"holds {channels * 27 // 2} values, not {channels * 27}" in err.message


def test_an_opset_the_installed_onnx_does_not_know(tmp_path):
    path = conv_file(tmp_path)
    model = onnx.load(path)
    model.opset_import[0].version = onnx.defs.onnx_opset_version() + 5
    onnx.save(model, path)
    err = error_of(path)
    assert isinstance(err, OnnxFileError)
    assert f"opset {onnx.defs.onnx_opset_version() + 5}" in err.message and "upgrade onnx" in err.hint


def test_shapes_that_cannot_be_inferred(tmp_path):
    # A 4-channel weight on a 3-channel input: no shape can come out of this graph.
    conv = helper.make_node("Conv", ["x", "w"], ["y"])
    path = save(tmp_path / "m.onnx", [conv], None, [weight("w", 8, 4, 3, 3)], x_dims=[1, 3, 8, 8])
    err = error_of(path)
    assert isinstance(err, OnnxShapeError)
    assert "input channels 3 != weight [8, 4, 3, 3] x group 1" in err.message and "/conv0/Conv" in err.message


def test_dynamic_dimensions_need_input_size(tmp_path):
    path = conv_file(tmp_path, x_dims=["N", 3, "H", "W"])
    err = error_of(path)
    assert isinstance(err, OnnxShapeError)
    assert "dynamic" in err.message and "[1, 3, ?, ?]" in err.message and "--input-size" in err.hint
    assert analyze_onnx(path, input_size=(3, 8, 8)).layers[0].output_shape == (1, 64, 8, 8)


def test_input_size_of_the_wrong_rank(tmp_path):
    err = error_of(conv_file(tmp_path), input_size=(3, 8))
    assert isinstance(err, OnnxShapeError) and "3 sizes" in err.hint


def test_a_batch_the_graph_has_baked_in(tmp_path):
    # Reshape to a fixed [1, -1] (as x.view(1, -1) exports): at batch 4 the Gemm's inner sizes disagree.
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["f"]),
        helper.make_node("Gemm", ["f", "w"], ["y"], transB=1),
    ]
    inits = [ints("shape", [1, -1]), weight("w", 10, 12)]
    path = save(tmp_path / "m.onnx", nodes, (1, 3, 2, 2), inits)
    assert analyze_onnx(path).totals["macs"] == 10 * 12
    err = error_of(path, batch_size=4)
    assert isinstance(err, OnnxShapeError)


def test_bad_dtype_and_sizes(tmp_path):
    path = conv_file(tmp_path)
    assert "dtype" in error_of(path, dtype="float64").message
    assert "positive" in error_of(path, batch_size=0).message
