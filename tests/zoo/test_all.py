"""Every zoo model: builds on meta, is analysed at its default input, and agrees with torch's counter."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from archcost.cost import analyze
from archcost.zoo import ModelMeta, get_entry, get_meta, get_model, list_models

MODELS = list_models()


def test_the_issue_2_models_are_registered():
    assert {"lenet5", "alexnet", "vgg16", "resnet50"} <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_analysis_agrees_with_flop_counter_and_numel(name):
    meta = get_meta(name)
    model = get_model(name)
    report = analyze(model, meta.input_size, name=name)
    assert report.totals["params"] == sum(p.numel() for p in model.parameters())
    assert not report.unsupported, report.unsupported
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()
        model(torch.empty(1, *meta.input_size, device="meta"))
    assert report.totals["macs"] == counter.get_total_flops() // 2
    assert report.output_shape == (1, meta.num_classes)


@pytest.mark.parametrize("name", MODELS)
def test_metadata_is_typed_and_sourced(name):
    meta = get_meta(name)
    assert isinstance(meta, ModelMeta)
    for fig in (meta.params, meta.macs, meta.top1, meta.top5):
        assert fig is None or fig.source.strip()
    options = get_entry(name).options()
    assert "num_classes" in options


def test_registering_a_name_twice_raises():
    from archcost.zoo import register_model

    def resnet50(*, num_classes: int = 1000):
        raise AssertionError

    with pytest.raises(ValueError, match="already registered"):
        register_model(get_meta("resnet50"))(resnet50)


@pytest.mark.parametrize("name", MODELS)
def test_zero_classes_is_refused(name):
    from archcost.errors import ModelOptionError

    with pytest.raises(ModelOptionError):
        get_model(name, num_classes=0)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_real_forward_on_cpu(name):
    """Every model runs for real, with real weights, at batch 1 and its default input."""
    meta = get_meta(name)
    model = get_model(name, device="cpu").eval()
    with torch.no_grad():
        y = model(torch.randn(1, *meta.input_size))
    assert y.shape == (1, meta.num_classes)
    assert torch.isfinite(y).all()
