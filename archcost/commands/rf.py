"""``archcost rf MODEL``: how the receptive field grows, layer by layer; ``--verify`` checks it."""

from __future__ import annotations

import argparse
import json

from archcost.commands._common import (
    EXIT_FAIL,
    EXIT_OK,
    add_analysis_args,
    add_model_args,
    add_output_args,
    analyse,
    emit,
    load,
)
from archcost.errors import InputError


def _rows(report) -> list[dict]:
    from archcost.report.table import axes_text, rf_text

    rows, previous = [], None
    for r in report.layers:
        text = rf_text(r)
        if not text or (text == previous and not r.rf_misaligned):
            continue  # only where the field changes
        previous = text
        rows.append(
            {
                "name": r.name,
                "type": r.type,
                "rf": text,
                "jump": axes_text(r.rf_stride) if r.rf_stride else "",
                "start": axes_text(r.rf_start) if r.rf_start else "",
                "note": "merges misaligned paths"
                if r.rf_misaligned
                else (r.rf_unknown and f"stopped by {r.rf_unknown}") or "",
            }
        )
    return rows


def _note(row) -> str:
    if row.rf_misaligned:
        return "merges misaligned paths"
    return f"stopped by {row.rf_unknown}" if row.rf_unknown else ""


def run(args: argparse.Namespace) -> int:
    from archcost.report.table import final_field

    real = None
    if args.verify:  # the gradient check needs real weights: build the model once, on the CPU, for both
        from archcost.cost import analyze

        work = load(args, "cpu")  # refuses an ONNX file with its own message: the check runs the torch model
        size = work.single_shape
        if size is None:
            raise InputError(
                f"rf --verify follows the gradient of one image input back to its pixels; {work.name} is given "
                f"{work.label()}",
                "run `archcost rf` without --verify for the analytic field of these inputs, or give one CxHxW input",
            )
        real = work.module
        report = analyze(work, device=args.device)
    else:
        report = analyse(args)  # a torch model, or an ONNX graph
    final = final_field(report)
    doc = {
        "model": report.model,
        "input_shape": list(report.input_shape),
        "layers": _rows(report),
        "final": None
        if final is None
        else {"layer": final.name, "rf": list(final.rf), "jump": list(final.rf_stride), "start": list(final.rf_start)},
        "unknown_from": next((r.rf_unknown for r in report.layers if r.rf_unknown), None),
    }
    code = EXIT_OK
    if real is not None:  # --verify: the model built above
        from archcost.verify.receptive_field import verify

        check = verify(real, size, args.layer, report=report)
        doc["verify"] = {
            "layer": check.layer,
            "input_size": list(check.input_size),
            "analytic_rf": list(check.analytic_rf),
            "empirical_rf": list(check.empirical_rf),
            "analytic_centre": list(check.analytic_centre),
            "empirical_centre": list(check.empirical_centre),
            "agrees": check.agrees,
        }
        code = EXIT_OK if check.agrees else EXIT_FAIL
    emit(_render(doc, args.format), args.output)
    return code


def _render(doc: dict, fmt: str) -> str:
    from archcost.report.table import axes_text

    if fmt == "json":
        return json.dumps(doc, sort_keys=True, indent=2) + "\n"
    import pandas as pd

    df = pd.DataFrame(doc["layers"], columns=["name", "type", "rf", "jump", "start", "note"])
    if fmt == "csv":
        return df.to_csv(index=False)
    from archcost.tables import render_table

    body = render_table(df, fmt, left={"name", "type", "note"})
    lines = [f"Receptive field of {doc['model']} on {'x'.join(map(str, doc['input_shape']))}, where it changes:", body]
    final = doc["final"]
    if final:
        lines.append(
            f"Final: {axes_text(final['rf'])} pixels at {final['layer']} (jump {axes_text(final['jump'])}, "
            f"centre of the first unit at {axes_text(final['start'])}); layers after it see the whole input."
        )
    if doc["unknown_from"]:
        lines.append(f"Unknown from {doc['unknown_from']} on: archcost does not know that op's geometry.")
    v = doc.get("verify")
    if v:
        verdict = "agree" if v["agrees"] else "DISAGREE"
        lines.append(
            f"Verify at {v['layer']} on a {'x'.join(map(str, v['input_size']))} input: analytic "
            f"{axes_text(v['analytic_rf'])} centred at {axes_text(v['analytic_centre'])}, gradient support "
            f"{axes_text(v['empirical_rf'])} centred at {axes_text(v['empirical_centre'])}: {verdict}."
        )
    return "\n".join(lines) + "\n"


def add_parser(sub) -> None:
    p = sub.add_parser("rf", help="receptive field growth, layer by layer (--verify: check it by gradients)")
    add_model_args(p)
    add_analysis_args(p)
    p.add_argument("--verify", action="store_true", help="check the analytic field by a gradient's support")
    p.add_argument("--layer", help="with --verify: the layer to check (default: the last spatial module)")
    add_output_args(p, ("text", "markdown", "csv", "json"))
    p.set_defaults(func=run)
