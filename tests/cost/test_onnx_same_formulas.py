"""ONNX graphs are costed by the same formulas as torch: Einsum, Attention, LSTM, GRU, RNN against the torch
analysis of the equivalent layer, and as arithmetic."""

from __future__ import annotations

import pytest
import torch
from onnx import helper
from torch import nn

from archcost.cost import analyze
from archcost.onnx_graph import analyze_onnx
from tests.onnx_graph.graphs import save, weight

node = helper.make_node


def one(tmp_path, nodes, x_shape, inits=(), **kw):
    return analyze_onnx(save(tmp_path / "m.onnx", nodes, x_shape, inits, **kw), batch_size=x_shape[0])


class Last(nn.Module):
    """A recurrent layer's output sequence (what the ONNX node's ``Y`` holds)."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x)[0]


@pytest.mark.parametrize(
    "op, torch_layer, gates, direction",
    [
        ("LSTM", nn.LSTM(8, 16), 4, "forward"),
        ("GRU", nn.GRU(8, 16, bidirectional=True), 3, "bidirectional"),
        ("RNN", nn.RNN(8, 16), 1, "forward"),
    ],
)
def test_recurrent_layers_cost_what_torch_costs(tmp_path, op, torch_layer, gates, direction):
    steps, batch, features, hidden = 5, 1, 8, 16
    dirs = 2 if direction == "bidirectional" else 1
    inits = [
        weight("W", dirs, gates * hidden, features),
        weight("R", dirs, gates * hidden, hidden),
        weight("B", dirs, 2 * gates * hidden),
    ]
    rnn = node(op, ["x", "W", "R", "B"], ["y"], hidden_size=hidden, direction=direction)
    row = one(tmp_path, [rnn], (steps, batch, features), inits).layers[0]
    assert row.macs == steps * batch * dirs * gates * hidden * (features + hidden)
    assert row.params == dirs * gates * hidden * (features + hidden + 2)
    ours = analyze(Last(torch_layer), (batch, features), batch_size=steps)  # (seq, batch, features), seq first
    assert (row.macs, row.flops, row.params) == (ours.totals["macs"], ours.totals["flops"], ours.totals["params"])


def test_einsum_node(tmp_path):
    # 'bij,bjk->bik' with b = 2, i = 3, j = 4, k = 5: a bmm of 2 * 3 * 4 * 5 MACs
    ein = node("Einsum", ["x", "w"], ["y"], equation="bij,bjk->bik")
    row = one(tmp_path, [ein], (2, 3, 4), [weight("w", 2, 4, 5)], opset=17).layers[0]
    assert row.macs == 2 * 3 * 4 * 5
    w = torch.empty(2, 4, 5)
    ours = analyze(Einsum(w), (3, 4), batch_size=2)
    assert (row.macs, row.flops) == (ours.totals["macs"], ours.totals["flops"])


class Einsum(nn.Module):
    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return torch.einsum("bij,bjk->bik", x, self.w)


def test_attention_node(tmp_path):
    # opset 23 Attention on Q = K = V of (1, 2 heads, 16 tokens, 8): Q K^T and scores @ V, 16 * 16 * 8 MACs each
    # per head; per score the scale and the softmax
    att = node("Attention", ["x", "x", "x"], ["y"])
    try:
        report = one(tmp_path, [att], (1, 2, 16, 8), opset=23)
    except Exception as exc:  # an onnx without opset 23 cannot hold this node: nothing to test
        pytest.skip(f"this onnx cannot build an opset-23 Attention node: {exc}")
    row = report.layers[0]
    scores = 2 * 16 * 16
    assert row.macs == 2 * scores * 8
    assert row.flops == 2 * row.macs + scores * (1 + 5)
