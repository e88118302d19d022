"""``archcost bench`` and ``archcost compare`` as a user (or CI) meets them: files, exit codes, bad input."""

import json
import sys
import types

import pandas as pd
import pytest

from archcost.bench import SCHEMA, read_bench
from archcost.cli import main

NET = "tests.bench.models:ConvNet"
NETS_PY = """
from torch import nn


def build():
    return nn.Sequential(nn.Conv2d(3, {width}, 3), nn.ReLU())


build.input_size = (3, 8, 8)
"""


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def bench_file(capsys, path, *models, extra=()):
    code, _, err = run(capsys, "bench", *models, "--output", path, "--quiet", *extra)
    assert code == 0, err
    return path


def test_bench_writes_a_file_compare_reads(capsys, tmp_path):
    path = bench_file(capsys, tmp_path / "b.json", NET, "lenet5")
    doc = read_bench(path)
    assert doc["schema"] == SCHEMA
    assert list(doc["models"]) == sorted([NET, "lenet5"])  # keys sorted in the file
    code, out, err = run(capsys, "compare", path, path, "--fail-on", "macs>0%,params>0%")
    assert code == 0, err
    assert f"archcost compare: {path} -> {path}" in out
    assert "OK: no threshold crossed" in out


def test_bench_to_standard_output(capsys):
    code, out, err = run(capsys, "bench", NET)
    assert code == 0
    assert json.loads(out)["models"][NET]["analytic"]["macs"] == 27 * 4 * 6 * 6
    assert f"analysing {NET}" in err


def test_a_change_between_commits_fails_ci(capsys, tmp_path, monkeypatch):
    """The CI flow: the same MODEL argument benched in the base and the head checkout."""
    for name, width in (("base", 4), ("head", 5)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "nets.py").write_text(NETS_PY.format(width=width))
        monkeypatch.chdir(tmp_path / name)
        bench_file(capsys, tmp_path / f"{name}.json", "nets.py:build")
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "compare", "base.json", "head.json", "--fail-on", "macs>0%,params>10%")
    assert code == 1
    macs = next(line for line in out.splitlines() if " MACs " in line)
    # 27 MACs per output element; 4 -> 5 output channels of 6x6
    assert "+25.00%" in macs and "FAIL macs>0%" in macs
    assert f"+{27 * 1 * 6 * 6:,}" in macs  # +972
    params = next(line for line in out.splitlines() if " params " in line)
    assert "+25.00%" in params and "FAIL params>10%" in params
    code, md, _ = run(
        capsys,
        "compare",
        "base.json",
        "head.json",
        "--fail-on",
        "macs>30%",
        "--format",
        "markdown",
        "--only-changed",
        "--base-label",
        "main @ abc1234",
        "--new-label",
        "PR @ def5678",
    )
    assert code == 0 and md.startswith("### ✅ archcost: architecture cost, `main @ abc1234` → `PR @ def5678`")
    assert "| nets.py:build | MACs | 3.89 K | 4.86 K | +972 | +25.00% |  |" in md
    assert "| nets.py:build | receptive field |" not in md  # unchanged: not shown
    assert "(2 unchanged figure(s) of 1 model(s) not shown)" in md  # receptive field, unsupported ops


def test_a_model_the_base_lacks_is_added(capsys, tmp_path, monkeypatch):
    """--skip-missing on the base commit: a model the pull request adds is listed as added, not an error."""
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "nets.py").write_text(NETS_PY.format(width=4))
    monkeypatch.chdir(tmp_path / "base")
    code, _, err = run(capsys, "bench", "nets.py:build", "nets.py:build_new", "--output", tmp_path / "x.json")
    assert code == 2 and "build_new" in err  # without the flag: an error
    bench_file(capsys, tmp_path / "base.json", "nets.py:build", "nets.py:build_new", extra=("--skip-missing",))
    base = read_bench(tmp_path / "base.json")
    assert list(base["models"]) == ["nets.py:build"]
    assert "build_new" in base["settings"]["skipped"]["nets.py:build_new"]
    (tmp_path / "base" / "nets.py").write_text(NETS_PY.format(width=4) + "\nbuild_new = build\n")
    bench_file(capsys, tmp_path / "head.json", "nets.py:build", "nets.py:build_new")
    code, out, _ = run(capsys, "compare", tmp_path / "base.json", tmp_path / "head.json", "--fail-on", "macs>0%")
    assert code == 0 and "Models added in" in out and "nets.py:build_new" in out
    code, _, err = run(capsys, "bench", "nets.py:nothing", "--skip-missing", "--output", tmp_path / "y.json")
    assert code == 2 and "none of the models could be loaded" in err


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda text: text[: len(text) // 2], "truncated"),
        (lambda text: "", "is empty"),
        (lambda text: text.replace(SCHEMA, "archcost.bench/7"), "newer archcost"),
        (lambda text: "not json at all", "not valid JSON"),
    ],
)
def test_compare_bad_files_exit_2(capsys, tmp_path, damage, says):
    good = bench_file(capsys, tmp_path / "good.json", NET)
    bad = tmp_path / "bad.json"
    bad.write_text(damage(good.read_text()))
    code, out, err = run(capsys, "compare", good, bad)
    assert code == 2 and out == ""
    assert says in err and "bad.json" in err and "hint:" in err and "Traceback" not in err


