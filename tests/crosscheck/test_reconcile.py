"""Aligning the three tools module by module: every figure predicted, failures reported, mismatches caught."""

from collections import Counter

import pytest
import torch

from archcost.cost import Cost, analyze
from archcost.cost._registry import op_entry
from archcost.crosscheck import check_model, reconcile, run_flop_counter, run_fvcore
from archcost.crosscheck.reconcile import nearest, own_counts, place
from tests.crosscheck.models import DictOutput, DirectConvolution, Mixed, Tied, WithEinsum
from tests.fixtures.usermodels import TinyResNet


def test_own_counts_subtract_the_children():
    inclusive = {"": Counter(conv=10, bn=3), "a": Counter(conv=7, bn=3), "a.b": Counter(conv=4)}
    own = own_counts(inclusive, ["a", "a.b"])
    assert own == {"": Counter(conv=3), "a": Counter(conv=3, bn=3), "a.b": Counter(conv=4)}


def test_place_puts_a_module_on_its_nearest_key():
    assert nearest("layer1.0.downsample.0", {"layer1.0", ""}) == "layer1.0"
    assert nearest("x", {"y"}) is None
    placed, lost = place({"a.b": Counter(n=2), "a": Counter(n=1), "c": Counter(n=5)}, {"a"})
    assert placed == {"a": Counter(n=3)} and lost == Counter(n=5)


def test_tiny_resnet_every_module_is_explained():
    rec = check_model(TinyResNet(), (3, 16, 16))
    assert rec.ok, rec.mismatches
    t = rec.totals
    # conv MACs: stem 16*16*16 * 3*9, conv_a 16*16*16 * 16*9, branch 8*16*16 * 16; fc 10 * 24
    macs = 16 * 16 * 16 * 27 + 16 * 16 * 16 * 144 + 8 * 16 * 16 * 16 + 10 * 24
    assert t["macs"] == macs
    # fvcore adds batch norm (2 per element, 16x16x16) and the adaptive average pool (1 per input, 24x16x16)
    assert t["fvcore"] == macs + 2 * 16 * 16 * 16 + 24 * 16 * 16
    assert t["torch"] == 2 * macs
    assert t["fvcore_params"] == t["params"] == sum(p.numel() for p in TinyResNet().parameters())
    # the residual add, the concat and the functional pool/relu run in the model's own forward
    model_row = next(m for m in rec.modules if m.module == "")
    assert model_row.fvcore.measured == 24 * 16 * 16  # fvcore counts the functional adaptive pool there
    assert rec.fvcore_unsupported == {"aten::add": 1}


def test_every_special_convention_is_exercised_and_holds():
    m = Mixed()
    rec = check_model(m, m.input_size)
    assert rec.ok, rec.mismatches
    by = {x.module: x for x in rec.modules}
    assert by["bn"].fvcore.measured == 2 * 4 * 8 * 8
    assert by["bn_plain"].fvcore.measured == 4 * 8 * 8
    assert by["gn"].fvcore.measured == 5 * 4 * 8 * 8
    assert by["up"].fvcore.measured == 4 * 16 * 16  # nearest: 1 per output element
    assert by["up_bilinear"].fvcore.measured == 4 * 4 * 32 * 32  # bilinear: 4 per output element
    assert by["bilinear"].fvcore.measured == by["bilinear"].torch.measured == 0  # neither counts it
    assert by["bilinear"].macs == 3 * (5 * 5 + 5)
    # the 3-d linear: 4 rows of 8 -> 5; FlopCounterMode reaches it as aten.mm
    assert by["proj"].torch.measured == 2 * by["proj"].macs == 2 * 4 * 8 * 5
    # matmul 4x5 @ 5x4 and baddbmm (same shapes): fvcore counts the matmul only, torch both at 2 per MAC
    assert by[""].fvcore.measured == 4 * 4 * 5
    assert by[""].torch.measured == 2 * (2 * 4 * 4 * 5)
    used = {(r.tool, r.ops[0]) for r in rec.rules}
    assert {("fvcore", "batch_norm"), ("fvcore", "interpolate"), ("torch", "*")} <= used  # bilinear: torch's 0


def test_an_fvcore_failure_is_a_finding_not_a_crash():
    m = DictOutput()
    rec = check_model(m, m.input_size)
    assert rec.fvcore_error and rec.fvcore_error.startswith("RuntimeError")
    assert any("fvcore could not analyse" in f for f in rec.findings)
    assert rec.totals["fvcore"] is None and rec.totals["torch"] == 2 * rec.totals["macs"]
    assert rec.ok  # archcost and FlopCounterMode still agree; fvcore's failure is reported, not a mismatch


def test_an_op_archcost_cannot_cost_is_a_mismatch():
    m = DirectConvolution()
    rec = check_model(m, m.input_size)
    assert not rec.ok
    assert any("torch: measured 384" in x for x in rec.mismatches)  # 4x4 outputs x 4 channels x 3 MACs, x 2
    assert [u.split(": ")[-1] for u in rec.archcost_unsupported] == ["convolution"]


