"""What a reader of the charts could not tell apart or read (issue 26): family colours, two models of one
family, 1-2-5 ticks with K/M/G units on every axis, the roofline of several runs, warnings cut at the edges,
and a chart module that changed the caller's matplotlib backend. Each test reads the figure's artists back."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from archcost.report import figures
from archcost.report.layer_figures import layer_roofline, layer_time
from archcost.report.training_figures import memory_train_vs_batch


def _labels(axis) -> list[str]:
    return [t.get_text() for t in axis.get_ticklabels() if t.get_text()]


def _visible_labels(ax, axis) -> list[str]:
    """The tick labels of ``axis`` ('x' or 'y') inside the axes' limits, after a draw."""
    ax.figure.draw_without_rendering()
    lo, hi = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
    ticks = ax.xaxis.get_major_ticks() if axis == "x" else ax.yaxis.get_major_ticks()
    return [
        t.label1.get_text() for t in ticks if t.label1.get_text() and lo <= t.get_loc() * (1 - 1e-9) <= hi * (1 + 1e-9)
    ]


# -- colours and markers ---------------------------------------------------------------------------------
def test_mobilenet_and_vgg_bars_have_their_own_colours():
    df = pd.DataFrame({"model": ["mobilenet_v1", "vgg16", "resnet50"], "family": ["mobilenet", "vgg", "resnet"],
                       "top1": [70.6, 71.6, 76.1], "params": [4.2e6, 138e6, 25.6e6]})  # fmt: skip
    ax = figures.accuracy_bar(df).figure.axes[0]
    colours = {label.get_text(): to_hex(bar.get_facecolor()) for label, bar in zip(ax.get_yticklabels(),
               ax.patches, strict=True)}  # fmt: skip
    assert colours["mobilenet_v1"] != colours["vgg16"]  # tab10 gave both the same olive
    assert len(set(colours.values())) == 3


def _lines(models, families, batches=(1, 8, 32)) -> pd.DataFrame:
    rows = [{"model": m, "family": f, "batch_size": b, "latency_ms": (1 + i) * b, "memory_mb": 40.0 * (1 + i) * b}
            for i, (m, f) in enumerate(zip(models, families, strict=True)) for b in batches]  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.parametrize("chart", ["latency_vs_batch", "memory_vs_batch"])
def test_resnet18_and_resnet50_differ_in_marker_and_dash_in_the_legend(chart):
    df = _lines(["resnet18", "resnet50", "resnet101", "vgg16"], ["resnet"] * 3 + ["vgg"])
    ax = getattr(figures, chart)(df).figure.axes[0]
    legend = ax.get_legend()
    handles = {t.get_text(): h for t, h in zip(legend.get_texts(), legend.legend_handles, strict=True)}
    style = {m: (to_hex(h.get_color()), h.get_marker(), h.get_linestyle()) for m, h in handles.items()}
    assert style["resnet18"][0] == style["resnet50"][0]  # one family, one colour ...
    assert style["resnet18"][1] != style["resnet50"][1]  # ... but its own marker, which a short legend line shows
    assert style["resnet18"][2] != style["resnet50"][2]
    assert len(set(style.values())) == 4  # every model told apart in the legend
    assert legend.handlelength >= 3  # long enough to show a dash pattern


# -- ticks -----------------------------------------------------------------------------------------------
def _layer_record(**extra) -> dict:
    names = ["conv1", "layer1.0.conv1", "layer4.1.conv2", "fc"]
    macs = [118e6, 115.6e6, 115.6e6, 0.5e6]
    times = [2.1e-3, 1.9e-3, 2.4e-3, 0.05e-3]
    layers = [{"name": n, "type": "Conv2d" if "conv" in n else "Linear", "macs": m, "time_s": t,
               "arithmetic_intensity": a, "flops_per_s": 2 * m / t, "time_share": t / sum(times)}
              for n, m, t, a in zip(names, macs, times, (60.0, 70.0, 120.0, 0.5), strict=True)]  # fmt: skip
    return {"model": "resnet18", "batch_size": 1, "input_shape": "3x224x224", "dtype": "float32", "device": "cpu",
            "threads": 1, "layers": layers, "layer_time_sum_s": sum(times), "layer_time_sum_ratio": 0.95,
            "latency_median_s": sum(times) / 0.95, "peak_flops_per_s": 130e9, "peak_bytes_per_s": 12e9,
            "arithmetic_intensity": 40.0, "achieved_flops_per_s": 90e9, "warnings": [], "flags": [],
            **extra}  # fmt: skip


