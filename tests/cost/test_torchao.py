"""torchao's quantized tensor subclasses (issue 27, item 2): a weight quantized by ``torchao.quantization.quantize_``
stays an ``nn.Linear``'s parameter but holds int8 ``qdata``, a float32 ``scale`` per row and an int8 ``zero_point``
per row. Params and MACs are the float model's; bytes are those of the inner tensors; integer MACs only where the
activations are quantized too."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    torchao_quantization = pytest.importorskip("torchao.quantization")

import archcost  # noqa: E402

IN, HIDDEN, OUT = 256, 128, 10
PARAMS = IN * HIDDEN + HIDDEN + HIDDEN * OUT + OUT  # 34,186
MACS = IN * HIDDEN + HIDDEN * OUT  # 34,048
ROWS = HIDDEN + OUT  # one scale and one zero point per output row (per-row granularity)


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(IN, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, OUT))


def _quantized(config) -> nn.Module:
    model = _mlp()
    torchao_quantization.quantize_(model, config)
    return model


CONFIGS = {
    "int8 weight-only": lambda: torchao_quantization.Int8WeightOnlyConfig(),
    "int8 dynamic activation": lambda: torchao_quantization.Int8DynamicActivationInt8WeightConfig(),
    "int4 weight-only (intx, unpacked)": lambda: torchao_quantization.IntxWeightOnlyConfig(weight_dtype=torch.int4),
}


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_params_and_macs_as_the_float_model_bytes_as_stored(name, device):
    model = _quantized(CONFIGS[name]())
    float_report = archcost.analyze(_mlp(), (IN,), device=device)
    report = archcost.analyze(model, (IN,), device=device)
    assert report.totals["params"] == float_report.totals["params"] == PARAMS
    assert report.totals["macs"] == float_report.totals["macs"] == MACS
    assert not report.unsupported
    # int8 weights (the int4 values of IntxWeightOnly are stored one per int8) and int8 zero points;
    # float32 scales and biases
    assert report.param_bytes_by_dtype == {"int8": MACS + ROWS, "float32": 4 * ROWS + 4 * (HIDDEN + OUT)}
    assert report.totals["param_bytes"] == MACS + ROWS + 8 * ROWS  # 35,290 against 136,744 at float32
    assert float_report.totals["param_bytes"] == 4 * PARAMS
    assert set(report.dtypes_seen) >= {"int8", "float32"}


def test_integer_macs_only_where_activations_are_quantized_too():
    weight_only = archcost.analyze(_quantized(CONFIGS["int8 weight-only"]()), (IN,))
    dynamic = archcost.analyze(_quantized(CONFIGS["int8 dynamic activation"]()), (IN,))
    assert weight_only.totals["int_macs"] == 0  # int8 weights dequantized to float32: float MACs
    assert dynamic.totals["int_macs"] == MACS  # int8 x int8 -> int32
    assert [r.int_macs for r in dynamic.layers if r.type == "Linear"] == [IN * HIDDEN, HIDDEN * OUT]


def test_the_callers_torchao_model_is_unchanged():
    model = _quantized(CONFIGS["int8 dynamic activation"]())
    before = copy.deepcopy(model)
    for device in ("meta", "cpu"):
        archcost.analyze(model, (IN,), device=device)
    for (k, a), (_, b) in zip(model.state_dict().items(), before.state_dict().items(), strict=True):
        assert type(a) is type(b), k
        assert all(torch.equal(x, y) for x, y in zip(archcost.units.inner_tensors(a), archcost.units.inner_tensors(b),
                                                      strict=True)), k  # fmt: skip
    x = torch.randn(2, IN)
    assert torch.equal(model(x), before(x))
