"""Memory a model needs: parameters, the peak of activations under tensor liveness, and training.

Inference peak: the crawler follows every tensor the forward pass creates, on the meta device, and
sees it freed when Python frees it (a finalizer per tensor), so the timeline is the real one of the
model's own code: a residual or dense block keeps its inputs alive until the merge, a variable keeps
its tensor until it is rebound. Views and in-place results share their storage. The model input is
held by the caller throughout. Temporaries inside one torch function are counted where the function
is known to hold them (the catalogue's ``workspace``); work buffers of a backend (convolution workspaces) are not.

Training: parameters + the larger of (the activations autograd saves for backward, taken as every
distinct activation tensor of the forward pass, + gradients, one per parameter) and (gradients +
optimizer state: SGD none, SGD with momentum one buffer per parameter, Adam two), because backward
frees the saved activations before the optimizer's first step allocates its state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from archcost.units import DTYPES, dtype_bytes

if TYPE_CHECKING:
    from archcost.cost.record import CostReport

OPTIMIZER_STATES = {"none": 0, "sgd": 0, "momentum": 1, "adam": 2}


def workspace_bytes(op: str, out_bytes: int) -> int:
    """Bytes of temporaries ``op`` holds beside its output: its catalogue entry's ``workspace`` (0 where
    none is known)."""
    from archcost.cost._registry import op_entry

    entry = op_entry(op)
    return entry.workspace[0] * out_bytes if entry is not None and entry.workspace else 0


@dataclass(frozen=True)
class MemoryEstimate:
    param_bytes: int
    input_bytes: int
    inference_peak_activation_bytes: int  # input included
    peak_layer: str  # the layer during which the peak is reached
    training_activation_bytes: int  # saved for backward, input included
    gradient_bytes: int
    optimizer_bytes: int
    optimizer: str

    @property
    def inference_total_bytes(self) -> int:
        return self.param_bytes + self.inference_peak_activation_bytes

    @property
    def training_total_bytes(self) -> int:
        """Peak of one training step: parameters, plus the larger of (saved activations + gradients,
        which backward fills while it frees the activations) and (gradients + optimizer state, which the
        first optimizer step allocates after backward has freed the activations)."""
        during_backward = self.training_activation_bytes + self.gradient_bytes
        during_step = self.gradient_bytes + self.optimizer_bytes + self.input_bytes
        return self.param_bytes + max(during_backward, during_step)


def _input_bytes(report: CostReport) -> int:
    return math.prod(report.input_shape) * dtype_bytes(DTYPES[report.dtype])


def inference_peak(report: CostReport) -> tuple[int, str]:
    """Peak bytes of live activations (input included) during the forward pass, and where it occurs:
    the crawler's timeline where there is one, else liveness over the rows (``liveness_peak``)."""
    if report.peak_activation_bytes is not None:
        return report.peak_activation_bytes, report.peak_at
    return liveness_peak(report)


def liveness_peak(report: CostReport, lag: int = 0) -> tuple[int, str]:
    """Peak under ideal liveness over the rows: a tensor is freed ``lag`` rows after its last consumer.

    A lower bound for code that keeps tensors in variables longer (Python frees a tensor when its last
    reference goes, which can be after the statement that consumed it)."""
    rows = report.layers
    root = {}  # row -> the row (or -1) that owns its memory

    def owner(i: int) -> int:
        while i != -1:
            alias = rows[i].alias_of
            if alias is None or alias == i:
                break
            i = alias
        return i

    last_use: dict[int, int] = {}
    for i, r in enumerate(rows):
        root[i] = owner(i)
        last_use.setdefault(root[i], i)
        last_use[root[i]] = max(last_use[root[i]], i)
        for s in r.sources:
            o = owner(s) if s != -1 else -1
            last_use[o] = max(last_use.get(o, i), i)
    if rows:
        last_use[owner(len(rows) - 1)] = len(rows)  # the output is returned
    live = _input_bytes(report)
    peak, where = live, "(input)"
    freeing: dict[int, list[int]] = {}
    for o, end in last_use.items():
        if o != -1:
            freeing.setdefault(min(end + lag, len(rows)), []).append(o)
    for i, r in enumerate(rows):
        if root[i] == i:
            live += r.activation_bytes
        during = live + sum(workspace_bytes(op, r.activation_bytes) for op in r.ops)
        if during > peak:
            peak, where = during, r.name
        for o in freeing.get(i, []):
            live -= rows[o].activation_bytes
    return peak, where


def estimate(report: CostReport, optimizer: str = "adam") -> MemoryEstimate:
    """Parameter, inference and training memory of ``report``'s model at its batch size and dtype."""
    if optimizer not in OPTIMIZER_STATES:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZER_STATES)}")
    totals = report.totals
    peak, where = inference_peak(report)
    rows = report.layers
    saved = _input_bytes(report) + sum(r.activation_bytes for r in rows)  # new storage only: views count 0
    return MemoryEstimate(
        param_bytes=totals["param_bytes"],
        input_bytes=_input_bytes(report),
        inference_peak_activation_bytes=peak,
        peak_layer=where,
        training_activation_bytes=saved,
        gradient_bytes=totals["param_bytes"],
        optimizer_bytes=OPTIMIZER_STATES[optimizer] * totals["param_bytes"],
        optimizer=optimizer,
    )


def inference_peak_bytes(report: CostReport) -> int:
    """Peak activation bytes of an inference pass (input included), for the report's batch and dtype."""
    return inference_peak(report)[0]
