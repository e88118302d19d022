"""Cross-checking archcost against fvcore and torch's FlopCounterMode, with every difference explained.

``check_model`` runs the three tools on one model and input and returns a ``Reconciliation``;
``conventions.RULES`` is the written-down table of what each tool counts, with its source.
"""

from __future__ import annotations

from torch import nn

from archcost.crosscheck.conventions import GENERAL, RULES, Rule
from archcost.crosscheck.fvcore_run import FvcoreResult, run_fvcore
from archcost.crosscheck.reconcile import ModuleCheck, Reconciliation, reconcile
from archcost.crosscheck.torch_counter import TorchCount, run_flop_counter


def check_model(
    model: nn.Module, input_size: tuple[int, ...], batch_size: int = 1, *, name: str | None = None
) -> Reconciliation:
    """archcost, fvcore and FlopCounterMode on ``model`` with an input of ``(batch_size, *input_size)``.

    ``model`` must be on the CPU with real weights for fvcore's trace (``get_model(name, device="cpu")``);
    archcost and FlopCounterMode run on the meta device. An fvcore failure is recorded, not raised.
    """
    from archcost.cost import analyze

    report = analyze(model, input_size, batch_size, name=name)
    shape = (batch_size, *input_size)
    return reconcile(report, model, run_fvcore(model, shape), run_flop_counter(model, shape))


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
    "run_flop_counter",
    "run_fvcore",
]
