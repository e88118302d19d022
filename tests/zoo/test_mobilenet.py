"""MobileNet v1 (Howard et al. 2017, Tables 1, 2, 4, 6, 7) and MobileNetV2 (Sandler et al. 2018, Table 4).

The v1 paper counts conv and FC weights only (no batch norm, no biases) and the mult-adds of the conv
and FC layers; ``_paper_params`` counts the same way.
"""

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


def _paper_params(model: nn.Module) -> int:
    """Conv and FC weights: what Howard et al. count (BN is folded at inference, biases are not counted)."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


# Table 1 of Howard et al. at 224: (type, filter shape, output spatial size D_F). Mult-adds (Sec. 3.1):
# standard conv D_K*D_K*M*N*D_F*D_F, depthwise D_K*D_K*M*D_F*D_F, pointwise M*N*D_F*D_F.
_TABLE1 = (
    [("conv", (3, 3, 3, 32), 112), ("dw", (3, 3, 32), 112), ("pw", (32, 64), 112),
     ("dw", (3, 3, 64), 56), ("pw", (64, 128), 56), ("dw", (3, 3, 128), 56), ("pw", (128, 128), 56),
     ("dw", (3, 3, 128), 28), ("pw", (128, 256), 28), ("dw", (3, 3, 256), 28), ("pw", (256, 256), 28),
     ("dw", (3, 3, 256), 14), ("pw", (256, 512), 14)]
    + [("dw", (3, 3, 512), 14), ("pw", (512, 512), 14)] * 5  # "5x Conv dw / s1, Conv / s1"
    + [("dw", (3, 3, 512), 7), ("pw", (512, 1024), 7), ("dw", (3, 3, 1024), 7), ("pw", (1024, 1024), 7),
       ("fc", (1024, 1000), 1)]
)  # fmt: skip


def _row_cost(kind: str, shape: tuple[int, ...], df: int) -> tuple[int, int]:
    """(mult-adds, weights) of one Table 1 row."""
    if kind == "conv":
        dk, _, m, n = shape
        return dk * dk * m * n * df * df, dk * dk * m * n
    if kind == "dw":
        dk, _, m = shape
        return dk * dk * m * df * df, dk * dk * m
    m, n = shape  # pointwise 1x1 conv or FC
    return m * n * df * df, m * n


def test_table1_arithmetic_matches_the_model() -> None:
    macs = sum(_row_cost(*row)[0] for row in _TABLE1)
    weights = sum(_row_cost(*row)[1] for row in _TABLE1)
    assert macs == 568_740_352  # Table 6: 569 million mult-adds
    assert weights == 4_209_088  # Table 6: 4.2 million parameters
    model = get_model("mobilenet_v1")
    assert _macs(model, 224) == macs
    assert _paper_params(model) == weights


def test_bn_and_bias_are_what_the_paper_leaves_out() -> None:
    model = get_model("mobilenet_v1")
    bn = sum(p.numel() for m in model.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters())
    assert _params(model) == _paper_params(model) + bn + 1000  # + FC bias
    assert _params(model) == 4_231_976


@pytest.mark.parametrize(
    ("name", "macs_m", "params_m"),
    [  # Table 6: width multiplier, 224x224
        ("mobilenet_v1", 569, 4.2),
        ("mobilenet_v1_075", 325, 2.6),
        ("mobilenet_v1_050", 149, 1.3),
        ("mobilenet_v1_025", 41, 0.5),
    ],
)
def test_table6_width_multiplier(name: str, macs_m: int, params_m: float) -> None:
    model = get_model(name)
    assert round(_macs(model, 224) / 1e6) == macs_m
    assert round(_paper_params(model) / 1e6, 1) == params_m
    meta = get_meta(name)
    assert meta.macs is not None and meta.macs.value == macs_m * 1e6


def test_width_mult_option_equals_registered_names() -> None:
    a = get_model("mobilenet_v1", width_mult=0.5)
    b = get_model("mobilenet_v1_050")
    assert _params(a) == _params(b)
    assert _macs(a, 224) == _macs(b, 224)


@pytest.mark.parametrize(
    ("res", "macs_exact", "macs_m"),
    [(224, 568_740_352, 569), (192, 418_121_728, 418), (160, 290_675_200, 290), (128, 186_400_768, 186)],
)
def test_table7_resolution_multiplier(res: int, macs_exact: int, macs_m: int) -> None:
    model = get_model("mobilenet_v1")
    assert _macs(model, res) == macs_exact
    assert round(_paper_params(model) / 1e6, 1) == 4.2  # parameters do not depend on resolution
    # Table 7 scales the whole 224 count by rho^2, FC layer included (Sec. 4.2's approximation). The
    # exact count differs by the FC layer's share: at 160 it is 290.7 M, which rounds to 291, not 290.
    rho = res / 224
    assert round(568_740_352 * rho**2 / 1e6) == macs_m
    assert abs(macs_exact - 568_740_352 * rho**2) < 1024 * 1000


def test_resolution_scales_conv_macs_by_rho_squared() -> None:
    # Sec. 4.2: the resolution multiplier rho reduces conv cost by rho^2 (the FC layer is unchanged).
    model = get_model("mobilenet_v1")
    fc = 1024 * 1000
    assert _macs(model, 448) - fc == 4 * (_macs(model, 224) - fc)


def _costs_by_layer_type(model: nn.Module, res: int) -> dict[str, list[int]]:
    """Table 2 buckets ("Conv 1x1", "Conv DW 3x3", "Conv 3x3", "Fully Connected"): [mult-adds, weights],
    mult-adds by shape arithmetic on each layer's output shape (captured with forward hooks)."""
    totals = {"conv1x1": [0, 0], "dw3x3": [0, 0], "conv3x3": [0, 0], "fc": [0, 0]}
    handles = []

    def hook(mod: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        if isinstance(mod, nn.Linear):
            key, macs = "fc", mod.in_features * mod.out_features
        else:
            kh, kw = mod.kernel_size
            key = "dw3x3" if mod.groups > 1 else ("conv1x1" if kh == 1 else "conv3x3")
            macs = out.shape[1] * out.shape[2] * out.shape[3] * (mod.in_channels // mod.groups) * kh * kw
        totals[key][0] += macs
        totals[key][1] += mod.weight.numel()

    try:
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                handles.append(m.register_forward_hook(hook))
        model(torch.empty(1, 3, res, res, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return totals


def test_table2_resource_per_layer_type() -> None:
    model = get_model("mobilenet_v1")
    totals = _costs_by_layer_type(model, 224)
    all_macs = sum(v[0] for v in totals.values())
    all_params = sum(v[1] for v in totals.values())
    assert all_macs == _macs(model, 224)  # hooks agree with FlopCounterMode
    share = {
        k: (round(100 * macs / all_macs, 2), round(100 * params / all_params, 2))
        for k, (macs, params) in totals.items()
    }
    assert share["conv1x1"] == (94.86, 74.59)
    assert share["dw3x3"] == (3.06, 1.06)
    assert share["fc"] == (0.18, 24.33)
    # Table 2 prints "Conv 3x3: 1.19%" of mult-adds; the arithmetic gives 1.91% (10,838,016 of
    # 568,740,352), and only 1.91 makes the column sum to 100%: a digit swap in the paper.
    assert share["conv3x3"] == (1.91, 0.02)
    assert totals["conv3x3"][0] == (3 * 3 * 3 * 32) * 112 * 112


def test_table4_full_convolution_baseline() -> None:
    model = get_model("mobilenet_v1_conv")
    pointwise = [row for row in _TABLE1 if row[0] == "pw"]
    conv_weights = sum(3 * 3 * m * n for _, (m, n), _ in pointwise)  # each dw+pw pair -> one 3x3 conv
    conv_macs = sum(3 * 3 * m * n * df * df for _, (m, n), df in pointwise)
    stem, fc = (3 * 3 * 3 * 32) * 112 * 112, 1024 * 1000
    assert _paper_params(model) == conv_weights + 3 * 3 * 3 * 32 + 1024 * 1000
    assert round(_paper_params(model) / 1e6, 1) == 29.3  # Table 4
    assert _macs(model, 224) == conv_macs + stem + fc
    # Table 4 prints 4866 M; the count with the FC layer is 4867.3 M, without it 4866.3 M.
    assert round((_macs(model, 224) - fc) / 1e6) == 4866
    assert round(_macs(model, 224) / 1e6) == 4867


@pytest.mark.parametrize("res", [224, 160, 97, 32])
def test_any_resolution_gives_class_scores(res: int) -> None:
    y = get_model("mobilenet_v1", num_classes=10)(torch.empty(2, 3, res, res, device="meta"))
    assert tuple(y.shape) == (2, 10)


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.5])
def test_width_mult_out_of_range(bad: float) -> None:
    with pytest.raises(ModelOptionError, match=r"\(0, 1\]"):
        get_model("mobilenet_v1", width_mult=bad)


# ------------------------------------------------------------------------------------------- v2


def test_mobilenet_v2_params_and_macs() -> None:
    model = get_model("mobilenet_v2")
    assert _params(model) == 3_504_872  # torchvision mobilenet_v2
    assert _paper_params(model) == 3_469_760  # Table 4 prints 3.4 M; 3.47 M by this count
    macs = _macs(model, 224)
    assert macs == 300_774_272
    assert abs(macs - 300e6) / 300e6 < 0.005  # Table 4: 300 M mult-adds
    stem = (3 * 3 * 3 * 32) * 112 * 112
    last = (1 * 1 * 320 * 1280) * 7 * 7
    assert stem + last < macs


def test_mobilenet_v2_width_mult() -> None:
    assert _params(get_model("mobilenet_v2", width_mult=1.0)) == 3_504_872
    half = get_model("mobilenet_v2", width_mult=0.5)
    assert half.classifier.fc.in_features == 1280  # last conv keeps 1280 for alpha < 1
    with pytest.raises(ModelOptionError):
        get_model("mobilenet_v2", width_mult=0)


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v1_conv", "mobilenet_v2"])
def test_output_shape_on_meta(name: str) -> None:
    y = get_model(name)(torch.empty(1, 3, 224, 224, device="meta"))
    assert tuple(y.shape) == (1, 1000)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        "mobilenet_v1",
        "mobilenet_v1_075",
        "mobilenet_v1_050",
        "mobilenet_v1_025",
        "mobilenet_v1_conv",
        "mobilenet_v2",
    ],
)
def test_real_forward_cpu(name: str) -> None:
    model = get_model(name, device="cpu").eval()
    with torch.no_grad():
        y = model(torch.randn(1, 3, 32, 32))
    assert y.shape == (1, 1000)
    assert torch.isfinite(y).all()
