"""What a new user's run of the shared cases found (issues 24, 25), each as a test in the project's own words:
reused modules and random layer-drop reconciled by `check`, lazy and DataParallel models checked and exported,
attention exported, structured outputs' shapes, a data-dependent forward's inference estimate."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from archcost.cli import main


class Reused(nn.Module):
    """One 1x1 conv called three times through two parents (a Sequential of it twice, and a wrapper)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.shared = nn.Conv2d(8, 8, 1)
        self.seq = nn.Sequential(self.shared, self.shared)
        self.wrap = nn.Sequential(self.shared)

    def forward(self, x):
        return self.wrap(self.seq(self.stem(x))).mean((2, 3))


class LayerDrop(nn.Module):
    """A residual branch skipped at random in training (torch.rand on the CPU inside forward)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(4, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        x = x + self.a(x)
        if self.training and torch.rand(()) < 0.5:
            return x
        return x + self.b(x)


class Lazy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.LazyConv2d(4, 3)
        self.fc = nn.LazyLinear(2)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))


class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x):
        t = self.conv(x).flatten(2).transpose(1, 2)
        return self.attn(t, t, t, need_weights=False)[0].mean(1)


@dataclass
class Output:
    logits: torch.Tensor
    features: torch.Tensor


class Structured(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 5)

    def forward(self, x):
        f = self.conv(x)
        return Output(self.fc(f.mean((2, 3))), f)


class SharedAcrossBlocks(nn.Module):
    """CoaT's pattern: one position-encoding conv shared by two blocks, each with a conv of its own."""

    class Block(nn.Module):
        def __init__(self, pos) -> None:
            super().__init__()
            self.pos, self.conv = pos, nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            return self.conv(x + self.pos(x))

    def __init__(self) -> None:
        super().__init__()
        pos = nn.Conv2d(4, 4, 3, padding=1, groups=4)
        self.blocks = nn.Sequential(self.Block(pos), self.Block(pos))

    def forward(self, x):
        return self.blocks(x)


def wrapped():
    return nn.DataParallel(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()))


M = f"{__file__}"


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "internal error" not in err and "Traceback" not in err, err
    return code, out, err


@pytest.mark.parametrize("mode", ["infer", "train"])
def test_check_reconciles_a_reused_module(capsys, mode):
    # FlopCounterMode names the shared conv by its last path (wrap.0) and, in backward, charges its three
    # calls' ops to whichever window is open; the conventions say so and the totals agree
    code, out, _ = _run(capsys, "check", f"{M}:Reused", "--input-size", "3x8x8", "--mode", mode, "--format", "json")
    doc = json.loads(out)
    assert code == 0, doc["mismatches"]
    assert doc["totals"]["macs"] == 3 * 9 * 8 * 64 + 3 * 8 * 8 * 64  # stem + three calls of the 1x1 conv


def test_check_reconciles_a_module_shared_across_blocks(capsys):
    code, out, _ = _run(capsys, "check", f"{M}:SharedAcrossBlocks", "--input-size", "4x6x6", "--format", "json")
    doc = json.loads(out)
    assert code == 0, doc["mismatches"]
    assert doc["totals"]["torch"] == doc["totals"]["torch_predicted"] == 2 * doc["totals"]["macs"]


def test_check_train_takes_one_draw_for_both_tools(capsys):
    code, out, _ = _run(
        capsys, "check", f"{M}:LayerDrop", "--input-size", "4x6x6", "--mode", "train", "--format", "json"
    )
    doc = json.loads(out)
    assert code == 0, doc["mismatches"]
    assert doc["totals"]["torch_backward"] == 2 * doc["totals"]["backward_macs"]  # the same branch taken


def test_lazy_model_is_checked_and_exported(capsys, tmp_path):
    code, out, _ = _run(capsys, "check", f"{M}:Lazy", "--input-size", "3x8x8", "--format", "json")
    assert code == 0 and json.loads(out)["totals"]["params"] == 3 * 9 * 4 + 4 + 4 * 2 + 2
    pytest.importorskip("onnx")
    code, _, _ = _run(capsys, "export", f"{M}:Lazy", "--input-size", "3x8x8", "--onnx", str(tmp_path / "l.onnx"))
    assert code == 0


def test_dataparallel_is_unwrapped_for_check_and_export(capsys, tmp_path):
    code, out, _ = _run(capsys, "check", f"{M}:wrapped", "--input-size", "3x8x8", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["torch_error"] is None and doc["fvcore_error"] is None
    pytest.importorskip("onnx")
    assert _run(capsys, "export", f"{M}:wrapped", "--input-size", "3x8x8", "--onnx", str(tmp_path / "w.onnx"))[0] == 0


def test_attention_exports(capsys, tmp_path):
    # under no_grad MultiheadAttention takes its fused path, which has no ONNX form
    pytest.importorskip("onnx")
    assert _run(capsys, "export", f"{M}:Attention", "--input-size", "3x6x6", "--onnx", str(tmp_path / "a.onnx"))[0] == 0


def test_a_dataclass_output_has_its_tensors_shapes(capsys):
    code, out, _ = _run(capsys, "table", f"{M}:Structured", "--input-size", "3x8x8", "--format", "json")
    assert code == 0 and json.loads(out)["output_shape"] == [[1, 5], [1, 4, 8, 8]]


def test_maxbatch_infer_of_a_forward_that_needs_values(capsys, tmp_path):
    path = tmp_path / "gated.py"
    path.write_text(
        "import torch\nfrom torch import nn\n"
        "class Gated(nn.Module):\n"
        "    def __init__(self):\n        super().__init__(); self.c = nn.Conv2d(3, 4, 3)\n"
        "    def forward(self, x):\n        y = self.c(x)\n        return y * 2 if y.mean().item() > 0 else y\n"
    )
    code, out, _ = _run(capsys, "maxbatch", f"{path}:Gated", "--input-size", "3x8x8", "--memory", "20MB",
                        "--mode", "infer", "--format", "json")  # fmt: skip
    assert code == 0 and json.loads(out)["batch_size"] > 1
