"""Whose error is it (issue 29, item 4): options a callable cannot take are the caller's mistake; what a
constructor raises is the model's own error, with its message; a zoo builder's own check is an option error
and any other zoo build failure is archcost's bug; a constructor that fails on the meta device is built on
the CPU and the analysis says so."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap

import pytest
from torch import nn

import archcost.zoo._registry as registry
from archcost.cost.analysis import analyze
from archcost.cost.workload import Workload
from archcost.errors import InternalError, ModelLoadError, ModelOptionError
from archcost.models import load_model

MODELS = textwrap.dedent(
    """
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self, width: int = 4):
            super().__init__()
            self.fc = nn.Linear(3, width)

    def broken_inside(width: int = 4):
        return nn.Linear(3, torch.zeros(2))  # a TypeError raised by the constructor itself

    def needs_values(width: int = 4):
        layer = nn.Linear(3, width)
        if layer.weight.sum().item() > 1e9:  # .item() has no value on the meta device
            raise RuntimeError("unreachable")
        return layer
    """
)


@pytest.fixture
def models(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(MODELS)
    return path


def test_an_option_the_signature_cannot_take_names_the_opt(models):
    with pytest.raises(ModelLoadError, match="could not be called with options") as err:
        load_model(f"{models}:Net", {"depth": 3})
    assert "--opt names" in err.value.hint


def test_a_type_error_inside_the_constructor_is_the_models_own(models):
    with pytest.raises(ModelLoadError, match=r"broken_inside's constructor raised TypeError") as err:
        load_model(f"{models}:broken_inside", device="cpu")
    assert "--opt names" not in err.value.hint and "model's own" in err.value.hint


def test_a_constructor_that_fails_on_meta_is_built_on_the_cpu_and_said(models):
    loaded = load_model(f"{models}:needs_values")
    assert loaded.module.weight.device.type == "cpu"
    assert loaded.note is not None and "built on the CPU" in loaded.note and ".item()" in loaded.note
    assert load_model(f"{models}:Net").note is None  # built on meta as asked: nothing to say
    report = analyze(Workload.of(f"{models}:needs_values", input_size=(3,)))
    assert any("built on the CPU" in n for n in report.notes)
    assert report.totals["macs"] == 3 * 4  # the same linear layer, costed as usual


def test_a_zoo_builders_own_check_is_an_option_error_with_the_options_listed():
    with pytest.raises(ModelOptionError, match="num_classes must be >= 1") as err:
        registry.get_model("alexnet", num_classes=0)
    assert "num_classes=1000" in err.value.hint


def test_any_other_zoo_build_failure_is_archcosts_bug(monkeypatch):
    def broken(*, num_classes: int = 1000) -> nn.Module:
        raise ValueError("a shape mistake in archcost's own builder")

    entry = registry.get_entry("alexnet")
    monkeypatch.setitem(registry._MODELS, "alexnet", dataclasses.replace(entry, builder=broken))
    with pytest.raises(InternalError, match="zoo model alexnet failed to build") as err:
        registry.get_model("alexnet")
    assert err.value.exit_code == 1 and "bug in archcost" in err.value.hint


def test_the_cli_reports_the_constructors_error_exit_2(models):
    done = subprocess.run([sys.executable, "-m", "archcost.cli", "table", f"{models}:broken_inside", "--input-size",
                           "3"], capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "constructor raised TypeError" in done.stderr and "Traceback" not in done.stderr
