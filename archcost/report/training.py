"""The training table of ``archcost table --mode train``: forward, backward and optimizer work per layer,
and the memory of one training step."""

from __future__ import annotations

import json

import pandas as pd

from archcost.cost.record import CostReport
from archcost.report.table import footer_lines, titled
from archcost.tables import render_table
from archcost.units import format_bytes, format_count

_COLUMNS = {
    "name": "Layer",
    "type": "Type",
    "params": "Params",
    "macs": "MACs",
    "backward_macs": "Bwd MACs",
    "flops": "FLOPs",
    "backward_flops": "Bwd FLOPs",
    "optimizer_flops": "Opt FLOPs",
}

LEGEND = (
    "Bwd MACs: the gradient of each layer's input where an earlier layer needs it, plus the gradient of its "
    "weights, from autograd's own backward run on meta tensors. Bwd FLOPs: 2 per MAC plus the per-element "
    "work of the backward ops (archcost.cost.training.BACKWARD_FLOPS_PER_ELEMENT). Opt FLOPs: one step of "
    "the optimizer over the parameters the layer trains, counted from torch's update rule."
)


def training_frame(report: CostReport) -> pd.DataFrame:
    """Numeric per-layer frame of the training figures, with a totals row."""
    df = pd.DataFrame([{k: getattr(r, k) for k in _COLUMNS} for r in report.layers], columns=list(_COLUMNS))
    totals = {"name": "Total", "type": "", **{k: v for k, v in report.totals.items() if k in _COLUMNS}}
    return pd.concat([df, pd.DataFrame([totals])], ignore_index=True)


def memory_lines(report: CostReport) -> list[str]:
    m = report.training_memory or {}
    t = report.totals
    return [
        f"Training with {report.optimizer}: forward {format_count(t['flops'])} FLOPs, backward "
        f"{format_count(t['backward_flops'])} FLOPs ({format_count(t['backward_macs'])} MACs), optimizer step "
        f"{format_count(t['optimizer_flops'])} FLOPs.",
        f"Peak memory of a training step: {format_bytes(report.training_peak_bytes)} (in {m.get('peak_phase')}): "
        f"parameters {format_bytes(m.get('param_bytes'))}, input {format_bytes(m.get('input_bytes'))}, gradients "
        f"{format_bytes(m.get('gradient_bytes'))}, optimizer state {format_bytes(m.get('optimizer_state_bytes'))}, "
        "activations alive at the end of forward (saved for backward) "
        f"{format_bytes(m.get('saved_activation_bytes'))}.",
    ]


def render_training(report: CostReport, fmt: str = "text") -> str:
    """The training table of a ``mode="train"`` report in ``fmt``: text, markdown, csv or json."""
    if fmt == "json":
        return json.dumps(report.to_dict(), sort_keys=True, indent=2) + "\n"
    df = training_frame(report)
    if fmt == "csv":
        return df.to_csv(index=False)
    human = df.copy()
    for col in list(_COLUMNS)[2:]:
        human[col] = human[col].map(format_count)
    human.columns = list(_COLUMNS.values())
    # the inference table's rough training line (memory.estimate) gives way to the step's own peak above
    lines = [*memory_lines(report), LEGEND, *(x for x in footer_lines(report) if not x.startswith("Memory:"))]
    if fmt not in ("markdown", "text"):
        raise ValueError(f"unknown format {fmt!r}")
    return titled(f"{report.model} (training)", render_table(human, fmt, left=2, totals=True), lines, fmt)


def report_training_table(steps: list) -> tuple[pd.DataFrame, list[str]]:
    """The training table of ``archcost report``: per ``(Workload, CostReport or error)`` of
    ``archcost.cost.collect.training_steps``, the forward FLOPs of the training-mode forward, backward FLOPs,
    optimizer FLOPs and ``training_peak_bytes`` at its batch size, formatted; and notes for the models left
    out (no trainable parameter, or an input the training step does not take), each saying why."""
    rows, notes = [], []
    for work, report in steps:
        if not isinstance(report, CostReport):
            notes.append(f"{work.name} left out of the training table: {getattr(report, 'message', report)}")
            continue
        t = report.totals
        rows.append(
            {
                "model": work.name,
                "forward FLOPs": format_count(t["flops"]),
                "backward FLOPs": format_count(t["backward_flops"]),
                "optimizer FLOPs": format_count(t["optimizer_flops"]),
                "backward / forward": f"{t['backward_flops'] / t['flops']:.2f}" if t["flops"] else "",
                "training peak": format_bytes(report.training_peak_bytes),
            }
        )
    return pd.DataFrame(rows), notes
