"""Charts a reader of Canziani & Culurciello can read at a glance (issue 20): a size key on blob charts,
plain log ticks at the batch sizes run, where measured data was measured, a warning where a chart has
too few points, distinct family styles, labels that never overlap, the fit drawn as what it is."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from archcost.cli import main
from archcost.report import figures


def _measured(models=("resnet50", "mobilenet_v2", "vgg16"), batches=(1, 8, 32, 128), **extra) -> pd.DataFrame:
    rows = []
    for k, model in enumerate(models):
        for b in batches:
            latency = (10.0 + 20 * k) * b**0.9
            rows.append({
                "model": model, "family": {"resnet50": "resnet", "mobilenet_v2": "mobilenet"}.get(model, "vgg"),
                "batch_size": b, "latency_ms": latency, "throughput": 1e3 * b / latency,
                "memory_mb": 50.0 * (k + 1) + b,
                "macs": [4.1e9, 0.3e9, 15.5e9][k % 3], "params": [25.6e6, 3.5e6, 138e6][k % 3],
                "top1": [76.1, 72.0, 71.6][k % 3], "device": "cpu", "env_device_name": "AMD EPYC", "threads": 2,
                "dtype": "float32", "channels_last": False, "compiled": False, "input_size": "3x224x224",
                "arithmetic_intensity": 10.0 + k, "achieved_flops": 5e10 + k * 1e10, **extra,
            })  # fmt: skip
    return pd.DataFrame(rows)


def _drawn(fig):
    fig.figure.draw_without_rendering()
    return fig


# -- a size key on every blob chart ---------------------------------------------------------------------
@pytest.mark.parametrize("chart, column", [("accuracy_vs_macs", "params"), ("accuracy_vs_throughput", "macs")])
def test_blob_charts_have_a_size_key_drawn_at_the_blobs_own_scale(chart, column):
    df = _measured(batches=(1,))
    fig = getattr(figures, chart)(df)
    ax = fig.figure.axes[0]
    key = next(a for a in ax.artists if a.get_gid() == "size-key")
    blobs = next(c for c in ax.collections if c.get_gid() == "models")
    # area proportional to the value: area / value is one constant for every blob ...
    ratio = blobs.get_sizes() / df[column].to_numpy()
    assert np.allclose(ratio, ratio[0])
    # ... and the key's markers (diameter in points, so area = size²) follow the same constant
    for handle, value in zip(key.legend_handles, ax.size_key, strict=True):
        assert handle.get_markersize() ** 2 == pytest.approx(ratio[0] * value)
        assert handle.get_label() == figures.tick_text(value)
    assert ax.size_key == [100e6, 20e6, 5e6] if column == "params" else [10e9, 2e9, 500e6]


# -- plain ticks ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, text", [(1, "1"), (30, "30"), (0.5, "0.5"), (2000, "2 K"), (20000, "20 K"), (1e10, "10 G"), (2e8, "200 M")]
)
def test_tick_text_is_a_plain_number(value, text):
    assert figures.tick_text(value) == text


def test_batch_axis_shows_the_batch_sizes_run_not_powers_of_two():
    fig = _drawn(figures.latency_vs_batch(_measured()))
    ax = fig.figure.axes[0]
    assert list(ax.get_xticks()) == [1, 8, 32, 128]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "8", "32", "128"]


@pytest.mark.parametrize("span", [(6.0, 110.0), (25.0, 48.0), (0.5, 170.0), (3e-4, 20.0)])
def test_log_ticks_are_plain_and_never_overlap(span):
    """accuracy-vs-throughput over 6-110 img/s gave '3x10^1 4x10^1' labels running into each other."""
    df = _measured(batches=(1,))
    df["throughput"] = np.geomspace(*span, len(df))
    fig = _drawn(figures.accuracy_vs_throughput(df))
    ax = fig.figure.axes[0]
    renderer = fig.figure._get_renderer()
    lo, hi = ax.get_xlim()
    labels = [t for t in ax.get_xticklabels() if t.get_text() and lo <= t.get_position()[0] <= hi]
    assert len(labels) >= 2
    assert not any("^" in t.get_text() or "times" in t.get_text() for t in labels)
    boxes = sorted((t.get_window_extent(renderer) for t in labels), key=lambda b: b.x0)
    assert all(a.x1 < b.x0 for a, b in zip(boxes, boxes[1:], strict=False))
    assert not [t for t in ax.xaxis.get_minorticklabels() if t.get_text()]


# -- where it was measured ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "chart, batch",
    [("latency_vs_batch", False), ("throughput_vs_batch", False), ("memory_vs_batch", False),
     ("accuracy_vs_throughput", True), ("memory_vs_params", True), ("macs_vs_latency", True)],
)  # fmt: skip
def test_measured_charts_say_device_threads_dtype_and_batch(chart, batch):
    df = _measured(batches=(1, 8)) if not batch else _measured(batches=(8,))
    ax = getattr(figures, chart)(df).figure.axes[0]
    title = ax.get_title()
    assert "cpu (AMD EPYC)" in title and "2 threads" in title and "float32" in title
    assert ("batch 8" in title) is batch  # on batch charts the batch is the x axis
    roof = figures.roofline(_measured(batches=(8,)), 1e11, 1e10).figure.axes[0].get_title()
    assert "batch 8" in roof and "cpu" in roof


def test_mixed_configurations_are_warned_about():
    df = _measured()
    df.loc[df["model"] == "vgg16", "dtype"] = "float16"
    fig = figures.latency_vs_batch(df)
    assert any("several dtypes (float16, float32)" in w for w in fig.warnings)


# -- too few points -------------------------------------------------------------------------------------
def test_one_point_per_model_latency_chart_says_so(tmp_path, capsys):
    fig = figures.latency_vs_batch(_measured(batches=(1,)))
    assert len(fig.warnings) == 1 and "one batch size only" in fig.warnings[0]
    assert fig.warnings[0] in " ".join(
        fig.figure.get_supxlabel().split()
    )  # on the figure (wrapped), not only in the terminal
    partly = _measured()
    partly = partly[~((partly["model"] == "vgg16") & (partly["batch_size"] > 1))]
    assert "vgg16" in figures.latency_vs_batch(partly).warnings[0]
    assert figures.latency_vs_batch(_measured()).warnings == []


def test_cli_counts_the_warnings(tmp_path, capsys):
    from archcost.profiling.results import SCHEMA

    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"schema": SCHEMA, "model": "resnet18", "device": "cpu", "status": "ok",
                                "batch_size": 1, "latency_median_s": 0.02, "throughput_ips": 50.0,
                                "macs": 1.8e9, "params": 11.7e6, "memory_peak_bytes": 6e7}) + "\n")  # fmt: skip
    assert main(["plot", "latency-vs-batch", "--results", str(path), "--output", str(tmp_path / "l.png")]) == 0
    err = capsys.readouterr().err
    assert "archcost: warning: every model was measured at one batch size only" in err
    assert "with 1 warning(s)" in err
    assert main(["plot", "macs-vs-latency", "--results", str(path), "--output", str(tmp_path / "f.png")]) == 0
    err = capsys.readouterr().err
    assert "1 model(s) only" in err and "no fit drawn" in err and "with 1 warning(s)" in err


def test_single_model_accuracy_chart_warns():
    fig = figures.accuracy_vs_macs(_measured(models=("resnet50",), batches=(1,)))
    assert "one model only" in fig.warnings[0]


# -- families, labels, fit ------------------------------------------------------------------------------
def test_every_zoo_family_has_its_own_colour_and_marker_pair():
    families = figures._zoo_families()
    assert len(families) > 10  # more families than tab10 has colours
    styles = [figures.family_style(f) for f in families]
    assert len(set(styles)) == len(families)
    # issue 26: a colour of its own too, for the bar charts that show colour only (tab10 gave mobilenet
    # and vgg the same olive)
    assert len({c for c, _ in styles}) == len(families) <= len(figures._COLOURS)
    assert figures.family_colour("mobilenet") != figures.family_colour("vgg")
    assert figures.family_style("not a zoo family") == figures.USER_STYLE


def test_labels_never_overlap_each_other_or_other_points():
    """70 models as the README's zoo chart: every one labelled, no label over another or over a point."""
    rng = np.random.default_rng(0)
    families = figures._zoo_families()
    n = 70
    latency = np.concatenate([rng.uniform(30, 150, 30), rng.uniform(0.5, 30, n - 30)])  # a dense cluster
    df = pd.DataFrame({
        "model": [f"model_{i:02d}" for i in range(n)], "family": [families[i % len(families)] for i in range(n)],
        "latency_ms": latency, "macs": latency * 1e8 * rng.uniform(0.5, 2, n), "batch_size": 1,
    })  # fmt: skip
    fig = figures.macs_vs_latency(df)
    fig.figure.draw_without_rendering()
    ax, renderer = fig.figure.axes[0], fig.figure._get_renderer()
    labels = [t for t in ax.texts if t.get_gid() == "label"]
    assert sorted(t.get_text() for t in labels) == sorted(df["model"])
    boxes = [t.get_window_extent(renderer) for t in labels]
    assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :] if a.overlaps(b)]
    points = ax.transData.transform(np.column_stack([df["latency_ms"], df["macs"] / 1e9]))
    frame = ax.get_window_extent(renderer)
    for box in boxes:
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
    inside = [(b, p) for b in boxes for p in points if b.x0 < p[0] < b.x1 and b.y0 < p[1] < b.y1]
    assert len(inside) <= 2  # a label may cover a point only where the crowd leaves no free spot at all


