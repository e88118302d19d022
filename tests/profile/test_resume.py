"""``profile --resume`` without Ray: what the results file holds is not measured again, what it lacks is."""

import json

import pytest

from archcost.cli import main
from archcost.errors import InputError
from archcost.profiling import profile
from archcost.profiling.results import read_results
from archcost.profiling.resume import record_key, recorded_keys, remaining

FAST = {"device": "cpu", "warmup_s": 0.0, "min_time_s": 0.001, "repeats": 2, "roofline": False, "power": False}
TWO = "tests.profile.models:TwoLayer"
BROKEN = "tests.profile.models:Broken"


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def keys(path):
    return sorted((r["model"], r["batch_size"]) for r in lines(path))


def test_the_key_is_model_device_dtype_batch_and_mode():
    done = {record_key("m", "cuda", "float32", 2, None), record_key("m", "cpu", "float16", 1, "infer")}
    assert record_key("m", "cuda:0", "float32", 2, "infer") in done  # cuda is cuda:0; no mode is inference
    assert remaining(["m", "n"], "cuda:0", "float32", None, [1, 2, 4], done) == [(1, 4), (1, 2, 4)]
    assert remaining(["m"], "cpu", "float16", None, [1, 2], done) == [(2,)]
    assert remaining(["m"], "cpu", "float16", "train", [1, 2], done) == [(1, 2)]  # another mode: not done


def test_resume_measures_only_what_the_file_lacks(tmp_path):
    results = tmp_path / "r.jsonl"
    first = profile([TWO, BROKEN], batch_sizes="1,2", results_file=results, **FAST)
    assert keys(results) == [("Broken", 1), ("Broken", 2), ("TwoLayer", 1), ("TwoLayer", 2)]
    assert first.attrs["skipped"] == 0

    again = profile([TWO, BROKEN], batch_sizes="1,2", results_file=results, resume=True, **FAST)
    assert len(again) == 0 and again.attrs["skipped"] == 4  # an error record is an answer too
    assert len(lines(results)) == 4

    kept = [r for r in lines(results) if (r["model"], r["batch_size"]) != ("TwoLayer", 2)]
    results.write_text("".join(json.dumps(r) + "\n" for r in kept))
    more = profile([TWO, BROKEN], batch_sizes="1,2,4", results_file=results, resume=True, **FAST)
    new = list(zip(more["model"], more["batch_size"], strict=True))
    assert sorted(new) == [("Broken", 4), ("TwoLayer", 2), ("TwoLayer", 4)]
    assert more.attrs["skipped"] == 3
    assert keys(results) == sorted([*[(r["model"], r["batch_size"]) for r in kept], *new])


def test_a_line_cut_by_a_killed_run_is_measured_again(tmp_path):
    results = tmp_path / "r.jsonl"
    profile(TWO, batch_sizes="1,2", results_file=results, **FAST)
    text = results.read_text().splitlines()
    results.write_text(text[0] + "\n" + text[1][:40])  # batch 2 cut mid-line, as by kill -9
    with pytest.warns(UserWarning, match="cut short"):
        assert recorded_keys(results) == {record_key("TwoLayer", "cpu", "float32", 1, None)}
    with pytest.warns(UserWarning, match="cut short"):
        df = profile(TWO, batch_sizes="1,2", results_file=results, resume=True, **FAST)
    assert list(df["batch_size"]) == [2]
    with pytest.warns(UserWarning, match=r"r.jsonl:2: skipped"):  # the cut line stays, skipped; batch 2 after it
        back = read_results(results)
    assert sorted(back["batch_size"]) == [1, 2]


def test_resume_on_a_file_that_does_not_exist_yet_measures_everything(tmp_path):
    df = profile(TWO, batch_sizes="1", results_file=tmp_path / "new.jsonl", resume=True, **FAST)
    assert list(df["status"]) == ["ok"] and df.attrs["skipped"] == 0


def test_resume_without_a_results_file_is_bad_input(tmp_path, capsys):
    with pytest.raises(InputError, match="no results file"):
        profile(TWO, resume=True, **FAST)
    assert main(["profile", TWO, "--device", "cpu", "--resume", "--no-roofline"]) == 2
    assert "--append FILE" in capsys.readouterr().err


def test_cli_resume_says_what_it_skipped(tmp_path, capsys):
    results = tmp_path / "r.jsonl"
    args = ["profile", TWO, "--device", "cpu", "--batch-sizes", "1,2", "--warmup", "0", "--min-time", "0.001"]
    args += ["--repeats", "2", "--no-roofline", "--no-power", "--quiet", "--append", str(results)]
    assert main(args) == 0
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    out = capsys.readouterr()
    assert "resume: 2 measurement(s) already in" in out.err
    assert len(lines(results)) == 2
