"""Predicted latency: positive rows that add up to the totals; missing kinds flagged per row; the commands."""

import dataclasses
import json
import math

import pytest

from archcost.cli import main
from archcost.predict import predict

MODEL = "resnet20_cifar"  # conv, batch norm, relu, add, pooling, linear, and the pad of its shortcuts (copy)


def test_rows_are_positive_and_sum_to_the_total(smoke_profile):
    got = predict(MODEL, smoke_profile, [1, 4])
    assert got.batch_sizes == (1, 4)
    for b in (1, 4):
        rows = got.rows(b)
        assert len(rows) > 20 and all(r.predicted_ms > 0 for r in rows)
        assert math.isclose(sum(r.predicted_ms for r in rows), got.totals_ms[b], rel_tol=1e-12)
    assert {r.kind for r in got.layers} >= {"conv", "batch_norm", "activation", "elementwise", "linear"}
    for r in got.layers:  # flagged exactly where the smoke profile has no data for the row's kind
        assert r.fallback == (r.kind not in smoke_profile.kinds) and r.rule in smoke_profile.kinds, r
    assert got.fallbacks == {"copy": "cat"}  # the zero-padded shortcuts (option A): FALLBACKS["copy"] begins with cat
    assert got.rows(4)[0].flops == 4 * got.rows(1)[0].flops  # the features follow the batch


def test_a_kind_missing_from_the_profile_is_flagged_per_row(smoke_profile):
    kinds = {k: v for k, v in smoke_profile.kinds.items() if k != "batch_norm"}
    without = dataclasses.replace(smoke_profile, kinds=kinds)
    got = predict(MODEL, without, [1])
    norms = [r for r in got.layers if r.kind == "batch_norm"]
    assert norms and all(r.fallback and r.rule == "elementwise" for r in norms)  # FALLBACKS: layer_norm, elementwise
    assert all(not r.fallback for r in got.layers if r.kind in without.kinds)
    assert got.fallbacks == {"batch_norm": "elementwise", "copy": "cat"}


