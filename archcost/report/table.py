"""The per-layer cost table as text, markdown, CSV and JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from html import escape
from typing import TYPE_CHECKING, Any

from archcost.cost.record import TOTAL_FIELDS, CostReport, listify, presents
from archcost.errors import InputError
from archcost.tables import render_table
from archcost.units import format_bytes, format_count

if TYPE_CHECKING:
    import pandas as pd


def shape_text(shape) -> str:
    """(1, 64, 56, 56) -> '1x64x56x56'; several outputs joined by ', '; no shape -> ''."""
    if not shape:
        return ""
    if isinstance(shape[0], int):
        return "x".join(map(str, shape))
    return ", ".join(shape_text(s) for s in shape)


def _missing(value) -> bool:
    return value is None or value != value  # None or NaN


def _count_or_blank(value) -> str:
    """A parameter count, or '' where it is unknown (an ONNX graph has no requires_grad)."""
    return "" if _missing(value) else format_count(int(value))


def _percent(value) -> str:
    """A share of the total MACs, 0.1234 -> '12.3%'; '' where the model has no MACs."""
    return "" if _missing(value) else f"{100 * value:.1f}%"


#: Column name (what ``--columns`` and ``columns=`` take) -> (header, formatter) of the human-readable table;
#: each formatter takes its own column's cells (ints, floats, shapes, names, None).
COLUMNS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "name": ("Layer", str),
    "type": ("Type", str),
    "output_shape": ("Output shape", lambda s: shape_text(s)),
    "params": ("Params", format_count),
    "trainable_params": ("Trainable", _count_or_blank),
    "frozen_params": ("Frozen", _count_or_blank),
    "macs": ("MACs", format_count),
    "int_macs": ("Int MACs", format_count),
    "share": ("Share", _percent),
    "flops": ("FLOPs", format_count),
    "bops": ("BOPs", lambda v: "" if _missing(v) else format_count(int(v))),
    "predicted_ms": ("Pred ms", lambda v: "" if _missing(v) else f"{v:.3g}"),
    "predicted_rule": ("Pred by", lambda v: "" if _missing(v) else f"~{v}"),
    "param_bytes": ("Param mem", format_bytes),
    "activation_bytes": ("Output mem", format_bytes),
    "rf": ("RF", str),
}
#: What the table shows when no columns are chosen.
DEFAULT_COLUMNS = ("name", "type", "output_shape", "params", "macs", "flops", "param_bytes", "activation_bytes", "rf")
#: Columns of words, flush left; numbers are flush right.
_LEFT = {"name", "type", "output_shape"}
#: The frame's (and CSV's) name of a column where it differs from the column's name.
_FRAME_NAME = {"rf": "rf_text"}
#: Legend lines for the columns the default table does not show.
_EXTRA_LEGEND = {
    "trainable_params": "Trainable / Frozen: parameters with requires_grad True / False.",
    "share": "Share: the row's part of the model's total MACs.",
    "int_macs": "Int MACs: of the MACs, those a quantized kernel runs in integer arithmetic (int8 x int8 into int32).",
    "bops": "BOPs: bit operations, MACs x weight bits x activation bits (Baskin et al. 2018, UNIQ).",
    "predicted_ms": "Pred ms: predicted milliseconds of the row's forward with the device profile (archcost predict).",
    "predicted_rule": "Pred by: '~kind' where the profile has no data for the row's kind and the nearest kind's "
    "rule priced it.",
}
_EXTRA_LEGEND["frozen_params"] = _EXTRA_LEGEND["trainable_params"]


def check_columns(columns) -> tuple[str, ...]:
    """``columns`` (names, or one comma-separated string) as a tuple that starts with ``name``; the default
    columns where None. Raises ``InputError`` (exit 2) naming the valid columns for an unknown one."""
    if columns is None:
        return DEFAULT_COLUMNS
    if isinstance(columns, str):
        columns = columns.split(",")
    chosen = [c.strip() for c in columns if c.strip()]
    unknown = [c for c in chosen if c not in COLUMNS]
    if unknown or not chosen:
        raise InputError(
            f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}"
            if unknown
            else "no columns chosen",
            f"choose among {', '.join(COLUMNS)} (comma-separated)",
        )
    return tuple(dict.fromkeys(["name", *chosen]))  # the layer's name always comes first


def default_columns(report: CostReport) -> tuple[str, ...]:
    """``DEFAULT_COLUMNS``, with Int MACs after MACs where a quantized kernel ran, and BOPs after FLOPs where
    bit widths were asked for (``analyze(weight_bits=, act_bits=)``)."""
    names = list(DEFAULT_COLUMNS)
    if report.totals["int_macs"]:
        names.insert(names.index("macs") + 1, "int_macs")
    if report.precision is not None:
        names.insert(names.index("flops") + 1, "bops")
    if report.prediction is not None:
        names.insert(names.index("activation_bytes") + 1, "predicted_ms")
        if report.prediction["fallbacks"]:
            names.insert(names.index("predicted_ms") + 1, "predicted_rule")
    return tuple(names)


def check_top(top) -> int | None:
    """``top`` as a positive whole number, or None; raises ``InputError`` otherwise."""
    if top is None:
        return None
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise InputError(f"top must be a whole number of layers >= 1, got {top!r}", "e.g. top=10 (--top 10)")
    return top


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


def _full_rows(report: CostReport, depth: int | None) -> list[dict]:
    """One dict per layer (or per module at ``depth``), without totals: every column of ``COLUMNS`` under its
    frame name, and ``supported``. Plain Python: the text table needs no pandas (it costs start-up time)."""
    if depth is None:
        rows = [
            {
                "name": r.name,
                "type": r.type,
                "output_shape": listify(r.output_shape),
                **{f: getattr(r, f) for f in TOTAL_FIELDS},
                "bops": r.bops,
                "predicted_ms": r.predicted_ms,
                "predicted_rule": r.predicted_rule,
                "rf_text": rf_text(r),
                "trainable_params": r.trainable_params,
                "supported": r.supported,
            }  # fmt: skip
            for r in report.layers
        ]
    else:
        rows = []
        for g in report.rollup_rows(depth):
            last = report.layers[g["last_row"]]
            n = g["layers"]
            rows.append(
                {
                    "name": g["name"],
                    "type": f"{n} layer" + ("" if n == 1 else "s"),
                    "output_shape": last.output_shape,
                    **{f: g[f] for f in TOTAL_FIELDS},
                    "bops": g.get("bops"),
                    "predicted_ms": g.get("predicted_ms"),
                    "predicted_rule": None,
                    "rf_text": rf_text(last),
                    "trainable_params": g["trainable_params"],
                    "supported": True,
                }  # fmt: skip
            )
    total_macs = report.totals["macs"]
    for row in rows:
        t = row["trainable_params"]
        row["frozen_params"] = None if t is None else row["params"] - t
        row["share"] = row["macs"] / total_macs if total_macs else None
    return rows


def _totals_row(report: CostReport) -> dict:
    """The whole model's totals, whatever rows are shown."""
    totals = report.totals
    counts = [r.trainable_params for r in report.layers]
    known = [t for t in counts if t is not None]
    trainable = sum(known) if len(known) == len(counts) else None
    return {
        "name": "Total", "type": "", "output_shape": (), **{f: totals[f] for f in TOTAL_FIELDS}, "rf_text": "",
        "bops": totals.get("bops"),
        "predicted_ms": report.prediction["total_ms"] if report.prediction is not None else None,
        "predicted_rule": None,
        "trainable_params": trainable, "frozen_params": None if trainable is None else totals["params"] - trainable,
        "share": 1.0 if totals["macs"] else None, "supported": True,
    }  # fmt: skip


