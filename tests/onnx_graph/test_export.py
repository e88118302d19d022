"""``export_onnx`` and ``archcost export``: what the file holds, what the exporter changes, bad input."""

import onnx
import pytest
import torch
from torch import nn

from archcost.cli import main
from archcost.cost import analyze
from archcost.errors import InputError
from archcost.onnx_graph import analyze_onnx, export_onnx
from archcost.onnx_graph.export import exporter_opsets
from tests.fixtures.usermodels import TinyResNet

USER = "tests.fixtures.usermodels"


def test_export_keeps_batch_norm_and_the_model_as_it_was(tmp_path):
    model = TinyResNet().train()
    path = export_onnx(model, (3, 16, 16), tmp_path / "tiny.onnx")
    ops = [n.op_type for n in onnx.load(path).graph.node]
    assert "BatchNormalization" in ops
    assert model.training and all(m.training for m in model.modules())  # flags restored
    report = analyze_onnx(path)
    torch_totals = analyze(model, (3, 16, 16)).totals
    assert {k: report.totals[k] for k in ("params", "macs", "flops")} == {
        k: torch_totals[k] for k in ("params", "macs", "flops")
    }


def test_folding_constants_really_removes_batch_norm_parameters(tmp_path):
    # Folding BN(conv_a(x)) into conv_a: the BN's 16 weights and 16 biases disappear, conv_a (no bias)
    # gains a 16-element bias, and the BN's 2 FLOPs per element vanish while the bias adds 1.
    model = TinyResNet()
    kept = analyze_onnx(export_onnx(model, (3, 16, 16), tmp_path / "kept.onnx")).totals
    folded = analyze_onnx(export_onnx(model, (3, 16, 16), tmp_path / "folded.onnx", fold_constants=True)).totals
    assert folded["params"] == kept["params"] - (16 + 16) + 16
    assert folded["macs"] == kept["macs"]
    assert folded["flops"] == kept["flops"] - 2 * (16 * 16 * 16) + 16 * 16 * 16


def onnx_lrn(x: torch.Tensor, size: int, alpha: float, beta: float, bias: float) -> torch.Tensor:
    """The ONNX spec's LRN: channel c sums squares over [c - floor((n-1)/2), c + ceil((n-1)/2)]."""
    lo, hi = (size - 1) // 2, -(-(size - 1) // 2)
    c = x.shape[1]
    square_sum = torch.stack([(x[:, max(0, i - lo) : min(c, i + hi + 1)] ** 2).sum(1) for i in range(c)], 1)
    return x / (bias + alpha / size * square_sum) ** beta


def test_local_response_norm_is_one_lrn_node_computing_the_same_function(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.LocalResponseNorm(5, alpha=1.0, beta=0.75, k=1.0)).eval()
    path = export_onnx(model, (3, 9, 9), tmp_path / "lrn.onnx")
    (lrn,) = [n for n in onnx.load(path).graph.node if n.op_type == "LRN"]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in lrn.attribute}
    assert attrs == {"size": 5, "alpha": 1.0, "beta": 0.75, "bias": 1.0}
    assert "forward" not in vars(model[1])  # the module's own forward is back
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        assert torch.allclose(onnx_lrn(model[0](x), **attrs), model(x), atol=1e-6)


def test_export_at_a_batch_and_opset(tmp_path):
    low, default, high = exporter_opsets()
    path = export_onnx(TinyResNet(), (3, 8, 8), tmp_path / "t.onnx", opset=13, batch_size=4)
    model = onnx.load(path)
    assert model.opset_import[0].version == 13
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [4, 3, 8, 8]
    assert low <= 13 <= default <= high


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"opset": 99}, "opset 99 is outside"),
        ({"path_in": "missing/t.onnx"}, "does not exist"),
    ],
)
def test_export_bad_input(tmp_path, kwargs, message):
    path = tmp_path / kwargs.pop("path_in", "t.onnx")
    with pytest.raises(InputError, match=message):
        export_onnx(TinyResNet(), (3, 8, 8), path, **kwargs)
    assert not list(tmp_path.glob("*.onnx*"))  # nothing half-written left behind


def test_meta_models_have_no_weights_to_export(tmp_path):
    with torch.device("meta"):
        model = TinyResNet()
    with pytest.raises(InputError, match="meta device"):
        export_onnx(model, (3, 8, 8), tmp_path / "t.onnx")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_export_writes_the_file(capsys, tmp_path):
    path = tmp_path / "tiny.onnx"
    code, _, err = run(capsys, "export", f"{USER}:tiny_resnet", "--input-size", "3x16x16", "--onnx", str(path))
    assert code == 0 and path.is_file() and "wrote" in err
    assert analyze_onnx(path).totals["params"] == analyze(TinyResNet(), (3, 16, 16)).totals["params"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["export", "resnet20_cifar", "--onnx", "no/such/dir/r.onnx"], "does not exist"),
        (["export", "resnet20_cifar", "--onnx", "{tmp}/r.onnx", "--opset", "99"], "opset 99"),
        (["export", "{tmp}/x.onnx", "--onnx", "{tmp}/r.onnx"], "already an ONNX file"),
        (["export", "resnet20_cifar", "--onnx", "{tmp}/r.onnx", "--dtype", "float16"], "float32"),
        (["export", "nosuchnet", "--onnx", "{tmp}/r.onnx"], "unknown model"),
        (["export", f"{USER}:RaisesInForward", "--input-size", "8", "--onnx", "{tmp}/r.onnx"], "export failed"),
    ],
)
def test_cli_export_bad_input_exits_2(capsys, tmp_path, argv, message):
    code, out, err = run(capsys, *[a.format(tmp=tmp_path) for a in argv])
    assert code == 2 and message in err and "Traceback" not in err and out == ""
    assert not (tmp_path / "r.onnx").exists()


def test_a_file_with_dynamic_batch_and_size_needs_input_size(tmp_path):
    # As many teams export: batch, height and width left dynamic.
    import warnings

    from archcost.onnx_graph import OnnxShapeError

    model = TinyResNet().eval()
    path = tmp_path / "dyn.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.zeros(1, 3, 16, 16),),
            str(path),
            dynamo=False,
            input_names=["x"],
            dynamic_axes={"x": {0: "batch", 2: "height", 3: "width"}},
        )
    with pytest.raises(OnnxShapeError, match="dynamic dimensions"):
        analyze_onnx(path)
    report = analyze_onnx(path, input_size=(3, 24, 20), batch_size=8)
    torch_totals = analyze(model, (3, 24, 20), batch_size=8).totals
    assert report.input_shape == (8, 3, 24, 20)
    assert report.totals["macs"] == torch_totals["macs"] and report.totals["flops"] != 0
