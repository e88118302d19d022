"""The training/inference memory chart: estimate curves from the meta analysis, measured points from records."""

import pandas as pd
import pytest

import archcost
from archcost.cli import main
from archcost.cost.collect import memory_estimates, training_steps
from archcost.cost.memory import estimate
from archcost.cost.training import training_peak_bytes
from archcost.errors import InputError
from archcost.report.training_figures import estimates_frame, memory_train_vs_batch, training_memory_figure


def test_estimates_are_the_meta_analysis_at_each_batch():
    df = estimates_frame(memory_estimates(["lenet5"], [1, 4], optimizer="sgd"), optimizer="sgd")
    model = archcost.get_model("lenet5")
    got = {(r.mode, r.batch_size): r.estimate_bytes for r in df.itertuples()}
    for b in (1, 4):
        assert got[("train", b)] == training_peak_bytes(model, (1, 32, 32), b, optimizer="sgd")
        assert got[("infer", b)] == estimate(archcost.analyze(model, (1, 32, 32), b)).inference_total_bytes
        assert got[("train", b)] > got[("infer", b)]  # gradients and the saved activations on top


def _records():
    rows = []
    for mode, peaks in (("train", (3.0e6, 5.0e6)), ("infer", (1.0e6, 1.5e6))):
        for b, peak in zip((1, 4), peaks, strict=True):
            rows.append(dict(model="lenet5", batch_size=b, mode=mode, memory_peak_bytes=peak, dtype="float32",
                             device="cpu", optimizer="sgd" if mode == "train" else None))  # fmt: skip
    return pd.DataFrame(rows)


def test_chart_draws_both_modes_estimated_and_measured():
    fig = training_memory_figure(None, _records(), memory_estimates)
    ax = fig.figure.axes[0]
    gids = {line.get_gid() for line in ax.get_lines()}
    assert gids == {f"{kind}:lenet5:{mode}" for kind in ("estimate", "measured") for mode in ("train", "infer")}
    measured = next(line for line in ax.get_lines() if line.get_gid() == "measured:lenet5:train")
    assert list(measured.get_xdata()) == [1, 4] and list(measured.get_ydata()) == [3.0, 5.0]  # MB
    estimate_line = next(line for line in ax.get_lines() if line.get_gid() == "estimate:lenet5:train")
    model = archcost.get_model("lenet5")
    assert estimate_line.get_ydata()[1] == training_peak_bytes(model, (1, 32, 32), 4, optimizer="sgd") / 1e6
    assert "sgd" in ax.get_title() and ax.get_yscale() == "log" and not fig.warnings


def test_chart_warns_what_it_cannot_show():
    records = _records().assign(dtype="bfloat16")
    fig = training_memory_figure(["lenet5", "alexnet"], records, memory_estimates)
    assert any("no measured memory for alexnet" in w for w in fig.warnings)
    with pytest.raises(InputError):
        memory_train_vs_batch(pd.DataFrame(columns=["model", "batch_size", "mode", "estimate_bytes"]))
    with pytest.raises(InputError, match="no model"):
        training_memory_figure(None, None, memory_estimates)


def test_cli_plot_memory_train_vs_batch(tmp_path, capsys):
    out = tmp_path / "m.png"
    assert main(["plot", "memory-train-vs-batch", "--models", "lenet5", "--output", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_report_training_table_and_section(tmp_path):
    from torch import nn

    from archcost.cost.training import analyze_training
    from archcost.cost.workload import Workload
    from archcost.report.document import build
    from archcost.report.training import report_training_table
    from archcost.units import format_bytes, format_count

    model = archcost.get_model("lenet5")
    frozen = nn.Linear(4, 2).requires_grad_(False)
    works = [Workload.of(model, (1, 32, 32), name="lenet5").load(), Workload.of(frozen, (4,), name="frozen").load()]
    df, notes = report_training_table(training_steps(works))
    t = analyze_training(model, (1, 32, 32), 1, optimizer="adam")
    (row,) = df.to_dict(orient="records")
    assert row["forward FLOPs"] == format_count(t.totals["flops"])
    assert row["backward FLOPs"] == format_count(t.totals["backward_flops"])
    assert row["optimizer FLOPs"] == format_count(13 * (t.totals["params"] - 84 * 10))  # RBF centres: fixed
    assert row["training peak"] == format_bytes(t.training_peak_bytes)
    assert notes and "frozen" in notes[0] and "no trainable parameters" in notes[0]
    from archcost.cost.collect import analyse_models

    analysed = analyse_models(["lenet5"])
    doc = build(analysed, tmp_path, steps=training_steps([w for w, _ in analysed.values()]))
    text = doc.markdown()
    assert "## Training cost (batch 1, adam)" in text and row["training peak"] in text
