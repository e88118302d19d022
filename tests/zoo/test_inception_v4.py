"""Inception-v4 and Inception-ResNet-v1/v2 (Szegedy et al. 2017, Figures 3-22 and Table 1)."""

import functools

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archcost.errors import ModelOptionError
from archcost.zoo import get_meta, get_model
from archcost.zoo.inception_v4 import ScaledResidual
from tests.zoo.helpers import n_params

NAMES = ["inception_v4", "inception_resnet_v1", "inception_resnet_v2"]


def macs(m: nn.Module, shape: tuple[int, ...]) -> int:
    with FlopCounterMode(display=False) as counter:
        m(torch.empty(1, *shape, device="meta"))
    return counter.get_total_flops() // 2


def bn(*widths: int) -> int:
    return 2 * sum(widths)


@functools.cache
def model(name: str) -> nn.Module:
    """One meta build per model with default options, shared by the read-only tests."""
    return get_model(name)


@functools.cache
def feature_shapes(name: str) -> dict[str, tuple[int, ...]]:
    m = model(name)
    x = torch.empty(1, 3, 299, 299, device="meta")
    shapes = {}
    for stage, layer in m.features.named_children():
        x = layer(x)
        shapes[stage] = tuple(x.shape[1:])
    return shapes


# --------------------------------------------------------------------------------------------------
# Totals
# --------------------------------------------------------------------------------------------------


def test_inception_v4_params_equal_the_reference_ports():
    # timm / Cadene inception_v4 (ports of the TF-slim checkpoint), num_classes=1000
    assert n_params(model("inception_v4")) == 42_679_816 == get_meta("inception_v4").params.value


def test_inception_resnet_v2_params_equal_the_reference_ports():
    m = model("inception_resnet_v2")
    assert n_params(m) == 55_843_464 == get_meta("inception_resnet_v2").params.value


def test_inception_resnet_v1_params_against_facenet():
    # facenet-pytorch InceptionResnetV1: body of 22,564,096 parameters with 6 C blocks (5 + a final
    # unscaled one); Figure 15 has 5. Our body + one more C block must equal it.
    m = model("inception_resnet_v1")
    body = n_params(m.features)
    c_block = n_params(m.features.inception_resnet_c1)
    assert (
        c_block
        == (
            1792 * 192
            + (1792 * 192 + 3 * 192 * 192 + 3 * 192 * 192)  # branches
            + bn(192, 192, 192, 192)
            + (384 * 1792 + 1792)  # "1x1 Conv (1792 Linear)" with bias
        )
        == 1_600_768
    )
    assert body + c_block == 22_564_096
    assert n_params(m) == body + 1792 * 1000 + 1000 == 22_756_328


@pytest.mark.parametrize(
    "name, expected",
    [
        # measured with FlopCounterMode on timm 1.0.31's ports; the paper gives no MAC counts
        ("inception_v4", 12_253_974_624),
        ("inception_resnet_v2", 13_155_794_016),
    ],
)
def test_macs_equal_the_reference_ports(name, expected):
    assert macs(model(name), (3, 299, 299)) == expected


def test_inception_resnet_v1_costs_about_inception_v3():
    # The paper: Inception-ResNet-v1 "has roughly the computational cost of Inception-v3"
    v1 = macs(model("inception_resnet_v1"), (3, 299, 299))
    assert v1 == 6_206_361_696
    assert 0.9 < v1 / 5_713_216_096 < 1.2


# --------------------------------------------------------------------------------------------------
# Grids and widths (Figures 3, 9, 14, 15)
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, stage, shape",
    [
        ("inception_v4", "stem", (384, 35, 35)),  # Figure 3
        ("inception_v4", "inception_a4", (384, 35, 35)),
        ("inception_v4", "reduction_a", (1024, 17, 17)),
        ("inception_v4", "inception_b7", (1024, 17, 17)),
        ("inception_v4", "reduction_b", (1536, 8, 8)),
        ("inception_v4", "inception_c3", (1536, 8, 8)),
        ("inception_resnet_v1", "stem", (256, 35, 35)),  # Figure 14
        ("inception_resnet_v1", "reduction_a", (896, 17, 17)),
        ("inception_resnet_v1", "reduction_b", (1792, 8, 8)),
        ("inception_resnet_v2", "stem", (320, 35, 35)),  # TF-slim, not Figure 3's 384
        ("inception_resnet_v2", "reduction_a", (1088, 17, 17)),  # not the paper's 1152 / 1154
        ("inception_resnet_v2", "reduction_b", (2080, 8, 8)),  # not the paper's 2144 / 2048
        ("inception_resnet_v2", "conv_7b", (1536, 8, 8)),
    ],
)
def test_stage_shapes(name, stage, shape):
    assert feature_shapes(name)[stage] == shape


