"""The catalogue's memory facet (``register_cost(..., memory=)``) agrees with what the crawl measures: an op
declared a view allocates no new storage on a contiguous input (its bytes are the row's ``view_bytes``), and a
copy declared as new storage allocates its output (issue 25: one catalogue, its facets checked against the
engine)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import archcost
from archcost.cost._registry import op_entry

VIEWS = {
    "view": lambda x: x.view(-1),
    "reshape": lambda x: x.reshape(4, -1),
    "flatten": lambda x: x.flatten(1),
    "permute": lambda x: x.permute(0, 2, 1),
    "transpose": lambda x: x.transpose(1, 2),
    "squeeze": lambda x: x.unsqueeze(0).squeeze(0),
    "unsqueeze": lambda x: x.unsqueeze(1),
    "expand": lambda x: x[:, :1].expand(4, 3, 5),
    "narrow": lambda x: x.narrow(1, 0, 2),
    "select": lambda x: x.select(0, 1),
    "movedim": lambda x: x.movedim(0, 2),
    "diagonal": lambda x: x.diagonal(0, 1, 2),
    "detach": lambda x: x.detach(),
    "contiguous": lambda x: x.contiguous(),
    "unflatten": lambda x: x.unflatten(2, (1, 5)),
}
COPIES = {
    "clone": lambda x: x.clone(),
    "cat": lambda x: torch.cat([x, x]),
    "flip": lambda x: x.flip(0),
    "repeat": lambda x: x.repeat(2, 1, 1),
}


class _Double(nn.Module):
    def forward(self, x):
        return x * 2


class _One(nn.Module):
    """A child makes a new tensor, then the op runs in the parent's forward: a row of its own."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn, self.twice = fn, _Double()

    def forward(self, x):
        return self.fn(self.twice(x))


def _row(fn, name):
    report = archcost.analyze(_One(fn), inputs=torch.zeros(4, 3, 5))  # shaped as the lambdas read it
    (row,) = [r for r in report.layers if name in r.ops or r.type == name]
    return row


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_an_op_declared_a_view_allocates_nothing(name):
    assert op_entry(name).memory == "view"
    row = _row(VIEWS[name], name)
    assert row.activation_bytes == 0 and row.view_bytes > 0


@pytest.mark.parametrize("name", sorted(COPIES))
def test_an_op_declared_new_storage_allocates_its_output(name):
    assert op_entry(name).memory == "new"
    row = _row(COPIES[name], name)
    assert row.activation_bytes > 0 and row.view_bytes == 0
