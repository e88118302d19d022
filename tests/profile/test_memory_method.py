"""The one measured peak-memory method (archcost.profiling.memory) reads known allocation patterns right."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from archcost.errors import InputError
from archcost.profiling import memory
from archcost.profiling.memory import (
    MemoryPeak,
    cpu_peak_above,
    measure_inference_peak,
    measure_peak,
    measure_training_peak,
    peak_above,
)

MiB = 1 << 20
SCALARS = 64  # bytes: a step's 0-d tensors (the loss, Adam's step count), not worth deriving one by one


def _bytes(n: int) -> torch.Tensor:
    return torch.empty(n, dtype=torch.uint8)


def test_allocate_free_allocate_peaks_at_the_two_alive_together():
    def fn():
        a = _bytes(1 * MiB)
        b = _bytes(2 * MiB)
        del a
        c = _bytes(MiB // 2)
        return b, c

    assert cpu_peak_above(fn) == 1 * MiB + 2 * MiB  # a and b alive at once; c comes after a is freed


def test_frees_inside_an_enclosing_range_are_read_in_time_order():
    """Folded op events put the frees done inside a range at its start (what an optimizer step looks like):
    the raw events must still give alloc 4 MiB, free, alloc 4 MiB -> a 4 MiB peak, not 8 or 0."""

    def fn():
        with torch.profiler.record_function("step"):
            x = _bytes(4 * MiB)
            del x
            y = _bytes(4 * MiB)
            del y

    assert cpu_peak_above(fn) == 4 * MiB


def test_a_free_of_memory_allocated_before_the_measurement_is_not_seen_on_the_cpu():
    """The CPU allocator reports no size for a block allocated before the profiler started, so freeing it
    inside the call does not lower the running total: the figure is an upper bound there (a measured call
    that frees what it did not allocate; a first step on a fresh copy does not)."""
    held = [_bytes(1 * MiB)]

    def fn():
        held.pop()  # frees 1 MiB that existed before the measurement: not an event the profiler has
        return _bytes(1 * MiB)  # and takes it again

    assert cpu_peak_above(fn) == 1 * MiB


def test_measure_peak_adds_what_was_held():
    peak = measure_peak(lambda: _bytes(3 * MiB), torch.device("cpu"), model_bytes=100, input_bytes=20)
    assert peak == MemoryPeak(100 + 20 + 3 * MiB, 3 * MiB, 100 + 20, 20, memory.METHODS["cpu"])
    assert peak.activation_peak_bytes == 20 + 3 * MiB


N, F = 8, 1000
P = F * F * 4  # Linear(1000, 1000, bias=False)'s weight, float32
OUT = N * F * 4  # its output at batch 8


@pytest.fixture
def linear():
    torch.manual_seed(0)
    return nn.Linear(F, F, bias=False), torch.randn(N, F)


def test_inference_peak_of_a_linear_layer_is_its_output(linear):
    model, x = linear
    peak = measure_inference_peak(model, x)
    assert peak.above_bytes == OUT
    assert peak.held_bytes == P + N * F * 4  # the weight and the input
    assert peak.peak_bytes == P + N * F * 4 + OUT


@pytest.mark.parametrize(
    ("optimizer", "above"),
    [
        ("sgd", P + OUT + OUT),  # in backward: the weight's gradient, the output and its gradient
        ("momentum", P + P + OUT),  # in the step: the gradient and the new momentum buffer, the output
        ("adam", P + 2 * P + 2 * P + OUT),  # the gradient, exp_avg and exp_avg_sq, two temporaries of the update
        ("adamw", P + 2 * P + 2 * P + OUT),
    ],
)
def test_training_peak_steps_the_optimizer_named(linear, optimizer, above):
    model, x = linear
    peak = measure_training_peak(model, x, optimizer)
    assert above <= peak.above_bytes <= above + SCALARS, (optimizer, peak.above_bytes, above)
    assert peak.peak_bytes == peak.held_bytes + peak.above_bytes


def test_measuring_never_touches_the_callers_model(linear):
    model, x = linear
    model.train(False)
    before = model.weight.detach().clone()
    for optimizer in ("sgd", "momentum", "adam", "adamw"):
        measure_training_peak(model, x, optimizer)
    measure_inference_peak(model, x)
    assert torch.equal(model.weight, before)
    assert model.weight.grad is None
    assert model.training is False


def test_an_unknown_optimizer_is_an_input_error(linear):
    with pytest.raises(InputError, match="unknown optimizer"):
        measure_training_peak(*linear, "lbfgs")


def test_a_profiler_without_raw_events_is_reported_not_read_as_zero():
    from archcost.errors import InternalError

    class NoResults:
        profiler = object()

    with pytest.raises(InternalError, match="kineto results"):
        memory._cpu_events(NoResults())


def test_cuda_reads_the_allocator_statistics(monkeypatch):
    """On CUDA: max_memory_allocated after the call minus memory_allocated before it (a fake allocator)."""
    calls = []
    state = {"allocated": 1000, "peak": 0}
    fake = {
        "synchronize": lambda device=None: calls.append("sync"),
        "reset_peak_memory_stats": lambda device=None: state.update(peak=state["allocated"]),
        "memory_allocated": lambda device=None: state["allocated"],
        "max_memory_allocated": lambda device=None: state["peak"],
    }
    for name, fn in fake.items():
        monkeypatch.setattr(torch.cuda, name, fn)

    def fn():
        state["peak"] = state["allocated"] + 5000  # the call took 5,000 bytes at its highest

    assert peak_above(fn, torch.device("cuda", 0)) == 5000
    peak = measure_peak(fn, torch.device("cuda", 0), model_bytes=300, input_bytes=40)
    assert (peak.peak_bytes, peak.method) == (300 + 40 + 5000, "torch.cuda.max_memory_allocated")


def test_copy_model_false_measures_the_model_given_with_the_same_figures(linear):
    """``maxbatch --verify`` measures the model it built itself (no second copy of the weights on the device)."""
    model, x = linear
    copied = measure_training_peak(model, x, "momentum")
    own = nn.Linear(F, F, bias=False)
    in_place = measure_training_peak(own, x, "momentum", copy_model=False)
    assert own.weight.grad is not None  # the model given was stepped
    assert (in_place.held_bytes, in_place.above_bytes) == (copied.held_bytes, copied.above_bytes)
