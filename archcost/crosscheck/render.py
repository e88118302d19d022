"""The reconciliation as text, markdown or JSON: one model module by module, or the zoo one model a line."""

from __future__ import annotations

import json

import pandas as pd

from archcost.crosscheck.conventions import GENERAL
from archcost.crosscheck.reconcile import Reconciliation
from archcost.errors import InternalError

LEGEND = (
    "MACs, FLOPs: archcost (FLOPs = 2 per MAC + bias, norm, activation, pooling, elementwise). fvcore: "
    "FlopCountAnalysis's count (its 'flop' is one multiply-add). torch: FlopCounterMode's count. Why: the "
    "conventions below that predict each figure from archcost's own shapes; ok = every figure is predicted."
)


def _n(value: int | None) -> str:
    return "failed" if value is None else f"{value:,}"


def _count(totals: dict[str, int | None], key: str) -> int:
    """A total the reconciliation always has here (archcost's own; a tool's where it ran)."""
    value = totals[key]
    if value is None:
        raise InternalError(f"the reconciliation has no {key!r} total")
    return value


BACKWARD_LEGEND = (
    "Bwd MACs: archcost's backward of a training step (gradient of the input where an earlier layer needs it, "
    "of the weight where it trains; archcost.cost.training). torch bwd: FlopCounterMode's count of that backward."
)


def module_frame(rec: Reconciliation) -> pd.DataFrame:
    rows = []
    backward = rec.backward
    for m in rec.modules:
        bwd = m.torch_backward
        why = sorted({*m.fvcore.rules, *m.torch.rules, *(bwd.rules if bwd else ())})
        rows.append(
            {
                "Module": m.label,
                "Type": ", ".join(m.types),
                "MACs": f"{m.macs:,}",
                "FLOPs": f"{m.flops:,}",
                "fvcore": _n(m.fvcore.measured),
                "torch": _n(m.torch.measured),
                **(
                    {"Bwd MACs": f"{m.backward_macs or 0:,}", "torch bwd": _n(bwd.measured) if bwd else ""}
                    if backward
                    else {}
                ),
                "Params": f"{m.params:,}",
                "Status": m.status,
                "Why": ", ".join([*map(str, why), *(["tracker"] if bwd and bwd.balanced_in else [])]),
            }
        )
    columns = ["Module", "Type", "MACs", "FLOPs", "fvcore", "torch", "Params", "Status", "Why"]
    if backward:
        columns[6:6] = ["Bwd MACs", "torch bwd"]
    return pd.DataFrame(rows, columns=columns)


def _text_table(df: pd.DataFrame, left: int) -> str:
    """The first ``left`` columns and the last two (Status, Why) flush left, through the one renderer."""
    from archcost.tables import render_table

    n = len(df.columns)
    return render_table(df, left={c for i, c in enumerate(df.columns) if i < left or i >= n - 2})


def _markdown(df: pd.DataFrame, left: set) -> str:
    from archcost.tables import render_table

    return render_table(df, "markdown", left=left)


def _summary_lines(rec: Reconciliation) -> list[str]:
    t = rec.totals
    totals = rec.rule_totals()
    lines = [
        f"archcost: {t['macs']:,} MACs, {t['flops']:,} FLOPs, {t['params']:,} params.",
    ]
    if rec.fvcore_error:
        lines.append(f"fvcore: could not analyse this model ({rec.fvcore_error}); its columns say 'failed'.")
    else:
        lines.append(
            f"fvcore: {t['fvcore']:,} (conventions predict {_n(t['fvcore_predicted'])}); activations "
            f"{t['fvcore_activations']:,} (predicted {_n(t['fvcore_activations_predicted'])}); params "
            f"{_n(t['fvcore_params'])}."
        )
    if rec.torch_error:
        lines.append(f"torch FlopCounterMode: could not run this model ({rec.torch_error}).")
    else:
        lines.append(f"torch FlopCounterMode: {t['torch']:,} (conventions predict {_n(t['torch_predicted'])}).")
    if rec.backward and not rec.backward_error:
        macs, bwd = _count(t, "backward_macs"), _count(t, "torch_backward")
        ratio = f"{bwd / (2 * macs):.3g}" if macs else "-"
        lines.append(
            f"backward: archcost {macs:,} MACs ({2 * macs:,} at 2 per MAC); torch "
            f"FlopCounterMode {bwd:,} (conventions predict {_n(t['torch_backward_predicted'])}), "
            f"{ratio}x archcost's 2 per MAC."
        )
    lines += ["", "Conventions (number: tool, archcost ops, rule, what it adds up to here; source):"]
    for i, r in enumerate(rec.rules, 1):
        ops = ", ".join(r.ops) if r.ops != ("*",) else "any other op"
        lines.append(f"  {i}. {r.tool} [{ops}]: {r.text}; here {totals.get(i, 0):,}. Source: {r.source}")
    if rec.fvcore_unsupported:
        ops = ", ".join(f"{op} x{n}" for op, n in rec.fvcore_unsupported.items())
        lines += ["", f"fvcore unsupported ops (counted 0 by fvcore): {ops}"]
    findings = [f for f in rec.findings if not f.startswith("MISMATCH")]
    if findings:
        lines += ["", *(f"Finding: {f}" for f in findings)]
    if rec.mismatches:
        lines += ["", "MISMATCHES (no documented convention explains these):", *(f"  {m}" for m in rec.mismatches)]
    return lines


