"""Inputs as users have them: several inputs, dtypes, keyword inputs, example tensors; forwards that need
data; wrappers; lazy modules; parametrised weights (issue 13's cases, in the project's own words)."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archcost import analyze
from archcost.cli import main
from archcost.cost.inputs import InputSpec, parse_spec
from archcost.errors import AnalysisError, InputError


class GenDisc(nn.Module):
    """Super-resolution generator + discriminator: forward(lr, hr), two images of different sizes."""

    def __init__(self):
        super().__init__()
        self.gen = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.PixelShuffle(2))
        self.disc = nn.Conv2d(3, 8, 3, stride=2, padding=1)

    def forward(self, lr, hr):
        g = self.gen(lr)
        return g, self.disc(g), self.disc(hr)


GEN_DISC_MACS = (3 * 9 * 12) * 16 * 16 + 2 * (3 * 9 * 8) * 16 * 16  # gen conv on lr, shared disc on g and hr
GEN_DISC_PARAMS = (3 * 9 * 12 + 12) + (3 * 9 * 8 + 8)


def test_two_inputs_as_a_list_of_shapes():
    r = analyze(GenDisc(), [(3, 16, 16), (3, 32, 32)])
    assert r.totals["macs"] == GEN_DISC_MACS == 193_536
    assert r.totals["params"] == GEN_DISC_PARAMS == 560
    assert [i["shape"] for i in r.input_shapes] == [[1, 3, 16, 16], [1, 3, 32, 32]]
    doc = r.to_dict()
    assert "input_shape" not in doc and doc["input_shapes"][1]["dtype"] == "float32"


def test_two_inputs_as_example_tensors_use_their_batch():
    r = analyze(GenDisc(), inputs=(torch.randn(2, 3, 16, 16), torch.randn(2, 3, 32, 32)))
    assert r.totals["macs"] == 2 * GEN_DISC_MACS
    assert r.analysed_on == "meta"


def test_two_inputs_from_the_cli(capsys):
    code = main(["table", "tests.cost.test_inputs:GenDisc", "--input-size", "3x16x16", "--input-size", "3x32x32",
                 "--format", "json"])  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["totals"]["macs"] == GEN_DISC_MACS


def test_a_missing_input_names_the_forwards_parameters(capsys):
    with pytest.raises(InputError, match=r"forward\(lr, hr\)"):
        analyze(GenDisc(), (3, 16, 16))
    assert main(["table", "tests.cost.test_inputs:GenDisc", "--input-size", "3x16x16"]) == 2
    err = capsys.readouterr().err
    assert "lr, hr" in err and "give hr too: another --input-size" in err and "Traceback" not in err


class TokenClassifier(nn.Module):
    """Token ids -> embedding -> mean over the sequence -> linear; an optional boolean mask."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(100, 16)
        self.head = nn.Linear(16, 4)

    def forward(self, ids, mask=None):
        x = self.embed(ids)
        if mask is not None:
            x = x * mask.unsqueeze(-1)
        return self.head(x.mean(1))


@pytest.mark.parametrize("size", ["int64:77", ("int64", (77,)), (torch.int64, (77,)), [("int64", (77,))]])
def test_token_ids_every_way(size):
    r = analyze(TokenClassifier(), size)
    assert r.input_shapes == [{"name": None, "shape": [1, 77], "dtype": "int64"}]
    assert r.totals["params"] == 100 * 16 + 16 * 4 + 4
    assert r.totals["macs"] == 16 * 4  # the head; an embedding lookup is no multiply-accumulate


def test_keyword_boolean_mask_from_the_cli(capsys):
    code = main(["table", "tests.cost.test_inputs:TokenClassifier", "--input-size", "int64:77",
                 "--input-size", "mask=bool:77", "--format", "json"])  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["input_shapes"] == [
        {"name": None, "shape": [1, 77], "dtype": "int64"},
        {"name": "mask", "shape": [1, 77], "dtype": "bool"},
    ]
    assert any("mul" in row["ops"] for row in doc["layers"])  # the mask multiply ran


def test_spec_strings():
    assert parse_spec("224") == InputSpec((3, 224, 224))
    assert parse_spec("int64:77") == InputSpec((77,), torch.int64)
    assert parse_spec("mask=bool:1x77") == InputSpec((1, 77), torch.bool, "mask")
    with pytest.raises(InputError, match="int64"):
        parse_spec("int65:77")  # the valid ones are listed


def test_unknown_dtype_prefix_from_the_cli(capsys):
    assert main(["table", "resnet18", "--input-size", "int65:77"]) == 2
    err = capsys.readouterr().err
    assert "unknown dtype 'int65'" in err and "int64" in err and "Traceback" not in err


def test_two_d_input_says_what_was_understood(capsys):
    assert main(["table", "resnet18", "--input-size", "224x224"]) == 2
    err = capsys.readouterr().err
    assert "understood as shape (1, 224, 224)" in err and "expects 3 input channels" in err


