"""benchmarks/profile_paired.py runs end to end (smoke settings): its archcost process still reaches the sweep's
timing call, which the benchmark swaps for its turn-taking loop (a rename in the sweep would break it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_profile_paired_smoke(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "profile_paired.py"), "--smoke", "--no-write"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| 1 | `plain` | `archcost` |" in done.stdout
    ratio = float(done.stdout.split("| 1 | `plain` | `archcost` |")[1].split("**")[1])
    assert 0.2 < ratio < 5  # both processes timed the same small model
