"""The steady heap: freed memory kept in the process's heap, faults per call recorded and flagged."""

import csv
import io
import subprocess
import sys

import pytest
from torch import nn

from archcost.errors import InputError
from archcost.profiling import profile, render
from archcost.profiling.outcome import FAULT_LIMIT, flags_and_warnings

FAST = {"device": "cpu", "warmup_s": 0.0, "min_time_s": 0.01, "repeats": 3, "roofline": False}

# Allocates and frees the way a chain of layers does: outputs of 1, 2, ..., 9 MiB, each alive until the next
# but one is made. As-is, glibc maps some afresh (its dynamic mmap threshold trails the sizes freed) and gives the
# heap's free top back to the kernel (its trim threshold), so every call faults them in again; prints the minor
# faults per call after two warm calls.
_PATTERN = """
import resource, sys, torch
from archcost.profiling.environment import heap_state, steady_heap
torch.set_num_threads(1)
if sys.argv[1] == "steady":
    assert steady_heap() and heap_state() == "steady"
def call():
    alive = []
    for mib in range(1, 10):
        out = torch.empty(mib * 2**20 // 4)
        out.fill_(1.0)
        alive.append(out)
        if len(alive) > 2:
            alive.pop(0)
call(); call()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    call()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 10)
"""


def _faults_per_call(heap: str) -> float:
    out = subprocess.run([sys.executable, "-c", _PATTERN, heap], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return float(out.stdout.strip().splitlines()[-1])


def test_a_steady_heap_stops_the_faults_that_glibc_trimming_causes():
    import ctypes

    try:
        ctypes.CDLL(None).gnu_get_libc_version  # noqa: B018
    except AttributeError:
        pytest.skip("steady_heap is for glibc; this C library is another")
    as_is = _faults_per_call("as-is")
    steady = _faults_per_call("steady")
    # as-is about 7,900 faults per call here (31 MiB of 4 KiB pages: glibc 2.36); steady none on a quiet machine,
    # a few hundred beside other work
    assert as_is > 2000, as_is
    assert steady < as_is / 5, (steady, as_is)


def test_a_record_has_its_heap_and_faults_per_call():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
    model.input_size = (3, 16, 16)
    df = profile(model, **FAST)
    row = df.iloc[0]
    assert row["status"] == "ok" and row["env_heap"] == "steady"  # the default
    assert row["minor_faults_per_call"] is not None and 0 <= row["minor_faults_per_call"] < FAULT_LIMIT
    assert "page_faults" not in row["flags"]
    assert "heap steady (--heap)" in render(df, "text")  # the text output's environment line says it


def test_an_unknown_heap_setting_is_refused_before_anything_runs():
    model = nn.Linear(4, 4)
    model.input_size = (4,)
    with pytest.raises(InputError, match="heap"):
        profile(model, heap="jemalloc", **FAST)


def test_faults_per_call_are_flagged_with_what_to_do(monkeypatch):
    from archcost.profiling import environment

    monkeypatch.setattr(environment, "heap_state", lambda: "as-is")
    flags, warnings = flags_and_warnings({"minor_faults_per_call": 3470.9})
    assert flags == ["page_faults"]
    assert "3,471 minor page faults per call" in warnings[0] and "14 MiB" in warnings[0]
    assert "--heap steady" in warnings[0]
    monkeypatch.setattr(environment, "heap_state", lambda: "steady")
    flags, warnings = flags_and_warnings({"minor_faults_per_call": 177_705.0})  # vgg16 at batch 8: 98 MiB maps
    assert flags == ["page_faults"] and "32 MiB or more" in warnings[0] and "THP_MEM_ALLOC_ENABLE=1" in warnings[0]
    assert flags_and_warnings({"minor_faults_per_call": float(FAULT_LIMIT)}) == ([], [])


def test_the_cli_takes_the_heap_setting(capsys):
    from archcost.cli import main

    code = main(["profile", "resnet18", "--heap", "as-is", "--batch-sizes", "1", "--device", "cpu", "--warmup", "0",
                 "--min-time", "0.01", "--repeats", "2", "--no-roofline", "--format", "csv", "--quiet"])  # fmt: skip
    assert code == 0
    first = next(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    # as-is is recorded as the state the process is in: steady if an earlier measurement here made it so
    assert first["env_heap"] in ("as-is", "steady")
    assert float(first["minor_faults_per_call"]) >= 0