def _costliest(rows: list[dict], top: int) -> list[dict]:
    """The ``top`` rows with the most MACs, costliest first (ties in execution order)."""
    return sorted(rows, key=lambda r: -r["macs"])[:top]


def _chosen(report: CostReport, depth: int | None, columns, top) -> tuple[list[dict], tuple[str, ...], int]:
    """The rows to show with the totals row last; the column names; the number of rows in all."""
    names = check_columns(columns) if columns is not None else default_columns(report)
    top = check_top(top)
    rows = _full_rows(report, depth)
    n = len(rows)
    if top is not None:
        rows = _costliest(rows, top)
    return [*rows, _totals_row(report)], names, n


def layer_frame(report: CostReport, depth: int | None = None, columns=None, top: int | None = None) -> pd.DataFrame:
    """Numeric per-layer (or per-module at ``depth``) frame with a totals row of the whole model.

    ``columns``: names from ``COLUMNS`` (default ``DEFAULT_COLUMNS``; the receptive field column is called
    ``rf_text`` here); ``top``: only the ``top`` rows with the most MACs, costliest first. ``share`` is a
    fraction of the total MACs (0 to 1); ``trainable_params``/``frozen_params`` are None where unknown.
    Raises ``InputError`` for an unknown column or a ``top`` below 1.
    """
    import pandas as pd

    rows, names, _ = _chosen(report, depth, columns, top)
    keys = [_FRAME_NAME.get(c, c) for c in names]
    df = pd.DataFrame({k: [r[k] for r in rows] for k in keys}, columns=keys)
    if "trainable_params" in df:  # counts stay integers, None where unknown (not floats with NaN)
        df["trainable_params"] = pd.Series([r["trainable_params"] for r in rows], dtype=object)
    return df


