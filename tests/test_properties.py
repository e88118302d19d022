"""Property tests over random CNNs: archcost agrees with torch's counter, numel, a real forward and
the gradient check of receptive fields, and leaves the model as it was."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from archcost.cost import analyze
from archcost.errors import AnalysisError
from archcost.verify.receptive_field import verify
from tests.fixtures.randomnets import build, layer_specs

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _analyse_or_reject(model, size):
    from hypothesis import assume

    try:
        return analyze(model, size)
    except AnalysisError:
        assume(False)  # the random layers shrank the map below a kernel: not a network


@SETTINGS
@given(specs=layer_specs(), side=st.integers(24, 48))
def test_counts_shapes_and_no_side_effects(specs, side):
    torch.manual_seed(0)
    model = build(specs)
    size = (3, side, side)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    report = _analyse_or_reject(model, size)
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())

    assert report.totals["params"] == sum(p.numel() for p in model.parameters())
    assert not report.unsupported
    model.eval()
    x = torch.randn(1, *size)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        out = model(x)
    assert report.totals["macs"] == counter.get_total_flops() // 2
    assert report.output_shape == tuple(out.shape)


@SETTINGS
@given(specs=layer_specs(), side=st.integers(24, 40))
def test_analytic_receptive_field_equals_gradient_support(specs, side):
    model = build(specs)
    report = _analyse_or_reject(model, (3, side, side))
    from hypothesis import assume

    assume(any(r.kind == "module" and r.rf is not None and not r.rf_global for r in report.layers))
    check = verify(model, (3, side, side))
    assert check.agrees, check


# Counterexamples hypothesis once found stay here as plain tests.
@pytest.mark.parametrize(
    "specs",
    [
        [("conv", 3, 2, 0, 2, 1, 8), ("max", 3, 2)],  # dilation before an unpadded pool
    ],
)
def test_known_cases(specs):
    model = build(specs)
    assert verify(model, (3, 32, 32)).agrees