def test_layer_time_macs_axis_has_k_m_g_ticks_and_no_offset():
    fig = layer_time(_layer_record())
    ax_macs, ax_time = fig.figure.axes
    fig.figure.draw_without_rendering()
    assert ax_macs.xaxis.get_offset_text().get_text() == ""  # was "1e8"
    labels = _labels(ax_macs.xaxis)
    assert "100 M" in labels and all(t == "0" or t.endswith(" M") for t in labels)
    steps = np.diff([t for t in ax_macs.get_xticks() if t >= 0])
    assert set(np.round(steps / 10 ** np.floor(np.log10(steps)))) <= {1, 2, 5}  # 1-2-5 steps


def test_layer_roofline_ticks_are_plain_numbers_not_powers_of_ten():
    fig = layer_roofline(_layer_record())
    ax = fig.figure.axes[0]
    xs, ys = _visible_labels(ax, "x"), _visible_labels(ax, "y")
    assert xs and ys
    assert not [t for t in xs + ys if "10^" in t or "$" in t]  # was 10^-1 ... 10^11
    assert any(t.endswith(" G") for t in ys)  # FLOP/s in G


def test_training_memory_ticks_are_bytes_with_units_never_10_k_mb():
    est = pd.DataFrame([{"model": "vgg16", "batch_size": b, "mode": mode, "estimate_bytes": int(f * b * 1e8)}
                        for b in (1, 8, 64, 128) for mode, f in (("train", 3.0), ("infer", 1.0))])  # fmt: skip
    ax = memory_train_vs_batch(est).figure.axes[0]
    labels = _visible_labels(ax, "y")
    assert "10 GB" in labels and not [t for t in labels if " K" in t or " k" in t]
    assert all(t.endswith("B") for t in labels)
    assert ax.get_ylabel() == "peak memory (log scale)"


def test_memory_vs_batch_ticks_are_bytes_with_units():
    ax = figures.memory_vs_batch(_lines(["vgg16"], ["vgg"], batches=(1, 32, 256))).figure.axes[0]
    labels = _visible_labels(ax, "y")
    assert labels and all(t.endswith("B") for t in labels) and "1 GB" in labels


# -- the roofline of several runs ---------------------------------------------------------------------------
def _roof_records() -> pd.DataFrame:
    """The issue's file: the oldest record measured against 42.2 GFLOP/s, eleven against 68.5."""
    rows = [
        {
            "model": "alexnet",
            "family": "alexnet",
            "peak_flops_per_s": 42.2e9,
            "peak_bytes_per_s": 10e9,
            "peaks_measured_at": "2024-01-01T10:00:00",
            "achieved_flops": 45e9,
            "arithmetic_intensity": 30.0,
        }
    ]
    zoo = ["resnet18", "resnet50", "vgg16", "mobilenet_v2", "densenet121", "squeezenet1_0", "googlenet",
           "shufflenet_v2_x1_0", "resnet34", "vgg11", "mobilenet_v1"]  # fmt: skip
    for i, m in enumerate(zoo):
        rows.append({"model": m, "family": m.rstrip("0123456789_x").split("_")[0].replace("squeezenet1", "squeezenet"),
                     "peak_flops_per_s": 68.5e9, "peak_bytes_per_s": 15e9, "peaks_measured_at": "2024-02-01T10:00:00",
                     "achieved_flops": 40e9 + i * 2e9, "arithmetic_intensity": 5.0 + 3 * i})  # fmt: skip
    df = pd.DataFrame(rows)
    return df.assign(device="cpu", env_device_name="AMD EPYC", threads=1, dtype="float32", batch_size=1)


