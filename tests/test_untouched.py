"""The caller's model never changes: after analyze (inference and a training step), maxbatch, check,
rf --verify, profile (with measured memory, inference and training), the measured peaks and the training
step's timing, every parameter, buffer, module attribute (tensors cached by forward included),
training flag, dtype and device is as it was."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn

from archcost.cost import analyze
from archcost.errors import AnalysisError
from tests.fixtures.randomnets import build, layer_specs


class Caching(nn.Module):
    """Wraps a network and caches tensors, a list and a counter on itself in forward (YOLO-style state)."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body
        self.grid = torch.zeros(1)
        self.history: list = []
        self.calls = 0

    def forward(self, x):
        y = self.body(x)
        self.grid = torch.ones(y.shape[-1], device=y.device)  # rebinds the attribute
        self.history.append(y.shape)  # mutates the list in place
        self.calls += 1
        return y


def snapshot(model: nn.Module) -> dict:
    """Everything a caller could notice: values, identities, flags, dtypes and devices of every module."""
    state = {}
    for path, m in model.named_modules():
        attrs = {}
        for key, value in vars(m).items():
            if key in ("_parameters", "_buffers", "_modules"):
                attrs[key] = {k: (id(v), _value(v)) for k, v in value.items()}
            elif key.endswith("hooks") or key.startswith("_forward") or key.startswith("_backward"):
                attrs[key] = len(value) if hasattr(value, "__len__") else value
            else:
                attrs[key] = (id(value), _value(value))
        state[path] = attrs
    return state


def _value(v):
    if isinstance(v, torch.Tensor):
        return (
            v.dtype,
            v.device,
            v.requires_grad,
            tuple(v.shape),
            v.detach().clone() if v.device.type != "meta" else None,
        )
    if isinstance(v, list):
        return list(v)
    if isinstance(v, dict):
        return dict(v)
    return v


def same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _analyze(model, size):
    analyze(model, size, training=True)
    analyze(model, size, device="cpu")


def _train(model, size):
    analyze(model, size, mode="train")
    analyze(model, size, mode="train", device="cpu", optimizer="momentum")


def _maxbatch(model, size):
    from archcost.cost.training import estimated_peak, max_batch

    for mode in ("train", "infer"):  # what ``archcost maxbatch`` bisects over
        max_batch(lambda n, mode=mode: estimated_peak(model, size, n, mode=mode), 10**8, cap=64)


def _check(model, size):
    from archcost.crosscheck import check_model

    check_model(model, size)


def _rf_verify(model, size):
    from archcost.verify.receptive_field import verify

    verify(model, size)


def _profile(model, size):
    from archcost.profiling import profile

    df = profile([model], device="cpu", input_size=size, dtype="bfloat16", channels_last=True, warmup_s=0.0,
                 min_time_s=0.001, repeats=2, roofline=False, power=False, memory=False)  # fmt: skip
    assert (df["status"] == "ok").all(), df.get("message")


def _profile_measured(model, size):
    from archcost.profiling import profile

    for mode in ("infer", "train"):  # memory on: the measured peaks of a forward and of a training step
        df = profile([model], device="cpu", input_size=size, mode=mode, warmup_s=0.0, min_time_s=0.001, repeats=2,
                     roofline=False, power=False, memory=True)  # fmt: skip
        assert (df["status"] == "ok").all(), df.get("error")


def _measured_peaks(model, size):
    from archcost.profiling.memory import measure_inference_peak, measure_training_peak
    from archcost.profiling.train_step import time_train_step

    x = torch.randn(2, *size)
    measure_inference_peak(model, x)
    for optimizer in ("sgd", "momentum", "adam", "adamw"):
        measure_training_peak(model, x, optimizer)
    time_train_step(model, x, "momentum", warmup_s=0.0, min_time_s=0.0, repeats=1)


ENTRY_POINTS = {
    "analyze": _analyze,
    "analyze --mode train": _train,
    "maxbatch": _maxbatch,
    "check": _check,
    "rf --verify": _rf_verify,
    "profile": _profile,
    "profile memory, infer and train": _profile_measured,
    "measured peaks (maxbatch --verify), training step timing": _measured_peaks,
}


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(specs=layer_specs(), side=st.integers(24, 40), training=st.booleans())
@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_every_entry_point_leaves_the_model_as_it_was(entry, specs, side, training):
    torch.manual_seed(0)
    model = Caching(build(specs))
    size = (3, side, side)
    try:
        analyze(model, size)
        model(torch.randn(1, *size))  # used once on real data: its cache is filled
    except (AnalysisError, RuntimeError):
        assume(False)  # the random layers shrank the map below a kernel: not a network
    model.train(training)
    before = snapshot(model)
    ENTRY_POINTS[entry](model, size)
    after = snapshot(model)
    assert same(before, after), entry
    model(torch.randn(1, *size))  # still runs on real data
