"""Memory: liveness peak by hand on small graphs, training arithmetic, and against CPU measurements."""

import pytest
import torch
from torch import nn

import archcost
from archcost.cost import analyze
from archcost.cost.memory import estimate, inference_peak, liveness_peak
from archcost.profiling.memory import measure_inference_peak

MB = 4 * 8 * 16 * 16  # bytes of one 1x8x16x16 float32 map


def test_chain_frees_a_tensor_after_its_last_consumer():
    net = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1))
    peak, where = inference_peak(analyze(net, (8, 16, 16)))
    # input (held by the caller) + the output being written + the one it reads
    assert peak == 3 * MB and where == "1"


def test_in_place_and_views_allocate_nothing():
    net = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(inplace=True), nn.Flatten())
    report = analyze(net, (8, 16, 16))
    assert [r.alias_of for r in report.layers] == [None, 0, 0]
    assert inference_peak(report)[0] == 2 * MB


def test_a_residual_keeps_its_input_alive():
    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(8, 8, 1)
            self.a, self.b = nn.Conv2d(8, 8, 1), nn.Conv2d(8, 8, 1)

        def forward(self, x):
            y = self.stem(x)
            return y + self.b(self.a(y))

    # while b runs: input, y (kept for the add), a's output, b's output
    assert inference_peak(analyze(Res(), (8, 16, 16)))[0] == 4 * MB


def test_training_estimate_arithmetic():
    net = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(inplace=True))
    report = analyze(net, (8, 16, 16), batch_size=2)
    params = (8 * 8 * 9 + 8) * 4
    adam, sgd = estimate(report, "adam"), estimate(report, "sgd")
    assert adam.param_bytes == adam.gradient_bytes == params and adam.optimizer_bytes == 2 * params
    assert sgd.optimizer_bytes == 0 and estimate(report, "momentum").optimizer_bytes == params
    assert adam.training_activation_bytes == 2 * MB + 2 * MB  # input + conv output (the ReLU writes in place)
    with pytest.raises(ValueError):
        estimate(report, "lamb")


def test_python_lifetimes_are_followed_not_just_last_use():
    class KeepsALocal(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Conv2d(8, 8, 1), nn.Conv2d(8, 8, 1), nn.Conv2d(8, 8, 1)

        def forward(self, x):
            y = self.a(x)
            z = self.b(y)  # y is dead after b, but the variable keeps it until forward returns
            return self.c(z)

    report = analyze(KeepsALocal(), (8, 16, 16))
    assert inference_peak(report) == (4 * MB, "c")  # input, y, z, c's output
    assert liveness_peak(report)[0] == 3 * MB  # the ideal: y freed after b


def test_batch_and_dtype_scale_the_peak():
    net = archcost.get_model("resnet20_cifar")
    one = inference_peak(analyze(net, (3, 32, 32)))[0]
    assert inference_peak(analyze(net, (3, 32, 32), batch_size=8))[0] == 8 * one
    assert inference_peak(analyze(net, (3, 32, 32), dtype="float16"))[0] * 2 == one


#: models whose CPU kernels hold extra buffers for a moment that archcost's estimate (built from the tensors the
#: ops return) does not model, seen by the one measured method (every allocation the CPU allocator reports, in
#: time order): squeezenet1_1's first convolution holds two 2x64x111x111 float32 blocks (6,308,352 bytes each)
#: at once, measured 12,616,704 against 9,680,000 estimated; densenet_bc_100_12_cifar 6,391,808 against
#: 4,423,680. A known gap of the estimate (it reads low there), asserted as such so that closing it shows.
KERNEL_TRANSIENTS = {"densenet_bc_100_12_cifar", "squeezenet1_1"}


@pytest.mark.parametrize(
    "name", ["resnet20_cifar", "alexnet", "mobilenet_v1_025", "densenet_bc_100_12_cifar", "squeezenet1_1"]
)
def test_estimate_against_the_measured_cpu_peak(name):
    model = archcost.get_model(name, device="cpu")
    size = archcost.get_meta(name).input_size
    measured = measure_inference_peak(model, torch.randn(2, *size)).above_bytes
    est = estimate(analyze(model, size, batch_size=2))
    predicted = est.inference_peak_activation_bytes - est.input_bytes  # the input existed before measuring
    if name in KERNEL_TRANSIENTS:
        assert predicted < 0.85 * measured, (predicted, measured)  # the known gap; fails when it closes
    else:
        assert abs(predicted - measured) <= 0.15 * measured, (predicted, measured)


def test_output_mem_counts_new_storage_not_views_or_in_place_results():
    """The "Output mem" column (``activation_bytes``) sums new storage: a Mamba-style block's views,
    slices, chunks and in-place updates allocate nothing (issue 25: 18.3 GB of a 24.79 GB total were such
    rows, against a 147 MB peak)."""

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(16, 64)

        def forward(self, x):  # x: (1, 32, 16)
            xz = self.proj(x)  # new: 1 * 32 * 64 floats
            h = xz.view(1, 32, 2, 32).transpose(1, 2)  # views
            a, b = h.chunk(2, dim=1)  # views
            head = xz[..., :16]  # a view
            a.mul_(2.0)  # in place
            return (a + b).sum(-1), head.contiguous()  # new: 1*1*32*32 + 1*1*32 floats; contiguous of head is new

    report = analyze(Block(), (32, 16))
    rows = {r.type: r for r in report.layers}
    new = 4 * (32 * 64 + 32 * 32 + 32 + 32 * 16)  # proj, the add, its sum, head.contiguous()
    assert report.totals["activation_bytes"] == new
    views = {r.type: r.view_bytes for r in report.layers if r.view_bytes}
    assert views == {
        "view": 4 * 32 * 64,
        "transpose": 4 * 32 * 64,
        "chunk": 4 * 32 * 64,  # two halves
        "getitem": 4 * 32 * 16,
        "mul": 4 * 32 * 32,  # mul_: op names drop the in-place underscore
    }
    assert all(r.activation_bytes == 0 for r in report.layers if r.type in views)
    assert rows["add"].view_bytes == 0 and rows["add"].activation_bytes == 4 * 32 * 32


def test_a_module_passing_its_input_through_counts_only_what_it_allocates():
    class Both(nn.Module):
        def forward(self, x):
            return x, x * 2

    net = nn.Sequential(nn.Conv2d(8, 8, 1), nn.Flatten(0, 0), Both())
    report = analyze(net, (8, 16, 16))
    assert [(r.activation_bytes, r.view_bytes) for r in report.layers] == [(MB, 0), (0, MB), (MB, MB)]


@pytest.mark.parametrize(
    ("name", "views"),
    [
        ("lenet5", {"Flatten": 4 * 120}),  # the 120-vector of C5 flattened
        ("alexnet", {"ReLU": 2_633_088, "Flatten": 4 * 256 * 6 * 6}),  # ReLU(inplace=True) writes on its input
    ],
)
def test_zoo_views_are_listed_apart(name, views):
    report = analyze(archcost.get_model(name), archcost.get_meta(name).input_size)
    listed: dict[str, int] = {}
    for r in report.layers:
        if r.view_bytes:
            listed[r.type] = listed.get(r.type, 0) + r.view_bytes
            assert r.activation_bytes == 0
    assert listed == views
