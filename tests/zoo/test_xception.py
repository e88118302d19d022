"""Xception (Chollet 2017): Table 3's parameter count, Figure 5's shapes, the Keras reference's layers."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archcost.errors import ModelOptionError
from archcost.zoo import get_meta, get_model
from archcost.zoo.xception import SeparableConv2d, XceptionBlock


def _sep(c_in: int, c_out: int) -> int:
    """Separable conv (depthwise 3x3 + pointwise 1x1, no biases) and its BN's weight and bias."""
    return 3 * 3 * c_in + c_in * c_out + 2 * c_out


def _shortcut(c_in: int, c_out: int) -> int:
    return c_in * c_out + 2 * c_out  # strided 1x1 conv, no bias, + BN


PARAMS = (
    (3 * 3 * 3) * 32 + 2 * 32 + (3 * 3 * 32) * 64 + 2 * 64  # block1: two 3x3 convs + BN
    + _sep(64, 128) + _sep(128, 128) + _shortcut(64, 128)  # block2
    + _sep(128, 256) + _sep(256, 256) + _shortcut(128, 256)  # block3
    + _sep(256, 728) + _sep(728, 728) + _shortcut(256, 728)  # block4
    + 8 * 3 * _sep(728, 728)  # middle flow, repeated 8 times
    + _sep(728, 728) + _sep(728, 1024) + _shortcut(728, 1024)  # block13
    + _sep(1024, 1536) + _sep(1536, 2048)  # block14
    + 2048 * 1000 + 1000  # logistic regression
)  # fmt: skip


def test_params_match_table3_exactly():
    m = get_model("xception")
    assert PARAMS == 22_855_952  # Chollet 2017, Table 3
    assert sum(p.numel() for p in m.parameters()) == PARAMS == get_meta("xception").params.value


def test_keras_reference_counts():
    # Keras' model summary: "Total params: 22,910,480 / Trainable params: 22,855,952 /
    # Non-trainable params: 54,528". The non-trainable ones are BN's moving mean and variance,
    # which PyTorch keeps as buffers, so our parameter count is Keras' trainable count.
    m = get_model("xception")
    moving = sum(b.numel() for name, b in m.named_buffers() if name.endswith(("running_mean", "running_var")))
    assert moving == 54_528
    assert PARAMS + moving == 22_910_480
    # A few rows of the Keras summary (its layer names): weights of single layers.
    assert m.entry_flow.block1.conv1.weight.numel() == 3 * 3 * 3 * 32 == 864  # block1_conv1
    sep = m.entry_flow.block2.body.sepconv1  # block2_sepconv1: 8,768
    assert sum(p.numel() for p in sep.parameters()) == 3 * 3 * 64 + 64 * 128 == 8_768
    sep = m.exit_flow.block14.sepconv2  # block14_sepconv2: 3,159,552
    assert sum(p.numel() for p in sep.parameters()) == 3 * 3 * 1536 + 1536 * 2048 == 3_159_552
    assert sum(p.numel() for p in m.fc.parameters()) == 2_049_000  # predictions (Dense)


def test_structure_as_the_paper():
    m = get_model("xception")
    seps = [x for x in m.modules() if isinstance(x, SeparableConv2d)]
    stem = [m.entry_flow.block1.conv1, m.entry_flow.block1.conv2]
    # "36 convolutional layers forming the feature extraction base" (shortcut 1x1 convs not counted),
    # "structured into 14 modules, all of which have linear residual connections around them,
    # except for the first and last modules".
    assert len(seps) + len(stem) == 36
    assert sum(isinstance(x, XceptionBlock) for x in m.modules()) == 12
    for s in seps:
        # No non-linearity between depthwise and pointwise; depth multiplier 1.
        assert [type(c) for c in s.children()] == [nn.Conv2d, nn.Conv2d]
        assert s.depthwise.groups == s.depthwise.in_channels == s.depthwise.out_channels
        assert s.depthwise.kernel_size == (3, 3) and s.pointwise.kernel_size == (1, 1)
        assert s.depthwise.bias is None and s.pointwise.bias is None
    # Every conv and separable conv is followed by batch normalisation.
    for seq in [x for x in m.modules() if isinstance(x, nn.Sequential)]:
        kids = list(seq.children())
        for a, b in zip(kids[:-1], kids[1:], strict=True):
            if isinstance(a, (nn.Conv2d, SeparableConv2d)):
                assert isinstance(b, nn.BatchNorm2d)
    assert m.dropout.p == 0.5  # Sect. 4.3
    # The middle flow's shortcut is the identity, the downsampling blocks' a strided 1x1 conv.
    assert all(b.shortcut is None for b in m.middle_flow)
    assert m.exit_flow.block13.shortcut.conv.stride == (2, 2)


