"""The op formulas added for attention, einsum, recurrent layers and the rest, each written as the arithmetic
that derives it and, where torch's FlopCounterMode counts the op, checked against it on the same shapes
(FlopCounterMode counts 2 FLOPs per multiply-accumulate, so its MACs are its FLOPs / 2)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archcost.cost import analyze
from archcost.cost.formulas.einsum import einsum_cost
from archcost.cost.formulas.fft import fft_flops
from archcost.cost.formulas.reduction import sort_flops, topk_flops
from archcost.units import per_element


class Fn(nn.Module):
    """A model whose forward is one function of its input (a leaf: every op adds up into its one row)."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class Block(nn.Module):
    """A non-leaf model: the ops of ``fn`` run in its own forward get rows of their own."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.stem = nn.Identity()
        self.fn = fn

    def forward(self, x):
        return self.fn(self.stem(x))


def cost(fn, size) -> dict:
    report = analyze(Fn(fn), size)
    assert not report.unsupported, report.unsupported
    return report.totals


def fcm_macs(fn, size) -> int:
    """MACs FlopCounterMode counts for ``fn`` on a meta input of ``(1, *size)``."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn(torch.empty((1, *size), device="meta"))
    return counter.get_total_flops() // 2


# -- scaled dot-product attention ---------------------------------------------------------------------------
def _sdpa(heads_q, heads_kv, length, keys, e, ev, **kw):
    def fn(x):  # x: (1, heads_q, length, e); k and v derived from it so they are activations too
        q = x
        k = x[:, :heads_kv, :1, :].expand(1, heads_kv, keys, e)
        v = x[:, :heads_kv, :1, :1].expand(1, heads_kv, keys, ev)
        return F.scaled_dot_product_attention(q, k, v, **kw)

    return fn, (heads_q, length, e)


@pytest.mark.parametrize(
    "heads_q, heads_kv, length, keys, e, ev, kw, per_score",
    [
        (4, 4, 64, 64, 8, 8, {}, 1 + 5),  # scale + softmax per score
        (4, 4, 64, 32, 8, 16, {"attn_mask": None, "is_causal": True}, 1 + 5 + 1),  # causal: the mask per score
        (8, 2, 16, 16, 8, 8, {"enable_gqa": True}, 1 + 5),  # grouped-query: 4 query heads per K/V head
        (2, 2, 16, 16, 4, 4, {"dropout_p": 0.1}, 1 + 5 + 1),  # dropout multiplies every score
    ],
    ids=["plain", "causal-cross-length", "gqa", "dropout"],
)
def test_sdpa(heads_q, heads_kv, length, keys, e, ev, kw, per_score):
    fn, size = _sdpa(heads_q, heads_kv, length, keys, e, ev, **kw)
    scores = heads_q * length * keys  # batch 1
    macs = scores * e + scores * ev  # Q K^T, then scores @ V
    totals = cost(fn, size)
    assert totals["macs"] == macs
    assert totals["flops"] == 2 * macs + scores * per_score
    if not kw.get("dropout_p"):  # dropout draws random numbers, which the meta device cannot
        assert fcm_macs(fn, size) == macs


def test_sdpa_float_mask_is_one_add_per_score():
    def fn(x):
        return F.scaled_dot_product_attention(x, x, x, attn_mask=torch.zeros(16, 16, device=x.device))

    scores = 2 * 16 * 16
    assert cost(fn, (2, 16, 8))["flops"] == 2 * (scores * 8 * 2) + scores * (1 + 5 + 1)


