"""The rough edges a new user hit outside the charts (issue 20), one test each."""

import importlib
import json
import os
import shutil
import signal
import subprocess
import time

import pytest
from torch import nn

from archcost.cli import main
from archcost.errors import InputError
from archcost.profiling.results import SCHEMA, ResultsFileWarning, append_records, new_record, read_results


def _record(model: str, batch: int = 1) -> str:
    record = {"schema": SCHEMA, "model": model, "device": "cpu", "status": "ok", "batch_size": batch}
    return json.dumps(record | {"latency_median_s": 0.01 * batch, "throughput_ips": 100.0, "macs": 1e9, "params": 1e6})


# -- a results file cut by a killed run -----------------------------------------------------------------
def test_a_cut_last_line_loses_only_that_line_and_names_it(tmp_path):
    path = tmp_path / "r.jsonl"
    good = [_record("resnet18", b) for b in (1, 2, 4, 8, 16, 32, 64, 128)]
    path.write_text("\n".join(good) + "\n" + _record("vgg16")[:120])  # line 9 cut mid-record
    with pytest.warns(ResultsFileWarning, match=r"r\.jsonl:9: skipped, the line is cut short"):
        df = read_results(path)
    assert list(df["batch_size"]) == [1, 2, 4, 8, 16, 32, 64, 128]
    assert len(df.attrs["warnings"]) == 1


def test_a_broken_line_inside_the_file_is_named_by_its_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(_record("a") + "\n\n" + "{not json\n" + _record("b") + "\n")
    with pytest.warns(ResultsFileWarning, match=r":3: skipped, the line is not a JSON record"):
        assert list(read_results(path)["model"]) == ["a", "b"]
    path.write_text("{not json\n")
    with pytest.raises(InputError, match="line 1, column 2"):
        read_results(path)


def test_appending_after_a_cut_line_starts_a_new_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(_record("a") + "\n" + _record("b")[:50])
    append_records(path, [new_record(model="c", batch_size=1, status="ok", device="cpu")])
    with pytest.warns(ResultsFileWarning, match=":2: "):
        assert list(read_results(path)["model"]) == ["a", "c"]  # c is not glued to the cut line


def test_plot_reads_a_cut_file_and_says_which_line_it_skipped(tmp_path, capsys):
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(_record("resnet18", b) for b in (1, 2)) + "\n" + _record("resnet18", 4)[:99])
    assert main(["plot", "latency-vs-batch", "--results", str(path), "--output", str(tmp_path / "l.png")]) == 0
    assert "r.jsonl:3: skipped, the line is cut short" in capsys.readouterr().err


# -- Ctrl-C ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "done, message",
    [(0, "interrupted: nothing measured yet"), (2, "interrupted: wrote the 2 measurement(s) finished before Ctrl-C")],
)
def test_ctrl_c_says_what_was_written(done, message, monkeypatch, capsys):
    from archcost.profiling.results import to_dataframe

    def interrupted(*args, **kwargs):
        df = to_dataframe([new_record(model="resnet18", batch_size=b, status="ok") for b in range(1, done + 1)])
        df.attrs["interrupted"] = True
        return df

    monkeypatch.setattr(importlib.import_module("archcost.profiling"), "profile", interrupted)
    assert main(["profile", "resnet18", "--device", "cpu"]) == 130
    err = capsys.readouterr().err
    assert message in err and "wrote the 0" not in err


@pytest.mark.skipif(shutil.which("archcost") is None, reason="the archcost script is not installed")
@pytest.mark.parametrize("delay_s", [0.3, 0.6, 0.9])
def test_ctrl_c_while_starting_prints_no_traceback(delay_s):
    proc = subprocess.Popen(["archcost", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "ARCHCOST_DEBUG": ""})  # fmt: skip
    time.sleep(delay_s)  # torch takes a second or more to import: the signal lands while it loads
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert proc.returncode in (130, -signal.SIGINT) and "archcost: interrupted" in err


