"""Charts: what is drawn (points, labels, frontier), not only that a file exists."""

import json

import pandas as pd
import pytest

from archcost.cli import main
from archcost.cost.collect import analyse_models
from archcost.report import figures
from archcost.report.data import model_points, with_accuracy


def _scatter_count(fig, gid="models") -> int:
    ax = fig.figure.axes[0]
    return sum(len(c.get_offsets()) for c in ax.collections if c.get_gid() == gid)


def test_pareto_front_and_upper_envelope():
    # (macs, top1): b is beaten by a (fewer MACs, more accurate); d beats c at the same accuracy
    x, y = [1, 2, 3, 3, 4], [70, 65, 75, 75, 80]
    assert figures.pareto_front(x, y) == [0, 2, 4]
    # throughput and accuracy both better when higher
    assert figures.upper_envelope([100, 50, 10], [60, 70, 65]) == [1, 0]


def test_accuracy_vs_macs_draws_every_model_and_labels_the_frontier():
    points = with_accuracy(
        model_points(analyse_models(["alexnet", "vgg16", "resnet50", "mobilenet_v2", "googlenet", "resnet18"]))
    )
    assert "resnet18" in points.notes[0]  # no single-crop accuracy published: left out, never drawn at zero
    fig = figures.accuracy_vs_macs(points.frame)
    ax = fig.figure.axes[0]
    assert _scatter_count(fig) == 5
    assert ax.get_xlabel() == "MACs per image (log scale)" and ax.get_ylabel() == "top-1 accuracy (%)"
    assert ax.get_xscale() == "log"
    # mobilenet_v2: fewest MACs of these; googlenet is beaten by nothing cheaper... but resnet50 is more
    # accurate than googlenet for more MACs, so both are on the front; vgg16 and alexnet are not
    assert fig.frontier == ["mobilenet_v2", "resnet50"]
    labels = {t.get_text() for t in ax.texts}
    assert {"mobilenet_v2 *", "resnet50 *", "vgg16", "alexnet (227 px)", "googlenet"} <= labels


def test_family_colours_are_the_same_in_every_chart():
    assert figures.family_colour("resnet") == figures.family_colour("resnet")
    assert figures.family_colour("resnet") != figures.family_colour("vgg")


def test_layers_chart_shows_alexnet_weights_in_fc_and_work_in_conv():
    import archcost
    from archcost.cost import analyze

    fig = figures.layers(analyze(archcost.get_model("alexnet"), (3, 227, 227), name="alexnet"))
    title = fig.figure.get_suptitle()
    assert "fully connected layers: 96." in title  # 58.6 M of 61.0 M parameters
    assert "conv layers: " in title and "% of MACs" in title
    params_ax, macs_ax = fig.figure.axes
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
    points = with_accuracy(model_points(analyse_models(["resnet18", "alexnet"]), acc))
    assert points.frame.set_index("model").loc["resnet18", "top1"] == 69.76
    bad = tmp_path / "bad.csv"
    bad.write_text("name,acc\nx,1\n")
    from archcost.errors import InputError

    with pytest.raises(InputError, match="not an accuracy file"):
        model_points(analyse_models(["alexnet"]), bad)
    json.dumps(points.notes)


def test_measured_charts_from_hand_made_frame():
    df = pd.DataFrame({
        "model": ["a", "a", "b", "b"], "family": ["resnet", "resnet", "vgg", "vgg"], "batch_size": [1, 2, 1, 2],
        "latency_ms": [10.0, 18.0, 30.0, 55.0], "throughput": [100.0, 111.0, 33.0, 36.0],
        "memory_mb": [50.0, 60.0, 500.0, 520.0], "macs": [2e9, 2e9, 15e9, 15e9], "params": [11e6, 11e6, 138e6, 138e6],
        "top1": [70.0, 70.0, 72.0, 72.0],
    })  # fmt: skip
    fig = figures.latency_vs_batch(df)
    assert {line.get_gid() for line in fig.figure.axes[0].lines} == {"model:a", "model:b"}
    one = df[df["batch_size"] == 1].reset_index(drop=True)
    fit = figures.macs_vs_latency(one)
    # two points always lie on a line: no fit is drawn, and the figure says why
    assert _scatter_count(fit) == 2 and fit.fit is None and "at least 3" in fit.warnings[0]
    env = figures.accuracy_vs_throughput(one)
    assert env.frontier == ["b", "a"]  # b is more accurate, a is faster: both on the envelope


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