def test_stem_of_figure_3():
    stem = model("inception_v4").features.stem
    x = torch.empty(1, 3, 299, 299, device="meta")
    shapes = []
    for layer in stem.children():
        x = layer(x)
        shapes.append(tuple(x.shape[1:]))
    assert shapes == [(32, 149, 149), (32, 147, 147), (64, 147, 147), (160, 73, 73), (192, 71, 71), (384, 35, 35)]


@pytest.mark.parametrize(
    "name, counts",
    [
        ("inception_v4", {"inception_a": 4, "inception_b": 7, "inception_c": 3}),  # Figure 9
        ("inception_resnet_v1", {"inception_resnet_a": 5, "inception_resnet_b": 10, "inception_resnet_c": 5}),
        ("inception_resnet_v2", {"inception_resnet_a": 10, "inception_resnet_b": 20, "inception_resnet_c": 10}),
    ],
)
def test_block_counts(name, counts):
    stages = [s for s, _ in model(name).features.named_children()]
    for prefix, count in counts.items():
        assert sum(s.rstrip("0123456789") == prefix for s in stages) == count


# --------------------------------------------------------------------------------------------------
# Blocks, from the figures
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, cin, k, l, m, n",
    [
        # Table 1: number of filters of the Reduction-A module (Figure 7) for the three networks
        ("inception_v4", 384, 192, 224, 256, 384),
        ("inception_resnet_v1", 256, 192, 192, 256, 384),
        ("inception_resnet_v2", 320, 256, 256, 384, 384),
    ],
)
def test_reduction_a_follows_table_1(name, cin, k, l, m, n):  # noqa: E741
    block = model(name).features.reduction_a
    weights = 9 * cin * n + cin * k + 9 * k * l + 9 * l * m
    assert n_params(block) == weights + bn(n, k, l, m)
    # 35x35 -> 17x17; the 1x1 and same 3x3 convs run on 35x35, the stride-2 "V" convs on 17x17
    assert macs(block, (cin, 35, 35)) == 35 * 35 * (cin * k + 9 * k * l) + 17 * 17 * (9 * cin * n + 9 * l * m)
    out = block(torch.empty(1, cin, 35, 35, device="meta"))
    assert out.shape[1:] == (cin + n + m, 17, 17)


def test_inception_a_of_figure_4():
    block = model("inception_v4").features.inception_a1
    weights = 384 * 96 + (384 * 64 + 9 * 64 * 96) + (384 * 64 + 9 * 64 * 96 + 9 * 96 * 96) + 384 * 96
    assert n_params(block) == weights + bn(96, 64, 96, 64, 96, 96, 96)
    assert macs(block, (384, 35, 35)) == 35 * 35 * weights


def test_inception_b_of_figure_5():
    block = model("inception_v4").features.inception_b1
    weights = (
        1024 * 384
        + (1024 * 192 + 7 * 192 * 224 + 7 * 224 * 256)
        + (1024 * 192 + 7 * 192 * 192 + 7 * 192 * 224 + 7 * 224 * 224 + 7 * 224 * 256)
        + 1024 * 128
    )
    assert n_params(block) == weights + bn(384, 192, 224, 256, 192, 192, 224, 224, 256, 128)
    assert macs(block, (1024, 17, 17)) == 17 * 17 * weights


def test_inception_c_of_figure_6():
    block = model("inception_v4").features.inception_c1
    weights = (
        1536 * 256
        + (1536 * 384 + 2 * 3 * 384 * 256)
        + (1536 * 384 + 3 * 384 * 448 + 3 * 448 * 512 + 2 * 3 * 512 * 256)
        + 1536 * 256
    )
    assert macs(block, (1536, 8, 8)) == 8 * 8 * weights
    assert block(torch.empty(1, 1536, 8, 8, device="meta")).shape[1] == 1536


