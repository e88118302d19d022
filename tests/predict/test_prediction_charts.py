"""plot predicted-vs-measured and plot layer-time with a device profile (issue 28 item 5)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from archcost.cli import main
from archcost.predict.annotate import predict_records
from archcost.report.prediction_figures import predicted_vs_measured


def _records(path, models=("resnet20_cifar", "lenet5", "mobilenet_v1"), latency_s=0.004):
    from archcost.profiling.results import SCHEMA

    lines = [json.dumps({"schema": SCHEMA, "model": m, "device": "cpu", "env_device_name": "test cpu", "status": "ok",
                         "batch_size": 1, "latency_median_s": latency_s * (i + 1), "threads": 1, "dtype": "float32",
                         "input_shape": None}) for i, m in enumerate(models)]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


def test_band_share_and_errors_are_the_points_own():
    df = pd.DataFrame({"model": ["a", "b", "c", "d"], "family": ["x"] * 4, "measured_ms": [1.0, 2.0, 4.0, 8.0],
                       "predicted_ms": [1.05, 2.5, 3.7, 8.0]})  # fmt: skip
    chart = predicted_vs_measured(df)
    assert chart.data["within"] == pytest.approx(3 / 4)  # b is 25% over
    assert chart.data["errors"]["b"] == pytest.approx(0.25) and chart.data["errors"]["d"] == 0
    assert {a.get_gid() for a in chart.figure.axes[0].collections} >= {"band", "models"}
    assert not chart.warnings
    assert predicted_vs_measured(df.head(2)).warnings  # two models: too few to judge


def test_each_record_is_predicted_at_its_model_input_and_batch(smoke_profile, tmp_path):
    from archcost.profiling.results import read_results

    rows = predict_records(read_results([str(_records(tmp_path / "r.jsonl"))]).to_dict(orient="records"),
                           smoke_profile)  # fmt: skip
    assert [r["model"] for r in rows] == ["resnet20_cifar", "lenet5", "mobilenet_v1"]
    assert [r["measured_ms"] for r in rows] == pytest.approx([4.0, 8.0, 12.0])
    assert all(r["predicted_ms"] > 0 for r in rows)
    assert rows[0]["family"] == "resnet_cifar"


def test_plot_commands(smoke_profile_path, tmp_path, capsys):
    results = _records(tmp_path / "r.jsonl")
    out = tmp_path / "pvm.png"
    argv = ["plot", "predicted-vs-measured", "--results", str(results), "--device-profile", str(smoke_profile_path)]
    assert main([*argv, "--output", str(out)]) == 0, capsys.readouterr().err
    assert out.stat().st_size > 5000
    assert main(["plot", "predicted-vs-measured", "--results", str(results), "--output", str(out)]) == 2
    assert "needs --results and --device-profile" in capsys.readouterr().err
    assert main(["plot", "accuracy-bar", "--models", "alexnet", "--device-profile", str(smoke_profile_path),
                 "--output", str(out)]) == 2  # fmt: skip
    assert "--device-profile is for plot predicted-vs-measured and layer-time" in capsys.readouterr().err