def _results_file(tmp_path, power: bool):
    """A results file as `archcost profile --append` writes it, with hand-set measurements."""
    from archcost.profiling.results import SCHEMA

    lines = []
    for model, macs, params, base in (("resnet50", 4.1e9, 25.6e6, 0.040), ("mobilenet_v2", 0.3e9, 3.5e6, 0.012)):
        for batch in (1, 2, 4):
            latency = base * batch * 0.9
            lines.append(json.dumps({
                "schema": SCHEMA, "model": model, "device": "cpu", "env_device_name": "test cpu", "status": "ok",
                "batch_size": batch, "latency_median_s": latency, "throughput_ips": batch / latency,
                "memory_peak_bytes": (params * 4 + batch * 20e6), "macs": macs * batch, "params": params,
                "flops": 2 * macs * batch, "achieved_flops_per_s": 2 * macs * batch / latency,
                "arithmetic_intensity": 20.0 + batch, "peak_flops_per_s": 1e11, "peak_bytes_per_s": 1e10,
                "power_mean_w": 50.0 + batch if power else None,
                "energy_per_image_j": (50.0 + batch) * latency / batch if power else None,
            }))  # fmt: skip
    path = tmp_path / "results.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "kind",
    [
        k
        for k in __import__("archcost.commands.plot", fromlist=["KINDS"]).KINDS
        if k not in ("layer-time", "layer-roofline", "predicted-vs-measured")  # --layers records / a device profile:
        # tests/profile/test_layer_figures.py, tests/predict/test_prediction_charts.py
    ],
)
def test_every_plot_kind_renders_from_the_cli(kind, tmp_path, capsys):
    results = _results_file(tmp_path, power=True)
    out = tmp_path / f"{kind}.png"
    argv = ["plot", kind, "--output", str(out), "--results", str(results), "--models", "resnet50,mobilenet_v2"]
    if kind in ("layers", "rf"):
        argv = ["plot", kind, "resnet20_cifar", "--output", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    assert out.stat().st_size > 5000  # a real picture, not an empty canvas


def test_measured_charts_draw_one_line_or_point_per_model(tmp_path):
    from archcost.report.data import measured_frame

    df = measured_frame(str(_results_file(tmp_path, power=False)), None, None)
    fig = figures.throughput_vs_batch(df)
    assert {line.get_gid() for line in fig.figure.axes[0].lines} == {"model:resnet50", "model:mobilenet_v2"}
    assert fig.figure.axes[0].get_ylabel() == "images per second (log scale)"
    one = measured_frame(str(_results_file(tmp_path, power=False)), None, 1)
    roof = figures.roofline(one, 1e11, 1e10)
    assert _scatter_count(roof) == 2 and roof.figure.axes[0].get_xscale() == "log"


def test_power_charts_need_power_data(tmp_path, capsys):
    results = _results_file(tmp_path, power=False)
    code = main(["plot", "power-vs-batch", "--results", str(results), "--output", str(tmp_path / "p.png")])
    assert code == 2 and "no power data" in capsys.readouterr().err


def test_results_from_two_devices_are_not_mixed(tmp_path, capsys):
    path = _results_file(tmp_path, power=False)
    text = path.read_text()
    path.write_text(text + text.replace('"device": "cpu"', '"device": "cuda:0"'))
    code = main(["plot", "latency-vs-batch", "--results", str(path), "--output", str(tmp_path / "l.png")])
    assert code == 2 and "several devices" in capsys.readouterr().err
    assert main(["plot", "latency-vs-batch", "--results", str(path), "--device", "cpu",
                 "--output", str(tmp_path / "l.png")]) == 0  # fmt: skip
