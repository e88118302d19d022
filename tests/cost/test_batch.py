"""archcost.cost.batch: two analyses serve a whole batch sweep, and a derived report is what an analysis gives."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from archcost.cost import analyze
from archcost.cost.batch import NotProportional, analyze_batches, derive
from archcost.errors import InputError
from archcost.zoo import get_meta, get_model


def counted(model, size, calls):
    def run(batch):
        calls.append(batch)
        return analyze(model, size, batch, "float32", name="m")

    return run


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "googlenet", "squeezenet1_1"])
def test_derived_reports_equal_real_analyses(name):
    model, size = get_model(name), tuple(get_meta(name).input_size)
    calls: list[int] = []
    reports = analyze_batches(counted(model, size, calls), [1, 2, 3, 8, 32])
    assert calls == [1, 32]  # the sizes between were derived, not analysed
    for batch in (2, 3, 8):
        assert reports[batch] == analyze(model, size, batch, "float32", name="m"), batch
        assert reports[batch].input_shape[0] == batch


class Attention(nn.Module):
    """Self-attention with a class token: shapes B x (N + 1) x D, heads folded into the batch by a view."""

    def __init__(self) -> None:
        super().__init__()
        self.token = nn.Parameter(torch.zeros(1, 1, 16))
        self.qkv = nn.Linear(16, 48)
        self.proj = nn.Linear(16, 16)

    def forward(self, x):
        x = torch.cat([self.token.expand(x.shape[0], -1, -1), x], dim=1)
        q, k, v = self.qkv(x).reshape(x.shape[0], -1, 3, 2, 8).permute(2, 0, 3, 1, 4)
        y = nn.functional.scaled_dot_product_attention(q, k, v)
        return self.proj(y.transpose(1, 2).reshape(x.shape[0], -1, 16))


def test_attention_derived_equals_real():
    calls: list[int] = []
    reports = analyze_batches(counted(Attention(), (10, 16), calls), [1, 4, 6])
    assert calls == [1, 6]
    assert reports[4] == analyze(Attention(), (10, 16), 4, "float32", name="m")


class Gram(nn.Module):
    """Costs B^2: every sample against every other (a contrastive similarity matrix)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        y = self.fc(x)
        return y @ y.T


class ExtraSample(nn.Module):
    """Shapes B + 1: a learned sample appended to the batch (affine, not proportional)."""

    def __init__(self) -> None:
        super().__init__()
        self.extra = nn.Parameter(torch.zeros(1, 8))
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return self.fc(torch.cat([x, self.extra]))


@pytest.mark.parametrize("cls", [Gram, ExtraSample])
def test_not_proportional_analyses_every_size(cls):
    model = cls()
    calls: list[int] = []
    reports = analyze_batches(counted(model, (8,), calls), [1, 2, 4, 16])
    assert calls == [1, 16, 2, 4]  # derivation refused: each size analysed
    for batch in (2, 4):
        assert reports[batch] == analyze(model, (8,), batch, "float32", name="m")


def test_an_analysis_error_is_returned_and_the_rest_analysed():
    model = get_model("resnet18")

    def run(batch):
        if batch == 8:
            raise InputError("too big", "smaller")
        return analyze(model, (3, 32, 32), batch, "float32")

    reports = analyze_batches(run, [1, 2, 8])
    assert isinstance(reports[8], InputError)
    assert reports[2] == analyze(model, (3, 32, 32), 2, "float32")


def test_derive_rules():
    assert derive(10, 40, 1, 4, 3) == 30  # proportional
    assert derive(7, 7, 1, 4, 3) == 7  # the same at both: constant
    assert derive((1, 3, 5), (4, 3, 5), 1, 4, 2) == (2, 3, 5)
    with pytest.raises(NotProportional):
        derive(2, 5, 1, 4, 2)  # affine B + 1
    with pytest.raises(NotProportional):
        derive(1, 16, 1, 4, 2)  # B^2
    with pytest.raises(NotProportional):
        derive("a", "b", 1, 4, 2)
    with pytest.raises(NotProportional):
        derive(3, 12, 2, 8, 3)  # 1.5 per sample at batch 3: not an integer
    assert derive(True, True, 1, 4, 2) is True
