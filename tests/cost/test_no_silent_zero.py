"""No silent zero: every op is costed by a formula, costed from its parts, on the explicit free list, or listed
as not costed. The users' cases (attention in a CNN, SDPA, an LSTM head, einsum, argmax and comparisons)
with the values worked out by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.overrides import handle_torch_function, has_torch_function_unary

from archcost.cli import main
from archcost.cost import analyze
from archcost.cost._registry import free_ops, register_cost
from archcost.errors import InternalError


# -- the users' cases ------------------------------------------------------------------------------------------------
class HybridMHA(nn.Module):
    """Conv stem, then nn.MultiheadAttention over the 16x16 = 256 tokens of the feature map (BoTNet style)."""

    def __init__(self, heads: int = 4) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, stride=2, padding=1)
        self.attn = nn.MultiheadAttention(32, heads, batch_first=True)

    def forward(self, x):
        f = self.stem(x)
        t = f.flatten(2).transpose(1, 2)
        y, _ = self.attn(t, t, t)
        return y.transpose(1, 2).reshape(f.shape)


@pytest.mark.parametrize("heads, frozen", [(4, False), (8, False), (4, True)])
def test_attention_in_a_cnn(heads, frozen):
    model = HybridMHA(heads)
    for p in model.parameters():
        p.requires_grad_(not frozen)
    totals = analyze(model, (3, 32, 32)).totals
    tokens, e = 16 * 16, 32
    stem = 3 * 9 * 32 * tokens  # 221,184
    mha = tokens * e * 3 * e + 2 * tokens * tokens * e + tokens * e * e  # in_proj, QK^T and AV, out_proj
    assert totals["macs"] == stem + mha == 5_464_064  # the head count does not change the MACs
    assert totals["params"] == (864 + 32) + (3 * 32 * 32 + 96) + (32 * 32 + 32) == 5_120


class ConvSDPA(nn.Module):
    def __init__(self, c: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Conv2d(c, 3 * c, 1)
        self.proj = nn.Conv2d(c, c, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv(x).reshape(b, 3, self.heads, c // self.heads, h * w).transpose(-1, -2).unbind(1)
        y = F.scaled_dot_product_attention(q, k, v)
        return x + self.proj(y.transpose(-1, -2).reshape(b, c, h, w))


def test_sdpa_in_a_conv_block():
    totals = analyze(ConvSDPA(), (16, 8, 8)).totals
    tokens, heads, d = 64, 2, 8
    assert totals["macs"] == 16 * 48 * tokens + 2 * heads * tokens * tokens * d + 16 * 16 * tokens == 196_608
    assert totals["params"] == (16 * 48 + 48) + (16 * 16 + 16) == 1_088


class CRNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.lstm = nn.LSTM(128, 64, batch_first=True)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        seq = self.conv(x).relu().flatten(1, 2).transpose(1, 2)  # 32 steps of 8 * 16 = 128 features
        out, _ = self.lstm(seq)
        return self.fc(out[:, -1])


def test_lstm_head():
    totals = analyze(CRNN(), (1, 16, 32)).totals
    assert totals["macs"] == 1 * 9 * 8 * 512 + 4 * 64 * (128 + 64) * 32 + 64 * 10 == 1_610_368
    assert totals["params"] == (72 + 8) + (4 * 64 * (128 + 64) + 2 * 4 * 64) + 650 == 50_394


class EinsumBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(32, 16))
        self.b = nn.Parameter(torch.zeros(32))

    def forward(self, x):
        p = torch.einsum("bchw,oc->bohw", x, self.w) + self.b[None, :, None, None]
        p = p.flatten(2)
        return torch.einsum("bcn,bcm->bnm", p, p)


def test_einsum_block():
    totals = analyze(EinsumBlock(), (16, 8, 8)).totals
    assert totals["macs"] == 16 * 32 * 64 + 64 * 64 * 32 == 163_840
    assert totals["params"] == 32 * 16 + 32 == 544


class SegHead(nn.Module):
    def __init__(self, use_max: bool = False) -> None:
        super().__init__()
        self.use_max = use_max
        self.conv = nn.Conv2d(3, 21, 1)

    def forward(self, x):
        logits = self.conv(x)
        labels = logits.max(1)[1] if self.use_max else logits.argmax(1)
        return labels, logits.sigmoid() > 0.5


@pytest.mark.parametrize("use_max", [False, True], ids=["argmax", "max"])
def test_integer_and_boolean_outputs_are_costed(use_max):
    report = analyze(SegHead(use_max), (3, 16, 16))
    pixels, classes = 16 * 16, 21
    conv = 2 * 3 * classes * pixels + classes * pixels  # 2 per MAC, the bias
    argmax = (classes - 1) * pixels  # 20 comparisons per pixel, as max
    sigmoid, gt = 3 * classes * pixels, classes * pixels
    assert report.totals["flops"] == conv + argmax + sigmoid + gt == 64_256
    assert report.totals["macs"] == 3 * classes * pixels == 16_128
    assert not report.unsupported


# -- composite functions -------------------------------------------------------------------------------------------
def scaled_tanh(x):
    """A user's functional helper that supports __torch_function__ (like torch's own Python functions)."""
    if has_torch_function_unary(x):
        return handle_torch_function(scaled_tanh, (x,), x)
    return torch.tanh(x) * 2


class Helper(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        return scaled_tanh(self.conv(x)).T.mT


def test_user_helper_is_costed_from_its_parts_in_one_row():
    report = analyze(Helper(), (3, 4, 4))
    rows = {r.name: r for r in report.layers}
    helper = rows["scaled_tanh"]
    n = 4 * 4 * 4
    assert helper.flops == n * 1 + n * 1  # tanh, multiply
    assert helper.ops == ("tanh", "mul")
    assert "tanh" not in rows and "mul" not in rows  # the parts are not rows of their own
    assert rows["T"].flops == 0 and rows["mT"].flops == 0  # property reads named by the property, free
    assert not report.unsupported
    assert helper.sources == (0,)  # its input is the conv's output: the graph goes through it


def test_a_leaf_without_formula_or_parts_is_listed():
    report = analyze(nn.Sequential(nn.Conv2d(3, 4, 1), nn.Flatten()), (3, 4, 4))
    assert not report.unsupported
    model = nn.Sequential(nn.Conv2d(3, 4, 1))
    model.forward = lambda x: torch.special.i0(model[0](x))
    report = analyze(model, (3, 4, 4))
    assert [(u.layer, u.op) for u in report.unsupported] == [("special_i0", "special_i0")]


def test_bookkeeping_on_buffers_is_neither_costed_nor_listed():
    bn = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    report = analyze(bn, (3, 4, 4), training=True)
    assert not report.unsupported
    bn_row = next(r for r in report.layers if r.type == "BatchNorm2d")
    assert "add" not in bn_row.ops  # num_batches_tracked += 1 touches a buffer only
    assert bn_row.flops == 4 * 16 * (5 + 2)  # batch statistics and affine, nothing for the counter


def test_a_failing_formula_is_archcosts_bug():
    @register_cost("special_i1")
    def _broken(args, kwargs, out):
        raise ZeroDivisionError("boom")

    model = nn.Sequential(nn.Conv2d(3, 4, 1))
    model.forward = lambda x: torch.special.i1(model[0](x))
    try:
        with pytest.raises(InternalError, match="special_i1"):
            analyze(model, (3, 4, 4))
    finally:
        from archcost.cost import _registry

        del _registry._OPS["special_i1"]


# -- the property: nothing outside the free list is a silent zero ------------------------------------------------------
#: Ops applied to an activation of shape (1, C, H, W); none is on the free list.
_OPS = {
    "sin": torch.sin, "cos": torch.cos, "erf": torch.erf, "exp": torch.exp, "sigmoid": torch.sigmoid,
    "gt": lambda x: x > 0, "eq": lambda x: x == x, "isnan": torch.isnan, "argmax": lambda x: x.argmax(1),
    "argmin": lambda x: x.argmin(-1), "sort": lambda x: x.sort(-1)[0], "topk": lambda x: x.topk(1, -1)[0],
    "cumsum": lambda x: x.cumsum(1), "var": lambda x: x.var(1), "std": lambda x: x.std(-1),
    "norm": lambda x: x.norm(dim=1), "normalize": lambda x: F.normalize(x, dim=1), "mul": lambda x: x * x,
    "logical_not": lambda x: ~(x > 0), "rfft": lambda x: torch.fft.rfft(x).abs(), "softmax": lambda x: x.softmax(1),
    "i0": torch.special.i0, "bessel_j0": torch.special.bessel_j0, "lgamma": torch.lgamma,
    "digamma": torch.digamma, "round": torch.round, "addcmul": lambda x: torch.addcmul(x, x, x),
    "lerp": lambda x: torch.lerp(x, x, 0.3), "max": lambda x: x.amax(1), "logsumexp": lambda x: x.logsumexp(1),
}  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(
    op=st.sampled_from(sorted(_OPS)),
    c=st.integers(2, 5),
    h=st.integers(2, 6),
    w=st.integers(2, 6),
)
def test_no_op_outside_the_free_list_is_a_silent_zero(op, c, h, w):
    model = nn.Sequential(nn.Identity())
    model.forward = lambda x: _OPS[op](model[0](x))
    report = analyze(model, (c, h, w))
    for row in report.layers:
        if row.type == "Identity":
            continue
        silent = row.flops == 0 and row.supported
        assert not silent or all(o in free_ops() for o in row.ops), (op, row)
        if not row.supported:
            assert {u.layer for u in report.unsupported} >= {row.name}


def test_the_free_list_holds_data_movement_only():
    free = free_ops()
    assert {"reshape_as", "tile", "repeat_interleave", "expand_as", "getitem", "to", "T", "mT"} <= free
    assert not free & {"add", "mul", "einsum", "argmax", "gt", "sin", "sort", "cumsum", "matmul"}


# -- the table command --------------------------------------------------------------------------------------------
def _table(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["table", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_table_ends_with_the_ops_not_costed_and_strict_fails(capsys):
    args = ("tests.fixtures.usermodels:Unsupported", "--input-size", "3x8x8")
    code, out, _ = _table(capsys, *args)
    assert code == 0
    last = out.strip().splitlines()[-1]
    assert last.startswith("Not costed") and "special_i0" in last and "lower bounds" in last
    code, _, err = _table(capsys, *args, "--strict")
    assert code == 1 and "special_i0" in err and "Traceback" not in err


def test_strict_passes_when_everything_is_costed(capsys):
    code, out, _ = _table(capsys, "lenet5", "--strict")
    assert code == 0 and "Not costed" not in out
