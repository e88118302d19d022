"""All-CNN-C (Springenberg et al. 2015, Table 2 model C with strided convs, Table 3 parameter count)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archcost.errors import ModelOptionError
from archcost.zoo import get_meta, get_model


def _macs(model: nn.Module, res: int) -> int:
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, 3, res, res, device="meta"))
    return counter.get_total_flops() // 2


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# Table 2 (model C, strided): (in, out, kernel, output size on a 32x32 CIFAR-10 image).
_LAYERS = [
    (3, 96, 3, 32), (96, 96, 3, 32), (96, 96, 3, 16),  # conv3: stride 2 replaces 3x3 max pooling
    (96, 192, 3, 16), (192, 192, 3, 16), (192, 192, 3, 8),  # conv6: stride 2
    (192, 192, 3, 6),  # "3x3 conv 192" without padding: 8x8 -> 6x6
    (192, 192, 1, 6), (192, 10, 1, 6),  # 1x1 convs, then "global averaging over 6x6"
]  # fmt: skip


def test_params_table3() -> None:
    expected = sum(k * k * cin * cout + cout for cin, cout, k, _ in _LAYERS)
    model = get_model("allcnn_c")
    assert _params(model) == expected == 1_369_738
    # Table 3 says "~1.3 M": the count is 1.37 M, so the paper truncates.
    assert int(_params(model) / 1e5) / 10 == 1.3


def test_macs() -> None:
    expected = sum(k * k * cin * cout * hw * hw for cin, cout, k, hw in _LAYERS)
    assert _macs(get_model("allcnn_c"), 32) == expected == 270_798_336


def test_global_average_over_6x6() -> None:
    model = get_model("allcnn_c")
    seen: dict[str, torch.Size] = {}

    def hook(_m: nn.Module, inp: tuple, _out: torch.Tensor) -> None:
        seen["in"] = inp[0].shape

    handle = model.global_avg_pool.register_forward_hook(hook)
    try:
        model(torch.empty(1, 3, 32, 32, device="meta"))
    finally:
        handle.remove()
    assert tuple(seen["in"]) == (1, 10, 6, 6)


def test_no_pooling_layers() -> None:
    model = get_model("allcnn_c")
    assert not any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) for m in model.modules())
    assert get_meta("allcnn_c").dataset == "CIFAR-10"


def test_output_shape_on_meta() -> None:
    y = get_model("allcnn_c", num_classes=100)(torch.empty(4, 3, 32, 32, device="meta"))
    assert tuple(y.shape) == (4, 100)
    with pytest.raises(ModelOptionError):
        get_model("allcnn_c", num_classes=0)


@pytest.mark.slow
def test_real_forward_cpu() -> None:
    model = get_model("allcnn_c", device="cpu").eval()
    with torch.no_grad():
        y = model(torch.randn(1, 3, 32, 32))
    assert y.shape == (1, 10)
    assert torch.isfinite(y).all()
