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


def test_unknown_geometry_stops_the_derivation_and_names_the_layer():
    net = nn.Sequential(nn.Conv2d(1, 1, 3), nn.Upsample(scale_factor=2), nn.Conv2d(1, 1, 3))
    rows = analyze(net, (1, 16, 16)).layers
    assert rows[0].rf == (3, 3)
    assert rows[1].rf is None and rows[1].rf_unknown == "1 (interpolate)"
    assert rows[2].rf is None and rows[2].rf_unknown == "1 (interpolate)"


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