def test_multi_head_attention_is_costed_from_its_parts():
    # nn.MultiheadAttention runs F.multi_head_attention_forward, a Python function with no formula of its own
    e, heads, tokens = 32, 4, 256
    model = nn.Module()
    model.mha = nn.MultiheadAttention(e, heads, batch_first=True)
    model.forward = lambda t: model.mha(t, t, t)[0]
    report = analyze(model, (tokens, e))
    expected = tokens * e * 3 * e + 2 * tokens * tokens * e + tokens * e * e  # in_proj, QK^T + AV, out_proj
    assert report.totals["macs"] == expected == 5_242_880
    row = next(r for r in report.layers if r.type == "multi_head_attention_forward")
    assert row.macs == expected and {"linear", "bmm", "softmax"} <= set(row.ops)
    assert row.params == 3 * e * e + 3 * e + e * e + e  # in_proj and out_proj, counted on the row
    assert sum(r.type == "multi_head_attention_forward" for r in report.layers) == 1  # one row, not one per part


# -- einsum ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "equation, shapes, macs",
    [
        ("bchw,oc->bohw", [(1, 16, 8, 8), (32, 16)], 16 * 32 * 8 * 8),  # a 1x1 conv
        ("bcn,bcm->bnm", [(1, 32, 64), (1, 32, 64)], 64 * 64 * 32),  # token affinity
        ("bhqd,bhkd->bhqk", [(2, 4, 10, 8), (2, 4, 12, 8)], 2 * 4 * 10 * 12 * 8),  # attention scores
        ("ij,jk,kl->il", [(3, 4), (4, 5), (5, 6)], 3 * 4 * 5 + 3 * 5 * 6),  # left to right: (AB) then C
        ("ijk,ik->j", [(3, 4, 5), (3, 5)], 3 * 4 * 5),
        ("...ij,...jk", [(2, 3, 4), (4, 5)], 2 * 3 * 4 * 5),  # ellipsis broadcasts
        ("i,j->ij", [(3,), (4,)], 0),  # outer product: a multiply, no accumulation
        ("ij->ji", [(3, 4)], 0),  # a transpose
    ],
)
def test_einsum(equation, shapes, macs):
    assert einsum_cost(equation, shapes).macs == macs
    ts = [torch.empty(s, device="meta") for s in shapes]
    with FlopCounterMode(display=False) as counter:
        torch.einsum(equation, *ts)
    assert counter.get_total_flops() // 2 == macs


def test_einsum_sums_out_a_label_before_the_product():
    # 'ij,jk->k': i appears in the first operand only and not in the output: summed first (3*4 - 4 adds),
    # then a (1 x 4) @ (4 x 5) product of 20 MACs
    c = einsum_cost("ij,jk->k", [(3, 4), (4, 5)])
    assert c.macs == 4 * 5 and c.flops == 2 * 20 + (3 * 4 - 4)


def test_einsum_in_a_model_and_sublist_form():
    w = torch.empty(32, 16, device="meta")

    def fn(x):
        return torch.einsum(x, [0, 1, 2, 3], w, [4, 1], [0, 4, 2, 3])

    assert cost(fn, (16, 8, 8))["macs"] == 16 * 32 * 64


# -- matrix products of any rank ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fn, size, macs, fcm_counts",
    [
        (lambda x: x[0] @ x[0], (7,), 7, False),  # dot: FlopCounterMode has no aten.dot formula
        (lambda x: x.view(6, 7) @ x.view(-1)[:7], (42,), 6 * 7, False),  # mv: nor aten.mv
        (lambda x: x @ x.transpose(-1, -2), (5, 6), 5 * 5 * 6, True),  # mm (batch 1 -> bmm)
        (lambda x: x.unsqueeze(1) @ x.unsqueeze(0).transpose(-1, -2), (5, 6), 5 * 5 * 6, True),  # broadcast
        (lambda x: torch.addmm(x[0, :1, :5], x[0], x[0].t()), (5, 6), 5 * 5 * 6, True),
        (lambda x: torch.baddbmm(x, x, x), (6, 6), 6 * 6 * 6, True),
        (lambda x: torch.addmv(x[0, 0], x[0], x[0, 0]), (5, 5), 5 * 5, False),
        (lambda x: torch.addbmm(x[0, 0], x[0], x[0]), (3, 4, 4), 3 * 4 * 4 * 4, False),  # sum over the batch of 3
    ],
    ids=["dot", "mv", "mm", "broadcast", "addmm", "baddbmm", "addmv", "addbmm"],
)
def test_matmul_family(fn, size, macs, fcm_counts):
    assert cost(fn, size)["macs"] == macs
    if fcm_counts:
        assert fcm_macs(fn, size) == macs


