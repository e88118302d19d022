"""Charts: what is drawn (points, labels, frontier), not only that a file exists."""

import json

import pandas as pd
import pytest

from archcost.cli import main
from archcost.report import figures
from archcost.report.data import model_points, with_accuracy


def _scatter_count(fig, gid="models") -> int:
    ax = fig.axes[0]
    return sum(len(c.get_offsets()) for c in ax.collections if c.get_gid() == gid)


def test_pareto_front_and_upper_envelope():
    # (macs, top1): b is beaten by a (fewer MACs, more accurate); d beats c at the same accuracy
    x, y = [1, 2, 3, 3, 4], [70, 65, 75, 75, 80]
    assert figures.pareto_front(x, y) == [0, 2, 4]
    # throughput and accuracy both better when higher
    assert figures.upper_envelope([100, 50, 10], [60, 70, 65]) == [1, 0]


def test_accuracy_vs_macs_draws_every_model_and_labels_the_frontier():
    points = with_accuracy(model_points(["alexnet", "vgg16", "resnet50", "mobilenet_v2", "googlenet", "resnet18"]))
    assert "resnet18" in points.notes[0]  # no single-crop accuracy published: left out, never drawn at zero
    fig = figures.accuracy_vs_macs(points.frame)
    ax = fig.axes[0]
    assert _scatter_count(fig) == 5
    assert ax.get_xlabel() == "MACs per image (log scale)" and ax.get_ylabel() == "top-1 accuracy (%)"
    assert ax.get_xscale() == "log"
    # mobilenet_v2: fewest MACs of these; googlenet is beaten by nothing cheaper... but resnet50 is more
    # accurate than googlenet for more MACs, so both are on the front; vgg16 and alexnet are not
    assert fig.frontier == ["mobilenet_v2", "resnet50"]
    labels = {t.get_text() for t in ax.texts}
    assert {"mobilenet_v2 *", "resnet50 *", "vgg16", "alexnet", "googlenet"} <= labels


def test_family_colours_are_the_same_in_every_chart():
    assert figures.family_colour("resnet") == figures.family_colour("resnet")
    assert figures.family_colour("resnet") != figures.family_colour("vgg")


def test_layers_chart_shows_alexnet_weights_in_fc_and_work_in_conv():
    import archcost
    from archcost.cost import analyze

    fig = figures.layers(analyze(archcost.get_model("alexnet"), (3, 227, 227), name="alexnet"))
    title = fig.get_suptitle()
    assert "fully connected layers: 96." in title  # 58.6 M of 61.0 M parameters
    assert "conv layers: " in title and "% of MACs" in title
    params_ax, macs_ax = fig.axes
    assert len(params_ax.patches) == len(macs_ax.patches) == 8  # 5 conv + 3 fc


def test_plot_command_writes_png_svg_pdf_and_explains_left_out_models(tmp_path, capsys):
    for ext in ("png", "svg", "pdf"):
        out = tmp_path / f"a.{ext}"
        code = main(["plot", "accuracy-vs-macs", "--models", "alexnet,resnet50,resnet20_cifar", "--output", str(out)])
        assert code == 0 and out.stat().st_size > 1000
    err = capsys.readouterr().err
    assert "resnet20_cifar left out: its accuracy is on CIFAR-10" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["plot", "accuracy-vs-macs", "--output", "x.png"], "needs --models"),
        (["plot", "accuracy-vs-macs", "--models", "resnet50", "--output", "x.gif"], "image format"),
        (["plot", "latency-vs-batch", "--output", "x.png"], "give --results FILE"),
        (["plot", "layers", "--output", "x.png"], "needs a MODEL"),
        (["plot", "accuracy-vs-macs", "--models", "resnet18", "--output", "x.png"], "no model with a known accuracy"),
    ],
)
def test_plot_bad_input(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_accuracy_file_adds_a_users_model(tmp_path):
    acc = tmp_path / "acc.csv"
    acc.write_text("model,top1\nresnet18,69.76\n")
    points = with_accuracy(model_points(["resnet18", "alexnet"], acc))
    assert points.frame.set_index("model").loc["resnet18", "top1"] == 69.76
    bad = tmp_path / "bad.csv"
    bad.write_text("name,acc\nx,1\n")
    from archcost.errors import InputError

    with pytest.raises(InputError, match="not an accuracy file"):
        model_points(["alexnet"], bad)
    json.dumps(points.notes)


def test_measured_charts_from_hand_made_frame():
    df = pd.DataFrame({
        "model": ["a", "a", "b", "b"], "family": ["resnet", "resnet", "vgg", "vgg"], "batch_size": [1, 2, 1, 2],
        "latency_ms": [10.0, 18.0, 30.0, 55.0], "throughput": [100.0, 111.0, 33.0, 36.0],
        "memory_mb": [50.0, 60.0, 500.0, 520.0], "macs": [2e9, 2e9, 15e9, 15e9], "params": [11e6, 11e6, 138e6, 138e6],
        "top1": [70.0, 70.0, 72.0, 72.0],
    })  # fmt: skip
    fig = figures.latency_vs_batch(df)
    assert {line.get_gid() for line in fig.axes[0].lines} == {"model:a", "model:b"}
    one = df[df["batch_size"] == 1].reset_index(drop=True)
    fit = figures.macs_vs_latency(one)
    assert _scatter_count(fit) == 2 and fit.fit[2] == pytest.approx(1.0)  # two points: a perfect line
    env = figures.accuracy_vs_throughput(one)
    assert env.envelope == ["b", "a"]  # b is more accurate, a is faster: both on the envelope


def test_report_command_writes_a_self_contained_folder(tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["report", "--models", "alexnet,resnet50,mobilenet_v2", "--output", str(out)]) == 0
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    assert "## Comparison" in md and "peak activations" in md
    assert all(f"| {m} " in md for m in ("alexnet", "resnet50", "mobilenet_v2"))
    for image in ("accuracy-vs-macs.png", "accuracy-density.png", "alexnet-layers.png"):
        assert (out / image).stat().st_size > 1000
        assert f"({image})" in md and f"src='{image}'" in html
    assert (out / "resnet50.csv").read_text().startswith("name,type")
    assert main(["report", "--models", "alexnet", "--output", str(tmp_path / "no" / "dir")]) == 2
