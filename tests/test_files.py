"""Output files are written atomically (a reader sees the old file or the new one, never half of one) and with
the mode the user's umask gives, as ``open(path, "w")`` would."""

import os
import stat

import pytest

from archcost.errors import InputError
from archcost.files import atomic_path, write_atomic

posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes from the umask are POSIX")


@pytest.fixture
def umask():
    """Set the process umask for one test; the old one is restored whatever happens."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_new_content_replaces_old_whole(tmp_path):
    target = tmp_path / "r.json"
    write_atomic(target, "old")
    write_atomic(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp file left behind


def test_bytes_and_text_are_written_as_given(tmp_path):
    write_atomic(tmp_path / "a.bin", b"\x00\x01\n\r\n")
    write_atomic(tmp_path / "b.txt", "ünï\nline\n")
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01\n\r\n"
    assert (tmp_path / "b.txt").read_bytes() == "ünï\nline\n".encode()


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "r.json"
    write_atomic(target, "old")

    def interrupted(src, dst):
        raise KeyboardInterrupt  # Ctrl-C between writing and renaming

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        write_atomic(tmp_path / "nope" / "r.json", "x")


@posix_only
@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_the_file_mode_is_what_the_umask_gives(tmp_path, umask, mask, expected):
    umask(mask)
    write_atomic(tmp_path / "new.json", "{}")
    (tmp_path / "plain.json").write_text("{}")  # what open(path, "w") makes under the same umask
    assert mode(tmp_path / "new.json") == mode(tmp_path / "plain.json") == expected
    write_atomic(tmp_path / "new.json", "{}")  # replacing a file: the same mode again
    assert mode(tmp_path / "new.json") == expected


@posix_only
@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600)])
def test_a_named_temp_file_gets_the_umask_mode_and_lands_whole(tmp_path, umask, mask, expected):
    umask(mask)
    target = tmp_path / "model.onnx"
    with atomic_path(target, suffix=".onnx") as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".onnx") and not target.exists()
        tmp.write_bytes(b"graph")
    assert target.read_bytes() == b"graph" and mode(target) == expected
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_a_writer_that_fails_inside_atomic_path_leaves_the_old_file(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("the exporter failed")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


@posix_only
def test_onnx_export_writes_with_the_umask_mode(tmp_path, umask):
    pytest.importorskip("onnx")
    from torch import nn

    from archcost.onnx_graph.export import export_onnx

    umask(0o022)
    out = export_onnx(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), (1, 8, 8), tmp_path / "tiny.onnx")
    assert mode(out) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.onnx"]
