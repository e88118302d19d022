"""The per-layer cost table as text, markdown, CSV and JSON."""

from __future__ import annotations

import json

import pandas as pd

from archcost.cost.record import TOTAL_FIELDS, CostReport
from archcost.units import format_bytes, format_count


def shape_text(shape) -> str:
    """(1, 64, 56, 56) -> '1x64x56x56'; several outputs joined by ', '; no shape -> ''."""
    if not shape:
        return ""
    if isinstance(shape[0], int):
        return "x".join(map(str, shape))
    return ", ".join(shape_text(s) for s in shape)


#: Column -> (header, formatter) of the human-readable table.
_COLUMNS = {
    "name": ("Layer", str),
    "type": ("Type", str),
    "output_shape": ("Output shape", lambda s: shape_text(s)),
    "params": ("Params", format_count),
    "macs": ("MACs", format_count),
    "flops": ("FLOPs", format_count),
    "param_bytes": ("Param mem", format_bytes),
    "activation_bytes": ("Output mem", format_bytes),
    "rf_text": ("RF", str),
}


def rf_text(row) -> str:
    """A row's receptive field: '212', '1311x1183' per axis, 'global', '?' where unknown."""
    if row.rf_unknown is not None:
        return "?"
    if row.rf is None:
        return ""
    if row.rf_global:
        return "global"
    return axes_text(row.rf) + (" !" if row.rf_misaligned else "")


def axes_text(values) -> str:
    """(212.0, 212.0) -> '212'; (1311.0, 1183.0) -> '1311x1183'."""
    texts = [f"{v:g}" for v in values]
    return texts[0] if len(set(texts)) == 1 else "x".join(texts)


LEGEND = (
    "MACs: multiply-accumulates of conv/linear/matmul (papers' mult-adds). FLOPs: all floating-point "
    "operations (2 per MAC + bias, norm, activation, pooling, elementwise). Mem: bytes at the chosen "
    "dtype, decimal units (1 MB = 10^6 B); Output mem sums every layer's output, it is not a peak. "
    "RF: receptive field in input pixels per axis ('!': merges misaligned paths; '?': unknown)."
)


def layer_frame(report: CostReport, depth: int | None = None) -> pd.DataFrame:
    """Numeric per-layer (or per-module at ``depth``) frame with a totals row."""
    if depth is None:
        df = report.to_dataframe()
        if df.empty:
            df = pd.DataFrame(columns=list(_COLUMNS))
        df["rf_text"] = [rf_text(r) for r in report.layers]
        df = df[list(_COLUMNS)]
    else:
        df = report.rollup(depth)
        df.insert(1, "type", df.pop("layers").map(lambda n: f"{n} layer" + ("" if n == 1 else "s")))
        last = df.pop("last_row")
        df.insert(2, "output_shape", [report.layers[i].output_shape for i in last])
        df["rf_text"] = [rf_text(report.layers[i]) for i in last]
    totals = {"name": "Total", "type": "", "output_shape": (), **report.totals, "rf_text": ""}
    return pd.concat([df, pd.DataFrame([totals])], ignore_index=True)


def human_frame(report: CostReport, depth: int | None) -> pd.DataFrame:
    df = layer_frame(report, depth)
    out = pd.DataFrame({header: df[col].map(fmt) for col, (header, fmt) in _COLUMNS.items()})
    marks = ["" if ok else " (?)" for ok in _supported_flags(report, depth, len(df))]
    out["Layer"] = out["Layer"] + marks
    return out


def _supported_flags(report: CostReport, depth: int | None, n: int) -> list[bool]:
    if depth is not None:
        return [True] * n
    return [r.supported for r in report.layers] + [True]


def _inputs_text(report: CostReport) -> str:
    """'Input 1x3x224x224 float32', or every input with its name and dtype when there are several."""
    ins = report.input_shapes
    if len(ins) <= 1 and (not ins or ins[0]["dtype"] == report.dtype):
        return f"Input {'x'.join(map(str, report.input_shape))} {report.dtype}"
    parts = [f"{i['name'] + '=' if i['name'] else ''}{'x'.join(map(str, i['shape']))} {i['dtype']}" for i in ins]
    return f"Input{'s' if len(parts) > 1 else ''} {', '.join(parts)}; parameters {report.dtype}"