def test_outer_is_one_multiply_per_element():
    totals = cost(lambda x: torch.outer(x[0], x[0]), (6,))
    assert totals["macs"] == 0 and totals["flops"] == 6 * 6


# -- recurrent layers ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "layer, gate_flops",
    [
        (nn.LSTM(8, 16, num_layers=2, bidirectional=True, batch_first=True), 19),
        (nn.LSTM(8, 16, proj_size=5, batch_first=True), 19),
        (nn.GRU(8, 16, bias=False, batch_first=True), 15),
        (nn.RNN(8, 16, num_layers=3, batch_first=True), 2),
    ],
    ids=["lstm-2-layers-bidirectional", "lstm-proj", "gru-no-bias", "rnn-3-layers"],
)
def test_recurrent_layers(layer, gate_flops):
    steps, batch = 7, 1
    weights = sum(p.numel() for n, p in layer.named_parameters() if "weight" in n)  # W_ih, W_hh (, W_hr)
    biases = sum(p.numel() for n, p in layer.named_parameters() if "bias" in n)
    layers_dirs = layer.num_layers * (2 if layer.bidirectional else 1)
    model = Fn(lambda x: layer(x)[0])
    report = analyze(model, (steps, 8))
    assert not report.unsupported
    assert report.totals["macs"] == steps * batch * weights
    gates = steps * batch * layers_dirs * layer.hidden_size * gate_flops
    assert report.totals["flops"] == 2 * steps * weights + steps * biases + gates
    with torch.device("meta"), FlopCounterMode(display=False) as counter:
        meta_layer = type(layer)(**{k: getattr(layer, k) for k in ("input_size", "hidden_size", "num_layers")},
                                 bias=layer.bias, batch_first=True, bidirectional=layer.bidirectional,
                                 **({"proj_size": layer.proj_size} if isinstance(layer, nn.LSTM) else {}))  # fmt: skip
        meta_layer(torch.empty(batch, steps, 8))
    assert counter.get_total_flops() // 2 == steps * weights


def test_lstm_case_crnn_head():
    # shared case 06: T = 32 steps, I = 128, H = 64: 4 gates * H * (I + H) per step
    lstm = nn.LSTM(128, 64, batch_first=True)
    assert analyze(Fn(lambda x: lstm(x)[0]), (32, 128)).totals["macs"] == 4 * 64 * (128 + 64) * 32 == 1_572_864


@pytest.mark.parametrize("cell, gates", [(nn.LSTMCell(8, 16), 4), (nn.GRUCell(8, 16), 3), (nn.RNNCell(8, 16), 1)])
def test_cells(cell, gates):
    report = analyze(cell, (8,))
    assert report.totals["macs"] == gates * 16 * (8 + 16)


# -- norms and statistics --------------------------------------------------------------------------------------------
def test_normalize_is_costed_from_its_parts():
    # F.normalize(x, dim=1): ||x||_2 over 8 channels (2 per element), clamp_min per group, divide per element
    n, groups = 8 * 4 * 4, 4 * 4
    report = analyze(Block(lambda x: F.normalize(x, dim=1)), (8, 4, 4))
    assert not report.unsupported
    assert report.totals["flops"] == 2 * n + groups + n
    row = next(r for r in report.layers if r.type == "normalize")
    assert row.ops == ("linalg_vector_norm", "clamp_min", "expand_as", "div")