def test_a_report_of_another_dtype_is_refused(smoke_profile):
    import archcost
    from archcost.cost.workload import Workload
    from archcost.predict import ProfileMismatchError

    with pytest.raises(ProfileMismatchError, match="dtype"):
        predict(archcost.analyze(Workload.of(MODEL, dtype="float16")), smoke_profile)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_predict_command_json_and_csv(capsys, smoke_profile_path):
    code, out, err = run(
        capsys, "predict", MODEL, "--device-profile", smoke_profile_path, "--batch-size", 1, 8, "--format", "json"
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["batch_sizes"] == [1, 8] and doc["device_profile"]["threads"] == 1
    for b in ("1", "8"):
        rows = [r for r in doc["layers"] if r["batch_size"] == int(b)]
        assert math.isclose(sum(r["predicted_ms"] for r in rows), doc["totals_ms"][b], rel_tol=1e-9)
    code, out, err = run(
        capsys, "predict", MODEL, "--device-profile", smoke_profile_path, "--batch-size", 1, 2, "--format", "csv"
    )
    assert code == 0 and len(out.strip().splitlines()) == 1 + len(doc["layers"])  # header + a row per layer and batch
    code, out, err = run(capsys, "predict", MODEL, "--device-profile", smoke_profile_path)
    assert code == 0 and "Total" in out and "ms @ 1" in out and "Predicted latency of" in out


def test_predict_command_flags_and_warns(capsys, smoke_profile_path, tmp_path):
    data = json.loads(smoke_profile_path.read_text())
    del data["kinds"]["batch_norm"]
    path = tmp_path / "nobn.json"
    path.write_text(json.dumps(data))
    code, out, err = run(capsys, "predict", MODEL, "--device-profile", path, "--threads", 2)
    assert code == 0, err
    assert "elementwise*" in out and "batch_norm by elementwise" in out
    assert "warning: threads:" in err
    code, out, err = run(capsys, "predict", MODEL, "--device-profile", path, "--threads", 2, "--strict-profile")
    assert code == 2 and "threads" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--device", "cuda"], "device: the device profile"),
        (["--dtype", "float16"], "dtype: the device profile"),
    ],
)
def test_predict_command_refuses_a_mismatched_profile(capsys, smoke_profile_path, argv, message):
    code, out, err = run(capsys, "predict", MODEL, "--device-profile", smoke_profile_path, *argv)
    assert code == 2 and message in err and "Traceback" not in err and out == ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not JSON"),
        (json.dumps({"schema": "archcost.device_profile", "schema_version": 99}), "schema_version 99 is newer"),
        (json.dumps({"schema": "archcost.device_profile", "schema_version": 1}), "field 'kinds' is missing"),
    ],
)
def test_predict_command_bad_profile_file_exits_2(capsys, tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    code, out, err = run(capsys, "predict", MODEL, "--device-profile", path)
    assert code == 2 and message in err and "Traceback" not in err


def test_calibrate_command_smoke(capsys, tmp_path):
    target = tmp_path / "cpu-1t.json"
    code, out, err = run(capsys, "calibrate", "--smoke", "--threads", 1, "--output", target, "--quiet")
    assert code == 0, err
    assert json.loads(target.read_text())["mode"] == "smoke" and "conv_depthwise" in out and "wrote" in err
    assert not (tmp_path / "cpu-1t.json.partial.jsonl").exists()  # kept only until the profile is written


def test_calibrate_command_bad_input(capsys, tmp_path):
    code, out, err = run(capsys, "calibrate", "--smoke", "--output", tmp_path / "no" / "such" / "p.json")
    assert code == 2 and "does not exist" in err
    code, out, err = run(capsys, "calibrate", "--smoke", "--device", "tpu", "--output", tmp_path / "p.json")
    assert code == 2 and "unknown device" in err


def test_calibrate_in_fresh_processes_keeps_each_points_median(capsys, tmp_path):
    target = tmp_path / "cpu-1t.json"
    argv = ("calibrate", "--smoke", "--threads", 1, "--processes", 2, "--output", target, "--quiet")
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert "median of 2 processes" in err and "conv_depthwise" in out
    data = json.loads(target.read_text())
    assert data["mode"] == "smoke" and all(p["p10_s"] <= p["time_s"] <= p["p90_s"] for p in data["points"])
    assert not list(tmp_path.glob("cpu-1t.json.process*"))  # the processes' own files go once merged


def test_merge_profiles_takes_the_median_and_refuses_another_setup(smoke_profile):
    from archcost.errors import InputError
    from archcost.predict.calibrate import merge_profiles

    def scaled(factor):
        points = tuple(dataclasses.replace(p, time_s=p.time_s * factor) for p in smoke_profile.points)
        return dataclasses.replace(smoke_profile, points=points)

    merged = merge_profiles([scaled(1.0), scaled(3.0), scaled(2.0)])
    for p, q in zip(merged.points, smoke_profile.points, strict=True):
        assert math.isclose(p.time_s, 2 * q.time_s) and math.isclose(p.p10_s, q.time_s)
        assert math.isclose(p.p90_s, 3 * q.time_s) and p.rows == q.rows and p.dispatches == q.dispatches
    assert merged.kinds != smoke_profile.kinds  # fitted again, to the medians
    with pytest.raises(InputError, match="another setup"):
        merge_profiles([smoke_profile, dataclasses.replace(smoke_profile, threads=2)])
    with pytest.raises(InputError, match="no device profiles"):
        merge_profiles([])


def test_calibrate_refit_fits_stored_times_again_and_times_nothing(capsys, tmp_path, smoke_profile):
    """--refit recomputes each point's kind and features from its kernel, keeps its times, drops a point whose
    kernel this archcost no longer has, and keeps the setup: another --threads is refused."""
    stale = [dataclasses.replace(p, kind="other", flops=0.0) if not p.rows else p for p in smoke_profile.points]
    gone = dataclasses.replace(smoke_profile.points[0], key="a kernel archcost no longer has")
    old = dataclasses.replace(smoke_profile, points=(*stale, gone))
    old_path, new_path = tmp_path / "old.json", tmp_path / "new.json"
    old.save(old_path)
    code, out, err = run(capsys, "calibrate", "--refit", old_path, "--output", new_path)
    assert code == 0, err
    assert "1 kernels it no longer has left out" in err
    new = json.loads(new_path.read_text())["points"]
    assert [p["key"] for p in new] == [p.key for p in smoke_profile.points]
    for p, q in zip(new, smoke_profile.points, strict=True):
        assert p["kind"] == q.kind and p["flops"] == q.flops and p["time_s"] == q.time_s
    other = 1 + smoke_profile.threads
    code, out, err = run(capsys, "calibrate", "--refit", old_path, "--threads", other, "--output", new_path)
    assert code == 2 and "not the refitted profile's own" in err and "Traceback" not in err
    code, out, err = run(capsys, "calibrate", "--refit", old_path, "--smoke", "--output", new_path)
    assert code == 2 and "times nothing" in err


def test_a_deadline_cuts_the_calibration_and_spread_keeps_every_kind_first():
    """gpu_check calibrates within its budget: past the deadline no kernel is started (the first always is), and
    ``spread`` puts one kernel of every kind before the second of any."""
    import time

    from archcost.predict.calibrate import calibrate, kernels, spread

    full = kernels("full")
    ordered = spread(full)
    kinds = {k.kind for k in full}
    assert sorted(k.key for k in ordered) == sorted(k.key for k in full)
    assert {k.kind for k in ordered[: len(kinds)]} == kinds
    smoke = spread(kernels("smoke"))
    profile = calibrate("cpu", threads=1, mode="smoke", kernel_set=smoke, deadline=time.monotonic())
    assert [p.key for p in profile.points] == [smoke[0].key]
