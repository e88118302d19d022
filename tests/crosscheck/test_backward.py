"""`archcost check --mode train`: archcost's backward against FlopCounterMode's, module by module, explained."""

import json
from collections import Counter

import pytest

import archcost
from archcost.cli import main
from archcost.crosscheck import check_model, reconcile_backward, run_flop_counter_backward
from archcost.crosscheck.conventions import TORCH_BACKWARD, OpView, rule_for
from archcost.crosscheck.reconcile import TRACKER_NOTE
from archcost.errors import InputError
from tests.crosscheck.train_models import depthwise, shortcut


def _module(rec, path):
    return next(m for m in rec.modules if m.module == path)


def test_depthwise_rule_as_arithmetic():
    dw = OpView("conv2d", macs=8 * 8 * 8 * 9, flops=0, in_numel=0, out_numel=0, out_dims=4)
    one = 8 * 8 * 8 * 9  # forward MACs of a 3x3 depthwise conv, 8 channels, 8x8 output: one filter per channel
    both = OpView(**{**dw.__dict__, "backward_macs": 2 * one, "groups": 8, "weight_grad": True})
    # FlopCounterMode: the input gradient as archcost (2 * one), the weight gradient 8 times (every channel
    # against every other): 2 * one * 8
    assert rule_for(TORCH_BACKWARD, "conv2d").count(both) == 2 * (2 * one) + 2 * one * (8 - 1) == 2 * one + 2 * one * 8
    frozen = OpView(**{**both.__dict__, "backward_macs": one, "weight_grad": False})
    assert rule_for(TORCH_BACKWARD, "conv2d").count(frozen) == 2 * one  # no weight gradient: no overcount
    lin = OpView("linear", macs=10, flops=0, in_numel=0, out_numel=0, out_dims=2, backward_macs=20)
    assert rule_for(TORCH_BACKWARD, "linear").count(lin) == 40
    assert rule_for(TORCH_BACKWARD, "relu").count(lin) == 0


def test_depthwise_backward_is_explained_module_by_module():
    model = depthwise()
    rec = check_model(model, (3, 8, 8), 1, mode="train")
    assert rec.ok, rec.mismatches
    one = 8 * 8 * 8 * 9
    dw = _module(rec, "depthwise")
    assert dw.backward_macs == 2 * one  # input and weight gradients, groups counted
    assert dw.torch_backward.measured == dw.torch_backward.predicted == 2 * one + 2 * one * 8
    stem = _module(rec, "stem")
    assert stem.backward_macs == stem.macs == 8 * 8 * 8 * 27  # the image needs no gradient: weight only
    assert stem.torch_backward.measured == 2 * stem.macs
    conv_rule = rec.rules.index(rule_for(TORCH_BACKWARD, "conv2d")) + 1
    assert conv_rule in dw.torch_backward.rules
    assert rec.totals["torch_backward"] == rec.totals["torch_backward_predicted"] > 2 * rec.totals["backward_macs"]


def test_a_shortcut_branch_charged_to_its_sibling_is_explained_by_the_tracker():
    rec = check_model(shortcut(), (3, 8, 8), 1, mode="train")
    assert rec.ok, rec.mismatches
    explained = [m for m in rec.modules if m.torch_backward.balanced_in is not None]
    assert explained and {m.torch_backward.balanced_in for m in explained} == {"block"}
    assert any(m.torch_backward.measured != m.torch_backward.predicted for m in explained)  # shown, not hidden
    assert any(TRACKER_NOTE in f for f in rec.findings)
    assert rec.totals["torch_backward"] == 2 * rec.totals["backward_macs"]  # no grouped conv: 2 per MAC in total


def test_a_backward_count_no_convention_predicts_is_a_mismatch():
    model = depthwise()
    rec = check_model(model, (3, 8, 8), 1)  # inference: no backward columns
    assert not rec.backward and rec.ok
    tc = run_flop_counter_backward(model, (1, 3, 8, 8))
    # two FLOPs more in fc than its gradients cost; the counts are inclusive, so the model's too
    for path in ("fc", ""):
        tc.flops[path] = tc.flops[path] + Counter(matmul=2)
    train = archcost.analyze(model, (3, 8, 8), mode="train")
    reconcile_backward(rec, train, model, tc)
    assert not rec.ok
    assert any(m.startswith("fc: torch backward: measured") for m in rec.mismatches)


def test_cli_check_mode_train(capsys):
    spec = "tests.crosscheck.train_models:depthwise"
    assert main(["check", spec, "--mode", "train"]) == 0
    out = capsys.readouterr().out
    assert "Bwd MACs" in out and "torch bwd" in out and "conv_backward_flop" in out
    assert main(["check", spec, "--mode", "train", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    dw = next(m for m in doc["modules"] if m["module"] == "depthwise")
    assert dw["torch_backward"]["measured"] == dw["torch_backward"]["predicted"]
    assert main(["check", spec]) == 0
    assert "torch bwd" not in capsys.readouterr().out  # inference stays as it was
    with pytest.raises(InputError, match="unknown mode"):
        check_model(depthwise(), (3, 8, 8), mode="backward")


@pytest.mark.slow
def test_mobilenet_v2_depthwise_explained_resnet18_equal():
    mobilenet = archcost.get_model("mobilenet_v2", device="cpu")
    rec = check_model(mobilenet, (3, 224, 224), 1, mode="train")
    assert rec.ok, rec.mismatches
    t = rec.totals
    assert t["torch_backward"] == t["torch_backward_predicted"]
    assert t["torch_backward"] > 9 * 2 * t["backward_macs"]  # the depthwise weight gradients, ~10x
    resnet = archcost.get_model("resnet18", device="cpu")
    rec = check_model(resnet, (3, 224, 224), 1, mode="train")
    assert rec.ok, rec.mismatches
    assert rec.totals["torch_backward"] == 2 * rec.totals["backward_macs"]  # no grouped conv: equal