def footer_lines(report: CostReport) -> list[str]:
    t = report.totals
    lines = [
        f"{_inputs_text(report)}, "
        f"{'training' if report.training else 'inference'}: {format_count(t['params'])} params, "
        f"{format_count(t['macs'])} MACs, {format_count(t['flops'])} FLOPs, "
        f"{format_bytes(t['param_bytes'])} of parameters.",
        _memory_line(report),
        LEGEND,
    ]
    if report.analysed_on != "meta":
        lines.insert(
            1,
            f"Analysed on the {report.analysed_on} with real tensors: {report.analysed_on_because}. "
            "The figures are for this input's data: other data may take other branches.",
        )
    final = final_field(report)
    if final is not None:
        lines.insert(
            1,
            f"Receptive field of the last spatial layer ({final.name}): {rf_text(final)} pixels, "
            f"jump {axes_text(final.rf_stride)}.",
        )
    stopped = next((r for r in report.layers if r.rf_unknown is not None), None)
    if stopped is not None:
        lines.insert(1, f"Receptive field unknown from {stopped.rf_unknown} on.")
    if report.unsupported:
        lines.append(not_costed_line(report))
    lines += [f"Note: {note}." for note in report.notes]
    return lines


def not_costed_line(report: CostReport) -> str:
    """The last line of a table with uncosted ops: which ops, where, and that the totals are lower bounds."""
    where: dict[str, list[str]] = {}
    for u in report.unsupported:
        where.setdefault(u.op, []).append(u.layer)
    parts = []
    for op, layers in where.items():
        shown = ", ".join(layers[:3]) + (f" and {len(layers) - 3} more" if len(layers) > 3 else "")
        reason = next((u.reason for u in report.unsupported if u.op == op), "")
        why = "" if reason.startswith("no cost formula") else f"; {reason}"
        parts.append(f"{op} (in {shown}{why})")
    return (
        f"Not costed, counted as 0 and marked (?): {'; '.join(parts)}. The totals above are lower bounds "
        "(--strict makes this an error)."
    )


def text_table(df: pd.DataFrame, left: int, totals: bool = True) -> str:
    """Columns padded to width: the first ``left`` columns flush left, numbers flush right; a rule under
    the header, and above the last row when it holds ``totals``."""
    cells = [list(df.columns)] + df.astype(str).values.tolist()
    widths = [max(len(row[i]) for row in cells) for i in range(len(df.columns))]
    lines = []
    for k, row in enumerate(cells):
        parts = [c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(parts).rstrip())
        if k == 0 or (totals and k == len(cells) - 2):
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def final_field(report: CostReport):
    """The last row whose output still has a known, spatial (not global) receptive field."""
    return next((r for r in reversed(report.layers) if r.rf is not None and not r.rf_global), None)


def _memory_line(report: CostReport) -> str:
    from archcost.cost.memory import estimate

    m = estimate(report, "adam")
    return (
        f"Memory: peak activations {format_bytes(m.inference_peak_activation_bytes)} (input included, at "
        f"{m.peak_layer}); inference total {format_bytes(m.inference_total_bytes)}; a training step with Adam "
        f"about {format_bytes(m.training_total_bytes)} (params + the larger of saved activations + grads, "
        "and grads + 2 Adam states)."
    )


def render(report: CostReport, fmt: str = "text", depth: int | None = None) -> str:
    """The table in ``fmt``: text, markdown, csv or json."""
    if fmt == "json":
        return json.dumps(report.to_dict(), sort_keys=True, indent=2) + "\n"
    if fmt == "csv":
        df = layer_frame(report, depth)
        df["output_shape"] = df["output_shape"].map(shape_text)
        return df.to_csv(index=False)
    human = human_frame(report, depth)
    if fmt == "markdown":
        body = human.to_markdown(index=False, colalign=["left", "left", "left"] + ["right"] * 6)
        return f"### {report.model}\n\n{body}\n\n" + "\n\n".join(footer_lines(report)) + "\n"
    if fmt == "text":
        body = text_table(human, left=3)
        return f"{report.model}\n{body}\n\n" + "\n".join(footer_lines(report)) + "\n"
    raise ValueError(f"unknown format {fmt!r}")


__all__ = ["LEGEND", "TOTAL_FIELDS", "layer_frame", "render"]
