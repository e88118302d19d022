"""The device-peaks cache: under platformdirs' user cache directory, and writers at the same time lose nothing
(a filelock around each read-modify-write)."""

import json
import multiprocessing
import sys
import threading
import time
from pathlib import Path

import platformdirs
import pytest

from archcost.profiling import roofline
from archcost.profiling.roofline import DevicePeaks


def test_the_cache_is_in_the_platform_user_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("ARCHCOST_CACHE_DIR", raising=False)
    assert roofline.cache_dir() == Path(platformdirs.user_cache_dir("archcost", appauthor=False))
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # platformdirs follows XDG on Linux
        assert roofline.cache_dir() == tmp_path / "archcost"
    monkeypatch.setenv("ARCHCOST_CACHE_DIR", str(tmp_path / "mine"))
    assert roofline.cache_dir() == tmp_path / "mine"


def slow_reads(monkeypatch):
    """Widen the window between reading the cache and writing it back: without the lock, writers overlap."""
    real = roofline._read_cache

    def slow(path):
        data = real(path)
        time.sleep(0.05)
        return data

    monkeypatch.setattr(roofline, "_read_cache", slow)


def peaks(key: str) -> DevicePeaks:
    return DevicePeaks(key, 1e11, 2e10, 64, 1 << 16)


def stored_keys(folder: Path) -> set[str]:
    return set(json.loads((folder / "peaks.json").read_text())["peaks"])


def test_threads_storing_at_once_keep_every_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHCOST_CACHE_DIR", str(tmp_path))
    slow_reads(monkeypatch)
    keys = [f"device {i}" for i in range(8)]
    threads = [threading.Thread(target=roofline.store, args=(peaks(k),)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stored_keys(tmp_path) == set(keys)
    assert roofline.load_cached("device 3") == peaks("device 3")


def _store_many(prefix: str, n: int) -> None:
    for i in range(n):
        roofline.store(peaks(f"{prefix} {i}"))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork (POSIX)")
def test_processes_storing_at_once_keep_every_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHCOST_CACHE_DIR", str(tmp_path))
    slow_reads(monkeypatch)  # inherited by the forked children
    ctx = multiprocessing.get_context("fork")  # the children run only json and filelock, no torch
    procs = [ctx.Process(target=_store_many, args=(f"proc {p}", 4)) for p in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert stored_keys(tmp_path) == {f"proc {p} {i}" for p in range(3) for i in range(4)}
    assert not [p.name for p in tmp_path.iterdir() if p.name not in ("peaks.json", "peaks.json.lock")]


def test_a_held_lock_does_not_stop_a_measurement(tmp_path, monkeypatch):
    from filelock import FileLock

    monkeypatch.setenv("ARCHCOST_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(roofline, "LOCK_TIMEOUT_S", 0.1)
    with FileLock(tmp_path / "peaks.json.lock"):
        roofline.store(peaks("while locked"))  # gives up caching after the timeout, raises nothing
    assert not (tmp_path / "peaks.json").exists()
    roofline.store(peaks("after"))
    assert stored_keys(tmp_path) == {"after"}
