"""Every zoo model, exported to ONNX and analysed from the file, has the torch analysis's totals.

Params, MACs and FLOPs agree exactly. Output memory (``activation_bytes``) does not, and is not
compared: it sums the output of every row, and the rows differ in grain (torch's ``ScaledTanh`` module
is one row, its ONNX export three nodes; eval-mode dropout is a torch row and no ONNX node).

The export keeps batch norm as its own node (``export_onnx`` does not fold constants): folding would
really remove parameters from the file, see ``test_export.py``. A representative subset runs by
default; the whole zoo (about 4 minutes on 2 cores, much of it writing VGG- and OverFeat-sized files
of 500+ MB) is marked slow.
"""

import pytest

from archcost.cost import analyze
from archcost.onnx_graph import analyze_onnx, export_onnx
from archcost.zoo import get_entry, get_model, list_models

COMPARED = ("params", "macs", "flops")

FAST = {
    "nin_cifar": "a chain of convolutions and pools",
    "resnet20_cifar": "residual adds; shortcut by slicing and zero padding",
    "googlenet": "inception concatenations; local response norm as the ONNX LRN op",
    "densenet_bc_100_12_cifar": "dense concatenation, batch norm before every conv",
    "mobilenet_v2": "depthwise convolutions; ReLU6 exported as Clip",
    "lenet5": "partial connection table (Gather), weights built in forward, an RBF layer on parameters",
}


def exported_totals(name, tmp_path):
    model = get_model(name, device="cpu")
    size = get_entry(name).meta.input_size
    torch_report = analyze(model, size, name=name)
    torch_totals = torch_report.totals
    torch_totals["final_rf"] = _final_rf(torch_report)
    path = tmp_path / f"{name}.onnx"
    try:
        export_onnx(model, size, path)
        report = analyze_onnx(path, name=name)
    finally:
        path.unlink(missing_ok=True)  # VGG-sized files are 500+ MB: never keep two
    return torch_totals, report


def _final_rf(report):
    """The largest known, spatial receptive field (the last spatial layer's)."""
    fields = [r.rf for r in report.layers if r.rf is not None and not r.rf_global]
    return max(fields) if fields else None


def check(name, tmp_path):
    torch_totals, report = exported_totals(name, tmp_path)
    assert report.unsupported == []
    assert {k: report.totals[k] for k in COMPARED} == {k: torch_totals[k] for k in COMPARED}
    assert _final_rf(report) == torch_totals["final_rf"]


@pytest.mark.parametrize("name", sorted(FAST))
def test_representative_models_match_torch(name, tmp_path):
    check(name, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in list_models() if n not in FAST])
def test_every_zoo_model_matches_torch(name, tmp_path):
    check(name, tmp_path)


def test_rows_carry_torch_module_paths_and_sources(tmp_path):
    _, report = exported_totals("resnet20_cifar", tmp_path)
    rows = {r.name: (i, r) for i, r in enumerate(report.layers)}
    i, add = rows["/stage1/stage1.0/Add"]
    assert add.module == "stage1.0" and add.type == "Add"
    # The residual add reads the block's last batch norm and the stem's ReLU.
    assert sorted(report.layers[s].name for s in add.sources) == [
        "/relu/Relu",
        "/stage1/stage1.0/bn2/BatchNormalization",
    ]
    conv = rows["/stage1/stage1.0/conv1/Conv"][1]
    assert conv.module == "stage1.0.conv1" and conv.params == 16 * 16 * 3 * 3
    assert report.layers[0].sources == (-1,)


def test_same_table_and_json_schema_as_torch_models(tmp_path):
    import json

    import jsonschema

    from archcost.report.table import render
    from tests.test_cli import SCHEMA

    _, report = exported_totals("resnet20_cifar", tmp_path)
    doc = json.loads(render(report, "json"))
    jsonschema.validate(doc, SCHEMA)
    assert doc["totals"]["params"] == sum(row["params"] for row in doc["layers"])
    text = render(report, "text", depth=1)
    assert "stage1" in text and "Total" in text  # rolled up by the torch module paths in node names