# Figure 5's feature-map sizes at 299x299, read with forward hooks on the meta model.
SHAPES = [
    ("entry_flow.block1", (64, 147, 147)),
    ("entry_flow.block2", (128, 74, 74)),
    ("entry_flow.block3", (256, 37, 37)),
    ("entry_flow.block4", (728, 19, 19)),  # "19x19x728 feature maps" into the middle flow
    ("middle_flow", (728, 19, 19)),
    ("exit_flow.block13", (1024, 10, 10)),
    ("exit_flow.block14", (2048, 10, 10)),  # "2048-dimensional vectors" after global pooling
    ("fc", (1000,)),
]


def test_feature_map_sizes():
    m = get_model("xception")
    got: dict[str, tuple[int, ...]] = {}
    handles = []
    try:
        for name, _ in SHAPES:
            hook = lambda _m, _i, out, name=name: got.__setitem__(name, tuple(out.shape[1:]))  # noqa: E731
            handles.append(m.get_submodule(name).register_forward_hook(hook))
        m(torch.empty(1, 3, 299, 299, device="meta"))
    finally:
        for h in handles:
            h.remove()
    assert got == dict(SHAPES)


def _sep_macs(c_in: int, c_out: int, hw: int) -> int:
    return (3 * 3 * c_in + c_in * c_out) * hw  # depthwise + pointwise at stride 1


MACS = (
    (3 * 3 * 3) * 32 * 149 * 149 + (3 * 3 * 32) * 64 * 147 * 147
    + _sep_macs(64, 128, 147 * 147) + _sep_macs(128, 128, 147 * 147) + 64 * 128 * 74 * 74
    + _sep_macs(128, 256, 74 * 74) + _sep_macs(256, 256, 74 * 74) + 128 * 256 * 37 * 37
    + _sep_macs(256, 728, 37 * 37) + _sep_macs(728, 728, 37 * 37) + 256 * 728 * 19 * 19
    + 8 * 3 * _sep_macs(728, 728, 19 * 19)
    + _sep_macs(728, 728, 19 * 19) + _sep_macs(728, 1024, 19 * 19) + 728 * 1024 * 10 * 10
    + _sep_macs(1024, 1536, 10 * 10) + _sep_macs(1536, 2048, 10 * 10)
    + 2048 * 1000
)  # fmt: skip


def test_macs_as_arithmetic():
    # The paper publishes no operation count; this is the arithmetic of Figure 5 at 299x299 (8.36 G).
    with FlopCounterMode(display=False) as counter:
        get_model("xception")(torch.empty(1, 3, 299, 299, device="meta"))
    assert counter.get_total_flops() // 2 == MACS == 8_357_403_496
    assert get_meta("xception").macs is None


@pytest.mark.parametrize("num_classes", [1000, 17])
def test_output_shape_meta(num_classes):
    m = get_model("xception", num_classes=num_classes)
    assert m(torch.empty(2, 3, 299, 299, device="meta")).shape == (2, num_classes)


def test_invalid_num_classes():
    with pytest.raises(ModelOptionError):
        get_model("xception", num_classes=0)


def test_meta():
    meta = get_meta("xception")
    assert meta.input_size == (3, 299, 299)
    assert (meta.top1.value, meta.top5.value) == (79.0, 94.5)


@pytest.mark.slow
def test_real_forward_cpu():
    # 71x71 is the Keras reference's minimum input size (global average pooling takes any size).
    m = get_model("xception", device="cpu").eval()
    with torch.no_grad():
        y = m(torch.randn(1, 3, 71, 71))
    assert y.shape == (1, 1000)
    assert torch.isfinite(y).all()
