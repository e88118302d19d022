"""Huge inputs are cheap: the analysis runs on the meta device and never allocates activations."""

import resource

import archcost
from archcost.cost import analyze


def test_vgg16_features_at_batch_4096_and_1024_squared():
    # VGG-16 as the paper defines it has fixed 7x7x512 -> 4096 fully connected layers, so only its
    # convolutional part takes a 1024x1024 image; that is where the work and the activations are.
    features = archcost.get_model("vgg16").features
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    report = analyze(features, (3, 1024, 1024), batch_size=4096)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    single = analyze(features, (3, 1024, 1024)).totals["macs"]
    assert report.totals["macs"] == 4096 * single
    assert single > 300e9  # about (1024 / 224)^2 times the 15.3 G of a 224 image
    # new outputs per image (the in-place ReLUs allocate none): 13 convolutions and 5 poolings
    outputs = (
        2 * 64 * 1024**2 + 64 * 512**2 + 2 * 128 * 512**2 + 128 * 256**2 + 3 * 256 * 256**2 + 256 * 128**2
        + 3 * 512 * 128**2 + 512 * 64**2 + 3 * 512 * 64**2 + 512 * 32**2
    )  # fmt: skip
    assert report.totals["activation_bytes"] == 4096 * 4 * outputs  # 5.16 TB of outputs, never allocated
    assert grown_mb < 100


def test_full_vgg16_at_1024_is_a_clear_error():
    import pytest

    from archcost.errors import AnalysisError

    with pytest.raises(AnalysisError, match=r"classifier\.fc6 \(Linear\)"):
        analyze(archcost.get_model("vgg16"), (3, 1024, 1024))
