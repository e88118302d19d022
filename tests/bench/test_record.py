"""The bench file: what one model's entry holds, the schema, determinism, and every kind of bad file."""

import json

import jsonschema
import pytest

from archcost.bench import JSON_SCHEMA, SCHEMA, BenchFileError, bench, dumps, loads, read_bench, write_bench
from archcost.bench.record import measured_records, model_entry
from archcost.errors import AnalysisError, InputError

NET = "tests.bench.models:ConvNet"
HEAD = "tests.bench.models:Head"


def test_entry_holds_the_analytic_figures():
    entry = model_entry(NET)
    a = entry["analytic"]
    assert entry["input_shape"] == [1, 3, 8, 8]
    assert entry["dtype"] == "float32"
    assert entry["source"] == "import"
    assert a["params"] == 4 * 3 * 3 * 3 + 4  # 112: weights + bias
    assert a["macs"] == (3 * 3 * 3) * (4 * 6 * 6)  # 3,888: 27 MACs per output element
    assert a["flops"] == 2 * 3888 + 4 * 6 * 6 + 4 * 6 * 6  # 8,064: 2 per MAC, a bias add and a ReLU per element
    assert a["param_bytes"] == 112 * 4
    assert a["activation_bytes"] == 2 * (4 * 6 * 6) * 4  # conv output + ReLU output, float32
    assert a["peak_activation_bytes"] == (3 * 8 * 8 + 2 * 4 * 6 * 6) * 4  # input, conv out, ReLU out alive at once
    assert a["receptive_field"] == [3, 3]  # one 3x3 convolution
    assert a["unsupported_ops"] == {}


def test_batch_and_dtype_scale_the_figures():
    entry = model_entry(NET, batch_size=8, dtype="float16")
    a = entry["analytic"]
    assert entry["input_shape"] == [8, 3, 8, 8]
    assert a["macs"] == 8 * 3888
    assert a["param_bytes"] == 112 * 2
    assert a["params"] == 112


def test_a_model_without_a_spatial_field_records_null():
    a = model_entry(HEAD)["analytic"]
    assert a["macs"] == 16 * 4
    assert a["receptive_field"] is None and a["receptive_field_at"] is None


def test_unsupported_ops_are_counted_by_op():
    a = model_entry("tests.fixtures.usermodels:Unsupported", input_size=(3, 8, 8))["analytic"]
    assert a["unsupported_ops"] == {"special_i0": 1}


def test_document_matches_the_json_schema_and_is_byte_identical(tmp_path):
    doc = bench([NET, HEAD, "lenet5"])
    jsonschema.validate(doc, JSON_SCHEMA)
    assert doc["schema"] == SCHEMA == "archcost.bench/1"
    assert doc["settings"] == {"batch_size": 1, "dtype": "float32", "input_size": None, "options": {}, "profile": None}
    assert set(doc["environment"]) == {"archcost", "torch", "python", "platform"}
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    write_bench(doc, first)
    write_bench(bench([NET, HEAD, "lenet5"]), second)
    assert first.read_bytes() == second.read_bytes()
    text = first.read_text()
    assert "time" not in text.lower()  # no timestamps anywhere
    assert list(json.loads(text)) == sorted(json.loads(text))  # keys sorted
    assert read_bench(first) == doc


def test_options_reach_the_builder_and_are_recorded():
    doc = bench(["tests.bench.models:convnet"], options={"width": "8"})
    entry = doc["models"]["tests.bench.models:convnet"]
    assert entry["options"] == {"width": "8"}
    assert entry["analytic"]["macs"] == 27 * (8 * 6 * 6)


def test_bench_refuses_no_model_and_duplicates():
    with pytest.raises(InputError, match="no model given"):
        bench([])
    with pytest.raises(InputError, match="given twice: lenet5"):
        bench(["lenet5", "lenet5"])


def test_a_model_that_fails_names_itself():
    with pytest.raises(AnalysisError) as exc:
        bench([NET, "tests.fixtures.usermodels:RaisesInForward"], input_size=(3, 8, 8))
    assert "tests.fixtures.usermodels:RaisesInForward" in str(exc.value)


