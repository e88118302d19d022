"""``archcost report``: one folder with every table and chart for a set of models (markdown and HTML)."""

from __future__ import annotations

import html
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from archcost.errors import InputError
from archcost.files import write_atomic
from archcost.report.chart import Chart
from archcost.tables import render_table
from archcost.units import format_bytes, format_count


@dataclass
class Document:
    """The pieces of a report, in order: (title, text) sections, tables and figure files."""

    title: str
    #: ("h2" | "p", text), ("table", DataFrame), ("img", (file name, caption)): the payload's type follows the kind
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def h2(self, text: str) -> None:
        self.blocks.append(("h2", text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def table(self, df: pd.DataFrame) -> None:
        self.blocks.append(("table", df))

    def img(self, name: str, caption: str) -> None:
        self.blocks.append(("img", (name, caption)))

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for kind, payload in self.blocks:
            if kind == "h2":
                out += [f"## {payload}", ""]
            elif kind == "p":
                out += [payload, ""]
            elif kind == "table":  # words flush left, numbers flush right
                words = {c for c in payload.columns if not pd.api.types.is_numeric_dtype(payload[c])}
                out += [render_table(payload, "markdown", left=words), ""]
            else:
                out += [f"![{payload[1]}]({payload[0]})", "", f"*{payload[1]}*", ""]
        return "\n".join(out)

    def html(self) -> str:
        out = [
            "<!doctype html><html><head><meta charset='utf-8'>",
            f"<title>{html.escape(self.title)}</title>",
            "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;"
            "font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}img{max-width:100%}"
            "</style></head><body>",
            f"<h1>{html.escape(self.title)}</h1>",
        ]
        for kind, payload in self.blocks:
            if kind == "h2":
                out.append(f"<h2>{html.escape(payload)}</h2>")
            elif kind == "p":
                out.append(f"<p>{html.escape(payload)}</p>")
            elif kind == "table":  # cells escaped by tabulate's html format
                words = {c for c in payload.columns if not pd.api.types.is_numeric_dtype(payload[c])}
                out.append(render_table(payload, "html", left=words))
            else:
                out.append(f"<figure><img src='{html.escape(payload[0])}'><figcaption>{html.escape(payload[1])}"
                           "</figcaption></figure>")  # fmt: skip
        out.append("</body></html>")
        return "\n".join(out)


def fit_caption(chart: Chart) -> str:
    """The caption of ``figures.macs_vs_latency``: the power-law fit it draws (a straight line on its log-log
    axes, not a linear fit), with its exponent and R² of the log values, or why none is drawn."""
    from archcost.report.figures import MIN_FIT_POINTS

    if chart.fit is None:
        return f"Operations against measured latency (no fit: fewer than {MIN_FIT_POINTS} models)"
    k, c, r2 = chart.fit
    return (
        f"Operations against measured latency, with a power-law fit GMACs = {c:.3g} x latency_ms^{k:.2f} "
        f"(a straight line on the log-log axes; R² = {r2:.3f} of the log values)"
    )


def _save(chart: Chart, folder: Path, name: str) -> str:
    buffer = io.BytesIO()
    chart.savefig(buffer, format="png", dpi=130)
    write_atomic(folder / name, buffer.getvalue())
    return name


def build(analysed: dict, folder: str | Path, results: str | list[str] | None = None, accuracy: str | None = None,
          device: str | None = None, *, steps: list | None = None) -> Document:  # fmt: skip
    """Write the report's figures and CSVs into ``folder`` and return the document (not yet written).

    ``analysed``: ``{spec: (Workload, CostReport)}`` (``archcost.cost.collect.analyse_models``, every model at
    the inputs its records were measured at); ``steps``: their training steps
    (``archcost.cost.collect.training_steps``); ``results``: profile records to draw. Nothing is analysed
    here."""
    from archcost.cost.memory import estimate
    from archcost.report import figures
    from archcost.report.data import model_points, with_accuracy
    from archcost.report.table import final_field, layer_frame, rf_text

    folder = Path(folder)
    doc = Document("archcost report")
    doc.p(
        "MACs: multiply-accumulates of conv/linear/matmul (papers' mult-adds); FLOPs: all floating-point "
        "operations. Memory at float32, batch 1, decimal units. Accuracy: the zoo's published single-crop "
        "top-1 with its source in the model's metadata."
    )
    rows, reports = [], {}
    for spec, (loaded, report) in analysed.items():  # each model analysed once, for the tables and charts alike
        reports[loaded.name or spec] = report
        mem = estimate(report)
        final = final_field(report)
        rows.append({
            "model": loaded.name, "input": loaded.label(),
            "params": format_count(report.totals["params"]), "MACs": format_count(report.totals["macs"]),
            "FLOPs": format_count(report.totals["flops"]), "param mem": format_bytes(report.totals["param_bytes"]),
            "peak activations": format_bytes(mem.inference_peak_activation_bytes),
            "final RF": rf_text(final) if final else "", "uncosted ops": len(report.unsupported),
        })  # fmt: skip
        if report.prediction is not None:  # archcost predict's figure, with the profile named under the table
            rows[-1]["predicted ms"] = f"{report.prediction['total_ms']:.3g}"
        write_atomic(folder / f"{loaded.name}.csv", layer_frame(report).to_csv(index=False))
    doc.h2("Comparison")
    doc.table(pd.DataFrame(rows))
    predicted = next((r.prediction for r in reports.values() if r.prediction is not None), None)
    if predicted is not None:
        doc.p(
            f"Predicted ms: one forward at batch {predicted['batch_size']}, predicted from the device profile "
            f"{predicted['device_profile']} ({predicted['device']}, {predicted['device_name']}, "
            f"{predicted['threads']} thread(s), {predicted['dtype']}): the sum of each layer's prediction "
            "(archcost predict); see benchmarks/predict_check.py for how far such predictions are from measured."
        )
    points = with_accuracy(model_points(analysed, accuracy))
    for note in points.notes:
        doc.p(f"Note: {note}.")
    if not points.frame.empty:
        write_atomic(folder / "models.csv", points.frame.to_csv(index=False))
        doc.h2("Accuracy and cost")
        for name, fn, caption in (
            ("accuracy-vs-macs.png", figures.accuracy_vs_macs, "Top-1 against MACs; blob area: parameters"),
            ("accuracy-density.png", figures.accuracy_density, "Top-1 per million parameters"),
        ):
            doc.img(_save(fn(points.frame), folder, name), caption)
    from archcost.report.precision_figures import PUBLISHED, accuracy_vs_weight_bytes, precision_points

    published = {e.spec for e in PUBLISHED}
    counts = {s: (int(r.totals["params"]), int(r.totals["macs"])) for s, (_, r) in analysed.items() if s in published}
    if counts:  # the seed's "weight precision" trade-off, for the models with published int8 weights
        precision = precision_points(counts)
        write_atomic(folder / "precision.csv", precision.to_csv(index=False))
        doc.h2("Weight precision")
        doc.p(
            "Published ImageNet-1K top-1 of torchvision's float32 weights and of the int8 weights quantized from "
            "them (the source of each figure in precision.csv), against weight bytes: parameters x 4 bytes "
            "(float32) or x 1 byte (int8; biases, scales and zero points left out)."
        )
        doc.table(precision[["model", "top1", "params", "weight_bytes", "method"]])
        doc.img(
            _save(accuracy_vs_weight_bytes(precision), folder, "accuracy-vs-weight-bytes.png"),
            "Top-1 against weight bytes; blob area: MACs; dashed: the Pareto frontier",
        )
    if results:
        from archcost.report.data import measured_frame

        df = measured_frame(results, device, None)
        held = sorted(df["model"].unique())
        df = df[df["model"].isin(reports) & (df["mode"] != "train")].reset_index(drop=True)  # inference charts
        if df.empty:
            raise InputError(
                f"the results given hold no inference measurement of {', '.join(reports)} "
                f"(they hold {', '.join(held) or 'none'})",
                "profile these models first (archcost profile ... --append FILE), or name models the file holds",
            )
        write_atomic(folder / "measured.csv", df.to_csv(index=False))
        doc.h2(f"Measured on {df['device'].iloc[0]} ({df['env_device_name'].iloc[0]})")
        doc.table(df[["model", "batch_size", "latency_ms", "throughput", "memory_mb"]].round(2))
        for name, fn, caption in (
            ("latency-vs-batch.png", figures.latency_vs_batch, "Median latency per batch against batch size"),
            ("throughput-vs-batch.png", figures.throughput_vs_batch, "Images per second against batch size"),
            ("memory-vs-batch.png", figures.memory_vs_batch, "Measured peak memory against batch size"),
        ):
            doc.img(_save(fn(df), folder, name), caption)
        one = df[df["batch_size"] == df["batch_size"].min()].reset_index(drop=True)
        if len(one) >= 2:
            fit = figures.macs_vs_latency(one)
            doc.img(_save(fit, folder, "macs-vs-latency.png"), fit_caption(fit))
            acc = one[one["top1"].notna()].reset_index(drop=True)
            if len(acc) >= 2:
                doc.img(_save(figures.accuracy_vs_throughput(acc), folder, "accuracy-vs-throughput.png"),
                        "Top-1 against throughput; blob area: MACs; dashed: upper envelope")  # fmt: skip
    from archcost.report.training import report_training_table  # issue 16: one training step per model

    train, train_notes = report_training_table(steps or [])
    doc.h2("Training cost (batch 1, adam)")
    doc.p(
        "One training step: forward FLOPs of the training-mode forward (batch norm with batch statistics), "
        "backward FLOPs from autograd's backward run on meta tensors (gradient of each input where an earlier "
        "layer needs it, of each trained weight), Adam's 13 FLOPs per trained parameter, and the peak bytes of "
        "forward, backward and the first Adam step (parameters, gradients, optimizer state, saved activations); "
        "see archcost table MODEL --mode train."
    )
    if len(train):
        doc.table(train)
    for note in train_notes:
        doc.p(f"Note: {note}.")
    doc.h2("Per-model cost, by top-level module")
    for name, report in reports.items():
        shown = " ".join(f"{i.get('name') or ''}{'=' if i.get('name') else ''}{'x'.join(map(str, i['shape']))}"
                         for i in report.input_shapes) or "x".join(map(str, report.input_shape))  # fmt: skip
        doc.p(f"{name}: input {shown}; per-layer table in {name}.csv")
        df = layer_frame(report, depth=1)
        for col in ("params", "macs", "flops"):
            df[col] = df[col].map(format_count)
        for col in ("param_bytes", "activation_bytes"):
            df[col] = df[col].map(format_bytes)
        doc.table(df.drop(columns=["output_shape", "rf_text"]))
    first = next(iter(reports.values()))
    doc.img(
        _save(figures.layers(first), folder, f"{first.model}-layers.png"),
        f"{first.model}: parameters and MACs per layer",
    )
    return doc


def write(doc: Document, folder: str | Path) -> list[Path]:
    folder = Path(folder)
    return [write_atomic(folder / "report.md", doc.markdown()), write_atomic(folder / "report.html", doc.html())]