class Gated(nn.Module):
    """A gate computed from the data picks one of two branches (early exit)."""

    def __init__(self, how="item"):
        super().__init__()
        self.how = how
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.light = nn.Conv2d(8, 8, 1)
        self.heavy = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        f = self.stem(x)
        score = f.mean()
        if self.how == "item":
            hard = score.item() > 0.0
        elif self.how == "bool":
            hard = bool(score > 0)
        else:
            hard = any(v > 0 for v in f.mean(dim=(1, 2, 3)).tolist())
        return self.heavy(f) if hard else self.light(f)


STEM = 3 * 9 * 8 * 16 * 16  # 55,296
LIGHT = 8 * 8 * 16 * 16  # 16,384
HEAVY = 8 * 9 * 8 * 16 * 16  # 147,456


@pytest.mark.parametrize("how", ["item", "bool", "tolist"])
def test_data_dependent_forward_runs_on_the_cpu_and_says_so(how):
    model = Gated(how)
    r = analyze(model, (3, 16, 16))
    assert r.analysed_on == "cpu"
    assert {"item": "Tensor.item()", "bool": "bool(tensor)", "tolist": "Tensor.tolist()"}[how] in r.analysed_on_because
    assert r.totals["params"] == 224 + 72 + 584  # the branch not taken: "unused parameters"
    # the branch the real data takes, with the model's own weights
    with torch.no_grad():
        f = model.stem(torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)))
    took_heavy = {"item": f.mean().item() > 0, "bool": bool(f.mean() > 0), "tolist": f.mean().item() > 0}[how]
    assert r.totals["macs"] == STEM + (HEAVY if took_heavy else LIGHT)
    assert r.to_dict()["analysed_on"] == "cpu"


def test_forcing_meta_on_a_data_dependent_forward_is_a_clear_error(capsys):
    with pytest.raises(AnalysisError, match="needs real data"):
        analyze(Gated(), (3, 16, 16), device="meta")
    assert main(["table", "tests.cost.test_inputs:Gated", "--input-size", "3x16x16", "--device", "meta"]) == 2
    assert "--device cpu" in capsys.readouterr().err


def test_cpu_fallback_over_the_memory_limit_is_refused(capsys):
    with pytest.raises(InputError, match="would need about"):
        analyze(Gated(), (3, 16, 16), max_memory=1000)
    assert main(["table", "tests.cost.test_inputs:Gated", "--input-size", "3x16x16", "--max-memory", "1KB"]) == 2
    assert "--max-memory" in capsys.readouterr().err


class DetectHead(nn.Module):
    """Detection-style head: scores, boxes kept by a score mask, the top-k of what is kept, and a grid made
    on the CPU inside forward (no device given)."""

    def __init__(self):
        super().__init__()
        self.cls = nn.Conv2d(8, 1, 1)
        self.box = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        scores = self.cls(x).sigmoid().flatten(1)  # (1, H*W)
        boxes = self.box(x).flatten(2).transpose(1, 2)  # (1, H*W, 4)
        keep = scores[0] > 0.5
        kept = boxes[0][keep]
        offsets = torch.arange(kept.shape[0]).float().unsqueeze(1)
        k = min(3, kept.shape[0])
        top = torch.topk(scores[0][keep], k).indices
        return kept[top] + offsets[top]


def test_detection_head_with_mask_indexing_and_topk_falls_back_to_the_cpu():
    r = analyze(DetectHead(), (8, 8, 8))
    assert r.analysed_on == "cpu"
    assert r.totals["macs"] == 8 * 1 * 64 + 8 * 4 * 64  # the two 1x1 convs
    assert r.totals["params"] == 9 + 36