def test_compare_unknown_metric_exit_2_before_reading(capsys, tmp_path):
    code, _, err = run(capsys, "compare", tmp_path / "a.json", tmp_path / "b.json", "--fail-on", "speed>1%")
    assert code == 2
    assert "unknown metric 'speed'" in err and "macs" in err


def test_compare_no_model_in_common_exit_2(capsys, tmp_path):
    a = bench_file(capsys, tmp_path / "a.json", NET)
    b = bench_file(capsys, tmp_path / "b.json", "lenet5")
    code, _, err = run(capsys, "compare", a, b)
    assert code == 2 and "no model in common" in err


def test_compare_missing_file_exit_2(capsys, tmp_path):
    a = bench_file(capsys, tmp_path / "a.json", NET)
    code, _, err = run(capsys, "compare", a, tmp_path / "missing.json")
    assert code == 2 and "no such bench file" in err


def test_compare_writes_markdown_to_a_file(capsys, tmp_path):
    a = bench_file(capsys, tmp_path / "a.json", NET)
    code, _, _ = run(capsys, "compare", a, a, "--format", "markdown", "--output", tmp_path / "summary.md")
    assert code == 0
    assert "| model | figure | base | new | change | change % | result |" in (tmp_path / "summary.md").read_text()


def test_bench_bad_input_exit_2(capsys, tmp_path):
    code, _, err = run(capsys, "bench", "no_such_model", "--output", tmp_path / "x.json")
    assert code == 2 and "no_such_model" in err
    code, _, err = run(capsys, "bench", NET, "--output", tmp_path / "missing" / "x.json")
    assert code == 2 and "does not exist" in err
    code, _, err = run(capsys, "bench", NET, "--profile", "--dtype", "int8")
    assert code == 2 and "int8" in err


# -- --profile, with a stand-in for archcost.profile: bench records what it returns -------------------------


def fake_profile(latency: float, *, status="ok", interrupt_after=None, calls=None):
    """A module standing in for ``archcost.profile`` whose ``profile`` returns hand-written records."""
    module = types.ModuleType("archcost.profiling")
    calls = [] if calls is None else calls

    def profile(spec, **kwargs):
        calls.append((spec, kwargs))
        rows = [
            {
                "schema": "archcost.profile/1",
                "run_id": "r1",
                "timestamp": "2025-01-01T00:00:00",
                "model": spec,
                "batch_size": b,
                "device": "cpu",
                "env_device_name": "Test CPU",
                "dtype": kwargs["dtype"],
                "threads": kwargs.get("threads") or 2,
                "status": status,
                "error": None if status == "ok" else "it broke",
                "latency_median_s": latency * b,
                "latency_p10_s": latency * b * 0.95,
                "latency_p90_s": latency * b * 1.05,
                "throughput_ips": 1 / latency,
                "memory_peak_bytes": float("nan"),
            }
            for b in kwargs["batch_sizes"]
        ]
        df = pd.DataFrame(rows)
        df.attrs["interrupted"] = interrupt_after is not None and len(calls) >= interrupt_after
        return df

    module.profile = profile
    return module


