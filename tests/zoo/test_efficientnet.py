"""EfficientNet-B0 (Tan & Le 2019, Table 1 layout, Table 2: 5.3 M params, 0.39 B FLOPs = mult-adds)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archcost.zoo import get_model
from archcost.zoo.efficientnet import SqueezeExcitation


def _macs(model: nn.Module, res: int) -> int:
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, 3, res, res, device="meta"))
    return counter.get_total_flops() // 2


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# Table 1: (operator, expansion, kernel, stride, output channels, layers, output resolution)
_TABLE1 = [
    (1, 3, 1, 16, 1, 112), (6, 3, 2, 24, 2, 56), (6, 5, 2, 40, 2, 28), (6, 3, 2, 80, 3, 14),
    (6, 5, 1, 112, 3, 14), (6, 5, 2, 192, 4, 7), (6, 3, 1, 320, 1, 7),
]  # fmt: skip


def _mbconv_macs(cin: int, cout: int, t: int, k: int, stride: int, hw: int) -> int:
    hidden = cin * t
    expand = cin * hidden * (hw * stride) ** 2 if t != 1 else 0  # the 1x1 expand runs before the stride
    depthwise = k * k * hidden * hw * hw
    se = 2 * hidden * max(1, cin // 4)  # two 1x1 convs on the pooled 1x1 map
    project = hidden * cout * hw * hw
    return expand + depthwise + se + project


def test_table1_arithmetic() -> None:
    expected = (3 * 3 * 3 * 32) * 112 * 112  # stem
    cin = 32
    for t, k, s, c, n, hw in _TABLE1:
        for i in range(n):
            expected += _mbconv_macs(cin, c, t, k, s if i == 0 else 1, hw)
            cin = c
    expected += (320 * 1280) * 7 * 7 + 1280 * 1000  # head conv and FC
    macs = _macs(get_model("efficientnet_b0"), 224)
    assert macs == expected == 385_814_752
    assert round(macs / 1e9, 2) == 0.39  # Table 2: 0.39 B FLOPs (mult-adds)


def test_params() -> None:
    model = get_model("efficientnet_b0")
    assert _params(model) == 5_288_548  # torchvision efficientnet_b0
    assert round(_params(model) / 1e6, 1) == 5.3  # Table 2: 5.3 M


def test_se_blocks_and_silu() -> None:
    model = get_model("efficientnet_b0")
    se = [m for m in model.modules() if isinstance(m, SqueezeExcitation)]
    assert len(se) == sum(n for _, _, _, _, n, _ in _TABLE1) == 16
    assert se[0].fc1.out_channels == 32 // 4 and se[1].fc1.out_channels == 16 // 4
    assert not any(isinstance(m, (nn.ReLU, nn.ReLU6)) for m in model.modules())


def test_output_shape_on_meta() -> None:
    y = get_model("efficientnet_b0", num_classes=10)(torch.empty(2, 3, 224, 224, device="meta"))
    assert tuple(y.shape) == (2, 10)


@pytest.mark.slow
def test_real_forward_cpu() -> None:
    model = get_model("efficientnet_b0", device="cpu").eval()
    with torch.no_grad():
        y = model(torch.randn(1, 3, 32, 32))
    assert y.shape == (1, 1000)
    assert torch.isfinite(y).all()
