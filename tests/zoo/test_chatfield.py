"""CNN-F / CNN-M / CNN-M-2048 / CNN-S against Table 1 of Chatfield et al. 2014."""

import pytest
import torch

from archcost.zoo import get_model, list_models
from tests.zoo.helpers import layer_costs, n_params

MODELS = ["cnn_f", "cnn_m", "cnn_m_2048", "cnn_s"]


def test_registered():
    assert list_models("chatfield") == MODELS


# Per convolution: (filters, kernel, input channels, output map size at 224x224)
CONVS = {
    "cnn_f": [(64, 11, 3, 54), (256, 5, 64, 27), (256, 3, 256, 13), (256, 3, 256, 13), (256, 3, 256, 13)],
    "cnn_m": [(96, 7, 3, 109), (256, 5, 96, 26), (512, 3, 256, 13), (512, 3, 512, 13), (512, 3, 512, 13)],
    "cnn_s": [(96, 7, 3, 109), (256, 5, 96, 35), (512, 3, 256, 18), (512, 3, 512, 18), (512, 3, 512, 18)],
}
CONVS["cnn_m_2048"] = CONVS["cnn_m"]
# Output map size of each pooling layer.
POOLS = {
    "cnn_f": {"pool1": 27, "pool2": 13, "pool5": 6},
    "cnn_m": {"pool1": 54, "pool2": 13, "pool5": 6},
    "cnn_m_2048": {"pool1": 54, "pool2": 13, "pool5": 6},
    "cnn_s": {"pool1": 37, "pool2": 18, "pool5": 6},  # x3, x2, x3 pooling
}
FC7 = {"cnn_f": 4096, "cnn_m": 4096, "cnn_m_2048": 2048, "cnn_s": 4096}


def expected_costs(name):
    """Parameters and MACs of each weighted layer, from Table 1's arithmetic."""
    rows = {}
    for i, (out, k, cin, size) in enumerate(CONVS[name], start=1):
        rows[f"features.conv{i}"] = ((k * k * cin + 1) * out, (k * k * cin) * size * size * out)
    flat = 6 * 6 * CONVS[name][-1][0]
    fc7 = FC7[name]
    rows["classifier.fc6"] = ((flat + 1) * 4096, flat * 4096)
    rows["classifier.fc7"] = ((4096 + 1) * fc7, 4096 * fc7)
    rows["classifier.fc8"] = ((fc7 + 1) * 1000, fc7 * 1000)
    return rows


@pytest.mark.parametrize("name", MODELS)
def test_layer_parameters_macs_and_sizes(name):
    m = get_model(name)
    macs, shapes = layer_costs(m, (3, 224, 224))
    rows = expected_costs(name)
    for layer, (params, layer_macs) in rows.items():
        assert n_params(m.get_submodule(layer)) == params, layer
        assert macs[layer] == layer_macs, layer
    for i, (out, _, _, size) in enumerate(CONVS[name], start=1):
        assert shapes[f"features.conv{i}"] == (1, out, size, size)
    for pool, size in POOLS[name].items():
        assert shapes[f"features.{pool}"][2:] == (size, size), pool
    assert n_params(m) == sum(p for p, _ in rows.values())
    assert macs[""] == sum(mac for _, mac in rows.values())


@pytest.mark.parametrize(
    "name, params, macs",
    [
        ("cnn_f", 60_834_536, 724_005_632),
        ("cnn_m", 102_908_520, 1_676_172_320),
        ("cnn_m_2048", 92_469_864, 1_665_735_712),
        ("cnn_s", 102_908_520, 2_927_705_120),
    ],
)
def test_totals(name, params, macs):
    m = get_model(name)
    assert n_params(m) == params
    assert layer_costs(m, (3, 224, 224))[0][""] == macs


@pytest.mark.parametrize(
    "name, norms",
    [("cnn_f", {"norm1", "norm2"}), ("cnn_m", {"norm1", "norm2"}), ("cnn_s", {"norm1"})],
)
def test_lrn_placement(name, norms):
    m = get_model(name)
    found = {n for n, x in m.features.named_children() if isinstance(x, torch.nn.LocalResponseNorm)}
    assert found == norms


@pytest.mark.parametrize("name", MODELS)
def test_output_shape_and_num_classes(name):
    assert get_model(name)(torch.empty(2, 3, 224, 224, device="meta")).shape == (2, 1000)
    assert get_model(name, num_classes=20)(torch.empty(1, 3, 224, 224, device="meta")).shape == (1, 20)


# num_classes=0 and a real CPU forward of each model: tests/zoo/test_all.py, for the whole zoo.
