"""Issue 24: every command x every kind of input (tests/fixtures/workloads.py), through the real command line.

For each kind: no internal error, and the same params and MACs (worked out by hand in ``KINDS``) in ``table``
(both modes), ``check``, ``bench``, ``profile``'s records and ``report``; ``rf``, ``export`` and ``maxbatch`` run;
what cannot be done is a clear exit 2 naming the command and the reason.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from archcost.cli import main
from tests.fixtures.workloads import KINDS

FILE = str(Path(__file__).parent / "fixtures" / "workloads.py")
KIND_IDS = list(KINDS)


def _flags(kind: str, *, batch_flag: bool = True) -> tuple[str, list[str], int, int, int]:
    """MODEL, the input flags (with ``--batch-size`` unless ``batch_flag`` is False), batch, params, MACs."""
    callable_, sizes, extra, batch, params, macs = KINDS[kind]
    flags = [a for s in sizes for a in ("--input-size", s)] + extra
    if not batch_flag and "--batch-size" in flags:
        i = flags.index("--batch-size")
        del flags[i : i + 2]
    return f"{FILE}:{callable_}", flags, batch, params, macs


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "internal error" not in err, err
    assert "Traceback" not in err, err
    return code, out, err


@pytest.mark.parametrize("kind", KIND_IDS)
def test_table_both_modes(kind, capsys):
    spec, flags, batch, params, macs = _flags(kind)
    code, out, _ = _run(capsys, ["table", spec, *flags, "--format", "json"])
    assert code == 0
    doc = json.loads(out)  # a model printing while it is built must not break the JSON
    assert (doc["totals"]["params"], doc["totals"]["macs"]) == (params, macs)
    code, out, _ = _run(capsys, ["table", spec, *flags, "--mode", "train", "--format", "json"])
    assert code == 0
    train = json.loads(out)
    assert (train["totals"]["params"], train["totals"]["macs"]) == (params, macs)
    assert train["totals"]["backward_macs"] > 0


@pytest.mark.parametrize("kind", KIND_IDS)
def test_check(kind, capsys):
    spec, flags, _, params, macs = _flags(kind)
    code, out, _ = _run(capsys, ["check", spec, *flags, "--format", "json"])
    assert code in (0, 1)  # 1: a difference the conventions do not explain (a finding, not a crash)
    doc = json.loads(out)
    assert (doc["totals"]["params"], doc["totals"]["macs"]) == (params, macs)
    assert doc["torch_error"] is None


@pytest.mark.parametrize("kind", KIND_IDS)
def test_bench_and_compare(kind, capsys, tmp_path):
    spec, flags, _, params, macs = _flags(kind)
    out_file = tmp_path / "b.json"
    code, _, _ = _run(capsys, ["bench", spec, *flags, "--output", str(out_file), "--quiet"])
    assert code == 0
    doc = json.loads(out_file.read_text())
    entry = doc["models"][spec]
    assert (entry["analytic"]["params"], entry["analytic"]["macs"]) == (params, macs)
    code, _, _ = _run(capsys, ["compare", str(out_file), str(out_file), "--fail-on", "|macs|>0%"])
    assert code == 0


@pytest.mark.parametrize("kind", KIND_IDS)
def test_profile_records(kind, capsys, tmp_path):
    spec, flags, batch, params, macs = _flags(kind, batch_flag=False)
    results = tmp_path / "r.jsonl"
    argv = ["profile", spec, *flags, "--batch-sizes", str(batch), "--device", "cpu", "--threads", "1"]
    argv += ["--warmup", "0", "--min-time", "0.001", "--repeats", "2", "--no-power", "--no-roofline"]
    code, _, _ = _run(capsys, [*argv, "--append", str(results), "--format", "json"])
    assert code == 0
    (rec,) = [json.loads(line) for line in results.read_text().splitlines()]
    assert rec["status"] == "ok", rec["error"]
    assert (rec["params"], rec["macs"]) == (params, macs)
    assert rec["latency_median_s"] > 0


@pytest.mark.parametrize("kind", KIND_IDS)
def test_report(kind, capsys, tmp_path):
    spec, flags, batch, params, macs = _flags(kind, batch_flag=False)
    macs //= batch  # report analyses at batch 1; these models' MACs are proportional to the batch
    code, _, _ = _run(capsys, ["report", "--models", spec, *flags, "--output", str(tmp_path / "rep")])
    assert code == 0
    (table,) = [p for p in (tmp_path / "rep").glob("*.csv") if p.name not in ("models.csv", "measured.csv")]
    with open(table) as f:  # the per-layer table of the one model
        (total,) = [r for r in csv.DictReader(f) if r["name"] == "Total"]
    assert (int(total["params"]), int(total["macs"])) == (params, macs)


@pytest.mark.parametrize("kind", KIND_IDS)
def test_rf_export_maxbatch(kind, capsys, tmp_path):
    spec, flags, _, _, _ = _flags(kind)
    code, out, _ = _run(capsys, ["rf", spec, *flags, "--format", "json"])
    assert code == 0
    assert json.loads(out)["layers"] is not None
    onnx = pytest.importorskip("onnx")
    path = tmp_path / "m.onnx"
    code, _, _ = _run(capsys, ["export", spec, *flags, "--onnx", str(path)])
    assert code == 0
    graph = onnx.load(str(path)).graph
    assert len(graph.input) == len(KINDS[kind][1])  # one graph input per tensor input
    _, no_batch, _, _, _ = _flags(kind, batch_flag=False)
    for mode in ("infer", "train"):
        code, out, _ = _run(
            capsys, ["maxbatch", spec, *no_batch, "--memory", "50MB", "--mode", mode, "--format", "json"]
        )
        assert code == 0
        assert json.loads(out)["batch_size"] >= 1


def test_rf_verify_says_what_it_cannot_do(capsys):
    spec, flags, _, _, _ = _flags("token ids")
    code, _, err = _run(capsys, ["rf", spec, *flags, "--verify"])
    assert code == 2
    assert "rf --verify" in err and "one image input" in err


def test_integer_input_to_a_convolution_is_a_clear_error(capsys):
    code, _, err = _run(capsys, ["table", "resnet18", "--input-size", "int64:3x224x224"])
    assert code == 2
    assert "conv1" in err and "floating point" in err


def test_float_input_to_an_embedding_suggests_the_dtype(capsys):
    spec = f"{FILE}:TextCNN"
    code, _, err = _run(capsys, ["table", spec, "--input-size", "16"])
    assert code == 2
    assert "int64:16" in err  # not the 3x16x16 the bare number was read as


def test_a_missing_input_names_it_and_does_not_repeat_the_users_flag(capsys):
    spec = f"{FILE}:Two"
    code, _, err = _run(capsys, ["table", spec, "--input-size", "3x8x8"])
    assert code == 2
    assert "give y too" in err


def test_an_unknown_keyword_input_is_named(capsys):
    spec = f"{FILE}:Masked"
    code, _, err = _run(capsys, ["table", spec, "--input-size", "int64:7", "--input-size", "maks=bool:7"])
    assert code == 2
    assert "no parameter maks" in err


def test_profile_isolated_child_takes_the_inputs_and_keeps_prints_out_of_the_records(capsys, tmp_path):
    spec, flags, _, params, macs = _flags("token ids")
    results = tmp_path / "r.jsonl"
    argv = ["profile", spec, *flags, "--isolate", "--device", "cpu", "--threads", "1", "--warmup", "0"]
    argv += ["--min-time", "0.001", "--repeats", "2", "--no-power", "--no-roofline", "--append", str(results)]
    code, _, _ = _run(capsys, argv)
    assert code == 0
    (rec,) = [json.loads(line) for line in results.read_text().splitlines()]
    assert (rec["status"], rec["input_shape"], rec["params"], rec["macs"]) == ("ok", "int64:16", params, macs)