def test_power_law_fit_is_drawn_straight_on_log_log_axes_and_says_so():
    x = np.array([1.0, 3.0, 10.0, 40.0])
    k, c, r2 = figures.power_law_fit(x, 2.0 * x**1.5)
    assert (k, c, r2) == (pytest.approx(1.5), pytest.approx(2.0), pytest.approx(1.0))
    df = _measured(models=("resnet50", "mobilenet_v2", "vgg16", "x"), batches=(1,))
    fig = figures.macs_vs_latency(df)
    ax = fig.figure.axes[0]
    fit = next(line for line in ax.lines if line.get_gid() == "fit")
    assert "power-law fit" in fit.get_label() and "log-log" in fit.get_label()
    lx, ly = np.log10(fit.get_xdata()), np.log10(fit.get_ydata())
    assert np.allclose(np.diff(ly) / np.diff(lx), fig.fit[0])  # a straight line of slope k in log space
    assert ax.get_xscale() == ax.get_yscale() == "log"
    lin = figures.memory_vs_params(df)
    assert (
        "least-squares line" in next(line for line in lin.figure.axes[0].lines if line.get_gid() == "fit").get_label()
    )


# -- rf -------------------------------------------------------------------------------------------------
def test_rf_lines_are_height_and_width_and_the_last_label_is_not_clipped():
    import archcost
    from archcost.cost import analyze

    report = analyze(archcost.get_model("inception_v3"), (3, 299, 299), name="inception_v3")  # 1x7 / 7x1 convs
    fig = _drawn(figures.receptive_field(report))
    ax = fig.figure.axes[0]
    assert [line.get_label() for line in ax.lines if line.get_gid().startswith("axis")] == ["height", "width"]
    last = next(t for t in ax.texts if t.get_gid() == "last")
    box, frame = last.get_window_extent(fig.figure._get_renderer()), ax.get_window_extent(fig.figure._get_renderer())
    assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and box.y1 <= frame.y1
    square = _drawn(figures.receptive_field(analyze(archcost.get_model("resnet18"), (3, 224, 224))))
    assert [line.get_label() for line in square.figure.axes[0].lines][0] == "height = width (equal at every layer)"


