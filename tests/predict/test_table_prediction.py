"""``archcost table --device-profile``: a predicted_ms column per row and the predicted total (issue 28 item 2)."""

from __future__ import annotations

import json

import pytest

import archcost
from archcost.cli import main
from archcost.predict.annotate import with_prediction
from archcost.predict.model import predict_report


def test_rows_carry_the_prediction_and_the_total_is_their_sum(smoke_profile):
    report = archcost.analyze("resnet18")
    out = with_prediction(report, smoke_profile)
    assert [r.predicted_ms for r in out.layers] == [p.predicted_ms for p in predict_report(report, smoke_profile)]
    assert all(r.predicted_ms > 0 for r in out.layers)
    assert out.prediction["total_ms"] == pytest.approx(sum(r.predicted_ms for r in out.layers))
    assert out.totals == report.totals  # the cost figures are the analysis's own
    assert report.prediction is None and report.layers[0].predicted_ms is None  # the report given is not changed
    for row, p in zip(out.layers, predict_report(report, smoke_profile), strict=True):  # fallbacks flagged per row
        assert row.predicted_rule == (p.rule if p.fallback else None)
    assert out.prediction["fallbacks"] == {p.kind: p.rule for p in predict_report(report, smoke_profile) if p.fallback}


def test_table_json_and_text_show_it(smoke_profile_path, capsys, tmp_path):
    assert main(["table", "resnet18", "--device-profile", str(smoke_profile_path), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["prediction"]["total_ms"] == pytest.approx(sum(r["predicted_ms"] for r in doc["layers"]))
    assert doc["prediction"]["threads"] == 1 and doc["prediction"]["device"] == "cpu"
    assert main(["table", "resnet18", "--device-profile", str(smoke_profile_path), "--depth", "1"]) == 0
    text = capsys.readouterr().out
    assert "Pred ms" in text and "Predicted latency: " in text
    assert main(["table", "resnet18", "--format", "json"]) == 0  # without a profile: no prediction fields
    plain = json.loads(capsys.readouterr().out)
    assert "prediction" not in plain and "predicted_ms" not in plain["layers"][0]


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no such device profile"), ("{not json", "not JSON"), ('{"schema_version": 999}', "schema")],
)
def test_a_bad_profile_is_exit_2(content, message, tmp_path, capsys):
    path = tmp_path / "p.json"
    if content is not None:
        path.write_text(content)
    assert main(["table", "resnet18", "--device-profile", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_train_mode_refuses_a_profile(smoke_profile_path, capsys):
    assert main(["table", "resnet18", "--mode", "train", "--device-profile", str(smoke_profile_path)]) == 2
    assert "--device-profile predicts inference latency" in capsys.readouterr().err


def test_report_has_a_predicted_ms_column(smoke_profile_path, tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["report", "--models", "resnet18,alexnet", "--device-profile", str(smoke_profile_path),
                 "--output", str(out)]) == 0  # fmt: skip
    md = (out / "report.md").read_text()
    assert "predicted ms" in md and "Predicted ms: one forward at batch 1" in md
    assert main(["report", "--models", "alexnet", "--device-profile", str(tmp_path / "none.json"),
                 "--output", str(tmp_path / "r2")]) == 2  # fmt: skip
    assert not (tmp_path / "r2" / "report.md").exists()
