"""benchmarks/predict_check.py's summary: the perfect-predictor row, the goal's reach given the truth's spread."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _check():
    spec = importlib.util.spec_from_file_location("predict_check", ROOT / "benchmarks" / "predict_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _point(rounds: list[float], batch: int = 1, threads: int = 1) -> dict:
    return {"measured_rounds_s": rounds, "batch_size": batch, "threads": threads}


def test_a_perfect_predictor_scores_what_the_rounds_spread_allows():
    check = _check()
    steady = check._perfect_predictor([_point([0.010, 0.010, 0.010]) for _ in range(5)])
    assert set(steady) == {"all", "batch 1, 1 thread(s)"}
    assert len(steady["all"]) == 5 * check.PERFECT_DRAWS and all(abs(e) < 1e-12 for e in steady["all"])
    # processes 30% apart: a median of three of them is often more than 10% off the truth
    spread = check._perfect_predictor([_point([0.010, 0.013, 0.0077]) for _ in range(5)], seed=1)
    errors = spread["all"]
    share = sum(abs(e) <= 0.10 for e in errors) / len(errors)
    assert 0.05 < share < 0.95
    # never further than the widest process's log deviation (0.262) scaled to one process's spread (sqrt(3/2))
    assert max(abs(e) for e in errors) < math.exp(0.263 * math.sqrt(1.5)) - 1
    assert check._perfect_predictor([_point([0.01, 0.02])])["all"] == []  # two processes give no spread to pool
    assert math.isfinite(sum(errors))