def _human_rows(report: CostReport, depth: int | None, columns, top) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted cells of ``layer_frame``'s rows ('(?)' after a layer not costed)."""
    rows, names, _ = _chosen(report, depth, columns, top)
    headers = [COLUMNS[c][0] for c in names]
    cells = []
    for r in rows:
        line = [COLUMNS[c][1](r[_FRAME_NAME.get(c, c)]) for c in names]
        if not r["supported"]:
            line[headers.index("Layer")] += " (?)"
        cells.append(line)
    return headers, cells


def human_frame(report: CostReport, depth: int | None, columns=None, top: int | None = None) -> pd.DataFrame:
    """``layer_frame`` formatted for reading (headers from ``COLUMNS``; '(?)' after a layer not costed)."""
    import pandas as pd

    headers, cells = _human_rows(report, depth, columns, top)
    return pd.DataFrame(cells, columns=headers)


def _inputs_text(report: CostReport) -> str:
    """'Input 1x3x224x224 float32', or every input with its name and dtype when there are several."""
    ins = report.input_shapes
    if len(ins) <= 1 and (not ins or ins[0]["dtype"] == report.dtype):
        return f"Input {'x'.join(map(str, report.input_shape))} {report.dtype}"
    parts = [f"{i['name'] + '=' if i['name'] else ''}{'x'.join(map(str, i['shape']))} {i['dtype']}" for i in ins]
    return f"Input{'s' if len(parts) > 1 else ''} {', '.join(parts)}; parameters {report.dtype}"


def footer_lines(report: CostReport, columns=None, top: int | None = None, depth: int | None = None) -> list[str]:
    """The lines under the table: totals in words, receptive field, memory, legend, what was not costed;
    with ``columns`` the legend of the extra columns shown, with ``top`` which rows are shown."""
    lines = _footer(report)
    shown = check_columns(columns) if columns is not None else default_columns(report)
    extra = dict.fromkeys(_EXTRA_LEGEND[c] for c in shown if c in _EXTRA_LEGEND)
    at = lines.index(LEGEND) + 1
    lines[at:at] = list(extra)
    n_top = check_top(top)
    if n_top is not None:
        rows = _full_rows(report, depth)
        costliest = _costliest(rows, n_top)
        what = "layers" if depth is None else "modules"
        total = report.totals["macs"]
        share = f" ({_percent(sum(r['macs'] for r in costliest) / total)} of the MACs)" if total else ""
        lines.insert(
            at + len(extra),
            f"Shown: the {len(costliest)} of {len(rows)} {what} with the most MACs, costliest first{share}; "
            "the totals are the whole model's.",
        )
    return lines


def _footer(report: CostReport) -> list[str]:
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
            f"Analysed on the {report.analysed_on} with real tensors: {report.analysed_on_because}.",
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
    elif final is None and any(r.rf == () for r in report.layers) and not any(r.rf for r in report.layers):
        lines.insert(1, "No receptive field: no layer has a spatial axis (the input has none: token ids, vectors).")
    by_dtype = report.param_bytes_by_dtype
    if by_dtype and set(by_dtype) != {report.dtype}:  # stored at other precisions than the analysis dtype
        parts = ", ".join(f"{d} {format_bytes(b)}" for d, b in sorted(by_dtype.items(), key=lambda kv: -kv[1]))
        lines.insert(1, f"Parameter bytes by stored dtype: {parts}; dtypes seen: {', '.join(report.dtypes_seen)}.")
    if report.prediction is not None:
        lines.insert(1, _prediction_line(report.prediction))
    if report.unsupported:
        lines.append(not_costed_line(report))
    lines += [f"Note: {note}." for note in report.notes]
    return lines


