"""bench --device-profile records predicted latency; compare --fail-on "predicted_latency>5%" gates it in CI
without timing anything (issue 28 item 2)."""

from __future__ import annotations

import json

import jsonschema
import pytest

from archcost.bench import bench
from archcost.bench.compare import compare, parse_fail_on
from archcost.bench.record import JSON_SCHEMA
from archcost.cli import main


def test_predicted_block_is_deterministic_and_valid(smoke_profile_path):
    a = bench(["resnet20_cifar", "lenet5"], device_profile=str(smoke_profile_path))
    b = bench(["resnet20_cifar", "lenet5"], device_profile=str(smoke_profile_path))
    jsonschema.validate(a, JSON_SCHEMA)
    for m in ("resnet20_cifar", "lenet5"):
        p = a["models"][m]["predicted"]
        assert p["latency_s"] > 0 and p["batch_size"] == 1 and len(p["device_profile"]["digest"]) == 64
        assert p == b["models"][m]["predicted"]  # the same profile: the same figure, nothing timed
    assert a["settings"]["device_profile"]["digest"] == a["models"]["lenet5"]["predicted"]["device_profile"]["digest"]
    assert "predicted" not in bench(["lenet5"])["models"]["lenet5"]  # without a profile: the file as before


def test_compare_gates_predicted_latency(smoke_profile_path):
    base = bench(["resnet20_cifar"], device_profile=str(smoke_profile_path))
    bigger = bench(["resnet20_cifar"], input_size=(3, 64, 64), device_profile=str(smoke_profile_path))
    gate = parse_fail_on("predicted_latency>5%")
    assert not compare(base, base, gate).failed
    result = compare(base, bigger, gate)
    assert result.failed  # four times the pixels: far more than 5% slower
    row = next(r for r in result.rows if r.metric.key == "predicted_latency")
    assert row.new > row.old


def test_other_profiles_or_none_are_not_compared(smoke_profile_path, tmp_path):
    base = bench(["lenet5"], device_profile=str(smoke_profile_path))
    other = json.loads(smoke_profile_path.read_text())
    other["threads"] = other["threads"] + 1  # another profile (its own digest)
    path = tmp_path / "other.json"
    path.write_text(json.dumps(other))
    result = compare(base, bench(["lenet5"], device_profile=str(path)), parse_fail_on("predicted_latency>5%"))
    assert not result.failed and not [r for r in result.rows if r.metric.key == "predicted_latency"]
    assert any("different device profiles" in n for n in result.notes)
    plain = compare(bench(["lenet5"]), bench(["lenet5"]), parse_fail_on("predicted_latency>5%"))
    assert any("predicted_latency>5% not checked" in n for n in plain.notes)


def test_cli(smoke_profile_path, tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["bench", "lenet5", "--device-profile", str(smoke_profile_path), "--output", str(a), "--quiet"]) == 0
    assert main(["bench", "lenet5", "--device-profile", str(smoke_profile_path), "--output", str(b), "--quiet"]) == 0
    assert main(["compare", str(a), str(b), "--fail-on", "predicted_latency>5%"]) == 0
    assert main(["bench", "lenet5", "--device-profile", str(tmp_path / "missing.json"), "--quiet"]) == 2
    assert "no such device profile" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [{"latency_s": -1.0}, {"device_profile": {}}])
def test_schema_refuses_a_bad_predicted_block(smoke_profile_path, bad):
    doc = bench(["lenet5"], device_profile=str(smoke_profile_path))
    doc["models"]["lenet5"]["predicted"].update(bad)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, JSON_SCHEMA)
