"""Several models analysed once each, for what compares them (``archcost report``, the accuracy charts,
``archcost list --computed``, the training-memory chart): the analyses run here, in the cost layer, and
report/ only presents what they return."""

from __future__ import annotations

from collections.abc import Sequence

from archcost.cost.analysis import analyze
from archcost.cost.record import CostReport
from archcost.cost.training import estimated_peak, optimizer_rule
from archcost.cost.workload import Workload
from archcost.errors import ArchcostError

#: ``{spec: (loaded Workload, CostReport)}`` in the order the specs were given
Analysed = dict[str, tuple[Workload, CostReport]]

#: the two modes of a memory estimate: a training step and an inference forward
MODES = ("train", "infer")


def analyse_models(specs: Sequence[str], inputs: dict | None = None) -> Analysed:
    """Each model of ``specs`` built (on meta) and analysed once, at ``inputs`` (the ``Workload.of`` keywords:
    ``input_size``, ``kwargs``, ``batch_dim``, ``int_range``, ``options``; default: each model's own input).
    Raises what ``Workload.of``, ``load`` and ``analyze`` raise (an unknown model, bad inputs)."""
    out: Analysed = {}
    for spec in specs:
        loaded = Workload.of(spec, **(inputs or {})).load("meta")
        out[spec] = (loaded, analyze(loaded))
    return out


def training_steps(
    works: Sequence[Workload], optimizer: str = "adam"
) -> list[tuple[Workload, CostReport | ArchcostError]]:
    """Per workload, its training-step analysis (``analyze(..., mode="train")``) or the error that says why it
    has none (no trainable parameter, an input the training step does not take)."""
    out: list[tuple[Workload, CostReport | ArchcostError]] = []
    for work in works:
        try:
            out.append((work, analyze(work, mode="train", optimizer=optimizer)))
        except ArchcostError as exc:
            out.append((work, exc))
    return out


def memory_estimates(
    models: Sequence[str],
    batch_sizes: Sequence[int],
    *,
    optimizer: str = "adam",
    dtype: str = "float32",
    foreach: bool = False,
) -> list[dict]:
    """Estimated peak bytes of each model at each batch size, in both ``MODES``: rows ``{"model", "batch_size",
    "mode", "estimate_bytes"}`` (``estimated_peak``: a training step with ``optimizer``, or parameters +
    the inference forward's peak of live activations). ``foreach``: the optimizer's multi-tensor path
    (torch's default on CUDA). Raises ``InputError`` for an unknown model or optimizer, or a model with
    nothing to train."""
    optimizer_rule(optimizer)
    rows = []
    for spec in models:
        loaded = Workload.of(str(spec), dtype=dtype).load("meta")
        for mode in MODES:
            for b in sorted({int(b) for b in batch_sizes}):
                peak = estimated_peak(  # a Workload in the model's place: analyze takes its inputs from it
                    loaded.with_batch(b), None, b, dtype, mode=mode, optimizer=optimizer, foreach=foreach
                )
                rows.append({"model": loaded.name, "batch_size": b, "mode": mode, "estimate_bytes": int(peak)})
    return rows


def zoo_totals(names: Sequence[str]) -> dict[str, dict[str, int]]:
    """archcost's own totals (params, MACs, ...) of each zoo model at its published input size."""
    from archcost.zoo import get_meta, get_model

    return {name: analyze(get_model(name), get_meta(name).input_size, name=name).totals for name in names}
