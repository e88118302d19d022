"""Every bad input, run as a user would (a subprocess): a clear message, the right exit code, never a
traceback."""

import subprocess
import sys

import pytest

USER = "tests.fixtures.usermodels"


def run(*argv, cwd=None):
    return subprocess.run([sys.executable, "-m", "archcost.cli", *argv], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "corrupt.jsonl").write_text('{"schema": "archcost.profile/1", "model": "x"\n')
    (d / "other.jsonl").write_text('{"schema": "someone-else/7"}\n')
    (d / "not.onnx").write_text("this is not a protobuf")
    (d / "unreadable.jsonl").mkdir()
    return d


CASES = [
    (["table", "resnet5O"], "unknown model 'resnet5O'"),  # a typo: suggests the right name
    (["table", "no_such_model_at_all"], "unknown model"),
    (["table", "resnet50", "--input-size", "3x2a4x224"], "malformed input size"),
    (["table", "resnet50", "--input-size", "3x0x224"], "zero or negative"),
    (["table", "resnet50", "--input-size", "3x-5x224"], "zero or negative"),
    (["table", "resnet50", "--batch-size", "0"], "must be >= 1"),
    (["table", "vgg16", "--input-size", "3x16x16"], "the forward pass failed in"),  # too small for the net
    (["table", "resnet50", "--input-size", "1x224x224"], "conv1 (Conv2d)"),  # wrong channel count
    (["table", f"{USER}:RaisesInForward", "--input-size", "16"], "refuses to run"),
    (["table", "no_such_pkg.nets:Net"], "cannot import"),
    (["table", f"{USER}:not_a_module"], "not a torch.nn.Module"),
    (["table", "resnet50", "--opt", "widen=2"], "has no option widen"),
    (["table", "mobilenet_v1", "--opt", "width_mult=7"], "width_mult"),
    (["table", "resnet50", "--output", "/no/such/folder/out.json"], "does not exist"),
    (["profile", "lenet5", "--device", "cuda"], "CUDA"),
    (["plot", "latency-vs-batch", "--results", "{d}/corrupt.jsonl", "--output", "{d}/x.png"], "{d}/corrupt.jsonl"),
    (["plot", "latency-vs-batch", "--results", "{d}/other.jsonl", "--output", "{d}/x.png"], "schema"),
    (["plot", "latency-vs-batch", "--results", "{d}/unreadable.jsonl", "--output", "{d}/x.png"], "unreadable"),
    (["plot", "latency-vs-batch", "--results", "{d}/missing.jsonl", "--output", "{d}/x.png"], "missing.jsonl"),
    (["table", "{d}/not.onnx"], "not.onnx"),
    (["rf", "{d}/not.onnx", "--verify"], "not.onnx"),
]


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(a)[:60] for a, _ in CASES])
def test_bad_input(argv, message, files):
    argv = [a.format(d=files) for a in argv]
    proc = run(*argv)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert message.format(d=files) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "hint:" in proc.stderr or "usage:" in proc.stderr


def test_unsupported_layers_are_reported_not_fatal():
    proc = run("table", f"{USER}:Unsupported", "--input-size", "16")
    assert proc.returncode == 0 and "Not costed" in proc.stdout and "special_i0" in proc.stdout
