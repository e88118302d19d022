"""SimpleNet (Hasanpour et al. 2016) and SimpNet (Hasanpour et al. 2018), from the authors' prototxts."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archcost.errors import ModelOptionError
from archcost.zoo import get_model

NAMES = ["simplenet_cifar", "simpnet_cifar", "simpnet_slim_cifar"]


def _macs(model: nn.Module, res: int = 32) -> int:
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, 3, res, res, device="meta"))
    return counter.get_total_flops() // 2


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _weights(model: nn.Module) -> int:
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


# SimpleNet CIFAR-10 prototxt: (in, out, kernel, output size, has BN).
_SIMPLENET = [
    (3, 64, 3, 32, True), (64, 128, 3, 32, True), (128, 128, 3, 32, True), (128, 128, 3, 32, True),
    (128, 128, 3, 16, True), (128, 128, 3, 16, True), (128, 256, 3, 16, True),  # conv4, pooled before BN
    (256, 256, 3, 8, True), (256, 256, 3, 8, True),
    (256, 512, 3, 4, True), (512, 2048, 1, 4, False), (2048, 256, 1, 4, False),  # cccp4, cccp5
    (256, 256, 3, 2, False),  # cccp6
]  # fmt: skip


def test_simplenet_13_layers_and_params() -> None:
    model = get_model("simplenet_cifar")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 13
    weights = sum(k * k * cin * cout for cin, cout, k, _, _ in _SIMPLENET) + 256 * 10
    biases = sum(cout for _, cout, _, _, _ in _SIMPLENET) + 10
    bn = sum(2 * cout for _, cout, _, _, has_bn in _SIMPLENET if has_bn)
    assert _weights(model) == weights == 5_484_736
    assert round(weights / 1e6, 2) == 5.48  # paper / README: 5.48 M
    assert _params(model) == weights + biases + bn == 5_493_258


def test_simplenet_macs_match_readme() -> None:
    expected = sum(k * k * cin * cout * hw * hw for cin, cout, k, hw, _ in _SIMPLENET) + 256 * 10
    macs = _macs(get_model("simplenet_cifar"))
    assert macs == expected == 652_151_296
    assert round(macs / 1e6) == 652  # README Table 1: "OP 652M"


def _simpnet_expected(widths: list[int]) -> tuple[int, int]:
    """(parameters with BN, MACs) of the 13-conv SimpNet layout: pools after conv 5 and conv 10."""
    sizes = [32] * 5 + [16] * 5 + [8] * 3
    cins = [3] + widths[:-1]
    params = sum(9 * cin * c + c + 2 * c for cin, c in zip(cins, widths, strict=True)) + widths[-1] * 10 + 10
    macs = sum(9 * cin * c * hw * hw for cin, c, hw in zip(cins, widths, sizes, strict=True)) + widths[-1] * 10
    return params, macs


def test_simpnet_params() -> None:
    # SimpNetV2/Architectures/CIFAR10/5Mil prototxt widths
    widths = [66, 128, 128, 128, 192, 192, 192, 192, 192, 288, 288, 355, 432]
    model = get_model("simpnet_cifar")
    params, macs = _simpnet_expected(widths)
    assert _params(model) == params == 5_478_223
    assert int(params / 1e5) / 10 == 5.4  # README: "5.4M" (truncated)
    assert _macs(model) == macs


@pytest.mark.parametrize(
    ("size", "widths", "expected", "published"),
    [
        ("300k", [30, 40, 40, 40, 50, 50, 50, 50, 50, 58, 58, 70, 90], 300_964, 300e3),  # Table XV
        ("600k", [40, 60, 60, 60, 72, 73, 73, 73, 75, 81, 82, 90, 120], 601_021, 600e3),  # Table XV
    ],
)
def test_simpnet_slim_params(size: str, widths: list[int], expected: int, published: float) -> None:
    model = get_model("simpnet_slim_cifar", size=size)
    params, macs = _simpnet_expected(widths)
    assert _params(model) == params == expected
    assert abs(params - published) / published < 0.005
    assert _macs(model) == macs


def test_simpnet_uses_global_max_pooling() -> None:
    model = get_model("simpnet_cifar")
    assert isinstance(model.global_max_pool, nn.AdaptiveMaxPool2d)
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 2


def test_bad_slim_size() -> None:
    with pytest.raises(ModelOptionError, match="300k"):
        get_model("simpnet_slim_cifar", size="1m")


@pytest.mark.parametrize("name", NAMES)
def test_output_shape_on_meta(name: str) -> None:
    y = get_model(name, num_classes=100)(torch.empty(2, 3, 32, 32, device="meta"))
    assert tuple(y.shape) == (2, 100)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "options"), [(n, {}) for n in NAMES] + [("simpnet_slim_cifar", {"size": "600k"})])
def test_real_forward_cpu(name: str, options: dict) -> None:
    model = get_model(name, device="cpu", **options).eval()
    with torch.no_grad():
        y = model(torch.randn(1, 3, 32, 32))
    assert y.shape == (1, 10)
    assert torch.isfinite(y).all()
