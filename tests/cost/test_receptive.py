"""Receptive fields: the recurrences, merges over the graph, published values, and the gradient check."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import archcost
from archcost.cost import analyze
from archcost.verify.receptive_field import verify


def final(name: str):
    report = analyze(archcost.get_model(name), archcost.get_meta(name).input_size)
    return next(r for r in reversed(report.layers) if r.rf is not None and not r.rf_global)


# Araujo, Norris & Sim, "Computing Receptive Fields of CNNs" (Distill 2019), table of receptive fields
# of the models' last convolutional feature map.
@pytest.mark.parametrize(
    "name, rf",
    [("alexnet", 195), ("vgg16", 212), ("resnet50", 483), ("inception_v3", 1311), ("mobilenet_v1", 315),
     ("inception_resnet_v2", 3039), ("resnet101", 1027), ("resnet152", 1507), ("inception_v4", 2071)],
)  # fmt: skip
def test_published_receptive_fields(name, rf):
    assert final(name).rf == (rf, rf)


def test_recurrences_by_hand():
    # conv 3x3 (r 3, j 1) -> max pool 2/2 (r 3 + 1*1 = 4, j 2) -> conv 3x3 dilation 2 (k_eff 5: r 4 + 4*2 = 12)
    net = nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3, dilation=2), nn.Conv2d(1, 1, 1))
    rows = analyze(net, (1, 32, 32)).layers
    assert [r.rf for r in rows] == [(3, 3), (4, 4), (12, 12), (12, 12)]
    assert [r.rf_stride for r in rows] == [(1, 1), (2, 2), (2, 2), (2, 2)]
    # start: conv k3 p0 -> centre 1; pool k2 p0 -> 1 + 0.5 * 1 = 1.5; dilated conv k_eff 5 -> 1.5 + 2 * 2 = 5.5
    assert [r.rf_start for r in rows] == [(1, 1), (1.5, 1.5), (5.5, 5.5), (5.5, 5.5)]


def test_padding_moves_the_start_and_asymmetric_kernels_differ_per_axis():
    rows = analyze(nn.Sequential(nn.Conv2d(1, 1, (1, 7), padding=(0, 3)), nn.Conv2d(1, 1, 3, 2, 1)), (1, 9, 9)).layers
    assert rows[0].rf == (1, 7) and rows[0].rf_start == (0, 0)
    assert rows[1].rf == (3, 9) and rows[1].rf_stride == (2, 2) and rows[1].rf_start == (0, 0)


class Branches(nn.Module):
    def __init__(self, pad_pool: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, stride=2, padding=1)
        self.pool = nn.MaxPool2d(3, 2, pad_pool, ceil_mode=pad_pool == 0)

    def forward(self, x):
        return torch.cat([self.conv(x), self.pool(x)], 1)


def test_merge_takes_the_widest_path_and_flags_misalignment():
    aligned = analyze(Branches(pad_pool=1), (4, 16, 16)).layers[-1]
    assert aligned.name == "cat" and aligned.rf == (3, 3) and not aligned.rf_misaligned
    shifted = analyze(Branches(pad_pool=0), (4, 16, 16)).layers[-1]
    assert shifted.rf_misaligned  # the unpadded pool's first unit is centred at 1, the conv's at 0


def test_residual_merge_is_the_max_over_paths():
    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(2, 2, 3, padding=1), nn.Conv2d(2, 2, 3, padding=1)

        def forward(self, x):
            return x + self.b(self.a(x))

    add = analyze(Res(), (2, 8, 8)).layers[-1]
    assert add.name == "add" and add.rf == (5, 5)


def test_gating_by_a_global_pool_makes_the_field_global():
    class SE(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 3, padding=1)

        def forward(self, x):
            y = self.conv(x)
            return y * torch.sigmoid(F.adaptive_avg_pool2d(y, 1))

    rows = analyze(SE(), (2, 8, 8)).layers
    assert rows[0].rf == (3, 3) and not rows[0].rf_global
    assert rows[-1].name == "mul" and rows[-1].rf_global


class Roll(nn.Module):
    def forward(self, x):
        return x.roll(1, -1)


def test_unknown_geometry_stops_the_derivation_and_names_the_layer():
    net = nn.Sequential(nn.Conv2d(1, 1, 3), Roll(), nn.Conv2d(1, 1, 3))
    rows = analyze(net, (1, 16, 16)).layers
    assert rows[0].rf == (3, 3)
    assert rows[1].rf is None and rows[1].rf_unknown == "1 (roll)"
    assert rows[2].rf is None and rows[2].rf_unknown == "1 (roll)"


# -- the gradient check --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, layer",
    [
        ("alexnet", None),  # chain, overlapping pooling
        ("resnet20_cifar", None),  # residual, option-A shortcuts (strided slice and zero padding)
        ("googlenet", "inception3b"),  # inception concatenations
        ("densenet_bc_100_12_cifar", "features.denseblock2"),  # dense concatenations
        ("mobilenet_v1_025", "features.block5.pointwise.relu"),  # depthwise separable
    ],
)
def test_gradient_support_equals_analytic_field(name, layer):
    model = archcost.get_model(name, device="cpu")
    check = verify(model, archcost.get_meta(name).input_size, layer)
    assert check.agrees, check


@pytest.mark.slow
@pytest.mark.parametrize("name", ["densenet_bc_100_12_cifar", "resnet50", "squeezenet1_0"])
def test_gradient_support_at_the_last_spatial_layer(name):
    check = verify(archcost.get_model(name, device="cpu"), archcost.get_meta(name).input_size)
    assert check.agrees, check


def test_elementwise_ops_costed_per_element_keep_the_field():
    """sin, comparisons and other per-element ops map each unit to the same position: 3x3 then 3x3 -> 5."""
    import torch
    from torch import nn

    from archcost.cost import analyze

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.c, self.d = nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3)

        def forward(self, x):
            return self.d(torch.sin(self.c(x)) * (x[:, :1, 1:-1, 1:-1] > 0))

    rows = analyze(M(), (3, 16, 16)).layers
    assert rows[-1].rf == (5.0, 5.0) and rows[-1].rf_unknown is None


# -- transposed convolutions, upsampling, 'same' padding, moved axes (issue 25) -------------------------
def test_transposed_conv_by_hand():
    """ConvTranspose2d(k, s, p): output unit o is written by the input units (o + p - t) / s, t in [0, k),
    that are whole (Dumoulin & Visin 2016, section 4). k 2, s 2: unit o reads unit o // 2 alone."""
    net = nn.Sequential(nn.Conv2d(1, 1, 3), nn.ConvTranspose2d(1, 1, 2, 2), nn.Conv2d(1, 1, 3, padding=1))
    conv, up, after = analyze(net, (1, 16, 16)).layers
    assert conv.rf == (3, 3) and conv.rf_pattern is None
    # units 2m and 2m + 1 both see conv unit m: pixels m .. m + 2, a pattern of 2 units, mean jump 1 / 2
    assert up.rf == (3, 3) and up.rf_stride == (0.5, 0.5) and not up.rf_global
    assert up.rf_pattern == ((2, ((0, 2), (0, 2))),) * 2
    assert up.rf_start == (0.75, 0.75)  # mean of centre(u) - u / 2 over the pattern: (1 - 0 + 1 - 0.5) / 2
    # a 3x3 conv (padding 1) after it: unit 0 reads up units -1..1 = conv units -1..0 = pixels -1..2;
    # unit 1 reads up units 0..2 = conv units 0..1 = pixels 0..3: 4 pixels each
    assert after.rf == (4, 4) and after.rf_pattern == ((2, ((-1, 2), (0, 3))),) * 2