def test_ctrl_c_while_torch_loads_waits_for_the_import(monkeypatch):
    """A KeyboardInterrupt inside torch's C++ import is a C++ terminate: it is held until the import ends."""
    from archcost import cli

    loading, held = [True], False
    monkeypatch.setattr(cli, "_torch_is_loading", lambda: loading[0])
    with pytest.raises(KeyboardInterrupt), cli._ctrl_c_after_torch_loads():
        signal.raise_signal(signal.SIGINT)
        time.sleep(0.2)  # no KeyboardInterrupt while "torch" loads
        held = True
        loading[0] = False  # the import is done: the Ctrl-C arrives now
        time.sleep(5)
        held = False
    assert held


# -- words and numbers ----------------------------------------------------------------------------------
def test_list_markdown_gives_every_accuracy_one_decimal(capsys):
    assert main(["list", "--format", "markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    top1 = [line.strip("|").split("|")[header.index("top1")].strip() for line in lines[2:]]
    values = [v for v in top1 if v]
    assert values and all(len(v.split(".")[1]) == 1 for v in values), values  # 77.0 beside 76.4, never 77


def test_an_int_not_a_int(tmp_path, capsys):
    assert main(["table", "resnet18", "--opt", "num_classes=ten"]) == 2
    assert "give num_classes an int" in capsys.readouterr().err
    (tmp_path / "nets.py").write_text("def build():\n    return 3\n")
    assert main(["table", f"{tmp_path / 'nets.py'}:build"]) == 2
    assert "returned an int, not a torch.nn.Module" in capsys.readouterr().err


def test_one_layer_not_one_layers(capsys):
    assert main(["table", "resnet18", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "1 layer " in out and "1 layers" not in out and "layers" in out  # conv2_x: 12 layers


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.conv(x) + x  # the residual add runs in the block's own forward


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = _Block()

    def forward(self, x):
        return self.block(x)


def test_check_names_the_residual_add_as_table_does():
    from archcost.cost import analyze
    from archcost.crosscheck import check_model
    from archcost.crosscheck.render import module_frame

    table_names = [r.name for r in analyze(_Net(), (4, 8, 8)).layers]
    assert "block/add" in table_names
    rec = check_model(_Net(), (4, 8, 8))
    shown = list(module_frame(rec)["Module"])
    assert "block/add" in shown and "block" not in shown
    assert set(shown) <= set(table_names) | {"(model)"}
    assert next(m for m in rec.to_dict()["modules"] if m["module"] == "block")["rows"] == ["block/add"]


# -- ONNX -----------------------------------------------------------------------------------------------
class _ConvBN(nn.Sequential):
    def __init__(self) -> None:
        super().__init__(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 1))


def test_onnx_json_has_the_peak_the_text_footer_shows(tmp_path, capsys):
    from archcost.cost.memory import liveness_peak
    from archcost.onnx_graph import analyze_onnx, export_onnx

    path = export_onnx(_ConvBN(), (3, 16, 16), tmp_path / "m.onnx")
    report = analyze_onnx(path)
    assert report.peak_activation_bytes == liveness_peak(report)[0] > 3 * 16 * 16 * 4  # more than the input
    assert main(["table", str(path), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["peak_activation_bytes"] == report.peak_activation_bytes and "notes" not in doc


def test_onnx_notes_for_folded_batch_norm_and_another_batch(tmp_path, capsys):
    from archcost.onnx_graph import analyze_onnx, export_onnx

    folded = export_onnx(_ConvBN(), (3, 16, 16), tmp_path / "f.onnx", fold_constants=True, batch_size=8)
    report = analyze_onnx(folded)
    assert report.input_shape[0] == 1
    assert any("batch norm was most likely folded" in n for n in report.notes)
    assert any("at batch 8" in n and "--batch-size 8" in n for n in report.notes)
    assert not any("batch 8" in n for n in analyze_onnx(folded, batch_size=8).notes)
    assert main(["table", str(folded)]) == 0
    assert "Note: 1 convolution(s) have weights computed at export" in capsys.readouterr().out
    kept = export_onnx(_ConvBN(), (3, 16, 16), tmp_path / "k.onnx")
    assert analyze_onnx(kept).notes == []
    no_bn = export_onnx(nn.Sequential(nn.Conv2d(3, 4, 3)), (3, 8, 8), tmp_path / "n.onnx", fold_constants=True)
    assert analyze_onnx(no_bn).notes == []  # folding with no batch norm to fold changes nothing


# -- issue 26: inputs accepted without a word ----------------------------------------------------------
def test_more_threads_than_cpus_is_refused_with_the_count_to_use():
    from archcost.profiling.environment import available_cpus, check_threads

    check_threads(None, cpus=2)
    check_threads(2, cpus=2)
    with pytest.raises(InputError, match="--threads 99: this process has 2 CPUs") as exc:
        check_threads(99, cpus=2)
    assert "--threads 2 or fewer" in exc.value.hint
    assert available_cpus() >= 1
    check_threads(available_cpus())  # what this machine has is always accepted


def test_a_ray_cpu_task_without_threads_holds_one_cpu():
    from archcost.profiling.environment import ray_cpu_threads

    assert ray_cpu_threads(None) == 1 and ray_cpu_threads(4) == 4


# -- issue 26: installs and model files ----------------------------------------------------------------
def _fake_package(root, name: str, version: str, body: str) -> None:
    (root / name).mkdir()
    (root / name / "__init__.py").write_text(body)
    info = root / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


@pytest.mark.parametrize("package", ["torchvision", "timm"])
def test_a_hub_package_built_for_another_torch_is_exit_2_naming_both_versions(tmp_path, monkeypatch, capsys, package):
    import sys

    import torch

    # what a torchvision wheel for another torch raises at import
    _fake_package(tmp_path, package, "0.99.0", "raise RuntimeError('operator torchvision::nms does not exist')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m.partition(".")[0] == package]:
        monkeypatch.delitem(sys.modules, name)
    assert main(["table", f"{package}:resnet50"]) == 2
    err = capsys.readouterr().err
    assert f"{package} 0.99.0 is installed but its import fails with torch {torch.__version__}" in err
    assert "operator torchvision::nms does not exist" in err and "--no-deps" in err
    assert "internal error" not in err


def test_a_hub_package_missing_a_dependency_is_not_called_missing_itself(tmp_path, monkeypatch, capsys):
    import sys

    _fake_package(tmp_path, "timm", "1.0.0", "import no_such_dependency_of_timm\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m.partition(".")[0] == "timm"]:
        monkeypatch.delitem(sys.modules, name)
    assert main(["table", "timm:resnet50"]) == 2
    err = capsys.readouterr().err
    assert "timm 1.0.0 is installed but its import fails" in err and "no_such_dependency_of_timm" in err


DATACLASS_MODEL = """
from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass
class Config:
    width: int = 4


def net():
    return nn.Sequential(nn.Conv2d(3, Config().width, 3))
"""


def test_a_model_file_with_a_dataclass_under_future_annotations_loads(tmp_path):
    from archcost.models import load_model

    path = tmp_path / "dc_model.py"
    path.write_text(DATACLASS_MODEL)
    loaded = load_model(f"{path}:net")  # before: 'NoneType' object has no attribute '__dict__'
    assert loaded.module[0].out_channels == 4


def test_a_model_file_named_like_a_loaded_module_does_not_replace_it(tmp_path):
    import sys

    from archcost.models import load_model

    path = tmp_path / "json.py"
    path.write_text(DATACLASS_MODEL)
    json_module = sys.modules["json"]
    load_model(f"{path}:net")
    assert sys.modules["json"] is json_module and json.dumps([1]) == "[1]"


def test_importing_a_model_module_leaves_sys_path_as_it_was(tmp_path, monkeypatch):
    import sys

    from archcost.models import load_model

    (tmp_path / "cwd_model_pkg.py").write_text(DATACLASS_MODEL)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    before = list(sys.path)
    assert load_model("cwd_model_pkg:net").module[0].out_channels == 4
    assert sys.path == before


# -- issue 26: small wrong words -----------------------------------------------------------------------
def test_a_model_without_spatial_axes_says_it_has_no_receptive_field():
    import dataclasses

    import archcost
    from archcost.report.table import final_field, render

    report = archcost.analyze(nn.Sequential(nn.Linear(16, 8), nn.ReLU()), (16,))
    # what every row of GPT-2 (token ids in, no spatial axis anywhere) carries: a field over no axes
    flat = [dataclasses.replace(r, rf=(), rf_stride=(), rf_global=False, rf_unknown=None) for r in report.layers]
    report = dataclasses.replace(report, layers=flat)
    assert final_field(report) is None
    text = render(report, "text", None, None, None)
    assert "pixels, jump ." not in text and "Receptive field of the last spatial layer" not in text
    assert "No receptive field: no layer has a spatial axis" in text


NOTEBOOK_CELLS = """
import json, sys
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

shell = InteractiveShell.instance()
shell.display_formatter.active_types = ["text/plain", "text/html"]
cells = [
    "import archcost\\nfrom torch import nn\\nnet = nn.Sequential(nn.Linear(4, 2))",
    "r = archcost.summary(net, (4,), columns='name,macs')\\nr",  # summary's table, once
    "archcost.summary(net, (4,), columns='name,macs')",  # as a cell's last line: once too
    "r",  # a later cell: the report as any report shows
]
shown = []
for cell in cells:
    with capture_output() as cap:
        shell.run_cell(cell, store_history=True)
    shown.append({"html": [o.data.get("text/html", "") for o in cap.outputs], "out": cap.stdout})
print(json.dumps(shown))
"""


def test_summary_as_a_notebook_cells_last_line_shows_one_table():
    import re
    import sys

    done = subprocess.run([sys.executable, "-c", NOTEBOOK_CELLS], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    setup, assigned, last_line, later = json.loads(done.stdout.strip().splitlines()[-1])
    for cell in (assigned, last_line):
        (html,) = cell["html"]  # one table, not the chosen columns and then the report's full table
        assert html.count("<table") == 1 and "MACs</th>" in html and "FLOPs</th>" not in html
        assert re.sub(r"Out\[\d+\]:\s*", "", cell["out"]).strip() == ""  # the prompt only: nothing displayed
    (html,) = later["html"]
    assert "FLOPs</th>" in html  # shown again later: the report's own full table


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_maxbatch_verify_over_the_limit_warns_and_fails(monkeypatch, capsys, fmt):
    import archcost.commands.maxbatch as maxbatch

    measured = {"bytes": 242_000_000}
    monkeypatch.setattr(maxbatch, "_verify", lambda *a, **k: measured["bytes"])  # as measured on the run
    argv = ["maxbatch", "tests.fixtures.usermodels:tiny_resnet", "--input-size", "3x16x16", "--memory", "200MB"]
    assert main([*argv, "--verify", "--format", fmt]) == 1
    err = capsys.readouterr().err
    assert "measured 242.00 MB, over the 200.00 MB limit by 21%" in err
    measured["bytes"] = 150_000_000
    assert main([*argv, "--verify", "--format", fmt]) == 0
    assert "warning" not in capsys.readouterr().err


def test_every_archcost_import_the_readme_names_imports():
    import re
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    named = re.findall(r"from (archcost[\w.]*) import (\w+)", readme)
    for line in readme.splitlines():  # `name(...)  # from archcost.module: ...`
        m = re.search(r"^(\w+)\(.*# from (archcost[\w.]*)[: ]", line)
        if m:
            named.append((m.group(2), m.group(1)))
    assert ("archcost.profiling", "layers_frame") in named
    for module, name in named:
        assert hasattr(importlib.import_module(module), name), f"README: from {module} import {name}"