@pytest.mark.parametrize(
    "fn, flops",
    [
        (lambda x: x.norm(dim=-1), 2 * 60),  # Tensor.norm -> torch.norm -> linalg.vector_norm
        (lambda x: x.norm(p=1, dim=-1), 2 * 60 - 12),  # abs n, adds n - groups
        (lambda x: x.var(dim=-1), 4 * 60),  # mean, subtract, square, accumulate
        (lambda x: x.std(dim=-1), 4 * 60 + 12),  # and a square root per group
        (lambda x: torch.var_mean(x, dim=-1)[0], 4 * 60),
        (lambda x: F.rms_norm(x, (5,)), 3 * 60),
        (lambda x: torch.cumsum(x, dim=-1), 60 - 12),  # 4 adds per line of 5
        (lambda x: torch.cumprod(x, dim=1), 60 - 20),
        (lambda x: x.argmax(dim=-1), 60 - 12),  # 4 comparisons per group of 5, like max
        (lambda x: x.max(dim=-1)[0], 60 - 12),
        (lambda x: torch.topk(x, 2, dim=-1)[0], 12 * 5 * math.ceil(math.log2(3))),
        (lambda x: torch.sort(x, dim=-1)[0], 12 * 5 * math.ceil(math.log2(5))),
    ],
    ids=["norm", "norm-p1", "var", "std", "var_mean", "rms_norm", "cumsum", "cumprod", "argmax", "max", "topk", "sort"],
)
def test_statistics(fn, flops):
    assert cost(fn, (3, 4, 5))["flops"] == flops


def test_sort_and_topk_arithmetic():
    assert sort_flops(1, 8) == 8 * 3 and sort_flops(1, 1) == 0
    assert topk_flops(1, 8, 1) == 8 and topk_flops(2, 8, 3) == 2 * 8 * 2


# -- elementwise ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fn, per",
    [
        (torch.sin, 1), (torch.cos, 1), (torch.erf, 1), (torch.log1p, 1), (torch.floor, 1),
        (lambda x: x > 0.5, 1), (lambda x: torch.eq(x, x), 1), (torch.isnan, 1),
        (lambda x: torch.logical_not(x > 0), 1 + 1),
        (lambda x: torch.addcmul(x, x, x), 3), (lambda x: torch.addcdiv(x, x, x), 3),
        (lambda x: torch.lerp(x, x, 0.5), 3), (lambda x: x.clamp_min(0.1), 1),
    ],
)  # fmt: skip
def test_per_element(fn, per):
    assert cost(fn, (3, 4, 5))["flops"] == 60 * per


def test_complex_multiply_and_fft():
    # rfft2 of 8x8 real images (real input: half of 5 N log2 N, N = 64), a complex multiply (6 per element),
    # and the inverse transform back to 8x8 real (half again)
    def fn(x):
        f = torch.fft.rfft2(x)
        return torch.fft.irfft2(f * f, s=(8, 8))

    transforms, n = 3, 64
    half = round(transforms * 5 * n * math.log2(n) / 2)
    assert fft_flops(transforms, n, real=True) == half
    assert cost(fn, (3, 8, 8))["flops"] == half + 3 * 8 * 5 * per_element("complex_mul") + half


def test_fft_complex_transform():
    assert cost(lambda x: torch.fft.fft(x), (4, 16))["flops"] == round(4 * 5 * 16 * 4)


def test_fftn_takes_a_single_int_for_s():
    # torch takes s=5 for s=(5,): one transform along the last axis, of 5 points (cut from 16); rfftn's real
    # input is cut to 6 points, half of 5 N log2 N each
    assert cost(lambda x: torch.fft.fftn(x, s=5), (4, 16))["flops"] == round(4 * 5 * 5 * math.log2(5))
    assert cost(lambda x: torch.fft.rfftn(x, s=6), (4, 16))["flops"] == round(4 * 5 * 6 * math.log2(6) / 2)