@pytest.mark.parametrize(
    "k, s, p, sizes",
    [
        (2, 2, 0, (1, 1)),  # each output unit is written by ceil(2 / 2) = 1 input unit
        (3, 2, 1, (1, 2)),  # units of even o + p read one input unit, the others two: ceil(3 / 2)
        (4, 2, 1, (2, 2)),  # DCGAN's up-convolution: 2 input units everywhere
        (3, 3, 0, (1, 1, 1)),
        (5, 2, 2, (3, 2)),
    ],
)
def test_transposed_conv_units_see_ceil_k_over_s_input_units(k, s, p, sizes):
    up = analyze(nn.ConvTranspose1d(1, 1, k, s, p), (1, 16)).layers[0]
    period, fields = up.rf_pattern[0]
    assert period == s and tuple(hi - lo + 1 for lo, hi in fields) == sizes
    assert up.rf == (max(sizes),) and up.rf_stride == (1 / s,)


class UNet(nn.Module):
    """Two levels: the decoder's units see a bounded field of the input, not the whole of it."""

    def __init__(self) -> None:
        super().__init__()
        self.enc1 = nn.Conv2d(1, 4, 3, padding=1)
        self.down = nn.Conv2d(4, 8, 3, stride=2, padding=1)
        self.bottom = nn.Conv2d(8, 8, 3, padding=1)
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.dec = nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x):
        a = self.enc1(x)
        return self.dec(torch.cat([a, self.up(self.bottom(self.down(a)))], 1))