def test_einsum_attention_lstm_and_weight_norm_are_explained():
    """Ops whose conventions only the catalogue knows: einsum (fvcore: numpy's path), attention (torch: 2 per
    MAC), nn.MultiheadAttention (fvcore: its fused CPU kernel, 0), LSTM (torch on meta: 2 per MAC), the
    weight-normed conv (both: the conv only)."""
    m = WithEinsum()
    rec = check_model(m, m.input_size)
    assert rec.ok, rec.mismatches
    # einsum "bcn,bdn->bcd" of 1x4x16 by itself: 4 * 4 * 16 MACs, one bmm for torch
    assert rec.totals["torch"] == 2 * (4 * 16 * 3) + 2 * (4 * 4 * 16)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.utils.parametrizations.weight_norm(torch.nn.Conv2d(3, 8, 1))
            self.attn = torch.nn.MultiheadAttention(8, 2, batch_first=True)
            self.lstm = torch.nn.LSTM(8, 6, batch_first=True)

        def forward(self, x):
            t = self.conv(x).flatten(2).transpose(1, 2)  # 1 x 16 tokens x 8
            a = torch.nn.functional.scaled_dot_product_attention(t, t, t)
            b, _ = self.attn(a, a, a, need_weights=False)
            return self.lstm(b)[0]

    rec = check_model(Net().eval(), (3, 4, 4))
    assert rec.ok, rec.mismatches
    by = {x.module: x for x in rec.modules}
    assert by["lstm"].torch.measured == 2 * 16 * (24 * 8 + 24 * 6)
    assert by["attn"].fvcore.measured == 0 and by["attn"].torch.measured == 2 * by["attn"].macs


def test_a_count_no_convention_predicts_is_a_mismatch():
    model = TinyResNet()
    report = analyze(model, (3, 16, 16))
    fv, tc = run_fvcore(model, (1, 3, 16, 16)), run_flop_counter(model, (1, 3, 16, 16))
    assert reconcile(report, model, fv, tc).ok
    fv.flops["bn_a"] = fv.flops["bn_a"] + Counter(batch_norm=1)  # one flop that no rule explains
    fv.flops[""] = fv.flops[""] + Counter(batch_norm=1)
    rec = reconcile(report, model, fv, tc)
    assert [x.split(":")[0] for x in rec.mismatches] == ["bn_a"]

    # and an op archcost got wrong: a conv2d formula (for this call only) with twice the MACs
    def doubled(args, kwargs, out):
        right = op_entry("conv2d").formula(args, kwargs, out)  # the registered one
        return Cost(2 * right.macs, 2 * right.flops)

    wrong = analyze(model, (3, 16, 16), formulas={torch.nn.functional.conv2d: doubled})
    assert wrong.layers[0].macs == 2 * report.layers[0].macs
    rec = reconcile(wrong, model, run_fvcore(model, (1, 3, 16, 16)), tc)
    assert {x.split(":")[0] for x in rec.mismatches} == {"stem", "conv_a", "branch"}  # every conv2d row


def test_tied_weights_count_once_in_both():
    m = Tied()
    rec = check_model(m, m.input_size)
    assert rec.ok, rec.mismatches
    assert rec.totals["params"] == rec.totals["fvcore_params"] == 6 * 6 + 6 + 6


def test_the_caller_model_is_left_as_it_was():
    model = TinyResNet().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    check_model(model, (3, 16, 16))
    assert model.training and all(m.training for m in model.modules())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_fvcore_on_a_meta_model_is_refused_as_a_finding():
    fv = run_fvcore(TinyResNet().to("meta"), (1, 3, 16, 16))
    assert not fv.ok and "meta" in fv.error


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_render_formats(fmt):
    import json

    from archcost.crosscheck.render import render_model, render_zoo

    rec = check_model(TinyResNet(), (3, 16, 16))
    out = render_model(rec, fmt)
    if fmt == "json":
        doc = json.loads(out)
        assert doc["ok"] and doc["totals"]["fvcore"] == rec.totals["fvcore"]
        assert all(c["source"] for c in doc["conventions"])
        assert {m["module"] for m in doc["modules"]} >= {"stem", "bn_a", "fc", ""}
    else:
        assert "stem" in out and "Conventions" in out and "fvcore/nn/jit_handles.py" in out
    assert "TinyResNet" in render_zoo([rec], fmt)


def test_grid_sample_is_explained():
    """fvcore counts grid_sampler as 4 per output element ('assume bilinear'); FlopCounterMode has no formula."""

    class Warp(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.theta = torch.nn.Parameter(torch.tensor([[[0.9, 0.1, 0.0], [0.0, 1.1, 0.1]]]))

        def forward(self, x):
            grid = torch.nn.functional.affine_grid(self.theta, (1, 3, 5, 5), align_corners=False)
            return torch.nn.functional.grid_sample(x, grid, align_corners=False)

    rec = check_model(Warp(), (3, 8, 8))
    assert rec.ok, rec.mismatches
    assert rec.totals["fvcore"] == 4 * 3 * 5 * 5 and rec.totals["torch"] == 0


def test_string_padding_convolution_is_counted_0_by_fvcore_and_explained():
    """fvcore traces a convolution with padding='same' as aten::_convolution_mode, which it has no handle for:
    0 flops and 0 activations there (timm's convmixer was a false MISMATCH)."""
    from torch import nn

    from archcost.crosscheck import check_model

    model = nn.Sequential(nn.Conv2d(3, 8, 9, padding="same"), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))
    rec = check_model(model, (3, 16, 16))
    assert rec.ok, rec.mismatches
    assert rec.totals["fvcore"] == 8 * 3 * 3 * 256 * 8  # only the second convolution: 147,456