# -- sampling, patches, lookups -----------------------------------------------------------------------------
def test_grid_sample_bilinear():
    def fn(x):
        grid = x[:, :1].permute(0, 2, 3, 1).expand(1, 6, 6, 2)
        return F.grid_sample(x, grid, align_corners=False)

    # 9 per output element (3 lerps) on 3 channels of 6x6, 2 per grid coordinate
    assert cost(fn, (3, 6, 6))["flops"] == 3 * 36 * 9 + 36 * 2 * 2


def test_fold_adds_overlapping_blocks_and_unfold_is_free():
    def fn(x):
        cols = F.unfold(x, 3, padding=0)  # (1, 2*9, 16)
        return F.fold(cols, (6, 6), 3)

    assert cost(fn, (2, 6, 6))["flops"] == 2 * 9 * 16 - 2 * 36


def test_embedding_bag_sums_rows():
    table = torch.empty(10, 4, device="meta")

    def fn(x):
        idx = x.long().flatten()[:6]
        return F.embedding_bag(idx, table, torch.tensor([0, 3], device=x.device), mode="mean") + x[:, :2, :4].sum()

    flops = cost(fn, (3, 4, 5))["flops"]
    # (6 rows - 2 bags) * 4 adds, 2 * 4 divides for the mean; then the sum of the 2x4x5 slice (40 - 1 adds) and
    # the add of that scalar to the 2x4 bags (8)
    assert flops == (6 - 2) * 4 + 2 * 4 + (40 - 1) + 8


@pytest.mark.parametrize(
    "fn", [lambda x: x.reshape_as(x), lambda x: x.tile(2), lambda x: x.repeat_interleave(2, dim=1),
           lambda x: x.expand_as(x), lambda x: x[:, 1:], lambda x: x.half(), lambda x: x.mT, lambda x: x.T,
           lambda x: F.pixel_shuffle(x, 2), lambda x: F.pixel_unshuffle(x, 2)],
)  # fmt: skip
def test_data_movement_is_free_by_the_list(fn):
    report = analyze(Fn(fn), (4, 4, 4))
    assert report.totals["flops"] == 0 and not report.unsupported


# -- op figures of issue 25 ------------------------------------------------------------------------------------------
def test_dropout_with_p_zero_is_free_in_training():
    """ATen's dropout returns its input untouched for p = 0 (Dropout.cpp _dropout_impl): no multiply runs."""
    model = nn.Sequential(nn.Linear(6, 6), nn.Dropout(p=0.0))
    report = analyze(model, (6,), training=True)
    assert report.layers[1].flops == 0
    half = analyze(nn.Sequential(nn.Linear(6, 6), nn.Dropout(p=0.5)), (6,), training=True)
    assert half.layers[1].flops == 6  # one multiply by the scaled mask per element


@pytest.mark.parametrize(
    "layer, per_element",
    [
        (nn.LayerNorm(8), 5 + 1 + 1),  # statistics and normalising, scale, shift
        (nn.LayerNorm(8, bias=False), 5 + 1),  # no shift
        (nn.LayerNorm(8, elementwise_affine=False), 5),
        (nn.GroupNorm(2, 8), 5 + 1 + 1),
    ],
)
def test_norms_charge_a_weight_and_a_bias_each_only_where_there_is_one(layer, per_element):
    x = (8, 3, 3) if isinstance(layer, nn.GroupNorm) else (3, 8)
    report = analyze(layer, x)
    assert report.totals["flops"] == math.prod(x) * per_element


def test_weight_norm_is_costed_on_its_layer():
    """w = v * (g / ||v||) over every dim but 0: per element of v square, accumulate, multiply (3); per element
    of g one divide. Conv2d(3, 8, 3): v 8x3x3x3 (216), g 8x1x1x1 (8)."""
    conv = nn.utils.parametrizations.weight_norm(nn.Conv2d(3, 8, 3, padding=1))
    report = analyze(conv, (3, 4, 4))
    (row,) = report.layers
    assert not report.unsupported
    assert row.macs == 8 * 16 * 27
    assert row.flops == 2 * row.macs + 8 * 16 + 3 * 216 + 8
