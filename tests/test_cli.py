"""The command line as a user meets it: output formats, the JSON schema, and every bad input."""

import json
import subprocess
import sys

import jsonschema
import pytest

from archcost.cli import main, parse_input_size

SCHEMA = {
    "type": "object",
    "required": ["model", "input_shape", "layers", "totals", "unsupported"],
    "properties": {
        "model": {"type": "string"},
        "input_shape": {"type": "array", "items": {"type": "integer"}, "minItems": 2},
        "layers": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "name",
                    "type",
                    "input_shapes",
                    "output_shape",
                    "params",
                    "macs",
                    "flops",
                    "param_bytes",
                    "activation_bytes",
                ],
                "properties": {
                    "name": {"type": "string"},
                    "type": {"type": "string"},
                    "input_shapes": {"type": "array", "items": {"type": "array"}},
                    "output_shape": {"type": "array"},
                    **{
                        k: {"type": "integer", "minimum": 0}
                        for k in ("params", "macs", "flops", "param_bytes", "activation_bytes")
                    },
                },
            },
        },
        "totals": {
            "type": "object",
            "required": ["params", "macs", "flops", "param_bytes", "activation_bytes"],
            "additionalProperties": {"type": "integer"},
        },
        "unsupported": {"type": "array"},
    },
}

USER = "tests.fixtures.usermodels"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_table_json_validates_and_adds_up(capsys):
    code, out, _ = run(capsys, "table", f"{USER}:tiny_resnet", "--input-size", "3x16x16", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    jsonschema.validate(doc, SCHEMA)
    assert doc["input_shape"] == [1, 3, 16, 16]
    assert doc["totals"]["macs"] == sum(layer["macs"] for layer in doc["layers"])


def test_json_is_deterministic(capsys):
    args = ("table", f"{USER}:tiny_resnet", "--input-size", "3x16x16", "--format", "json")
    assert run(capsys, *args)[1] == run(capsys, *args)[1]


@pytest.mark.parametrize("fmt, marker", [("text", "Total"), ("markdown", "| Layer"), ("csv", "name,type")])
def test_formats(capsys, fmt, marker):
    code, out, _ = run(capsys, "table", f"{USER}:tiny_resnet", "--input-size", "3x16x16", "--format", fmt)
    assert code == 0 and marker in out


def test_depth_rollup_and_output_file(capsys, tmp_path):
    target = tmp_path / "t.md"
    code, _, err = run(
        capsys,
        "table",
        f"{USER}:tiny_resnet",
        "--input-size",
        "16",
        "--depth",
        "1",
        "--format",
        "markdown",
        "--output",
        str(target),
    )
    assert code == 0 and "wrote" in err
    assert "Total" in target.read_text()


def test_opt_reaches_the_builder(capsys):
    code, out, _ = run(
        capsys, "table", f"{USER}:tiny_resnet", "--input-size", "16", "--opt", "num_classes=3", "--format", "json"
    )
    assert json.loads(out)["output_shape"] == [1, 3]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["table", "resnt50"], "did you mean resnet50"),
        (["table", "resnet50", "--input-size", "3xax224"], "malformed input size"),
        (["table", "resnet50", "--input-size", "3x0x224"], "zero or negative"),
        (["table", "resnet50", "--input-size", "1x224x224"], "conv1 (Conv2d)"),
        (["table", "resnet50", "--opt", "depth"], "malformed --opt"),
        (["table", "resnet50", "--opt", "nonsense=1"], "has no option nonsense"),
        (["table", "resnet50", "--opt", "num_classes=abc"], "not a valid int"),
        (["table", "no_such_pkg.mod:net"], "cannot import 'no_such_pkg.mod'"),
        (["table", f"{USER}:missing"], "has no attribute 'missing'"),
        (["table", f"{USER}:not_a_module"], "not a torch.nn.Module"),
        (["table", f"{USER}:RaisesInForward", "--input-size", "16"], "refuses to run"),
        (["table", f"{USER}:broken_constructor"], "constructor is broken"),
        (["table", "resnet50", "--output", "/no/such/dir/out.json"], "does not exist"),
        (["list", "--family", "nope"], "no zoo model has family"),
    ],
)
def test_bad_input_is_a_clear_error_with_exit_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err
    assert "Traceback" not in err and out == ""


def test_unsupported_ops_are_shown(capsys):
    code, out, _ = run(capsys, "table", f"{USER}:Unsupported", "--input-size", "16")
    assert code == 0 and "Not costed" in out and "special_i0" in out


def test_hub_models_need_their_package(capsys):
    code, _, err = run(capsys, "table", "timm:resnet50")
    try:
        import timm  # noqa: F401
    except ImportError:
        assert code == 2 and "pip install timm" in err


def test_parse_input_size():
    assert parse_input_size("3x224x224") == (3, 224, 224)
    assert parse_input_size("3,32,32") == (3, 32, 32)
    assert parse_input_size("299") == (3, 299, 299)


def test_subprocess_has_no_traceback_and_right_exit_code():
    proc = subprocess.run([sys.executable, "-m", "archcost.cli", "table", "vgg61"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "unknown model 'vgg61'" in proc.stderr and "Traceback" not in proc.stderr


def test_list_the_zoo(capsys):
    code, out, _ = run(capsys, "list", "--format", "json")
    models = json.loads(out)
    assert code == 0 and len(models) >= 70
    r50 = next(m for m in models if m["name"] == "resnet50")
    assert (r50["family"], r50["params"], r50["input_size"]) == ("resnet", 25_557_032, "3x224x224")
    code, out, _ = run(capsys, "list", "--family", "mobilenet")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("name") and set(lines[1]) <= {"-", " "}
    assert all(line.split()[1] == "mobilenet" for line in lines[2:])
