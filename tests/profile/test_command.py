"""``archcost profile`` as a user meets it: formats, files, bad input, exit codes."""

import json

import pytest
import torch

from archcost.cli import main
from archcost.profiling.results import read_results

M = "tests.profile.models"
FAST = ["--device", "cpu", "--warmup", "0", "--min-time", "0.01", "--repeats", "3", "--no-roofline", "--quiet"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_output(capsys):
    code, out, err = run(capsys, "profile", f"{M}:TwoLayer", "--batch-sizes", "2,1", "--format", "json", *FAST)
    assert code == 0, err
    data = json.loads(out)
    assert [r["batch_size"] for r in data] == [1, 2] and all(r["status"] == "ok" for r in data)
    assert all(r["latency_median_s"] > 0 and r["samples"] == 3 for r in data)


def test_text_output_and_append(capsys, tmp_path):
    results = tmp_path / "results.jsonl"
    for _ in range(2):
        code, out, err = run(capsys, "profile", f"{M}:TwoLayer", "--append", str(results), *FAST)
        assert code == 0, err
        assert "TwoLayer" in out and "median ms" in out and "appended 1 record" in err
    assert len(read_results(results)) == 2  # appended, not overwritten


def test_csv_to_a_file(capsys, tmp_path):
    target = tmp_path / "lat.csv"
    code, out, err = run(capsys, "profile", f"{M}:TwoLayer", "--format", "csv", "--output", str(target), *FAST)
    assert code == 0 and out == "" and target.read_text().startswith("schema,")


def test_cuda_asked_without_cuda_exits_2(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, out, err = run(capsys, "profile", f"{M}:TwoLayer", "--device", "cuda")
    assert code == 2 and "CUDA is not available" in err and "hint: use --device cpu" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--batch-sizes", "1,x"], "not a whole number"),
        (["--device", "tpu"], "unknown device"),
        (["--input-size", "3xAx8"], "malformed input size"),
    ],
)
def test_bad_input_exits_2(capsys, argv, message):
    code, out, err = run(capsys, "profile", f"{M}:TwoLayer", *FAST, *argv)
    assert code == 2 and message in err


def test_oom_is_data_not_a_failure(capsys):
    code, out, err = run(capsys, "profile", f"{M}:OomAbove", "--batch-sizes", "1,4", "--format", "json", *FAST)
    assert code == 0
    assert [r["status"] for r in json.loads(out)] == ["ok", "oom"]


def test_a_model_error_exits_1_after_writing_the_rest(capsys):
    code, out, err = run(capsys, "profile", f"{M}:Broken", f"{M}:TwoLayer", "--format", "json", *FAST)
    assert code == 1 and "Broken at batch 1 failed: ValueError" in err
    assert [r["status"] for r in json.loads(out)] == ["error", "ok"]


def test_ctrl_c_writes_what_was_measured(capsys, tmp_path):
    target = tmp_path / "partial.json"
    code, out, err = run(
        capsys,
        "profile",
        f"{M}:TwoLayer",
        f"{M}:CtrlC",
        "--batch-sizes",
        "1,4",
        "--format",
        "json",
        "--output",
        str(target),
        *FAST,
    )
    assert code == 130 and "interrupted" in err
    data = json.loads(target.read_text())
    assert [(r["model"], r["batch_size"]) for r in data] == [("TwoLayer", 1), ("TwoLayer", 4), ("CtrlC", 1)]
