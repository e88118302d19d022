"""``archcost plot KIND``: efficiency charts from archcost's counts, published accuracy and profile results."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from archcost.commands._common import EXIT_OK, add_device_arg, add_input_args, parse_opts, positive_int
from archcost.errors import InputError, ModelLoadError

if TYPE_CHECKING:
    from archcost.report.chart import Chart

ANALYTIC = ("accuracy-vs-macs", "accuracy-bar", "accuracy-density")
PER_MODEL = ("layers", "rf")
MEASURED = (
    "accuracy-vs-throughput", "latency-vs-batch", "throughput-vs-batch", "power-vs-batch", "energy-per-image",
    "memory-vs-batch", "memory-vs-params", "macs-vs-latency", "roofline",
)  # fmt: skip
LAYER_MEASURED = ("layer-time", "layer-roofline")  # archcost.report.layer_figures: profile --layers records
TRAINING = ("memory-train-vs-batch",)  # archcost.report.training_figures: estimates, and records if given
PRECISION = ("accuracy-vs-weight-bytes",)  # archcost.report.precision_figures: published float and int8 top-1
PREDICTED = ("predicted-vs-measured",)  # archcost.report.prediction_figures: records and a device profile
KINDS = ANALYTIC + PER_MODEL + MEASURED + LAYER_MEASURED + TRAINING + PRECISION + PREDICTED


#: profile result fields -> the chart columns, with the unit change.
def _same_dataset(df, dataset: str | None):
    """Measured rows with an accuracy on ``dataset``, and notes naming the rows left out (never drawn at
    zero) and the models whose dataset is not known (not in the zoo, no dataset in the accuracy file)."""
    notes = []
    missing = df[df["top1"].isna()]["model"].unique().tolist()
    if missing:
        notes.append(f"no published accuracy, left out: {', '.join(missing)} (add them with --accuracy FILE)")
    df = df[df["top1"].notna()]
    unknown = df[df["dataset"].isna()]["model"].unique().tolist()
    if unknown:
        notes.append(f"not zoo models, so their dataset is not known, drawn as {dataset} top-1: {', '.join(unknown)} "
                     "(add a dataset column to the accuracy file if that is wrong)")  # fmt: skip
    df = df.assign(dataset=df["dataset"].fillna(dataset or "ImageNet"))
    if dataset:
        other = df[df["dataset"] != dataset]
        for model, ds in dict(zip(other["model"], other["dataset"], strict=True)).items():
            notes.append(f"{model} left out: its accuracy is on {ds}, not {dataset}")
        df = df[df["dataset"] == dataset]
    return df.reset_index(drop=True), notes


def _models(args) -> list[str]:
    if not args.models:
        raise InputError(f"plot {args.kind} needs --models", "e.g. --models resnet50,vgg16,mobilenet_v1")
    return [m.strip() for m in args.models.split(",") if m.strip()]


def precision_counts(archs: list[str] | None) -> tuple[dict[str, tuple[int, int]], list[str]]:
    """``{spec: (params, MACs)}`` for the published float/int8 pairs of ``report.precision_figures.PUBLISHED``
    (all of them, or those whose architecture is in ``archs``), each analysed once at the input its accuracy
    was measured at, and notes naming the pairs left out (a ``torchvision:`` architecture without
    torchvision installed). An architecture not in ``PUBLISHED`` is an ``InputError``."""
    from archcost.cost.collect import analyse_models
    from archcost.report.precision_figures import INPUT_SIZES, PUBLISHED

    known = list(dict.fromkeys(e.arch for e in PUBLISHED))
    if archs is not None:
        unknown = [a for a in archs if a not in known]
        if unknown:
            raise InputError(
                f"no published int8 accuracy for {', '.join(unknown)}",
                f"accuracy-vs-weight-bytes draws torchvision's quantized weights: {', '.join(known)}",
            )
    counts: dict[str, tuple[int, int]] = {}
    notes: list[str] = []
    for arch in archs or known:
        spec = next(e.spec for e in PUBLISHED if e.arch == arch)
        size = INPUT_SIZES.get(arch)
        try:
            ((_, report),) = analyse_models([spec], {"input_size": size} if size else None).values()
        except ModelLoadError as exc:  # torchvision:NAME with no torchvision here
            notes.append(f"{arch} left out: {exc.message}")
            continue
        counts[spec] = (int(report.totals["params"]), int(report.totals["macs"]))
    return counts, notes


def figure(args: argparse.Namespace) -> tuple[Chart, list[str]]:
    """The chart for ``args.kind`` (``report.chart.Chart``: the figure and its warnings), and notes on what
    was left out."""
    from archcost.report import figures
    from archcost.report.data import model_points, read_accuracy, with_accuracy

    notes: list[str] = []
    profile = None
    if args.device_profile is not None:
        if args.kind not in PREDICTED and args.kind != "layer-time":
            raise InputError(
                f"--device-profile is for plot predicted-vs-measured and layer-time, not {args.kind}",
                "leave out --device-profile",
            )
        from archcost.predict.annotate import read_profile

        profile, warned = read_profile(args.device_profile)
        notes += warned
    if args.kind in PREDICTED:
        return _predicted_vs_measured(args, profile, notes)
    if args.kind == "layer-time" and profile is not None:
        from archcost.predict.annotate import layer_predictions
        from archcost.profiling.results import read_results
        from archcost.report.layer_figures import layer_time, pick_record

        if not args.model or not args.results:
            raise InputError(
                "plot layer-time needs a MODEL and --results", "e.g. plot layer-time resnet18 --results r.jsonl"
            )
        record = pick_record(read_results(args.results), args.model, args.batch_size, args.device)
        return layer_time(record, layer_predictions(record, profile)), notes
    if args.kind in LAYER_MEASURED:
        from archcost.report.layer_figures import figure_for

        return figure_for(args.kind, args.results, args.model, args.batch_size, args.device), notes
    if args.kind in TRAINING:
        from archcost.report.data import measured_frame
        from archcost.report.training_figures import training_memory_figure

        measured = measured_frame(args.results, args.device, None) if args.results else None
        notes += measured.attrs.get("warnings", []) if measured is not None else []
        from archcost.cost.collect import memory_estimates

        return training_memory_figure(_models(args) if args.models else None, measured, memory_estimates), notes
    if args.kind in PRECISION:
        from archcost.report.precision_figures import accuracy_vs_weight_bytes, precision_points

        counts, notes = precision_counts(_models(args) if args.models else None)
        if not counts:
            raise InputError("no model with published float and int8 accuracy to plot", "; ".join(notes))
        return accuracy_vs_weight_bytes(precision_points(counts)), notes
    if args.kind in PER_MODEL:
        from archcost.commands._common import analyse

        if not args.model:
            raise InputError(f"plot {args.kind} needs a MODEL", f"e.g. archcost plot {args.kind} alexnet")
        # plot's --device picks measured results; the analysis itself runs where analyse() decides
        report = analyse(argparse.Namespace(**{**vars(args), "batch_size": 1, "device": "auto"}))
        return (figures.layers if args.kind == "layers" else figures.receptive_field)(report), notes
    if args.kind in ANALYTIC:
        from archcost.cost.collect import analyse_models

        points = with_accuracy(model_points(analyse_models(_models(args)), args.accuracy, args.dataset))
        if points.frame.empty:
            raise InputError("no model with a known accuracy to plot", "; ".join(points.notes))
        fn = {"accuracy-vs-macs": figures.accuracy_vs_macs, "accuracy-bar": figures.accuracy_bar,
              "accuracy-density": figures.accuracy_density}[args.kind]  # fmt: skip
        return fn(points.frame), points.notes
    if not args.results:
        raise InputError(f"plot {args.kind} draws measured results", "give --results FILE from `archcost profile`")
    per_batch = args.kind in ("accuracy-vs-throughput", "memory-vs-params", "macs-vs-latency", "roofline")
    from archcost.report.data import measured_frame

    df = measured_frame(args.results, args.device, (args.batch_size or 1) if per_batch else None)
    notes += df.attrs.get("warnings", [])
    if (df["mode"] == "train").any():  # these charts draw inference; memory-train-vs-batch draws both
        notes.append("training-step records (profile --mode train) left out: this chart draws inference")
        df = df[df["mode"] != "train"].reset_index(drop=True)
    if args.models:
        wanted = set(_models(args))
        df = df[df["model"].isin(wanted)].reset_index(drop=True)
    if args.accuracy:
        extra = read_accuracy(args.accuracy)
        for column in ("top1", "dataset"):
            df[column] = [extra.get(m, {}).get(column) or v for m, v in zip(df["model"], df[column], strict=True)]
    if df.empty:
        raise InputError("no measured model left to plot", "check --models, --device and --batch-size")
    if args.kind == "accuracy-vs-throughput":
        df, notes = _same_dataset(df, args.dataset)
        if df.empty:
            raise InputError("no measured model with a known accuracy to plot", "; ".join(notes))
        return figures.accuracy_vs_throughput(df), notes
    if args.kind == "power-vs-batch" or args.kind == "energy-per-image":
        column = "power_w" if args.kind == "power-vs-batch" else "energy_j_per_image"
        if df[column].isna().all():
            raise InputError(
                f"{', '.join(args.results)} has no power data", "power is measured through NVML on NVIDIA GPUs only"
            )
    if args.kind == "roofline":
        return figures.roofline(df), notes  # each record under the roof of its own run
    fn = {
        "latency-vs-batch": figures.latency_vs_batch, "throughput-vs-batch": figures.throughput_vs_batch,
        "power-vs-batch": figures.power_vs_batch, "energy-per-image": figures.energy_per_image,
        "memory-vs-batch": figures.memory_vs_batch, "memory-vs-params": figures.memory_vs_params,
        "macs-vs-latency": figures.macs_vs_latency,
    }[args.kind]  # fmt: skip
    return fn(df), notes


def _predicted_vs_measured(args: argparse.Namespace, profile, notes: list[str]) -> tuple[Chart, list[str]]:
    """One point per measured model (its latest inference record at ``--batch-size``, default 1): measured
    median latency against the device profile's prediction for the same model, input and batch."""
    import pandas as pd

    from archcost.predict.annotate import predict_records
    from archcost.profiling.results import read_results
    from archcost.report.prediction_figures import predicted_vs_measured

    if profile is None or not args.results:
        raise InputError(
            "plot predicted-vs-measured needs --results and --device-profile",
            "e.g. archcost plot predicted-vs-measured --results r.jsonl --device-profile cpu-2t.json --output p.png",
        )
    df = read_results(args.results)
    batch = args.batch_size or 1
    ok = df[(df["status"] == "ok") & (df["batch_size"] == batch)]
    if "mode" in ok:
        ok = ok[ok["mode"].fillna("infer") != "train"]
    if args.device:
        ok = ok[ok["device"] == args.device]
    if args.models:
        ok = ok[ok["model"].isin(_models(args))]
    latest = ok.drop_duplicates("model", keep="last").to_dict(orient="records")
    if not latest:
        raise InputError(f"the results hold no ok inference record at batch {batch}", "check --batch-size and --models")
    rows = predict_records(latest, profile)
    notes += [f"{r['model']} left out: {r['skipped']}" for r in rows if "skipped" in r]
    points = pd.DataFrame([r for r in rows if "skipped" not in r])
    if points.empty:
        raise InputError("no measured model could be predicted", "; ".join(notes))
    where = {str(r["device"]) for r in latest}
    threads = {str(r.get("threads") or r.get("env_threads")) for r in latest}
    setting = (
        f"measured: {', '.join(sorted(where))}, {', '.join(sorted(threads))} thread(s), batch {batch}; predicted: "
        f"{profile.path} ({profile.device}, {profile.threads} thread(s), {profile.dtype})"
    )
    return predicted_vs_measured(points, setting), notes


