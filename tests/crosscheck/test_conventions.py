"""The peer tools' conventions, read from the op catalogue, checked against the tools on single ops."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archcost.cost import analyze
from archcost.cost._registry import entries
from archcost.crosscheck.conventions import FVCORE, RULES, TORCH, rule_for
from archcost.crosscheck.fvcore_run import run_fvcore
from archcost.crosscheck.torch_counter import run_flop_counter


def test_every_rule_names_its_source_and_a_unique_op():
    seen = set()
    for rule in RULES:
        assert rule.source.startswith(("fvcore/nn/", "torch/utils/flop_counter.py")), rule
        assert rule.text
        for op in rule.ops:
            assert (rule.tool, op) not in seen
            seen.add((rule.tool, op))


def test_the_rules_are_the_catalogues_facets():
    """Every op whose entry says how a tool counts it has that rule; the others fall back to 'counted 0'."""
    for entry in entries():
        for tool, counted in ((FVCORE, entry.fvcore), (TORCH, entry.flop_counter)):
            rule = rule_for(tool, entry.name)
            if counted is None:
                assert rule.ops == ("*",), (tool, entry.name)
            else:
                assert (rule.text, rule.source) == (counted.text, counted.source)
    assert rule_for(TORCH, "scaled_dot_product_attention").tool_op == "attention"
    assert rule_for(FVCORE, "grid_sample").tool_op == "grid_sampler"


class _Call(nn.Module):
    """One functional call on the input (and the parameters it is given)."""

    def __init__(self, fn, **params) -> None:
        super().__init__()
        self.fn = fn
        for k, v in params.items():
            self.register_parameter(k, nn.Parameter(v))

    def forward(self, x):
        return self.fn(self, x)


def _sdpa(m, x):  # x: (1, 2, 6, 4): self-attention, 2 heads, 6 tokens of 4
    return F.scaled_dot_product_attention(x, x, x, is_causal=True)


def _lstm():
    return nn.LSTM(5, 7, num_layers=2, batch_first=True)


class _LastOut(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x)[0]


_THETA = torch.tensor([[[1.0, 0.2, 0.0], [0.1, 0.9, 0.0]]])

#: (layer, input shape, fvcore's count, FlopCounterMode's count), written as the arithmetic of each convention
CASES = [
    # Conv2d(3, 8, 3) on 1x3x10x10: output 8x8x8, 3*3*3 = 27 MACs per output element
    (nn.Conv2d(3, 8, 3), (1, 3, 10, 10), 8 * 8 * 8 * 27, 2 * 8 * 8 * 8 * 27),
    # ConvTranspose2d(4, 2, 2, stride=2) on 1x4x5x5: every input element meets 2 * 2 * 2 weights
    (nn.ConvTranspose2d(4, 2, 2, stride=2), (1, 4, 5, 5), 4 * 5 * 5 * 8, 2 * 4 * 5 * 5 * 8),
    (nn.Linear(10, 7), (3, 10), 3 * 10 * 7, 2 * 3 * 10 * 7),
    (nn.BatchNorm2d(4).eval(), (1, 4, 5, 5), 2 * 100, 0),
    (nn.BatchNorm2d(4, affine=False).eval(), (1, 4, 5, 5), 100, 0),
    (nn.GroupNorm(2, 4), (1, 4, 5, 5), 5 * 100, 0),
    (nn.LayerNorm(8, bias=False), (3, 8), 5 * 24, 0),  # norm_flop_counter looks at the weight only
    (nn.LayerNorm(8, elementwise_affine=False), (3, 8), 4 * 24, 0),
    (nn.AdaptiveAvgPool2d(1), (1, 4, 5, 5), 100, 0),
    (nn.Upsample(scale_factor=2), (1, 4, 5, 5), 4 * 10 * 10, 0),
    (nn.Upsample(scale_factor=2, mode="bilinear"), (1, 4, 5, 5), 4 * 4 * 10 * 10, 0),
    (nn.MaxPool2d(2), (1, 4, 6, 6), 0, 0),
    # attention: Q K^T and (scores) V, 2 heads x 6 x 6 x 4 MACs each; fvcore has no handle
    (_Call(_sdpa), (1, 2, 6, 4), 0, 2 * 2 * (2 * 6 * 6 * 4)),
    # LSTM 5 -> 7, two layers, 3 steps: per step W_ih (28x5, then 28x7) and W_hh (28x7) per layer
    (_LastOut(_lstm()), (1, 3, 5), 0, 2 * 3 * (28 * 5 + 28 * 7 + 28 * 7 + 28 * 7)),
    # einsum "bij,bjk->bik" with b 2, i 3, j 4, k 5: one bmm of 2*3*4*5 MACs; fvcore: numpy's path / 2
    (
        _Call(lambda m, x: torch.einsum("bij,bjk->bik", x, m.w), w=torch.ones(2, 4, 5)),
        (2, 3, 4),
        2 * 3 * 4 * 5,
        2 * 120,
    ),
    # grid_sample: fvcore assumes bilinear, 4 per output element (1x3x4x4 output); torch has no formula
    (
        _Call(
            lambda m, x: F.grid_sample(x, F.affine_grid(_THETA, (1, 3, 4, 4), align_corners=False), align_corners=False)
        ),
        (1, 3, 6, 6),
        4 * 3 * 4 * 4,
        0,
    ),  # fmt: skip
    # a matrix times a vector runs as aten.mv: torch has no formula; fvcore's matmul handle asserts
    (_Call(lambda m, x: torch.matmul(x, m.v), v=torch.ones(4)), (3, 4), None, 0),
    # torch.batch_norm called directly (its own argument order), training, affine: fvcore 5 per element
    (
        _Call(
            lambda m, x: torch.batch_norm(x, m.w, m.b, None, None, True, 0.1, 1e-5, False),
            w=torch.ones(4),
            b=torch.zeros(4),
        ),
        (2, 4, 3, 3),
        5 * 72,
        0,
    ),  # fmt: skip
]


@pytest.mark.parametrize("layer, shape, fvcore, torch_count", CASES)
def test_the_catalogue_predicts_what_the_tools_count(layer, shape, fvcore, torch_count):
    """The tools themselves, on one layer, and archcost's per-op prediction (the catalogue's facets,
    evaluated on the op's own arguments): all three agree."""
    report = analyze(layer, shape[1:], shape[0])
    parts = [p for r in report.layers for p in r.parts]
    if fvcore is not None:
        assert run_fvcore(layer, shape).total_flops() == fvcore
        assert sum(p.fvcore for p in parts) == fvcore
    else:
        assert None in [p.fvcore for p in parts]  # not predicted, and check says so
    assert run_flop_counter(layer, shape).total() == torch_count
    assert sum(p.flop_counter for p in parts) == torch_count
