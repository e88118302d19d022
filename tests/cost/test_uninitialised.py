"""A parameter left uninitialised in ``__init__`` (``nn.UninitializedParameter``) outside any lazy module."""

import pytest
import torch
from torch import nn

from archcost.cost import analyze
from archcost.errors import AnalysisError


class ReplacedInForward(nn.Module):
    """forward replaces the placeholder with a parameter of the right shape (rather than materialising it)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.w = nn.UninitializedParameter()

    def forward(self, x):
        y = self.conv(x)
        if isinstance(self.w, nn.parameter.UninitializedParameter):
            self.w = nn.Parameter(torch.ones(y.shape[1], 4, device=y.device))
        return y.permute(0, 2, 3, 1) @ self.w


def test_a_parameter_forward_replaces_is_analysed_and_the_callers_model_is_left_alone():
    model = ReplacedInForward()
    report = analyze(model, (3, 16, 16))
    rows = {r.name: r for r in report.layers}
    assert rows["matmul"].params == 8 * 4 and rows["matmul"].macs == 14 * 14 * 8 * 4
    assert report.totals["params"] == 3 * 8 * 9 + 8 + 8 * 4
    assert isinstance(model.w, nn.parameter.UninitializedParameter)  # the caller's placeholder is still there


def test_a_parameter_still_uninitialised_after_forward_is_a_clear_error():
    class Never(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3)
            self.w = nn.UninitializedParameter()

        def forward(self, x):
            return self.conv(x)

    with pytest.raises(AnalysisError, match="w still uninitialised after one forward"):
        analyze(Never(), (3, 16, 16))
