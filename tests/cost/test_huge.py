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
    assert report.totals["activation_bytes"] > 9 * 10**12  # 9.8 TB of outputs, never allocated
    assert grown_mb < 100


def test_full_vgg16_at_1024_is_a_clear_error():
    import pytest

    from archcost.errors import AnalysisError

    with pytest.raises(AnalysisError, match=r"classifier\.fc6 \(Linear\)"):
        analyze(archcost.get_model("vgg16"), (3, 1024, 1024))