@pytest.mark.parametrize(
    "name, stage, cin, grid, branch_weights, concat",
    [
        # Figure 10: Inception-ResNet-A of v1, "1x1 Conv (256 Linear)"
        (
            "inception_resnet_v1",
            "inception_resnet_a1",
            256,
            35,
            256 * 32 + (256 * 32 + 9 * 32 * 32) + (256 * 32 + 9 * 32 * 32 + 9 * 32 * 32),
            96,
        ),
        # Figure 11: Inception-ResNet-B of v1, "1x1 Conv (896 Linear)"
        (
            "inception_resnet_v1",
            "inception_resnet_b1",
            896,
            17,
            896 * 128 + (896 * 128 + 7 * 128 * 128 + 7 * 128 * 128),
            256,
        ),
        # Figure 16: Inception-ResNet-A of v2 (restores 320 in the release, 384 in the paper)
        (
            "inception_resnet_v2",
            "inception_resnet_a1",
            320,
            35,
            320 * 32 + (320 * 32 + 9 * 32 * 32) + (320 * 32 + 9 * 32 * 48 + 9 * 48 * 64),
            128,
        ),
        # Figure 17: Inception-ResNet-B of v2 (restores 1088 in the release, "1154" in the paper)
        (
            "inception_resnet_v2",
            "inception_resnet_b1",
            1088,
            17,
            1088 * 192 + (1088 * 128 + 7 * 128 * 160 + 7 * 160 * 192),
            384,
        ),
        # Figure 19: Inception-ResNet-C of v2 (restores 2080 in the release, "2048" in the paper)
        (
            "inception_resnet_v2",
            "inception_resnet_c1",
            2080,
            8,
            2080 * 192 + (2080 * 192 + 3 * 192 * 224 + 3 * 224 * 256),
            448,
        ),
    ],
)
def test_residual_blocks(name, stage, cin, grid, branch_weights, concat):
    block = getattr(model(name).features, stage)
    assert isinstance(block, ScaledResidual)
    up = concat * cin  # the linear 1x1 conv back to the input width
    assert macs(block, (cin, grid, grid)) == grid * grid * (branch_weights + up)
    assert n_params(block.up) == up + cin  # with bias, no BN
    assert block(torch.empty(1, cin, grid, grid, device="meta")).shape[1:] == (cin, grid, grid)


@pytest.mark.parametrize(
    "name, scales",
    [
        ("inception_resnet_v1", {"a": 0.17, "b": 0.10, "c": 0.20}),
        ("inception_resnet_v2", {"a": 0.17, "b": 0.10, "c": 0.20}),
    ],
)
def test_residual_scales(name, scales):
    f = model(name).features
    for stage, block in f.named_children():
        if isinstance(block, ScaledResidual):
            letter = stage.rstrip("0123456789")[-1]
            if name == "inception_resnet_v2" and stage == "inception_resnet_c10":
                assert block.scale == 1.0 and isinstance(block.relu, nn.Identity)  # TF-slim's last block8
            else:
                assert block.scale == scales[letter] and isinstance(block.relu, nn.ReLU)


# --------------------------------------------------------------------------------------------------
# Interface
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("num_classes", [1000, 7])
def test_output_shape(name, num_classes):
    m = get_model(name, num_classes=num_classes)
    assert m(torch.empty(2, 3, 299, 299, device="meta")).shape == (2, num_classes)
    assert get_meta(name).input_size == (3, 299, 299)


@pytest.mark.parametrize("name", NAMES)
def test_invalid_num_classes(name):
    with pytest.raises(ModelOptionError):
        get_model(name, num_classes=0)


@pytest.mark.parametrize(
    "name, top1, top5",
    [("inception_v4", 80.0, 95.0), ("inception_resnet_v1", 78.7, 94.5), ("inception_resnet_v2", 80.1, 95.1)],
)
def test_meta_accuracy_is_table_2(name, top1, top5):
    meta = get_meta(name)
    assert (meta.top1.value, meta.top5.value) == (top1, top5)
    assert "Table 2" in meta.top1.source


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_real_forward_on_cpu(name):
    torch.manual_seed(0)
    m = get_model(name, device="cpu").eval()
    with torch.no_grad():
        out = m(torch.randn(1, 3, 75, 75))  # 75x75: the smallest input the valid-padded stems allow
    assert out.shape == (1, 1000)
    assert torch.isfinite(out).all()
