"""The seed's accuracy-against-weight-precision chart (issue 27, item 5): published float32 and int8 top-1 of
torchvision's weights against weight bytes, each figure with its source, blob area = MACs, the frontier."""

from __future__ import annotations

import pytest

from archcost.cli import main
from archcost.commands.plot import precision_counts
from archcost.report.precision_figures import PUBLISHED, accuracy_vs_weight_bytes, precision_points


def test_every_published_figure_names_its_source_and_pairs_float_with_int8():
    by_arch: dict[str, set[str]] = {}
    for e in PUBLISHED:
        assert e.source.startswith("https://docs.pytorch.org/vision/") and e.weights in e.source
        assert 0 < e.top1 < 100
        by_arch.setdefault(e.arch, set()).add(e.precision)
    assert all(p == {"float32", "int8"} for p in by_arch.values())


def test_weight_bytes_are_archcosts_parameter_count_at_the_stored_width():
    counts, notes = precision_counts(["resnet18", "mobilenet_v2"])
    # params: torchvision's published counts (ResNet18_Weights / MobileNet_V2_Weights meta["num_params"]);
    # MACs: conv + linear multiply-accumulates at 224x224 (resnet18: 1,813,561,344 conv + 512,000 fc)
    assert counts == {"resnet18": (11_689_512, 1_814_073_344), "mobilenet_v2": (3_504_872, 300_774_272)}
    df = precision_points(counts).set_index("model")
    assert df.loc["resnet18 float32", "weight_bytes"] == 4 * 11_689_512
    assert df.loc["resnet18 int8", "weight_bytes"] == 11_689_512
    assert df.loc["resnet18 int8", "macs"] == df.loc["resnet18 float32", "macs"]  # precision leaves MACs alone
    assert not notes


def test_the_frontier_holds_no_model_beaten_for_fewer_bytes():
    counts, _ = precision_counts(["resnet18", "resnet50", "mobilenet_v2", "shufflenet_v2_x1_0"])
    df = precision_points(counts)
    chart = accuracy_vs_weight_bytes(df)
    top1 = dict(zip(df["model"], df["top1"], strict=True))
    size = chart.data["weight_bytes"]
    for m in chart.frontier:  # nothing smaller is more accurate
        assert not any(size[o] < size[m] and top1[o] > top1[m] for o in top1)
    for m in set(top1) - set(chart.frontier):  # and every model off it is beaten
        assert any(size[o] <= size[m] and top1[o] > top1[m] for o in top1)
    # resnet18 at float32 (46.8 MB, 69.76%) is beaten by mobilenet_v2 at float32 (14.0 MB, 71.88%)
    assert "resnet18 float32" not in chart.frontier and "mobilenet_v2 int8" in chart.frontier
    assert set(chart.data["sources"]) == set(top1)
    assert not chart.warnings


def test_plot_names_the_architectures_it_can_draw(tmp_path, capsys):
    out = tmp_path / "p.png"
    assert main(["plot", "accuracy-vs-weight-bytes", "--models", "alexnet", "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no published int8 accuracy for alexnet" in err and "resnet18" in err and "Traceback" not in err
    assert not out.exists()


def test_torchvision_architectures_are_left_out_with_a_note_without_torchvision():
    import importlib.util

    if importlib.util.find_spec("torchvision") is not None:
        pytest.skip("torchvision is installed here: the note is for machines without it")
    counts, notes = precision_counts(["resnet18", "googlenet"])
    assert list(counts) == ["resnet18"]
    assert notes and notes[0].startswith("googlenet left out") and "torchvision" in notes[0]


def test_report_has_the_weight_precision_section(tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["report", "--models", "alexnet,resnet18", "--output", str(out)]) == 0
    md = (out / "report.md").read_text()
    assert "## Weight precision" in md and "(accuracy-vs-weight-bytes.png)" in md
    csv = (out / "precision.csv").read_text()
    assert "resnet18 int8" in csv and "ResNet18_QuantizedWeights.IMAGENET1K_FBGEMM_V1" in csv
    assert "alexnet" not in csv  # no published int8 weights