def test_the_roofline_draws_one_roof_per_run_and_each_model_against_its_own():
    fig = figures.roofline(_roof_records())
    ax = fig.figure.axes[0]
    roofs = [line for line in ax.lines if (line.get_gid() or "").startswith("roof:")]
    assert sorted(max(line.get_ydata()) for line in roofs) == [42.2e9, 68.5e9]
    assert [r[:2] for r in fig.roofs] == [(42.2e9, 10e9), (68.5e9, 15e9)]  # oldest first
    assert fig.roofs[0][2] == ["alexnet"] and len(fig.roofs[1][2]) == 11
    # 40..60 GFLOP/s is above 42.2 but below the 68.5 those eleven were measured against
    assert fig.above == ["alexnet"]
    assert len(fig.warnings) == 1 and "alexnet" in fig.warnings[0] and "resnet18" not in fig.warnings[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("42.20 GFLOP/s" in t and "alexnet" in t for t in labels)


def test_one_roof_when_every_record_shares_the_calibration():
    df = _roof_records()
    df = df[df["model"] != "alexnet"]
    fig = figures.roofline(df)
    assert len([line for line in fig.figure.axes[0].lines if (line.get_gid() or "").startswith("roof:")]) == 1
    assert fig.above == [] and fig.warnings == []


def test_the_cache_roof_is_drawn_where_the_records_carry_it():
    df = _roof_records().assign(peak_cache_bytes_per_s=80e9)
    gids = [line.get_gid() for line in figures.roofline(df).figure.axes[0].lines]
    assert "cache-roof:0" in gids and "cache-roof:1" in gids
    roof = layer_roofline(_layer_record(peak_cache_bytes_per_s=80e9))
    assert "cache-roof" in [line.get_gid() for line in roof.figure.axes[0].lines]


def test_a_layer_above_the_peak_is_explained_not_sent_to_recalibrate():
    r = _layer_record(peak_flops_per_s=100e9)  # layer1.0.conv1 reaches 121.7 GFLOP/s
    fig = layer_roofline(r)
    assert fig.above == ["conv1", "layer1.0.conv1"]
    (warning,) = fig.warnings
    assert "layer1.0.conv1" in warning and "Winograd" in warning and "stale" not in warning


def test_a_long_warning_is_wrapped_inside_the_figure():
    fig = figures.roofline(_roof_records())
    fig.figure.draw_without_rendering()
    text = next(t for t in fig.figure.texts if t.get_gid() == "warnings")
    box, frame = text.get_window_extent(fig.figure._get_renderer()), fig.figure.bbox
    assert len(fig.warnings[0]) > 200 and "\n" in text.get_text()
    assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0


# -- the caller's matplotlib --------------------------------------------------------------------------------
def test_importing_the_charts_leaves_the_matplotlib_backend_as_it_was():
    code = (
        "import matplotlib; matplotlib.use('svg'); "
        "import archcost.report.figures, archcost.report.layer_figures, archcost.report.training_figures; "
        "import archcost.commands.plot; print(matplotlib.get_backend())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "svg"  # was agg: the module called matplotlib.use("Agg") at import


# -- the report's caption ----------------------------------------------------------------------------------
def test_the_report_captions_the_power_law_fit_as_what_it_is():
    from archcost.report.document import fit_caption

    x = np.array([1.0, 3.0, 10.0, 30.0])
    df = pd.DataFrame({"model": list("abcd"), "family": ["resnet"] * 4, "latency_ms": x,
                       "macs": 0.5e9 * x**1.2, "batch_size": 1})  # fmt: skip
    caption = fit_caption(figures.macs_vs_latency(df))
    assert "linear fit" not in caption
    assert "power-law fit GMACs = 0.5 x latency_ms^1.20" in caption and "R² = 1.000 of the log values" in caption
    assert "no fit" in fit_caption(figures.macs_vs_latency(df.head(2)))
