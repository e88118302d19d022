"""OverFeat fast (Table 1) and accurate (Table 3) models of Sermanet et al. 2014."""

import pytest
import torch

from archcost.zoo import get_meta, get_model, list_models
from tests.zoo.helpers import layer_costs, n_params

MODELS = ["overfeat_accurate", "overfeat_fast"]


def test_registered():
    assert list_models("overfeat") == MODELS


FAST = {
    # Table 1, layer: (parameters, MACs at 231x231, output map size)
    "features.conv1": ((11 * 11 * 3 + 1) * 96, (11 * 11 * 3) * 56 * 56 * 96, 56),
    "features.pool1": (0, 0, 28),
    "features.conv2": ((5 * 5 * 96 + 1) * 256, (5 * 5 * 96) * 24 * 24 * 256, 24),
    "features.pool2": (0, 0, 12),
    "features.conv3": ((3 * 3 * 256 + 1) * 512, (3 * 3 * 256) * 12 * 12 * 512, 12),
    "features.conv4": ((3 * 3 * 512 + 1) * 1024, (3 * 3 * 512) * 12 * 12 * 1024, 12),
    "features.conv5": ((3 * 3 * 1024 + 1) * 1024, (3 * 3 * 1024) * 12 * 12 * 1024, 12),
    "features.pool5": (0, 0, 6),
    "classifier.fc6": ((6 * 6 * 1024 + 1) * 3072, 6 * 6 * 1024 * 3072, None),
    "classifier.fc7": ((3072 + 1) * 4096, 3072 * 4096, None),
    "classifier.fc8": ((4096 + 1) * 1000, 4096 * 1000, None),
}

ACCURATE = {
    # Table 3, layer: (parameters, MACs at 221x221, output map size)
    "features.conv1": ((7 * 7 * 3 + 1) * 96, (7 * 7 * 3) * 108 * 108 * 96, 108),
    "features.pool1": (0, 0, 36),
    "features.conv2": ((7 * 7 * 96 + 1) * 256, (7 * 7 * 96) * 30 * 30 * 256, 30),
    "features.pool2": (0, 0, 15),
    "features.conv3": ((3 * 3 * 256 + 1) * 512, (3 * 3 * 256) * 15 * 15 * 512, 15),
    "features.conv4": ((3 * 3 * 512 + 1) * 512, (3 * 3 * 512) * 15 * 15 * 512, 15),
    "features.conv5": ((3 * 3 * 512 + 1) * 1024, (3 * 3 * 512) * 15 * 15 * 1024, 15),
    "features.conv6": ((3 * 3 * 1024 + 1) * 1024, (3 * 3 * 1024) * 15 * 15 * 1024, 15),
    "features.pool6": (0, 0, 5),
    "classifier.fc7": ((5 * 5 * 1024 + 1) * 4096, 5 * 5 * 1024 * 4096, None),
    "classifier.fc8": ((4096 + 1) * 4096, 4096 * 4096, None),
    "classifier.fc9": ((4096 + 1) * 1000, 4096 * 1000, None),
}


@pytest.mark.parametrize("name, table", [("overfeat_fast", FAST), ("overfeat_accurate", ACCURATE)])
def test_layers_follow_the_table(name, table):
    m = get_model(name)
    macs, shapes = layer_costs(m, get_meta(name).input_size)
    for layer, (params, layer_macs, size) in table.items():
        assert n_params(m.get_submodule(layer)) == params, layer
        assert macs.get(layer, 0) == layer_macs, layer
        if size is not None:
            assert shapes[layer][2:] == (size, size), layer
    assert n_params(m) == sum(row[0] for row in table.values())
    assert macs[""] == sum(row[1] for row in table.values())


@pytest.mark.parametrize("name, exact", [("overfeat_fast", 145_920_872), ("overfeat_accurate", 144_656_488)])
def test_parameter_count(name, exact):
    m = get_model(name)
    assert n_params(m) == exact
    # Table 4 rounds to millions (145 M / 144 M).
    assert n_params(m) == pytest.approx(get_meta(name).params.value, rel=0.01)


@pytest.mark.parametrize("name, exact", [("overfeat_fast", 2_801_403_904), ("overfeat_accurate", 5_355_446_784)])
def test_total_macs(name, exact):
    macs, _ = layer_costs(get_model(name), get_meta(name).input_size)
    assert macs[""] == exact


@pytest.mark.parametrize("name", MODELS)
def test_no_normalisation_and_non_overlapping_pooling(name):
    m = get_model(name)
    assert not any(isinstance(x, torch.nn.LocalResponseNorm) for x in m.modules())
    pools = [x for x in m.modules() if isinstance(x, torch.nn.MaxPool2d)]
    assert pools and all(p.kernel_size == p.stride for p in pools)


@pytest.mark.parametrize("name", MODELS)
def test_output_shape_and_num_classes(name):
    size = get_meta(name).input_size
    assert get_model(name)(torch.empty(2, *size, device="meta")).shape == (2, 1000)
    assert get_model(name, num_classes=200)(torch.empty(1, *size, device="meta")).shape == (1, 200)


# num_classes=0 and a real CPU forward of each model: tests/zoo/test_all.py, for the whole zoo.