def test_measured_records_drop_run_id_and_timestamp_and_clean_nan():
    rows = [
        {"batch_size": 32, "status": "ok", "run_id": "x", "timestamp": "2024", "latency_median_s": float("nan")},
        {"batch_size": 1, "status": "ok", "run_id": "y", "timestamp": "2024", "latency_median_s": 0.01},
    ]
    kept = measured_records(rows)
    assert [r["batch_size"] for r in kept] == [1, 32]
    assert all("run_id" not in r and "timestamp" not in r for r in kept)
    assert kept[1]["latency_median_s"] is None


# -- bad files: each a clear error (exit 2 on the command line), never a traceback --------------------------


@pytest.fixture
def good_text():
    return dumps(bench([NET]))


def test_missing_file(tmp_path):
    with pytest.raises(BenchFileError, match="no such bench file"):
        read_bench(tmp_path / "nope.json")


def test_empty_file(tmp_path):
    (tmp_path / "e.json").write_text("")
    with pytest.raises(BenchFileError, match="is empty"):
        read_bench(tmp_path / "e.json")


def test_truncated_file(good_text):
    with pytest.raises(BenchFileError, match="truncated") as exc:
        loads(good_text[: len(good_text) // 2], "half.json")
    assert "half.json" in str(exc.value) and "rerun" in str(exc.value)


def test_malformed_file():
    with pytest.raises(BenchFileError, match="not valid JSON"):
        loads("{'schema': 1, }", "bad.json")


def test_newer_schema(good_text):
    doc = json.loads(good_text)
    doc["schema"] = "archcost.bench/2"
    with pytest.raises(BenchFileError, match="newer archcost") as exc:
        loads(json.dumps(doc), "new.json")
    assert "archcost.bench/2" in str(exc.value) and "upgrade" in str(exc.value)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"schema": "archcost.profile/1", "model": "x"}', "profile results file"),
        ('{"model": "x", "layers": [], "totals": {}}', "archcost table"),
        ('{"hello": 1}', "not an archcost bench file"),
        ("[1, 2]", "JSON list"),
    ],
)
def test_other_files(text, says):
    with pytest.raises(BenchFileError, match=says):
        loads(text, "other.json")


@pytest.mark.parametrize(
    ("path", "value", "says"),
    [
        (("analytic", "macs"), "3.8G", "analytic.macs"),
        (("analytic", "params"), -1, "analytic.params"),
        (("analytic", "receptive_field"), "big", "receptive_field"),
        (("input_shape",), [], "input_shape"),
        (("measured",), {"a": 1}, "measured"),
    ],
)
def test_damaged_fields_are_named(good_text, path, value, says):
    doc = json.loads(good_text)
    target = doc["models"][NET]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(BenchFileError, match=says) as exc:
        loads(json.dumps(doc), "damaged.json")
    assert NET in str(exc.value)


def test_a_failed_write_keeps_the_old_file(tmp_path, good_text):
    out = tmp_path / "bench.json"
    out.write_text(good_text)
    doc = json.loads(good_text)
    doc["models"][NET]["analytic"]["macs"] = "lots"
    with pytest.raises(BenchFileError):
        write_bench(doc, out)
    assert out.read_text() == good_text


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("analytic", "macs"), 1.5),
        (("analytic", "flops"), True),
        (("analytic", "peak_activation_bytes"), -3),
        (("analytic", "unsupported_ops"), {"special_i0": "one"}),
        (("input_shape",), [1, 0]),
        (("dtype",), None),
        (("measured",), [{"batch_size": 1, "status": "ok", "latency_median_s": -0.1}]),
        (("measured",), [{"status": "ok"}]),
    ],
)
def test_validate_and_jsonschema_read_the_one_schema_alike(good_text, path, value):
    doc = json.loads(good_text)
    jsonschema.validate(doc, JSON_SCHEMA)
    target = doc["models"][NET]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, JSON_SCHEMA)
    with pytest.raises(BenchFileError, match=path[-1]):
        loads(json.dumps(doc), "damaged.json")
