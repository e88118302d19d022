"""The record schema, the JSON-lines results file and the three output formats."""

import io
import json

import pandas as pd
import pytest

from archcost.errors import InputError
from archcost.profiling.results import FIELDS, SCHEMA, append_records, new_record, read_results, render, to_dataframe


def rec(**kw):
    base = {"model": "m", "batch_size": 1, "device": "cpu", "dtype": "float32", "status": "ok", "threads": 2}
    return new_record(**{**base, **kw})


def test_a_record_has_every_field_and_the_schema():
    r = rec(latency_median_s=0.01)
    assert list(r) == list(FIELDS) and r["schema"] == SCHEMA
    assert r["power_mean_w"] is None
    with pytest.raises(KeyError):
        new_record(latency_mean=1.0)  # a misspelt field is a bug, not a new column


def test_results_file_appends_and_reads_back(tmp_path):
    path = tmp_path / "results.jsonl"
    append_records(path, [rec(batch_size=1, latency_median_s=0.01)])
    append_records(path, [rec(batch_size=2, latency_median_s=float("nan"), status="oom", error="out of memory")])
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["latency_median_s"] is None  # NaN is written as null
    df = read_results(path)
    assert list(df.columns) == list(FIELDS)
    assert list(df["batch_size"]) == [1, 2] and list(df["status"]) == ["ok", "oom"]


def test_reading_a_json_array_and_several_files(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.jsonl"
    a.write_text(render(to_dataframe([rec(model="x")]), "json"))
    append_records(b, [rec(model="y")])
    assert list(read_results([a, b])["model"]) == ["x", "y"]


def test_a_foreign_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"schema": "something/9"}\n')
    with pytest.raises(InputError, match="schema"):
        read_results(bad)
    bad.write_text("not json\n")
    with pytest.raises(InputError, match="not JSON"):
        read_results(bad)
    with pytest.raises(InputError, match="cannot read"):
        read_results(tmp_path / "missing.jsonl")


def test_csv_and_json_round_trip_the_numbers():
    df = to_dataframe([rec(latency_median_s=0.0125, throughput_ips=80.0), rec(batch_size=4, status="oom")])
    back = pd.read_csv(io.StringIO(render(df, "csv")))
    assert list(back.columns) == list(FIELDS)
    assert back["latency_median_s"][0] == 0.0125 and pd.isna(back["latency_median_s"][1])
    data = json.loads(render(df, "json"))
    assert data[0]["throughput_ips"] == 80.0 and data[1]["latency_median_s"] is None


def test_text_table_shows_milliseconds_and_the_notes():
    df = to_dataframe(
        [
            rec(
                latency_median_s=0.0125,
                latency_p10_s=0.012,
                latency_p90_s=0.013,
                latency_cv=0.02,
                samples=10,
                throughput_ips=80.0,
                power_note="no power reading on the CPU",
                env_torch="2.x",
            ),
            rec(batch_size=8, status="oom", error="CUDA out of memory"),
        ]
    )
    text = render(df, "text")
    assert "12.500" in text and "80.0" in text and "oom" in text
    assert "error: CUDA out of memory (m@8)" in text
    assert "power note: no power reading on the CPU (m@1)" in text
    assert render(to_dataframe([]), "text").startswith("(no results)")


def test_measured_records_match_the_schema_generated_from_the_typed_record():
    import jsonschema

    from archcost.profiling import profile
    from archcost.profiling.results import RECORD_JSON_SCHEMA, ProfileRecord, record_json

    assert tuple(ProfileRecord.__annotations__) == FIELDS == tuple(RECORD_JSON_SCHEMA["properties"])
    fast = {"device": "cpu", "warmup_s": 0.0, "min_time_s": 0.001, "repeats": 2, "roofline": False, "power": False}
    frames = [
        profile("tests.profile.models:TwoLayer", batch_sizes=[1, 2], layers=True, **fast),
        profile("tests.profile.models:TwoLayer", mode="train", optimizer="sgd", **fast),
        profile(["tests.profile.models:Broken", "tests.profile.models:OomAbove"], batch_sizes=[1, 4], **fast),
    ]
    statuses = set()
    for df in frames:
        for r in df.to_dict(orient="records"):
            jsonschema.validate(json.loads(record_json(r)), RECORD_JSON_SCHEMA)
            statuses.add(r["status"])
    assert {"ok", "error"} <= statuses
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**json.loads(record_json(rec())), "batch_size": "one"}, RECORD_JSON_SCHEMA)