def render_model(rec: Reconciliation, fmt: str = "text") -> str:
    """One model's reconciliation in ``fmt``: text, markdown or json."""
    if fmt == "json":
        return json.dumps(rec.to_dict(), indent=2) + "\n"
    df = module_frame(rec)
    legend = f"{LEGEND} {BACKWARD_LEGEND}" if rec.backward else LEGEND
    title = f"{rec.model}: input {'x'.join(map(str, rec.input_shape))}, archcost vs fvcore vs torch FlopCounterMode"
    if fmt == "markdown":
        body = _markdown(df, left={*df.columns[:2], *df.columns[-2:]})
        return f"### {title}\n\n{body}\n\n{legend}\n\n" + "\n".join(_summary_lines(rec)) + "\n"
    if fmt == "text":
        return f"{title}\n{_text_table(df, left=2)}\n\n{legend}\n" + "\n".join(_summary_lines(rec)) + "\n"
    raise ValueError(f"unknown format {fmt!r}")


def zoo_frame(recs: list[Reconciliation]) -> pd.DataFrame:
    rows = []
    for r in recs:
        t = r.totals
        bwd, bwd_macs = t.get("torch_backward"), t.get("backward_macs")
        rows.append(
            {
                "Model": r.model,
                "MACs": f"{t['macs']:,}",
                "fvcore": _n(t["fvcore"]),
                "fvcore - MACs": "" if t["fvcore"] is None else f"{t['fvcore'] - _count(t, 'macs'):,}",
                "torch": _n(t["torch"]),
                "torch / MACs": "" if not t["macs"] or t["torch"] is None else f"{t['torch'] / t['macs']:g}",
                "Params": f"{t['params']:,}",
                "fvcore params": _n(t["fvcore_params"]) if r.fvcore_error is None else "failed",
                **(
                    {
                        "Bwd MACs": _n(t.get("backward_macs")),
                        "torch bwd": _n(t.get("torch_backward")),
                        "torch bwd / Bwd MACs": f"{bwd / bwd_macs:g}" if bwd is not None and bwd_macs else "",
                    }
                    if r.backward
                    else {}
                ),
                "Status": "ok" if r.ok else "MISMATCH",
            }
        )
    return pd.DataFrame(rows)


def render_zoo(recs: list[Reconciliation], fmt: str = "text") -> str:
    """Several models, one line each, then every finding and mismatch."""
    if fmt == "json":
        return json.dumps({"models": [r.to_dict() for r in recs], "ok": all(r.ok for r in recs)}, indent=2) + "\n"
    df = zoo_frame(recs)
    notes = [
        "fvcore - MACs: what fvcore counts besides conv/linear/matmul MACs (batch norm, adaptive average "
        "pooling, ... by default); torch / MACs: FlopCounterMode counts 2 per MAC. Every figure is predicted "
        "per module from archcost's shapes by the conventions of `archcost check MODEL`.",
        *(f"{tool}: {text}" for tool, text in GENERAL),
    ]
    if any(r.backward for r in recs):
        notes.append(
            "torch bwd / Bwd MACs: FlopCounterMode counts 2 per backward MAC of convolution and matrix products, "
            "and a grouped conv's weight gradient groups times (its conv_backward_flop ignores groups), so "
            "models with depthwise convs read far above 2."
        )
    for r in recs:
        notes += [f"{r.model}: {f}" for f in r.findings if not f.startswith("MISMATCH")]
        notes += [f"{r.model}: MISMATCH {m}" for m in r.mismatches]
    if fmt == "markdown":
        body = _markdown(df, left={df.columns[0], df.columns[-1]})
        return body + "\n\n" + "\n\n".join(notes) + "\n"
    if fmt == "text":
        return _text_table(df, left=1) + "\n\n" + "\n".join(notes) + "\n"
    raise ValueError(f"unknown format {fmt!r}")
