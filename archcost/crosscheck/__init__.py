"""Cross-checking archcost against fvcore and torch's FlopCounterMode, with every difference explained.

``check_model`` runs the three tools on one model and input and returns a ``Reconciliation``;
``conventions.RULES`` is the written-down table of what each tool counts, with its source.
"""

from __future__ import annotations

from torch import nn

from archcost.crosscheck.conventions import GENERAL, RULES, Rule
from archcost.crosscheck.fvcore_run import FvcoreResult, run_fvcore
from archcost.crosscheck.reconcile import ModuleCheck, Reconciliation, reconcile, reconcile_backward
from archcost.crosscheck.torch_counter import TorchCount, run_flop_counter, run_flop_counter_backward


def check_model(
    model: nn.Module | object,
    input_size: object = None,
    batch_size: int = 1,
    *,
    name: str | None = None,
    mode: str = "infer",
) -> Reconciliation:
    """archcost, fvcore and FlopCounterMode on ``model`` with an input of ``(batch_size, *input_size)``, or
    on a ``Workload`` (``archcost.cost.workload``: every input kind; ``input_size`` and ``batch_size`` then
    unused).

    ``model`` must be on the CPU with real weights for fvcore's trace (``get_model(name, device="cpu")``);
    archcost and FlopCounterMode run on the meta device. An fvcore failure is recorded, not raised.
    ``mode="train"`` also compares the backward of a training step: archcost's backward MACs
    (``archcost.cost.training``) against FlopCounterMode's backward count, module by module, each difference
    explained by the ``TORCH_BACKWARD`` conventions (``reconcile_backward``).
    Raises ``InputError`` for an unknown mode or, in mode "train", a model with nothing to train.
    """
    from archcost.cost import analyze
    from archcost.cost.workload import Workload
    from archcost.errors import InputError

    if mode not in ("infer", "train"):
        raise InputError(f"unknown mode {mode!r}", "use infer (the default) or train")
    if isinstance(model, Workload):
        work = model.load("cpu")
    else:
        work = Workload.of(model, input_size, batch_size, name=name).load("cpu")
    work = work.runnable()  # wrappers unwrapped and lazy layers initialised (on a copy) for the tools that trace
    module = work.module
    report = analyze(work)
    rec = reconcile(report, module, run_fvcore(module, work), run_flop_counter(module, work))
    if mode == "train":
        train = analyze(work, mode="train", optimizer="sgd")
        reconcile_backward(rec, train, module, run_flop_counter_backward(module, work))
    return rec


__all__ = [
    "GENERAL",
    "RULES",
    "FvcoreResult",
    "ModuleCheck",
    "Reconciliation",
    "Rule",
    "TorchCount",
    "check_model",
    "reconcile",
    "reconcile_backward",
    "run_flop_counter",
    "run_flop_counter_backward",
    "run_fvcore",
]
