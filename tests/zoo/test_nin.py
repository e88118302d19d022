"""Network in Network: the authors' ImageNet (4 mlpconv) and CIFAR-10 (3 mlpconv) models."""

import pytest
import torch

from archcost.zoo import get_meta, get_model, list_models
from tests.zoo.helpers import layer_costs, n_params

MODELS = ["nin", "nin_cifar"]


def test_registered():
    assert list_models("nin") == MODELS


# Per mlpconv block: (kernel, input channels, (conv, cccp, cccp) widths, output map size)
BLOCKS = {
    "nin": [
        (11, 3, (96, 96, 96), 54),
        (5, 96, (256, 256, 256), 27),
        (3, 256, (384, 384, 384), 13),
        (3, 384, (1024, 1024, 1000), 6),
    ],
    "nin_cifar": [
        (5, 3, (192, 160, 96), 32),
        (5, 96, (192, 192, 192), 16),
        (3, 192, (192, 192, 10), 8),
    ],
}


def block_costs(kernel, cin, widths, size):
    conv, a, b = widths
    params = (kernel * kernel * cin + 1) * conv + (conv + 1) * a + (a + 1) * b
    macs = (kernel * kernel * cin * conv + conv * a + a * b) * size * size
    return params, macs


@pytest.mark.parametrize("name", MODELS)
def test_blocks(name):
    m = get_model(name)
    macs, shapes = layer_costs(m, get_meta(name).input_size)
    for i, block in enumerate(BLOCKS[name], start=1):
        params, block_macs = block_costs(*block)
        assert n_params(m.features.get_submodule(f"mlpconv{i}")) == params
        assert macs[f"features.mlpconv{i}"] == block_macs
        assert shapes[f"features.mlpconv{i}"] == (1, block[2][2], block[3], block[3])
    assert n_params(m) == sum(block_costs(*b)[0] for b in BLOCKS[name])
    assert macs[""] == sum(block_costs(*b)[1] for b in BLOCKS[name])


@pytest.mark.parametrize(
    "name, params, macs",
    [("nin", 7_595_176, 1_100_188_800), ("nin_cifar", 966_986, 222_486_528)],
)
def test_totals(name, params, macs):
    m = get_model(name)
    assert n_params(m) == params
    assert layer_costs(m, get_meta(name).input_size)[0][""] == macs


def test_nin_imagenet_size_matches_readme():
    # "a snapshot of size 29MB": float32 weights, within the readme's rounding.
    assert n_params(get_model("nin")) * 4 / 2**20 == pytest.approx(29, abs=0.5)


@pytest.mark.parametrize("name", MODELS)
def test_no_fully_connected_layers(name):
    m = get_model(name)
    assert not any(isinstance(x, torch.nn.Linear) for x in m.modules())
    assert isinstance(m.global_pool, torch.nn.AdaptiveAvgPool2d)


@pytest.mark.parametrize("name", MODELS)
def test_output_shape_and_num_classes(name):
    meta = get_meta(name)
    assert get_model(name)(torch.empty(2, *meta.input_size, device="meta")).shape == (2, meta.num_classes)
    assert get_model(name, num_classes=7)(torch.empty(1, *meta.input_size, device="meta")).shape == (1, 7)


# num_classes=0 and a real CPU forward of each model: tests/zoo/test_all.py, for the whole zoo.
