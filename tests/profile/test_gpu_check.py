"""benchmarks/gpu_check.py: end to end on the CPU (``--smoke``) without fvcore or onnx, as on the GPU machine,
and its deadline, failure and file-limit handling."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import types
from pathlib import Path

import pytest
import torch

from archcost.profiling.results import new_record, read_results
from tests.fixtures.hiding import HIDE_FVCORE_AND_ONNX

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def hidden_env(tmp_path: Path) -> dict:
    folder = tmp_path / "hide"
    folder.mkdir(exist_ok=True)
    # a sitecustomize hides fvcore and onnx in the process and every child it starts: the GPU machine has no fvcore
    (folder / "sitecustomize.py").write_text(HIDE_FVCORE_AND_ONNX)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(ROOT)]), "MPLBACKEND": "Agg"}


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One ``--smoke --device cpu`` run with fvcore and onnx hidden: (exit code, output folder, stdout+stderr)."""
    tmp = tmp_path_factory.mktemp("gpu_check")
    env = hidden_env(tmp)
    probe = subprocess.run([sys.executable, "-c", "import fvcore"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "No module named 'fvcore'" in probe.stderr  # the hiding works
    out = tmp / "out"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--device", "cpu", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    return done.returncode, out, done.stdout + done.stderr


def test_smoke_run_finishes_with_every_phase_ok(smoke):
    code, out, log = smoke
    assert code == 0, log[-3000:]
    checks = json.loads((out / "checks.json").read_text())
    assert {k: v["status"] for k, v in checks["phases"].items()} == dict.fromkeys(
        [
            "environment",
            "roofline",
            "latency",
            "training_memory",
            "paths",
            "prediction",
            "sweep",
            "sweep_findings",
            "cli",
            "figures",
        ],  # fmt: skip
        "ok",
    )
    assert checks["environment"]["torch"] == torch.__version__
    assert checks["environment"]["nvml"] == {"nvml_note": "no NVML reading on the CPU"}
    assert [s["what"] for s in checks["skipped"]] == ["torch.compile"]  # the smoke run compiles nothing


def test_smoke_files_fit_what_the_device_tool_brings_back(smoke):
    _, out, _ = smoke
    files = sorted(p.name for p in out.iterdir())
    assert files == [
        "canziani-bfloat16.png", "canziani-float32.png", "checks.json", "extras.tar.gz", "report.md", "results.jsonl"
    ]  # fmt: skip
    for p in out.iterdir():
        assert p.is_file() and p.stat().st_size < 16 * 2**20 and re.fullmatch(r"[A-Za-z0-9._-]+", p.name)
    for name in ("canziani-bfloat16.png", "canziani-float32.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with tarfile.open(out / "extras.tar.gz") as tar:
        names = set(tar.getnames())
        log = tar.extractfile("gpu_check.log").read().decode()
    for kind in ("accuracy-vs-throughput", "latency-vs-batch", "throughput-vs-batch", "power-vs-batch",
                 "memory-vs-batch", "energy-per-image"):  # fmt: skip
        assert {f"{kind}-float32.png", f"{kind}-bfloat16.png"} <= names
    assert "phase sweep ok" in log


def test_smoke_sweep_records_are_profile_records_without_power_on_the_cpu(smoke):
    _, out, _ = smoke
    df = read_results(out / "results.jsonl")  # the archcost.profile/1 schema: archcost plot reads it
    got = sorted(zip(df["model"], df["dtype"], df["batch_size"], strict=True))
    assert got == sorted(
        (m, d, b) for m in ("lenet5", "resnet20_cifar") for d in ("float32", "bfloat16") for b in (1, 2)
    )
    assert set(df["status"]) == {"ok"}
    assert set(df["channels_last"]) == {True} and set(df["device"]) == {"cpu"}
    assert df["power_mean_w"].isna().all() and df["energy_per_image_j"].isna().all()
    assert set(df["power_note"]) == {"no power reading on the CPU: NVML measures NVIDIA GPUs only"}
    assert (df["memory_activation_peak_bytes"] > 0).all() and (df["memory_estimate_bytes"] > 0).all()
    # the sweep used the peaks the roofline phase stored under its cache key, not a full-size calibration
    checks = json.loads((out / "checks.json").read_text())
    for dtype in ("float32", "bfloat16"):
        stored = checks["roofline"]["per_dtype"][dtype]["default"]
        assert set(df[df["dtype"] == dtype]["peak_flops_per_s"]) == {stored["flops_per_s"]}


def test_smoke_checks_hold_the_comparisons(smoke):
    _, out, _ = smoke
    c = json.loads((out / "checks.json").read_text())
    roof = c["roofline"]["per_dtype"]
    assert set(roof) == {"float32", "bfloat16"} and all(r["default"]["flops_per_s"] > 0 for r in roof.values())
    (lat,) = c["latency"]["cases"]
    assert lat["ratio"] == pytest.approx(sum(lat["archcost_median_s"]) / 2 / lat["benchmark_median_s"])
    assert lat["within_tolerance"] == (abs(lat["ratio"] - 1) <= 0.05)
    (train,) = c["training_memory"]["cases"]
    assert train["measured"]["bytes"] > train["measured"]["held_bytes"] > 0
    for source, est in train["estimates"].items():  # a source this archcost lacks is a note, never a crash
        assert ("bytes" in est and est["estimate_over_measured"] == est["bytes"] / train["measured"]["bytes"]) or (
            "note" in est
        ), source
    (layers,) = c["paths"]["layers"]
    (isolated,) = c["paths"]["isolated"]
    assert layers["status"] == isolated["status"] == "ok" and layers["layer_rows"] > 0
    (cli,) = c["cli"].values()
    assert cli["status"] == "ok" and [r["batch_size"] for r in cli["records"]] == [1, 2]
    memory = {(m["model"], m["dtype"]) for m in c["sweep_findings"]["inference_memory"]}
    assert memory == {(m, d) for m in ("lenet5", "resnet20_cifar") for d in ("float32", "bfloat16")}


def test_smoke_report_has_every_section(smoke):
    _, out, _ = smoke
    report = (out / "report.md").read_text()
    headings = ["## Environment", "## Roofline peaks", "## Latency", "## Training memory", "## Per-layer timing",
                "## Sweep", "## Throughput and energy", "## CLI", "## Figures", "## Phases"]  # fmt: skip
    for heading in headings:
        assert heading in report


def test_cuda_without_cuda_is_a_clear_error_before_anything_runs(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cuda", "--out", str(tmp_path / "out")],
        env=hidden_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert "CUDA is not available" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()  # nothing written


# -- the pieces, without running the whole script ----------------------------------------------------------------


def test_a_phase_that_raises_is_recorded_and_the_run_goes_on(gpu_check, tmp_path):
    run = gpu_check.Run(tmp_path, budget_s=100, reserve_s=0, smoke=True)

    def broken():
        raise ValueError("boom")

    run.phase("broken", broken)
    run.phase("fine", lambda: {"x": 1})
    assert run.checks["phases"]["broken"]["status"] == "error"
    assert "ValueError: boom" in run.checks["phases"]["broken"]["error"]
    assert "Traceback" in run.checks["phases"]["broken"]["traceback"]
    assert run.checks["fine"] == {"x": 1}
    saved = json.loads((tmp_path / "checks.json").read_text())
    assert saved["phases"]["broken"]["status"] == "error"
    assert "- broken: error" in (tmp_path / "report.md").read_text()


def test_a_phase_past_the_deadline_is_skipped_and_listed(gpu_check, tmp_path):
    run = gpu_check.Run(tmp_path, budget_s=10, reserve_s=5, smoke=False)
    run.phase("late", lambda: {"ran": True}, needs_s=30)
    assert "late" not in run.checks and "late" not in run.checks["phases"]
    assert run.checks["skipped"][0]["what"] == "late"


TIMING = {"warmup_s": 0.0, "min_time_s": 0.0, "repeats": 1}


class _Clock:
    """A Run whose time runs out after ``n`` calls of ``remaining``."""

    def __init__(self, n):
        self.n = n

    def __call__(self):
        self.n -= 1
        return 100.0 if self.n >= 0 else -1.0


def _fake_profile(monkeypatch, plan):
    """archcost.profiling.iter_profile replaced by one that yields ``plan[dtype]`` (records or an exception)."""
    import archcost.profiling

    def fake(models, config, on_step=None):
        for item in plan[config.dtype]:
            if isinstance(item, Exception):
                raise item
            yield new_record(model=item[0], batch_size=item[1], dtype=config.dtype, device="cpu", status=item[2],
                             error=None if item[2] == "ok" else "CUDA out of memory")  # fmt: skip

    monkeypatch.setattr(archcost.profiling, "iter_profile", fake)


def test_sweep_records_an_oom_and_goes_on_and_a_crash_stops_only_its_dtype(gpu_check, tmp_path, monkeypatch):
    _fake_profile(
        monkeypatch,
        {
            "float16": [("m", 1, "ok"), ("m", 2, "oom"), ("m", 4, "oom")],  # the library carries oom over
            "float32": [("m", 1, "ok"), RuntimeError("a bug")],
        },
    )
    run = gpu_check.Run(tmp_path, budget_s=1000, reserve_s=0, smoke=True)
    results = tmp_path / "results.jsonl"
    summary = gpu_check.sweep("cpu", ["m"], [1, 2, 4], ["float16", "float32"], True, TIMING, results, run)
    df = read_results(results)
    assert list(zip(df["dtype"], df["batch_size"], df["status"], strict=True)) == [
        ("float16", 1, "ok"), ("float16", 2, "oom"), ("float16", 4, "oom"), ("float32", 1, "ok"),
    ]  # fmt: skip
    f16, f32 = summary["runs"]
    assert f16["stopped"] is None and f16["not_measured"] == {}
    assert f32["stopped"] == "RuntimeError: a bug" and f32["not_measured"] == {"m": [2, 4]}
    assert any("float16 m b2: oom" in line for line in run.log_lines)


def test_sweep_stops_between_measurements_at_the_deadline(gpu_check, tmp_path, monkeypatch):
    _fake_profile(monkeypatch, {"float16": [("m", 1, "ok"), ("m", 2, "ok")], "float32": [("m", 1, "ok")]})
    run = gpu_check.Run(tmp_path, budget_s=1000, reserve_s=0, smoke=True)
    run.remaining = _Clock(1)  # time for the first dtype's start only
    summary = gpu_check.sweep("cpu", ["m"], [1, 2], ["float16", "float32"], True, TIMING, tmp_path / "r.jsonl", run)
    assert len(read_results(tmp_path / "r.jsonl")) == 1
    assert summary["runs"][0]["stopped"] == "deadline" and summary["runs"][0]["not_measured"] == {"m": [2]}
    assert [s["what"] for s in run.checks["skipped"]] == ["sweep float16: 1 measurements", "sweep float32"]


def test_nvml_that_cannot_read_the_gpu_gives_notes_not_a_crash(gpu_check, monkeypatch):
    def raises(*args):
        raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")

    fake = types.SimpleNamespace(
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetHandleByIndex=lambda i: object(),
        NVML_CLOCK_SM=0, NVML_CLOCK_MEM=1, NVML_CLOCK_GRAPHICS=2, NVML_TEMPERATURE_GPU=0,
    )  # fmt: skip
    for name in ("nvmlDeviceGetName", "nvmlSystemGetDriverVersion", "nvmlSystemGetCudaDriverVersion_v2",
                 "nvmlDeviceGetVbiosVersion", "nvmlDeviceGetClockInfo", "nvmlDeviceGetMaxClockInfo",
                 "nvmlDeviceGetApplicationsClock", "nvmlDeviceGetEnforcedPowerLimit", "nvmlDeviceGetPowerUsage",
                 "nvmlDeviceGetTotalEnergyConsumption", "nvmlDeviceGetTemperature", "nvmlDeviceGetMemoryInfo",
                 "nvmlDeviceGetPerformanceState", "nvmlDeviceGetPersistenceMode", "nvmlDeviceGetComputeMode",
                 "nvmlDeviceGetMigMode"):  # fmt: skip
        setattr(fake, name, raises)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    gpu = types.SimpleNamespace(type="cuda", index=0)
    info = gpu_check.nvml_environment(gpu)
    assert info["power_limit_w"] is None and "power_limit_w" in info["nvml_unread"]
    fake.nvmlInit = lambda: raises()
    assert gpu_check.nvml_environment(gpu) == {"nvml_note": "NVML could not start: NVML_ERROR_NOT_SUPPORTED"}


def test_finish_files_keeps_at_most_eight_files_under_the_size_limit(gpu_check, tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check, "MAX_FILE_BYTES", 1000)
    for name in ("results.jsonl", "checks.json", "report.md"):
        (tmp_path / name).write_text("x")
    for i in range(6):
        (tmp_path / f"canziani-{i}.png").write_bytes(b"p")
    (tmp_path / "canziani-big.png").write_bytes(b"b" * 2000)
    files = gpu_check.finish_files(tmp_path, {"a.png": b"a"}, "the log")
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert len(kept) == 8 and kept == files["files"]
    assert {"results.jsonl", "checks.json", "report.md", "extras.tar.gz", "overflow.tar.gz"} <= set(kept)
    with tarfile.open(tmp_path / "overflow.tar.gz") as tar:
        assert set(tar.getnames()) == set(files["moved_to_overflow"]) and "canziani-big.png" in tar.getnames()
    # 11 files with extras.tar.gz: the one over the limit goes, and 3 more so that 7 stay beside the overflow archive
    assert len(files["moved_to_overflow"]) == 4
    with tarfile.open(tmp_path / "extras.tar.gz") as tar:
        assert tar.extractfile("gpu_check.log").read() == b"the log" and "a.png" in tar.getnames()


def test_the_report_renders_from_an_empty_run(gpu_check, tmp_path):
    run = gpu_check.Run(tmp_path, budget_s=10, reserve_s=0, smoke=False)
    text = gpu_check.render_report(run.checks)
    assert text.startswith("# archcost GPU check") and "## Phases" in text


def test_sheet_tiles_panels(gpu_check):
    import matplotlib.image as mpimg

    png = gpu_check._text_png("t", "hello")
    tiled = gpu_check.sheet([("a", png)] * 4, "title")
    img = mpimg.imread(io.BytesIO(tiled), format="png")
    one = mpimg.imread(io.BytesIO(png), format="png")
    assert img.shape[1] >= 3 * one.shape[1] * 0.95 and img.shape[0] >= 2 * one.shape[0] * 0.95
