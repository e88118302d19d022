"""``archcost plot layer-time`` / ``layer-roofline``: charts of profile --layers records."""

import pytest
import torch

from archcost.cli import main
from archcost.profiling import profile
from archcost.profiling.environment import cpu_name
from archcost.profiling.results import read_results
from archcost.profiling.roofline import DevicePeaks, peaks_key, store
from archcost.report.layer_figures import layer_roofline, layer_time, pick_record

FAST = {"device": "cpu", "warmup_s": 0.0, "min_time_s": 0.01, "repeats": 3, "memory": False, "threads": 1}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("layers")
    mp = pytest.MonkeyPatch()
    mp.setenv("ARCHCOST_CACHE_DIR", str(folder))
    key = peaks_key(cpu_name(), "cpu", "float32", 1, torch.__version__)
    store(DevicePeaks(key, flops_per_s=1e11, bytes_per_s=1e10, gemm_n=2048, copy_bytes=256 * 10**6))
    path = folder / "r.jsonl"
    from tests.profile.test_layers import Residual

    profile(Residual(), layers=True, results_file=path, **FAST)
    profile(Residual(), layers=False, results_file=path, batch_sizes=[2], **FAST)
    mp.undo()
    return path


def test_the_charts_name_what_was_measured(results):
    r = pick_record(read_results(results), "Residual", None, None)
    fig = layer_time(r)
    title = fig.figure._suptitle.get_text()
    assert "input 1x3x8x8" in title and "float32" in title and "cpu" in title and "1 threads" in title
    labels = [t.get_text() for t in fig.figure.axes[0].get_yticklabels()]
    assert labels == ["conv", "relu", "add", "relu#2", "flatten"]
    roof = layer_roofline(r)
    assert "input 1x3x8x8" in roof.figure.axes[0].get_title()


@pytest.mark.parametrize("kind", ["layer-time", "layer-roofline"])
def test_plot_from_the_command_line(capsys, tmp_path, results, kind):
    out = tmp_path / f"{kind}.png"
    code = main(["plot", kind, "Residual", "--results", str(results), "--output", str(out)])
    _, err = capsys.readouterr()
    assert code == 0, err
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_a_record_without_layers_says_how_to_get_them(capsys, tmp_path, results):
    code = main(["plot", "layer-time", "Residual", "--batch-size", "2", "--results", str(results), "--output",
                 str(tmp_path / "x.png")])  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 2 and "no layer times for Residual at batch 2" in err and "--layers" in err