def test_bench_profile_records_the_measurements(capsys, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setitem(sys.modules, "archcost.profiling", fake_profile(0.010, calls=calls))
    path = bench_file(
        capsys,
        tmp_path / "p.json",
        NET,
        "lenet5",
        extra=("--profile", "--profile-batch-sizes", "1,4", "--threads", "2"),
    )
    doc = read_bench(path)
    assert [c[0] for c in calls] == [NET, "lenet5"]
    assert calls[0][1]["batch_sizes"] == [1, 4] and calls[0][1]["threads"] == 2 and calls[0][1]["roofline"] is False
    measured = doc["models"][NET]["measured"]
    assert [r["batch_size"] for r in measured] == [1, 4]
    assert measured[1]["latency_median_s"] == pytest.approx(0.040)
    assert measured[0]["memory_peak_bytes"] is None  # NaN is never written
    assert "run_id" not in measured[0] and "timestamp" not in measured[0]
    assert doc["settings"]["profile"]["batch_sizes"] == [1, 4]
    assert doc["settings"]["profile"]["interrupted"] is False


def test_bench_profile_then_compare_latency(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "archcost.profiling", fake_profile(0.010))
    base = bench_file(capsys, tmp_path / "base.json", NET, extra=("--profile",))
    monkeypatch.setitem(sys.modules, "archcost.profiling", fake_profile(0.013))
    head = bench_file(capsys, tmp_path / "head.json", NET, extra=("--profile",))
    code, out, _ = run(capsys, "compare", base, head, "--fail-on", "latency>10%")
    assert code == 1
    assert "+30.00%" in next(line for line in out.splitlines() if "latency (median)" in line)
    code, _, _ = run(capsys, "compare", base, head, "--fail-on", "latency>40%")
    assert code == 0


def test_bench_profile_interrupted_keeps_what_was_measured(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "archcost.profiling", fake_profile(0.010, interrupt_after=1))
    path = tmp_path / "p.json"
    code, _, err = run(capsys, "bench", NET, "lenet5", "--profile", "--output", path, "--quiet")
    assert code == 130 and "interrupted" in err
    doc = read_bench(path)
    assert doc["settings"]["profile"]["interrupted"] is True
    assert doc["models"][NET]["measured"][0]["latency_median_s"] == pytest.approx(0.010)
    assert "measured" not in doc["models"]["lenet5"]


def test_bench_profile_error_is_recorded_and_exit_1(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "archcost.profiling", fake_profile(0.010, status="error"))
    path = tmp_path / "p.json"
    code, _, err = run(capsys, "bench", NET, "--profile", "--output", path, "--quiet")
    assert code == 1 and "it broke" in err
    assert read_bench(path)["models"][NET]["measured"][0]["status"] == "error"


def test_baseline_is_current_for_lenet5():
    """benchmarks/baseline.json (the project's own CI gate) holds today's figures; .ci/run checks all of them."""
    from pathlib import Path

    from archcost.bench.record import model_entry

    baseline = read_bench(Path(__file__).resolve().parents[2] / "benchmarks" / "baseline.json")
    assert list(baseline["models"]) == sorted(
        ["lenet5", "alexnet", "vgg16", "resnet50", "googlenet", "mobilenet_v1", "densenet121", "squeezenet1_0"]
    )
    assert baseline["models"]["lenet5"] == model_entry("lenet5")


def test_bench_an_onnx_file(capsys, tmp_path, monkeypatch):
    """An ONNX file is costed from its graph (archcost.onnx_graph): the same figures as the torch model."""
    from archcost.onnx_graph import export_onnx
    from tests.bench.models import ConvNet

    onnx_path = export_onnx(ConvNet(), (3, 8, 8), tmp_path / "convnet.onnx")
    calls = []
    monkeypatch.setitem(sys.modules, "archcost.profiling", fake_profile(0.010, calls=calls))
    path = bench_file(capsys, tmp_path / "o.json", onnx_path, NET, extra=("--profile",))
    doc = read_bench(path)
    onnx_entry, torch_entry = doc["models"][str(onnx_path)], doc["models"][NET]
    assert onnx_entry["source"] == "onnx" and onnx_entry["input_shape"] == [1, 3, 8, 8]
    for key in ("params", "macs", "flops", "param_bytes"):
        assert onnx_entry["analytic"][key] == torch_entry["analytic"][key]
    assert onnx_entry["analytic"]["macs"] == 27 * 4 * 6 * 6
    assert onnx_entry["measured"] == [] and "not measured" in onnx_entry["measured_note"]
    assert [c[0] for c in calls] == [NET]  # only the torch model was profiled