class Detect(nn.Module):
    """YOLO-style head that caches its anchor grid on the module in forward."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 1)
        self.grid = torch.empty(0)

    def forward(self, x):
        y = self.conv(x)
        h, w = y.shape[-2:]
        if self.grid.shape[2:4] != (h, w):
            yv, xv = torch.meshgrid(torch.arange(h, device=y.device), torch.arange(w, device=y.device), indexing="ij")
            self.grid = torch.stack((xv, yv), 0).view(1, 2, h, w).float()
        return torch.cat([y[:, :2] + self.grid, y[:, 2:]], 1)


def test_a_tensor_cached_in_forward_is_left_as_it_was():
    m = Detect()
    m(torch.randn(1, 3, 8, 8))
    grid = m.grid
    r = analyze(m, (3, 16, 16))
    assert (r.totals["params"], r.totals["macs"]) == (3 * 6 + 6, 3 * 6 * 16 * 16)
    assert m.grid is grid and m.grid.device.type == "cpu"
    m(torch.randn(1, 3, 16, 16))  # still runs on real data


class Net(nn.Module):
    def __init__(self, wrap=True):
        super().__init__()
        sub = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 8, 1))
        self.sub = nn.DataParallel(sub) if wrap else sub
        self.other = nn.Conv2d(3, 8, 1)

    def forward(self, x):
        return torch.cat([self.sub(x), self.other(x)], dim=1)


NET_MACS = (3 * 9 * 16) * 256 + 16 * 8 * 256 + 3 * 8 * 256  # 149,504
NET_PARAMS = 448 + 136 + 32


@pytest.mark.parametrize("build", [lambda: Net(True), lambda: nn.DataParallel(Net(False))], ids=["sub", "whole"])
def test_dataparallel_is_unwrapped(build):
    r = analyze(build(), (3, 16, 16))
    assert (r.totals["params"], r.totals["macs"]) == (NET_PARAMS, NET_MACS)


def test_whole_model_dataparallel_rows_are_named_as_the_inner_module():
    names = [row.name for row in analyze(nn.DataParallel(Net(False)), (3, 16, 16)).layers]
    assert "sub.0" in names and not any(n.startswith("module.") for n in names)


def test_lazy_modules_are_materialised_on_a_private_copy():
    m = nn.Sequential(nn.LazyConv2d(8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10))
    r = analyze(m, (3, 8, 8))
    assert r.totals["params"] == (3 * 9 * 8 + 8) + (8 * 8 * 8 * 10 + 10)  # 5,354
    assert r.totals["macs"] == 3 * 9 * 8 * 64 + 512 * 10  # 18,944
    assert isinstance(m[0], nn.LazyConv2d) and m[0].has_uninitialized_params()  # the caller's stays lazy


def test_torchscript_gets_a_clear_message(capsys):
    scripted = torch.jit.script(nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU()))
    with pytest.raises(InputError, match="TorchScript"):
        analyze(scripted, (3, 8, 8))
    holder = nn.Sequential(nn.Conv2d(3, 3, 1), torch.jit.script(nn.Conv2d(3, 4, 1)))
    with pytest.raises(InputError, match="eager nn.Module"):
        analyze(holder, (3, 8, 8))


class WeightNormed(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.utils.parametrizations.weight_norm(nn.Conv2d(3, 8, 3, padding=1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.b = nn.utils.weight_norm(nn.Conv2d(8, 8, 3, padding=1))  # the old hook API
        self.c = nn.utils.parametrizations.spectral_norm(nn.Conv2d(8, 4, 1))

    def forward(self, x):
        return self.c(self.b(self.a(x)))


def test_parametrised_weights_are_counted_on_their_layer():
    r = analyze(WeightNormed().eval(), (3, 16, 16))
    by_name = {row.name: row for row in r.layers}
    assert by_name["a"].params == 8 + 216 + 8  # g, v, bias
    assert by_name["b"].params == 8 + 576 + 8
    assert by_name["c"].params == 32 + 4  # u and v are buffers
    assert by_name["a"].macs == 3 * 9 * 8 * 256 and by_name["b"].macs == 8 * 9 * 8 * 256
    # spectral norm divides the weight by sigma = u . (W v) at every forward: an mv of 4x8 and a dot of 4
    assert by_name["c"].macs == 8 * 4 * 256 + (4 * 8 + 4)
    assert r.totals["macs"] == 210_944 + 36 and r.totals["params"] == 860
    assert not [row for row in r.layers if row.type == "unused parameters"]


def test_functional_forward_on_the_cpu_when_asked():
    class Plain(nn.Module):
        def forward(self, x):
            return F.relu(x)

    r = analyze(Plain(), (3, 4, 4), device="cpu")
    assert r.analysed_on == "cpu" and r.totals["flops"] == 48


def test_cli_subprocess_data_dependent_footer_says_cpu():
    proc = subprocess.run(
        [sys.executable, "-m", "archcost.cli", "table", "tests.cost.test_inputs:Gated", "--input-size", "3x16x16"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Analysed on the cpu with real tensors: Tensor.item()" in proc.stdout


class BrokenFormulaLayer(nn.Module):
    """A layer whose registered formula raises: archcost's own bug, exit 1, never "check the input size"."""

    def forward(self, x):
        return x * 2


def test_a_failing_formula_is_archcosts_bug(capsys):
    from archcost import register_cost
    from archcost.errors import InternalError

    @register_cost(BrokenFormulaLayer)
    def _broken(module, inputs, out):
        raise ZeroDivisionError("a formula bug")

    with pytest.raises(InternalError, match="BrokenFormulaLayer"):
        analyze(nn.Sequential(BrokenFormulaLayer()), (3, 4, 4))
    assert main(["table", "tests.cost.test_inputs:BrokenFormulaLayer", "--input-size", "3x4x4"]) == 1
    err = capsys.readouterr().err
    assert "bug in archcost" in err and "check the input" not in err


@pytest.mark.parametrize("size", [224, 3.5])
def test_an_input_size_that_is_no_description_is_an_input_error(size):
    # was a bare TypeError ("'int' object is not iterable"): read as a list of descriptions
    with pytest.raises(InputError, match=f"cannot read the input description {size}"):
        analyze(nn.Conv2d(3, 4, 3), size)
