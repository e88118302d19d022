"""``archcost.testing.assert_cost``: budgets in a user's own pytest suite, with readable failures."""

import pytest

from archcost.errors import InputError
from archcost.testing import assert_cost
from tests.bench.models import ConvNet, Head
from tests.fixtures.usermodels import Unsupported

MACS = (3 * 3 * 3) * (4 * 6 * 6)  # 3,888: ConvNet on 3x8x8
PARAMS = 4 * 27 + 4  # 112


def test_within_budget_returns_the_report():
    report = assert_cost(ConvNet(), input_size=(3, 8, 8), max_macs=MACS, max_params=PARAMS)
    assert report.totals["macs"] == MACS  # a limit equal to the figure passes


def test_input_size_from_the_module_or_text():
    assert_cost(ConvNet(), max_macs=MACS)  # ConvNet.input_size
    assert_cost(ConvNet(), "3x8x8", max_macs=MACS)
    assert_cost(ConvNet(), input_size=(3, 10, 10), max_macs=27 * 4 * 8 * 8)


def test_over_budget_message_lists_every_budget():
    with pytest.raises(AssertionError) as exc:
        assert_cost(ConvNet(), (3, 8, 8), max_macs=3_000, max_params="1K", max_flops="10K")
    lines = str(exc.value).splitlines()
    assert lines[0] == "ConvNet on input 1x3x8x8 (float32) does not meet its cost budget:"
    assert lines[1].split() == ["params", "112", "<=", "max", "1,000", "(1.00", "K):", "ok"]
    macs = lines[2]
    assert "3,888 (3.89 K) > max 3,000 (3.00 K)" in macs
    assert f"FAILED, {(3888 - 3000) / 3000:.2%} over" in macs  # 29.60% over
    assert lines[3].split()[-1] == "ok"  # flops 8,064 <= 10,000


def test_batch_and_dtype():
    with pytest.raises(AssertionError, match="1x3x8x8"):
        assert_cost(ConvNet(), (3, 8, 8), max_param_bytes=112 * 2)  # float32: 448 bytes
    assert_cost(ConvNet(), (3, 8, 8), dtype="float16", max_param_bytes=112 * 2)
    with pytest.raises(AssertionError, match="8x3x8x8"):
        assert_cost(ConvNet(), (3, 8, 8), batch_size=8, max_macs=MACS)


def test_receptive_field_budgets():
    assert_cost(ConvNet(), (3, 8, 8), min_receptive_field=3, max_receptive_field=3)
    with pytest.raises(AssertionError, match=r"receptive_field\s+3 < min 5: FAILED"):
        assert_cost(ConvNet(), (3, 8, 8), min_receptive_field=5)
    with pytest.raises(AssertionError, match="no spatial receptive field"):
        assert_cost(Head(), min_receptive_field=1)


def test_zoo_model_by_name():
    assert_cost("lenet5", max_params=60_840)  # LeNet-5's 60,840 parameters (archcost list)
    with pytest.raises(AssertionError, match="lenet5 on input 1x1x32x32"):
        assert_cost("lenet5", max_params="60K")


def test_unsupported_ops_fail_unless_allowed():
    with pytest.raises(AssertionError, match="special_i0.*allow_unsupported=True"):
        assert_cost(Unsupported(), (3, 8, 8), max_macs="1G")
    assert_cost(Unsupported(), (3, 8, 8), max_macs="1G", allow_unsupported=True)


def test_misuse_is_an_error_not_a_pass():
    with pytest.raises(TypeError, match="at least one budget"):
        assert_cost(ConvNet())
    with pytest.raises(InputError, match="no input size"):
        assert_cost(ConvNet().conv, max_macs=1)
    with pytest.raises(InputError, match="'lots' is not an amount"):
        assert_cost(ConvNet(), max_macs="lots")
    with pytest.raises(TypeError):
        assert_cost(42, max_macs=1)