# -- datasets and input sizes ---------------------------------------------------------------------------
CIFAR_NET = """
import torch.nn as nn

def build():
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(16, 10))
    net.input_size = (3, 32, 32)
    return net
"""


def test_a_users_cifar_model_is_not_drawn_as_imagenet_without_a_word(tmp_path, capsys):
    from archcost.cost.collect import analyse_models
    from archcost.report.data import model_points, with_accuracy

    (tmp_path / "cifarnet.py").write_text(CIFAR_NET)
    spec = f"{tmp_path / 'cifarnet.py'}:build"
    acc = tmp_path / "acc.csv"
    acc.write_text(f"model,top1\n{spec},91.0\n")
    points = with_accuracy(model_points(analyse_models(["resnet50", spec]), acc))
    assert any("not a zoo model" in n and "3x32x32" in n for n in points.notes)
    fig = figures.accuracy_vs_macs(points.frame)
    texts = [t.get_text() for t in fig.figure.axes[0].texts]
    assert any("(32 px)" in t for t in texts), texts  # its input size on the chart
    assert "MACs at input 3x224x224 unless labelled" in fig.figure.axes[0].get_title()
    # with the dataset said in the accuracy file, it is left out of an ImageNet chart
    acc.write_text(f"model,top1,dataset\n{spec},91.0,CIFAR-10\n")
    points = with_accuracy(model_points(analyse_models(["resnet50", spec]), acc))
    assert list(points.frame["model"]) == ["resnet50"]
    assert any("its accuracy is on CIFAR-10, not ImageNet" in n for n in points.notes)


def test_measured_accuracy_chart_leaves_out_a_cifar_zoo_model(tmp_path, capsys):
    from archcost.profiling.results import SCHEMA

    path = tmp_path / "r.jsonl"
    lines = [
        json.dumps({"schema": SCHEMA, "model": m, "device": "cpu", "status": "ok", "batch_size": 1,
                    "input_shape": s, "latency_median_s": t, "throughput_ips": 1 / t, "macs": macs})
        for m, s, t, macs in (("resnet50", "3x224x224", 0.04, 4.1e9), ("inception_v3", "3x299x299", 0.06, 5.7e9),
                              ("resnet20_cifar", "3x32x32", 0.002, 4.1e7))
    ]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    assert main(["plot", "accuracy-vs-throughput", "--results", str(path), "--output", str(tmp_path / "a.png")]) == 0
    assert "resnet20_cifar left out: its accuracy is on CIFAR-10, not ImageNet" in capsys.readouterr().err
    from archcost.report.data import measured_frame

    df = measured_frame(str(path), None, 1)
    fig = figures.accuracy_vs_throughput(df[df["model"] != "resnet20_cifar"].reset_index(drop=True))
    assert "inception_v3 (299 px)" in [t.get_text() for t in fig.figure.axes[0].texts]


def test_figures_are_deterministic():
    a = figures.macs_vs_latency(_measured(batches=(1,), models=("resnet50", "mobilenet_v2", "vgg16", "b")))
    b = figures.macs_vs_latency(_measured(batches=(1,), models=("resnet50", "mobilenet_v2", "vgg16", "b")))
    pos = [[t.get_position() for t in f.figure.axes[0].texts] for f in (a, b)]
    assert pos[0] == pos[1] and not any(math.isnan(v) for p in pos[0] for v in p)
