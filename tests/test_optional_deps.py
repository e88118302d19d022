"""archcost without fvcore and onnx (the GPU machine has no fvcore): table, list, profile, plot and report work,
and the features that need them say so clearly (exit 2, with the pip command), never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.fixtures.hiding import HIDE_FVCORE_AND_ONNX

ROOT = Path(__file__).resolve().parents[1]

#: Hides fvcore and onnx (tests/fixtures/hiding.py), then runs archcost's commands.
DRIVER = (
    HIDE_FVCORE_AND_ONNX
    + r"""
import contextlib, io, json

assert not HIDDEN & set(sys.modules)

from archcost.cli import main

results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    results.append({"argv": argv, "code": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
loaded = sorted(m for m in sys.modules if m.partition(".")[0] in HIDDEN)
print(json.dumps({"results": results, "loaded": loaded}))
"""
)


def run_without_fvcore_and_onnx(commands: list[list[str]], tmp_path: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "ARCHCOST_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(commands)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_table_list_profile_plot_and_report_run_without_fvcore_and_onnx(tmp_path):
    results = str(tmp_path / "r.jsonl")
    fast = ["--device", "cpu", "--warmup", "0", "--min-time", "0.001", "--repeats", "2", "--no-roofline", "--quiet"]
    commands = [
        ["table", "lenet5", "--depth", "1"],
        ["list", "--family", "lenet"],
        ["profile", "lenet5", "--batch-sizes", "1,2", *fast, "--append", results],
        ["plot", "latency-vs-batch", "--results", results, "--output", str(tmp_path / "latency.png")],
        ["plot", "accuracy-vs-macs", "--models", "lenet5", "--dataset", "MNIST", "--output", str(tmp_path / "a.png")],
        ["report", "--models", "lenet5", "--results", results, "--output", str(tmp_path / "report")],
    ]
    got = run_without_fvcore_and_onnx(commands, tmp_path)
    for r in got["results"]:
        assert r["code"] == 0, (r["argv"], r["stderr"][-2000:])
    assert got["loaded"] == []  # nothing tried to bring them in
    table, listing, profile = (r["stdout"] for r in got["results"][:3])
    assert "Total" in table and "lenet5" in listing
    assert len(Path(results).read_text().splitlines()) == 2
    assert (tmp_path / "latency.png").stat().st_size > 0 and (tmp_path / "a.png").stat().st_size > 0
    assert (tmp_path / "report" / "report.md").exists()


def test_fvcore_and_onnx_features_say_what_to_install(tmp_path):
    commands = [["check", "lenet5"], ["table", "lenet5", "--fvcore"], ["table", str(tmp_path / "model.onnx")]]
    got = run_without_fvcore_and_onnx(commands, tmp_path)
    check, fvcore_table, onnx_table = got["results"]
    for r in (check, fvcore_table):
        assert r["code"] == 2 and "need the fvcore package" in r["stderr"] and "pip install fvcore" in r["stderr"]
    assert onnx_table["code"] == 2 and "needs the onnx package" in onnx_table["stderr"]
    assert "pip install onnx" in onnx_table["stderr"]
    assert all("Traceback" not in r["stderr"] and "internal error" not in r["stderr"] for r in got["results"])


def test_the_table_command_imports_no_heavy_library(tmp_path):
    """Start-up (issue 15): `archcost table` (text; rolled up and top-k too) loads neither pandas nor
    matplotlib, onnx or fvcore; `--format csv` is where a DataFrame is used."""
    code = (
        "import contextlib, io, sys; from archcost.cli import main\n"
        "for argv in (['table', 'resnet18'], ['table', 'resnet18', '--depth', '1', '--top', '3']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        assert main(argv) == 0, argv\n"
        "heavy = {'pandas', 'matplotlib', 'onnx', 'fvcore'}\n"
        "print(sorted(heavy & {m.partition('.')[0] for m in sys.modules}))\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['table', 'resnet18', '--format', 'csv'])\n"
        "print('pandas' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ARCHCOST_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded, csv_uses_pandas = done.stdout.split("\n")[:2]
    assert loaded == "[]"
    assert csv_uses_pandas == "True"  # the check can see pandas when it is loaded
