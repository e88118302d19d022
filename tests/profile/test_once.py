"""A sweep builds each model once and analyses it twice however many batch sizes it measures (issue 15)."""

from __future__ import annotations

import json

import archcost.cost
from archcost.profiling import profile
from tests.profile import models
from tests.profile.test_command import FAST, M, run

QUICK = dict(device="cpu", warmup_s=0, min_time_s=0.01, repeats=3, roofline=False, power=False, memory=False)


def test_a_spec_is_built_once_and_analysed_at_two_sizes(monkeypatch):
    calls = []
    real = archcost.cost.analyze

    def counting(work, *a, **k):  # the sweep analyses its workload at each batch asked
        calls.append(work.batch_size)
        return real(work, *a, **k)

    monkeypatch.setattr(archcost.cost, "analyze", counting)
    monkeypatch.setattr(models.Counted, "builds", 0)
    df = profile(f"{M}:Counted", batch_sizes=[1, 2, 3, 4, 8], **QUICK)
    assert models.Counted.builds == 1
    assert sorted(calls) == [1, 8]
    # the derived figures are the analysis's: MACs of a 3x3 conv, 3 -> 4 channels on 8x8, per sample
    assert list(df["macs"]) == [b * 4 * 8 * 8 * 3 * 3 * 3 for b in (1, 2, 3, 4, 8)]


def test_a_constructor_failing_at_its_turn_exits_2_and_keeps_what_was_measured(capsys, tmp_path):
    out_file = tmp_path / "r.jsonl"
    code, out, err = run(
        capsys,
        "profile",
        f"{M}:TakesWidth",
        f"{M}:FailsToBuild",
        "--opt",
        "width=0",
        "--format",
        "json",
        "--append",
        str(out_file),
        *FAST,
    )
    assert code == 2 and "width must be >= 1" in err and "1 measurement(s) finished before this error" in err
    assert [r["model"] for r in json.loads(out)] == ["TakesWidth"]
    assert len(out_file.read_text().splitlines()) == 1


def test_a_wrong_option_name_is_refused_before_anything_is_built(capsys, monkeypatch):
    monkeypatch.setattr(models.Counted, "builds", 0)
    code, out, err = run(capsys, "profile", f"{M}:Counted", f"{M}:FailsToBuild", "--opt", "widht=2", *FAST)
    assert code == 2 and "widht" in err and models.Counted.builds == 0 and out == ""
