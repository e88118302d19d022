"""LeNet-5 against LeCun et al. 1998, Sec. II-B: parameters and connections layer by layer."""

import pytest
import torch

from archcost.errors import ModelOptionError
from archcost.zoo import get_meta, get_model, list_models
from archcost.zoo.lenet import C3_TABLE, ConnectionTableConv2d, EuclideanRBF, Subsampling
from tests.zoo.helpers import layer_units, n_params


def test_registered():
    assert list_models("lenet") == ["lenet5"]


def test_parameter_count():
    m = get_model("lenet5")
    assert n_params(m) == 60_840 == get_meta("lenet5").params.value
    # "60,000 trainable free parameters": the RBF centres are set by hand and kept fixed.
    assert sum(p.numel() for p in m.parameters() if p.requires_grad) == 60_000


@pytest.mark.parametrize(
    "layer, expected",
    [
        ("features.c1", (5 * 5 * 1 + 1) * 6),  # 156
        ("features.s2", 2 * 6),  # 12: one coefficient and one bias per map
        ("features.c3", 25 * 60 + 16),  # 1,516: 60 S2->C3 map connections in Table I
        ("features.s4", 2 * 16),  # 32
        ("features.c5", (5 * 5 * 16 + 1) * 120),  # 48,120
        ("classifier.f6", (120 + 1) * 84),  # 10,164
        ("classifier.output", 84 * 10),  # 840 hand-set RBF parameters
    ],
)
def test_layer_parameters(layer, expected):
    assert n_params(get_model("lenet5").get_submodule(layer)) == expected


@pytest.mark.parametrize(
    "layer, expected",
    [
        ("features.c1", (5 * 5 * 1 + 1) * 28 * 28 * 6),  # 122,304
        ("features.s2", (2 * 2 + 1) * 14 * 14 * 6),  # 5,880
        ("features.c3", (25 * 60 + 16) * 10 * 10),  # 151,600
        ("features.s4", (2 * 2 + 1) * 5 * 5 * 16),  # 2,000
        ("features.c5", (5 * 5 * 16 + 1) * 120),  # 48,120
        ("classifier.f6", (120 + 1) * 84),  # 10,164
    ],
)
def test_layer_connections(layer, expected):
    # A connection is one multiply-add of an output unit with one of its inputs, plus its bias.
    macs, units = layer_units(get_model("lenet5"), (1, 32, 32))
    assert macs[layer] + units[layer] == expected


def test_total_connections():
    macs, units = layer_units(get_model("lenet5"), (1, 32, 32))
    with_bias = ["features.c1", "features.s2", "features.c3", "features.s4", "features.c5", "classifier.f6"]
    total = sum(macs[k] + units[k] for k in with_bias) + macs["classifier.output"]
    assert total == 340_908  # Sec. II-B
    assert macs["classifier.output"] == 84 * 10


def test_total_macs():
    macs, _ = layer_units(get_model("lenet5"), (1, 32, 32))
    assert macs[""] == (
        25 * 28 * 28 * 6  # C1
        + 4 * 14 * 14 * 6  # S2
        + 25 * 60 * 10 * 10  # C3
        + 4 * 5 * 5 * 16  # S4
        + 25 * 16 * 120  # C5
        + 120 * 84  # F6
        + 84 * 10  # RBF
    )


def test_c3_connection_table_matches_table_i():
    # Table I, one row per S2 map: the C3 maps it feeds.
    rows = {
        0: {0, 4, 5, 6, 9, 10, 11, 12, 14, 15},
        1: {0, 1, 5, 6, 7, 10, 11, 12, 13, 15},
        2: {0, 1, 2, 6, 7, 8, 11, 13, 14, 15},
        3: {1, 2, 3, 6, 7, 8, 9, 12, 14, 15},
        4: {2, 3, 4, 7, 8, 9, 10, 12, 13, 15},
        5: {3, 4, 5, 8, 9, 10, 11, 13, 14, 15},
    }
    columns = [inputs for _, maps in C3_TABLE for inputs in maps]
    assert len(columns) == 16
    for s2 in range(6):
        assert {c3 for c3, inputs in enumerate(columns) if s2 in inputs} == rows[s2]


def test_feature_map_sizes():
    _, units = layer_units(get_model("lenet5"), (1, 32, 32))
    assert units["features.c1"] == 6 * 28 * 28
    assert units["features.s2"] == 6 * 14 * 14
    assert units["features.c3"] == 16 * 10 * 10
    assert units["features.s4"] == 16 * 5 * 5
    assert units["features.c5"] == 120


def test_output_shape_and_num_classes():
    m = get_model("lenet5")
    assert m(torch.empty(3, 1, 32, 32, device="meta")).shape == (3, 10)
    m = get_model("lenet5", num_classes=26)
    assert m(torch.empty(2, 1, 32, 32, device="meta")).shape == (2, 26)
    assert n_params(m) == 60_000 + 84 * 26


def test_invalid_num_classes():
    with pytest.raises(ModelOptionError):
        get_model("lenet5", num_classes=0)


def test_connection_table_rejects_mixed_fan_in():
    with pytest.raises(ValueError):
        ConnectionTableConv2d(6, (("bad", ((0, 1), (0, 1, 2))),), kernel_size=5)


@pytest.mark.slow
def test_subsampling_is_scaled_window_sum_plus_bias():
    layer = Subsampling(3)
    x = torch.randn(2, 3, 4, 4)
    expected = x.unfold(2, 2, 2).unfold(3, 2, 2).sum((-1, -2)) * layer.weight.view(1, 3, 1, 1)
    expected = expected + layer.bias.view(1, 3, 1, 1)
    torch.testing.assert_close(layer(x), expected)


@pytest.mark.slow
def test_connection_table_conv_reads_only_its_inputs():
    layer = ConnectionTableConv2d(6, C3_TABLE, kernel_size=5)
    x = torch.randn(1, 6, 14, 14)
    y = layer(x)
    x2 = x.clone()
    x2[:, 3] += 1.0  # S2 map 3 feeds C3 maps 1-3, 6-9, 12, 14, 15 only
    changed = (layer(x2) - y).abs().amax(dim=(0, 2, 3)) > 0
    assert changed.nonzero().flatten().tolist() == [1, 2, 3, 6, 7, 8, 9, 12, 14, 15]


@pytest.mark.slow
def test_rbf_is_squared_euclidean_distance():
    layer = EuclideanRBF(84, 10)
    x = torch.randn(4, 84)
    expected = ((x[:, None, :] - layer.centers[None]) ** 2).sum(-1)
    torch.testing.assert_close(layer(x), expected, rtol=1e-4, atol=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lenet5"])
def test_real_forward(name):
    meta = get_meta(name)
    m = get_model(name, device="cpu").eval()
    with torch.no_grad():
        y = m(torch.randn(1, *meta.input_size))
    assert y.shape == (1, meta.num_classes)
    assert torch.isfinite(y).all()