def run(args: argparse.Namespace) -> int:
    from archcost.files import write_atomic

    out = Path(args.output)
    if out.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise InputError(f"cannot tell the image format of {out}", "end --output with .png, .svg or .pdf")
    chart, notes = figure(args)
    import io

    buffer = io.BytesIO()
    chart.savefig(buffer, format=out.suffix[1:].lower(), dpi=150)
    write_atomic(out, buffer.getvalue())
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    warnings = chart.warnings
    for warning in warnings:
        print(f"archcost: warning: {warning}", file=sys.stderr)
    count = f" with {len(warnings)} warning(s): the chart cannot show all it claims" if warnings else ""
    print(f"wrote {out}{count}", file=sys.stderr)
    return EXIT_OK


def add_parser(sub) -> None:
    p = sub.add_parser("plot", help="efficiency charts (accuracy vs MACs, latency vs batch, roofline, ...)")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("model", nargs="?", help="for `layers` and `rf`: the model")
    p.add_argument("--models", help="comma-separated models (zoo names, import paths)")
    p.add_argument(
        "--results",
        action="append",
        metavar="FILE",
        help="profile results (JSON lines from `archcost profile --append`); repeatable: several files are one table",
    )
    p.add_argument("--accuracy", help="CSV model,top1[,top5][,dataset] adding or overriding published accuracy")
    p.add_argument("--dataset", default="ImageNet", help="accuracy charts compare models of this dataset")
    p.add_argument(
        "--device-profile",
        metavar="FILE",
        help="predicted-vs-measured and layer-time: predict with this device profile (archcost calibrate)",
    )
    add_device_arg(p, "records", default=None)
    p.add_argument(
        "--batch-size", type=positive_int, help="with --results: the batch size for per-model charts (default 1)"
    )
    add_input_args(p, batch=False, dtypes=("float32",))  # for `layers` and `rf`: the inputs analysed
    p.add_argument("--output", required=True, help="FILE.png, .svg or .pdf")
    p.set_defaults(func=run, parse_opts=parse_opts)
