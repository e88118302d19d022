"""``archcost check`` and ``archcost table --fvcore`` as a user meets them: formats, exit codes, bad input."""

import json

import pytest

from archcost.cli import main

TINY = "tests.fixtures.usermodels:tiny_resnet"


def test_check_a_model_that_reconciles_exits_0(capsys):
    assert main(["check", TINY, "--input-size", "3x16x16"]) == 0
    out = capsys.readouterr().out
    assert "archcost vs fvcore vs torch FlopCounterMode" in out
    assert "MISMATCH" not in out and "bn_a" in out


def test_check_json_carries_the_same_data(capsys):
    assert main(["check", TINY, "--input-size", "3x16x16", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and doc["mismatches"] == []
    assert doc["totals"]["torch"] == 2 * doc["totals"]["macs"]
    bn = next(m for m in doc["modules"] if m["module"] == "bn_a")
    assert bn["fvcore"]["measured"] == bn["fvcore"]["predicted"] == 2 * 16 * 16 * 16


def test_check_an_unexplained_difference_exits_1(capsys):
    assert main(["check", "tests.crosscheck.models:direct_convolution"]) == 1
    assert "MISMATCHES" in capsys.readouterr().out


def test_check_reports_fvcore_failing_to_trace(capsys):
    assert main(["check", "tests.crosscheck.models:dict_output"]) == 0
    out = capsys.readouterr().out
    assert "fvcore could not analyse" in out and "failed" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["check"], "no model given"),
        (["check", "resnet50", "--all"], "not both"),
        (["check", "--all", "--opt", "num_classes=10"], "apply to one model"),
        (["check", "resnet5O"], "unknown model"),
        (["check", "resnet18", "--input-size", "3x0x0"], "zero or negative"),
    ],
)
def test_check_bad_input_exits_2(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_check_zoo_model_with_options(capsys):
    assert main(["check", "resnet20_cifar", "--opt", "num_classes=7", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and doc["input_shape"] == [1, 3, 32, 32]


@pytest.mark.parametrize("fmt", ["text", "markdown", "csv", "json"])
def test_table_fvcore_columns_in_every_format(fmt, capsys):
    assert main(["table", TINY, "--input-size", "3x16x16", "--fvcore", "--format", fmt]) == 0
    out = capsys.readouterr().out
    macs = 16 * 16 * 16 * 27 + 16 * 16 * 16 * 144 + 8 * 16 * 16 * 16 + 10 * 24
    fvcore_total = macs + 2 * 16 * 16 * 16 + 24 * 16 * 16
    if fmt == "json":
        doc = json.loads(out)
        assert doc["fvcore"]["totals"]["fvcore_flops"] == fvcore_total
        assert doc["fvcore"]["unsupported"] == {"aten::add": 1}
        stem = next(r for r in doc["fvcore"]["layers"] if r["name"] == "stem")
        assert stem["fvcore_flops"] == 16 * 16 * 16 * 27 and stem["fvcore_params"] == 16 * 27 + 16
    elif fmt == "csv":
        import io

        import pandas as pd

        df = pd.read_csv(io.StringIO(out))
        assert df["fvcore_flops"].iloc[-1] == fvcore_total
        assert df["fvcore_flops"].iloc[:-1].sum() == fvcore_total  # the column adds up to fvcore's total
        assert df["fvcore_params"].iloc[-1] == df["params"].iloc[-1]
    else:
        assert "fvcore flop" in out and "fvcore unsupported ops" in out and "aten::add x1" in out


def test_table_fvcore_with_depth(capsys):
    assert main(["table", "resnet18", "--fvcore", "--depth", "1", "--format", "csv"]) == 0
    import io

    import pandas as pd

    df = pd.read_csv(io.StringIO(capsys.readouterr().out)).set_index("name")
    # layer1 of ResNet-18 (conv2_x): 4 convs of 64*56*56 * 64*9 MACs plus 4 batch norms of 2 * 64*56*56
    assert df.loc["conv2_x", "fvcore_flops"] == 4 * 64 * 56 * 56 * 64 * 9 + 4 * 2 * 64 * 56 * 56
    assert df.loc["Total", "fvcore_flops"] == df["fvcore_flops"].iloc[:-1].sum()


def test_table_fvcore_failure_is_shown_not_raised(capsys):
    assert main(["table", "tests.crosscheck.models:dict_output", "--fvcore"]) == 0
    assert "fvcore could not analyse this model" in capsys.readouterr().out


def test_check_all_one_line_per_model(monkeypatch, capsys):
    monkeypatch.setattr("archcost.zoo.list_models", lambda: ["lenet5", "resnet20_cifar"])
    assert main(["check", "--all", "--quiet"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith(("lenet5", "resnet20_cifar"))]
    assert len(lines) == 2 and all(line.rstrip().endswith("ok") for line in lines)


def test_ctrl_c_in_check_all_keeps_the_finished_rows(monkeypatch, capsys, tmp_path):
    """Issue 26 item 3: Ctrl-C during `check --all --output FILE` writes the models already checked (exit 130)."""
    import archcost.commands.check as check_command

    monkeypatch.setattr("archcost.zoo.list_models", lambda: ["lenet5", "resnet20_cifar", "alexnet"])
    real = check_command._check

    def interrupted_at_the_second(spec, args):
        if spec == "resnet20_cifar":
            raise KeyboardInterrupt
        return real(spec, args)

    monkeypatch.setattr(check_command, "_check", interrupted_at_the_second)
    out = tmp_path / "ca.txt"
    assert main(["check", "--all", "--quiet", "--output", str(out)]) == 130
    text = out.read_text()
    assert "lenet5" in text and "resnet20_cifar" not in text and "alexnet" not in text
    assert "interrupted after 1 of 3 models" in capsys.readouterr().err
