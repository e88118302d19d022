"""ZFNet against Fig. 3 of Zeiler & Fergus 2013."""

import pytest
import torch

from archcost.errors import ModelOptionError
from archcost.zoo import get_meta, get_model, list_models
from tests.zoo.helpers import layer_costs, n_params


def test_registered():
    assert list_models("zfnet") == ["zfnet"]


@pytest.mark.parametrize(
    "layer, shape",
    [
        # Fig. 3: 224 -> 110 -> 55 -> 26 -> 13 -> 13 -> 13 -> 13 -> 6
        ("features.conv1", (1, 96, 110, 110)),
        ("features.pool1", (1, 96, 55, 55)),
        ("features.conv2", (1, 256, 26, 26)),
        ("features.pool2", (1, 256, 13, 13)),
        ("features.conv3", (1, 384, 13, 13)),
        ("features.conv4", (1, 384, 13, 13)),
        ("features.conv5", (1, 256, 13, 13)),
        ("features.pool5", (1, 256, 6, 6)),  # "6 . 6 . 256 = 9216 dimensions"
    ],
)
def test_feature_map_sizes(layer, shape):
    _, shapes = layer_costs(get_model("zfnet"), (3, 224, 224))
    assert shapes[layer] == shape


ZFNET = {
    # layer: (parameters, MACs at 224x224)
    "features.conv1": ((7 * 7 * 3 + 1) * 96, (7 * 7 * 3) * 110 * 110 * 96),
    "features.conv2": ((5 * 5 * 96 + 1) * 256, (5 * 5 * 96) * 26 * 26 * 256),
    "features.conv3": ((3 * 3 * 256 + 1) * 384, (3 * 3 * 256) * 13 * 13 * 384),
    "features.conv4": ((3 * 3 * 384 + 1) * 384, (3 * 3 * 384) * 13 * 13 * 384),
    "features.conv5": ((3 * 3 * 384 + 1) * 256, (3 * 3 * 384) * 13 * 13 * 256),
    "classifier.fc6": ((6 * 6 * 256 + 1) * 4096, 6 * 6 * 256 * 4096),
    "classifier.fc7": ((4096 + 1) * 4096, 4096 * 4096),
    "classifier.fc8": ((4096 + 1) * 1000, 4096 * 1000),
}


def test_layer_parameters_and_macs():
    m = get_model("zfnet")
    macs, _ = layer_costs(m, (3, 224, 224))
    for layer, (params, layer_macs) in ZFNET.items():
        assert n_params(m.get_submodule(layer)) == params, layer
        assert macs[layer] == layer_macs, layer
    assert n_params(m) == sum(p for p, _ in ZFNET.values()) == 62_357_608
    assert macs[""] == sum(mac for _, mac in ZFNET.values()) == 1_168_032_896


def test_no_grouping_and_normalisation_after_pooling():
    m = get_model("zfnet")
    assert all(c.groups == 1 for c in m.modules() if isinstance(c, torch.nn.Conv2d))
    names = list(m.features._modules)
    assert names.index("norm1") == names.index("pool1") + 1
    assert names.index("norm2") == names.index("pool2") + 1


def test_output_shape_and_num_classes():
    assert get_model("zfnet")(torch.empty(2, 3, 224, 224, device="meta")).shape == (2, 1000)
    assert get_model("zfnet", num_classes=20)(torch.empty(1, 3, 224, 224, device="meta")).shape == (1, 20)


def test_invalid_num_classes():
    with pytest.raises(ModelOptionError):
        get_model("zfnet", num_classes=-1)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["zfnet"])
def test_real_forward(name):
    meta = get_meta(name)
    m = get_model(name, device="cpu").eval()
    with torch.no_grad():
        y = m(torch.randn(1, *meta.input_size))
    assert y.shape == (1, meta.num_classes)
    assert torch.isfinite(y).all()
