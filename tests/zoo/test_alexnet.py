"""AlexNet (Krizhevsky et al. 2012, two towers) and the single-tower "One weird trick" AlexNet."""

import pytest
import torch

from archcost.zoo import get_meta, get_model, list_models
from tests.zoo.helpers import layer_costs, n_params

MODELS = ["alexnet", "alexnet_owt"]


def test_registered():
    assert list_models("alexnet") == MODELS


# Two towers: conv2, conv4 and conv5 see only the 48 / 192 / 192 maps on their own GPU.
ALEXNET = {
    # layer: (parameters, MACs at 227x227)
    "features.conv1": ((11 * 11 * 3 + 1) * 96, (11 * 11 * 3) * 55 * 55 * 96),
    "features.conv2": ((5 * 5 * 48 + 1) * 256, (5 * 5 * 48) * 27 * 27 * 256),
    "features.conv3": ((3 * 3 * 256 + 1) * 384, (3 * 3 * 256) * 13 * 13 * 384),
    "features.conv4": ((3 * 3 * 192 + 1) * 384, (3 * 3 * 192) * 13 * 13 * 384),
    "features.conv5": ((3 * 3 * 192 + 1) * 256, (3 * 3 * 192) * 13 * 13 * 256),
    "classifier.fc6": ((6 * 6 * 256 + 1) * 4096, 6 * 6 * 256 * 4096),
    "classifier.fc7": ((4096 + 1) * 4096, 4096 * 4096),
    "classifier.fc8": ((4096 + 1) * 1000, 4096 * 1000),
}

OWT = {
    # layer: (parameters, MACs at 224x224) for torchvision's single-tower alexnet
    "features.conv1": ((11 * 11 * 3 + 1) * 64, (11 * 11 * 3) * 55 * 55 * 64),
    "features.conv2": ((5 * 5 * 64 + 1) * 192, (5 * 5 * 64) * 27 * 27 * 192),
    "features.conv3": ((3 * 3 * 192 + 1) * 384, (3 * 3 * 192) * 13 * 13 * 384),
    "features.conv4": ((3 * 3 * 384 + 1) * 256, (3 * 3 * 384) * 13 * 13 * 256),
    "features.conv5": ((3 * 3 * 256 + 1) * 256, (3 * 3 * 256) * 13 * 13 * 256),
    "classifier.fc6": ((6 * 6 * 256 + 1) * 4096, 6 * 6 * 256 * 4096),
    "classifier.fc7": ((4096 + 1) * 4096, 4096 * 4096),
    "classifier.fc8": ((4096 + 1) * 1000, 4096 * 1000),
}


@pytest.mark.parametrize("name, table", [("alexnet", ALEXNET), ("alexnet_owt", OWT)])
def test_layer_parameters_and_macs(name, table):
    m = get_model(name)
    macs, _ = layer_costs(m, get_meta(name).input_size)
    for layer, (params, layer_macs) in table.items():
        assert n_params(m.get_submodule(layer)) == params, layer
        assert macs[layer] == layer_macs, layer
    assert n_params(m) == sum(p for p, _ in table.values())
    assert macs[""] == sum(mac for _, mac in table.values())


@pytest.mark.parametrize("name, exact", [("alexnet", 60_965_224), ("alexnet_owt", 61_100_840)])
def test_parameter_count(name, exact):
    assert n_params(get_model(name)) == exact == get_meta(name).params.value


@pytest.mark.parametrize("name", MODELS)
def test_macs_match_published(name):
    macs, _ = layer_costs(get_model(name), get_meta(name).input_size)
    # Sze et al.: 724M; torchvision: 0.714 G. Both rounded to three digits.
    assert macs[""] == pytest.approx(get_meta(name).macs.value, rel=1e-3)


def test_alexnet_neurons_per_layer():
    # Sec. 3.5: "253,440-186,624-64,896-64,896-43,264-4096-4096-1000".
    _, shapes = layer_costs(get_model("alexnet"), (3, 227, 227))
    numel = {k: torch.Size(v).numel() for k, v in shapes.items()}
    assert numel["features.conv2"] == 27 * 27 * 256 == 186_624
    assert numel["features.conv3"] == 13 * 13 * 384 == 64_896
    assert numel["features.conv4"] == 64_896
    assert numel["features.conv5"] == 13 * 13 * 256 == 43_264
    assert [numel[f"classifier.fc{i}"] for i in (6, 7, 8)] == [4096, 4096, 1000]
    # The paper's first figure is not reproducible: conv1 has 55 x 55 x 96 units, not 253,440.
    assert numel["features.conv1"] == 55 * 55 * 96 == 290_400


def test_alexnet_structure():
    m = get_model("alexnet")
    assert [m.features.get_submodule(f"conv{i}").groups for i in range(1, 6)] == [1, 2, 1, 2, 2]
    for norm in (m.features.norm1, m.features.norm2):
        # Paper's per-term alpha 1e-4; nn.LocalResponseNorm divides its alpha by size.
        assert (norm.size, norm.alpha / norm.size, norm.beta, norm.k) == (5, pytest.approx(1e-4), 0.75, 2.0)
    pools = [m.features.pool1, m.features.pool2, m.features.pool5]
    assert all((p.kernel_size, p.stride) == (3, 2) for p in pools)  # overlapping pooling, Sec. 3.4


def test_alexnet_map_sizes():
    _, shapes = layer_costs(get_model("alexnet"), (3, 227, 227))
    assert shapes["features.conv1"] == (1, 96, 55, 55)
    assert shapes["features.pool1"] == (1, 96, 27, 27)
    assert shapes["features.pool2"] == (1, 256, 13, 13)
    assert shapes["features.pool5"] == (1, 256, 6, 6)


@pytest.mark.parametrize("name", MODELS)
def test_output_shape_and_num_classes(name):
    size = get_meta(name).input_size
    assert get_model(name)(torch.empty(2, *size, device="meta")).shape == (2, 1000)
    assert get_model(name, num_classes=10)(torch.empty(1, *size, device="meta")).shape == (1, 10)


# num_classes=0 and a real CPU forward of each model: tests/zoo/test_all.py, for the whole zoo.