def _prediction_line(p: dict) -> str:
    """The footer's line on predicted latency: the total, the profile it came from, what it could not price
    from its own kind's data, and what the profile checks warned of."""
    where = f"{p['device']} ({p['device_name']}), {p['threads']} thread(s), {p['dtype']}, torch {p['torch']}"
    text = (
        f"Predicted latency: {p['total_ms']:.3g} ms per forward at batch {p['batch_size']} on {where} "
        f"(device profile {p['device_profile'] or 'given'}; the sum of the rows' predictions)."
    )
    if p["fallbacks"]:
        near = ", ".join(f"{k} by the {v} rule" for k, v in sorted(p["fallbacks"].items()))
        text += f" No calibration data for {near} (rows marked ~ under Pred by)."
    for warning in p["warnings"]:
        text += f" Warning: {warning}."
    return text


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


def final_field(report: CostReport):
    """The last row whose output still has a known, spatial (not global) receptive field (``rf == ()``: an
    output without spatial axes, as every row of a model of token ids has, is none)."""
    return next((r for r in reversed(report.layers) if r.rf and not r.rf_global), None)


#: torch's quantized dtypes: a model holding them has no training step (quantized kernels have no backward)
_QUANTIZED_DTYPES = {"qint8", "quint8", "qint32", "quint4x2", "quint2x4"}


def _memory_line(report: CostReport) -> str:
    m = report.memory
    head = (
        f"Memory: peak activations {format_bytes(m.inference_peak_activation_bytes)} (input included, at "
        f"{m.peak_layer}); inference total {format_bytes(m.inference_total_bytes)}"
    )
    if _QUANTIZED_DTYPES & set(report.dtypes_seen):
        return f"{head}; no training step (torch.ao's quantized kernels have no backward)."
    return (
        f"{head}; a training step with Adam roughly {format_bytes(m.training_total_bytes)} (params + the larger "
        "of saved activations + grads, and grads + 2 Adam states; --mode train follows the step itself)."
    )


def render(
    report: CostReport, fmt: str = "text", depth: int | None = None, columns=None, top: int | None = None
) -> str:
    """The table in ``fmt``: text, markdown, html, csv or json.

    ``depth`` rolls rows up the module tree; ``columns`` chooses what is shown (names from ``COLUMNS``;
    default ``DEFAULT_COLUMNS``; the layer name always comes first); ``top`` shows only the ``top`` rows with
    the most MACs. The totals and footer are always the whole model's. JSON is the whole report: ``columns``
    and ``top`` do not apply to it (``InputError`` if given). Raises ``InputError`` for an unknown column.
    """
    if fmt == "json":
        if columns is not None or top is not None:
            raise InputError(
                "columns and top choose what a text, markdown, html or csv table shows; JSON holds every field",
                "leave out --columns/--top, or choose another --format",
            )
        return json.dumps(report.to_dict(), sort_keys=True, indent=2) + "\n"
    if fmt == "csv":
        df = layer_frame(report, depth, columns, top)
        if "output_shape" in df:
            df["output_shape"] = df["output_shape"].map(shape_text)
        return df.to_csv(index=False)
    if fmt not in ("markdown", "text", "html"):
        raise ValueError(f"unknown format {fmt!r}")
    headers, cells = _human_rows(report, depth, columns, top)
    names = check_columns(columns) if columns is not None else default_columns(report)
    footer = footer_lines(report, names, top, depth)
    left = {COLUMNS[c][0] for c in names if c in _LEFT}
    body = render_table(cells, fmt, headers=headers, left=left, totals=True)
    return titled(report.model, body, footer, fmt)


def titled(title: str, body: str, footer: list[str], fmt: str) -> str:
    """A rendered table (``body``, in ``fmt``) under its ``title`` with its ``footer`` lines: markdown (a
    ``###`` heading, the lines as paragraphs), html (a ``div``) or text. Every cost table ends this way."""
    if fmt == "markdown":
        return f"### {title}\n\n{body}\n\n" + "\n\n".join(footer) + "\n"
    if fmt == "html":
        lines = "".join(f"<p>{escape(line)}</p>\n" for line in footer)
        return f'<div class="archcost-report">\n<p><strong>{escape(title)}</strong></p>\n{body}\n{lines}</div>\n'
    return f"{title}\n{body}\n\n" + "\n".join(footer) + "\n"


@presents("text")
def _as_text(report: CostReport) -> str:
    """``str(report)``: the text table with totals and footer."""
    return render(report, "text")


@presents("html")
def _as_html(report: CostReport) -> str:
    """``report._repr_html_()``: the HTML table of notebooks."""
    return render(report, "html")


__all__ = ["COLUMNS", "DEFAULT_COLUMNS", "LEGEND", "TOTAL_FIELDS", "layer_frame", "render"]
