"""VGG (Simonyan & Zisserman 2015): Table 1 layers, Table 2 parameter counts, the VGG-16 memory table."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archcost.errors import ModelOptionError
from archcost.zoo import get_meta, get_model, list_models

VGG_MODELS = [
    "vgg11",
    "vgg11_lrn",
    "vgg13",
    "vgg16_c",
    "vgg16",
    "vgg19",
    "vgg11_bn",
    "vgg13_bn",
    "vgg16_bn",
    "vgg19_bn",
]


def _params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _macs(m: nn.Module) -> int:
    with FlopCounterMode(display=False) as counter:
        m(torch.empty(1, 3, 224, 224, device="meta"))
    return counter.get_total_flops() // 2


def test_all_registered():
    assert sorted(VGG_MODELS) == list_models("vgg")


# Table 2: "Number of parameters (in millions)", A, A-LRN: 133, B: 133, C: 134, D: 138, E: 144.
@pytest.mark.parametrize(
    "name, millions",
    [("vgg11", 133), ("vgg11_lrn", 133), ("vgg13", 133), ("vgg16_c", 134), ("vgg16", 138), ("vgg19", 144)],
)
def test_params_match_table2(name, millions):
    n = _params(get_model(name))
    assert abs(n - millions * 1_000_000) <= 500_000  # Table 2 rounds to the million
    assert get_meta(name).params.value == pytest.approx(n, abs=500_000)


def _conv(k: int, c_in: int, c_out: int) -> int:
    return k * k * c_in * c_out + c_out  # weights + biases


# Exact counts written as Table 1's arithmetic: 3x3 convs (1x1 in C) with biases, then the three FCs.
_FC = (7 * 7 * 512 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 1000 + 1000)
_A = (
    _conv(3, 3, 64)
    + _conv(3, 64, 128)
    + _conv(3, 128, 256) + _conv(3, 256, 256)
    + _conv(3, 256, 512) + _conv(3, 512, 512)
    + 2 * _conv(3, 512, 512)
    + _FC
)  # fmt: skip
_B = _A + _conv(3, 64, 64) + _conv(3, 128, 128)
_C = _B + _conv(1, 256, 256) + 2 * _conv(1, 512, 512)
_D = _B + _conv(3, 256, 256) + 2 * _conv(3, 512, 512)
_E = _D + _conv(3, 256, 256) + 2 * _conv(3, 512, 512)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("vgg11", _A),  # 132,863,336
        ("vgg11_lrn", _A),  # LRN has no parameters
        ("vgg13", _B),  # 133,047,848
        ("vgg16_c", _C),  # 133,638,952
        ("vgg16", _D),  # 138,357,544
        ("vgg19", _E),  # 143,667,240
    ],
)
def test_params_exact_from_table1(name, expected):
    assert _params(get_model(name)) == expected


def test_vgg16_exact_published_count():
    assert _D == 138_357_544
    assert _params(get_model("vgg16")) == get_meta("vgg16").params.value == 138_357_544


# BatchNorm2d adds a weight and a bias per conv output channel: 2 * (sum of conv widths).
@pytest.mark.parametrize(
    "name, plain, conv_widths",
    [
        ("vgg11_bn", _A, 64 + 128 + 2 * 256 + 4 * 512),  # 132,868,840
        ("vgg13_bn", _B, 2 * 64 + 2 * 128 + 2 * 256 + 4 * 512),  # 133,053,736
        ("vgg16_bn", _D, 2 * 64 + 2 * 128 + 3 * 256 + 6 * 512),  # 138,365,992
        ("vgg19_bn", _E, 2 * 64 + 2 * 128 + 4 * 256 + 8 * 512),  # 143,678,248
    ],
)
def test_bn_params_match_torchvision(name, plain, conv_widths):
    n = _params(get_model(name))
    assert n == plain + 2 * conv_widths
    assert n == get_meta(name).params.value


# MACs: the paper gives none; torchvision's "GFLOPS" (2 decimals) count multiply-adds.
@pytest.mark.parametrize("name", [n for n in VGG_MODELS if get_meta(n).macs is not None])
def test_macs_match_torchvision(name):
    assert _macs(get_model(name)) == pytest.approx(get_meta(name).macs.value, abs=0.005e9)


def test_vgg16_macs_as_arithmetic():
    conv = (
        (3 * 3 * 3) * 64 * 224 * 224 + (3 * 3 * 64) * 64 * 224 * 224
        + (3 * 3 * 64) * 128 * 112 * 112 + (3 * 3 * 128) * 128 * 112 * 112
        + (3 * 3 * 128) * 256 * 56 * 56 + 2 * (3 * 3 * 256) * 256 * 56 * 56
        + (3 * 3 * 256) * 512 * 28 * 28 + 2 * (3 * 3 * 512) * 512 * 28 * 28
        + 3 * (3 * 3 * 512) * 512 * 14 * 14
    )  # fmt: skip
    fc = 7 * 7 * 512 * 4096 + 4096 * 4096 + 4096 * 1000
    assert conv + fc == 15_470_264_320
    assert _macs(get_model("vgg16")) == conv + fc


def test_vgg16_c_has_1x1_convs_in_last_three_stages():
    feats = get_model("vgg16_c").features
    for name, width in [("conv3_3", 256), ("conv4_3", 512), ("conv5_3", 512)]:
        conv = getattr(feats, name)
        assert conv.kernel_size == (1, 1) and conv.padding == (0, 0)
        assert conv.in_channels == conv.out_channels == width
    assert all(getattr(feats, f"conv{s}_1").kernel_size == (3, 3) for s in range(1, 6))


def test_vgg11_lrn_after_first_conv():
    feats = get_model("vgg11_lrn").features
    names = [n for n, _ in feats.named_children()]
    assert names[:4] == ["conv1_1", "relu1_1", "norm1", "pool1"]
    lrn = feats.norm1
    # Krizhevsky et al. 2012: n=5, k=2, alpha=1e-4 (per the paper's formula, i.e. 5e-4 / n), beta=0.75.
    assert (lrn.size, lrn.k, lrn.beta) == (5, 2.0, 0.75)
    assert lrn.alpha / lrn.size == pytest.approx(1e-4)
    assert sum(isinstance(m, nn.LocalResponseNorm) for m in get_model("vgg11").modules()) == 0


def test_bn_variant_structure():
    feats = get_model("vgg16_bn").features
    names = [n for n, _ in feats.named_children()]
    assert names[:4] == ["conv1_1", "bn1_1", "relu1_1", "conv1_2"]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in feats.modules()) == 13


def test_classifier_has_dropout_and_no_adaptive_pool():
    m = get_model("vgg16")
    assert [type(x) for x in m.classifier] == [
        nn.Flatten, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear,
    ]  # fmt: skip
    assert m.classifier.drop6.p == m.classifier.drop7.p == 0.5
    assert not any(isinstance(x, nn.AdaptiveAvgPool2d) for x in m.modules())


# ---- The VGG-16 memory / parameter table of seed 004 ("CNN Architectures", course slides). ----
# One row per layer: (layer, output H*W*C as on the slide, weights "not counting biases" as on the slide).
VGG16_SEED_ROWS = [
    ("conv1_1", 224 * 224 * 64, (3 * 3 * 3) * 64),  # 3,211,264 values, 1,728 weights
    ("conv1_2", 224 * 224 * 64, (3 * 3 * 64) * 64),  # 3,211,264, 36,864
    ("pool1", 112 * 112 * 64, 0),  # 802,816
    ("conv2_1", 112 * 112 * 128, (3 * 3 * 64) * 128),  # 1,605,632, 73,728
    ("conv2_2", 112 * 112 * 128, (3 * 3 * 128) * 128),  # 1,605,632, 147,456
    ("pool2", 56 * 56 * 128, 0),  # 401,408
    ("conv3_1", 56 * 56 * 256, (3 * 3 * 128) * 256),  # 802,816, 294,912
    ("conv3_2", 56 * 56 * 256, (3 * 3 * 256) * 256),  # 802,816, 589,824
    ("conv3_3", 56 * 56 * 256, (3 * 3 * 256) * 256),  # 802,816, 589,824
    ("pool3", 28 * 28 * 256, 0),  # 200,704
    ("conv4_1", 28 * 28 * 512, (3 * 3 * 256) * 512),  # 401,408, 1,179,648
    ("conv4_2", 28 * 28 * 512, (3 * 3 * 512) * 512),  # 401,408, 2,359,296
    ("conv4_3", 28 * 28 * 512, (3 * 3 * 512) * 512),  # 401,408, 2,359,296
    ("pool4", 14 * 14 * 512, 0),  # 100,352
    ("conv5_1", 14 * 14 * 512, (3 * 3 * 512) * 512),  # 100,352, 2,359,296
    ("conv5_2", 14 * 14 * 512, (3 * 3 * 512) * 512),  # 100,352, 2,359,296
    ("conv5_3", 14 * 14 * 512, (3 * 3 * 512) * 512),  # 100,352, 2,359,296
    ("pool5", 7 * 7 * 512, 0),  # 25,088
    ("fc6", 4096, 7 * 7 * 512 * 4096),  # 102,760,448 weights
    ("fc7", 4096, 4096 * 4096),  # 16,777,216
    ("fc8", 1000, 4096 * 1000),  # 4,096,000
]
INPUT_VALUES = 224 * 224 * 3  # the slide's INPUT row: 150,528 ("150K")


def _vgg16_layer_outputs() -> dict[str, int]:
    """Output numel per conv / pool / fc layer of VGG-16, from forward hooks on the meta model."""
    m = get_model("vgg16")
    sizes: dict[str, int] = {}
    handles = []
    try:
        for name, mod in [*m.features.named_children(), *m.classifier.named_children()]:
            if isinstance(mod, (nn.Conv2d, nn.MaxPool2d, nn.Linear)):
                handles.append(
                    mod.register_forward_hook(lambda _m, _i, out, name=name: sizes.__setitem__(name, out[0].numel()))
                )
        m(torch.empty(1, 3, 224, 224, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return sizes


def test_vgg16_seed_table_rows():
    sizes = _vgg16_layer_outputs()
    assert list(sizes) == [row[0] for row in VGG16_SEED_ROWS]
    m = get_model("vgg16")
    layers = dict([*m.features.named_children(), *m.classifier.named_children()])
    for name, values, weights in VGG16_SEED_ROWS:
        assert sizes[name] == values, name
        w = getattr(layers[name], "weight", None)
        assert (0 if w is None else w.numel()) == weights, name


def test_vgg16_seed_table_totals():
    sizes = _vgg16_layer_outputs()
    # The sum of the slide's own rows (input + one output per layer, ReLU applied in place):
    total_values = INPUT_VALUES + sum(v for _, v, _ in VGG16_SEED_ROWS)
    assert total_values == 15_237_608  # ~15.2 M values
    assert INPUT_VALUES + sum(sizes.values()) == total_values
    assert total_values * 4 == 60_950_432  # ~61 MB per image, forward only, float32
    # The slide prints "TOTAL memory: 24M * 4 bytes ~= 96MB / image". That total is not the sum of its
    # rows (even its rounded figures, 150K + 2*3.2M + 800K + ..., add up to ~15.2M), and counting the
    # ReLU outputs as separate tensors gives ~28.8M, not 24M either. We reproduce the row sum,
    # 15,237,608 values = 60,950,432 bytes, and do not assert the slide's 24M / 96MB.
    total_weights = sum(w for _, _, w in VGG16_SEED_ROWS)
    assert total_weights == 138_344_128  # "TOTAL params: 138M" (the slide does not count biases)
    biases = 2 * 64 + 2 * 128 + 3 * 256 + 6 * 512 + 4096 + 4096 + 1000  # 13,416
    assert total_weights + biases == _params(get_model("vgg16")) == 138_357_544


@pytest.mark.parametrize("name", VGG_MODELS)
def test_output_shape_meta(name):
    m = get_model(name, num_classes=10)
    assert m(torch.empty(2, 3, 224, 224, device="meta")).shape == (2, 10)


@pytest.mark.parametrize("bad", [0, -1])
def test_invalid_num_classes(bad):
    with pytest.raises(ModelOptionError):
        get_model("vgg16", num_classes=bad)


def test_meta_sources():
    for name in VGG_MODELS:
        meta = get_meta(name)
        assert meta.input_size == (3, 224, 224)
        for fig in (meta.params, meta.top1, meta.top5):
            assert fig is not None and fig.source


@pytest.mark.slow
@pytest.mark.parametrize("name", VGG_MODELS)
def test_real_forward_cpu(name):
    # 224x224 is the smallest valid input: the classifier expects pool5 to be 7x7x512.
    m = get_model(name, device="cpu").eval()
    with torch.no_grad():
        y = m(torch.randn(1, 3, 224, 224))
    assert y.shape == (1, 1000)
    assert torch.isfinite(y).all()