def test_unet_decoder_field_is_finite_and_checked_by_the_gradient():
    rows = {r.name: r for r in analyze(UNet(), (1, 32, 32)).layers}
    assert not rows["up"].rf_global and rows["up"].rf_unknown is None
    # enc1 3 -> down (j 1) 5 -> bottom (j 2) 9 -> up: one bottom unit -> 9; dec: three units of the merge
    assert rows["up"].rf == (9, 9) and rows["dec"].rf is not None and not rows["dec"].rf_global
    for layer in ("up", "dec"):
        check = verify(UNet(), (1, 32, 32), layer)
        assert check.agrees, check


@pytest.mark.parametrize(
    "net",
    [
        nn.Sequential(nn.Conv2d(1, 2, 3), nn.ConvTranspose2d(2, 2, 3, 2, padding=1, output_padding=1)),
        nn.Sequential(nn.Conv2d(1, 2, 5, stride=4), nn.ConvTranspose2d(2, 2, 4, 2, 1), nn.Conv2d(2, 2, 3)),
        nn.Sequential(nn.Conv2d(1, 2, 3), nn.ConvTranspose2d(2, 2, 3, 3, dilation=2), nn.Conv2d(2, 2, 3)),
        nn.Sequential(nn.Conv2d(1, 2, 3, stride=2), nn.Upsample(scale_factor=2), nn.Conv2d(2, 2, 3)),
        nn.Sequential(nn.Conv2d(1, 2, 3), nn.Upsample(scale_factor=2, mode="bilinear"), nn.Conv2d(2, 2, 3)),
        nn.Sequential(nn.Conv2d(1, 2, 3), nn.Upsample(scale_factor=3, mode="bilinear"), nn.Conv2d(2, 2, 3)),
        nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveAvgPool2d(5), nn.Conv2d(2, 2, 3)),  # windows of 3 and 4
    ],
    ids=["tconv-k3s2p1", "tconv-k4s2p1", "tconv-dilated", "nearest", "bilinear-x2", "bilinear-x3", "adaptive"],
)
def test_gradient_support_agrees_after_upsampling(net):
    for layer in [str(i) for i in range(len(net))]:
        check = verify(net, (1, 20, 20), layer)
        assert check.agrees, (layer, check)


def test_same_padding_with_an_even_kernel_pads_the_smaller_half_first():
    """torch pads d * (k - 1) in all, total // 2 before: a 4-wide kernel sees u - 1 .. u + 2 (centre u + 0.5)."""
    net = nn.Sequential(
        nn.Conv2d(1, 2, 4, padding="same"), nn.Conv2d(2, 2, 2, padding="same", dilation=3),
        nn.Conv2d(2, 2, (2, 5), padding="same"),
    )  # fmt: skip
    rows = analyze(net, (1, 16, 16)).layers
    assert rows[0].rf == (4, 4) and rows[0].rf_start == (0.5, 0.5)
    # dilation 3, k 2: total 3, 1 before: taps u - 1 and u + 2 -> pixels u - 2 .. u + 4 (7, centre u + 1)
    assert rows[1].rf == (7, 7) and rows[1].rf_start == (1, 1)
    assert rows[2].rf == (8, 11) and rows[2].rf_start == (1.5, 1)
    for layer in ("0", "1", "2"):
        check = verify(net, (1, 16, 16), layer)
        assert check.agrees, (layer, check)


def test_axes_follow_a_squeeze_from_conv3d_to_conv2d():
    class Squeezed(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv3d(3, 4, 3), nn.Conv2d(4, 4, 3)

        def forward(self, x):  # (1, 3, 3, 16, 16) -> conv3d -> (1, 4, 1, 14, 14) -> squeeze(2) -> conv2d
            return self.b(self.a(x).squeeze(2))

    rows = analyze(Squeezed(), (3, 3, 16, 16)).layers
    # depth: the one unit left sees 3 frames (no more units along it: jump 0); height, width: 3 + 2 = 5
    assert rows[-1].rf == (3, 5, 5) and rows[-1].rf_stride == (0, 1, 1) and rows[-1].rf_unknown is None


def test_axes_follow_permutes_and_channels_last_linear_layers():
    """A ConvNeXt block: depthwise 7x7, then LayerNorm and Linear on channels-last, then back."""

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.dw = nn.Conv2d(8, 8, 7, padding=3, groups=8)
            self.norm, self.fc = nn.LayerNorm(8), nn.Linear(8, 8)
            self.next = nn.Conv2d(8, 8, 3, stride=2)

        def forward(self, x):
            y = self.fc(self.norm(self.dw(x).permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
            return self.next(x + y)

    rows = analyze(Block(), (8, 16, 16)).layers
    assert rows[-1].rf == (9, 9) and rows[-1].rf_stride == (2, 2) and rows[-1].rf_start == (1, 1)
    assert rows[-1].rf_unknown is None


@pytest.mark.parametrize(
    "forward, rf, unknown",
    [
        (lambda x: x.flatten(2).transpose(1, 2), None, "flatten that mixes spatial axes"),  # ViT tokens
        (lambda x: x.unsqueeze(1).squeeze(1), (3, 3), None),
        (lambda x: x.movedim(1, -1).movedim(-1, 1), (3, 3), None),
        (lambda x: x.view(1, 2, 2, 14, 14).reshape(1, 4, 14, 14), (3, 3), None),  # channels split and merged
        (lambda x: x[..., 2:, :], (3, 3), None),
        (lambda x: x.select(2, 5), (3, 3), None),  # height indexed away at unit 5
        (lambda x: x[:, :, torch.tensor([0, 3])], None, "getitem with a tensor index on a spatial axis"),
        (lambda x: torch.cat([x, x], 3), None, "cat along a spatial axis"),
    ],
)
def test_moved_axes_are_followed_or_stop_the_field(forward, rf, unknown):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)

        def forward(self, x):
            return forward(self.conv(x))

    last = analyze(Net(), (1, 16, 16)).layers[-1]
    assert last.rf == rf
    assert (last.rf_unknown or "").endswith(f"({unknown})" if unknown else "")


def test_a_flatten_into_features_is_global_whatever_the_map_size():
    """LeNet-5's C5 leaves a 1x1 map: flattening it is global, as flattening a larger map is."""
    rows = {r.name: r for r in analyze(archcost.get_model("lenet5"), (1, 32, 32)).layers}
    assert rows["features.c5_act"].rf == (32, 32) and not rows["features.c5_act"].rf_global
    assert rows["classifier.flatten"].rf_global


def test_geometry_that_cannot_read_its_arguments_is_unknown_not_a_crash():
    from archcost.cost.receptive import Unknown, step_of

    step = step_of("permute", (torch.zeros(1, 2, 3, 4), "nchw"), {}, (1, 2, 3, 4), (1, 2, 3, 4), 2)
    assert isinstance(step, Unknown) and step.op.startswith("permute: its arguments could not be read")
