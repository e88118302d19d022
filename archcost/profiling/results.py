"""Profile records: the schema, the DataFrame, the JSON-lines results file and the text/CSV/JSON output.

One record per (model, batch size, configuration). Every record has every field of ``FIELDS`` (``None``
where there is no value, with a ``*_note`` or ``error`` that says why), so files from different runs and
devices concatenate into one table. The fields are written once, with their types, as the TypedDict
``ProfileRecord``; ``FIELDS`` and the JSON Schema ``RECORD_JSON_SCHEMA`` are generated from it. The results
file is JSON lines, one record per line, each with ``"schema": "archcost.profile/1"``; ``read_results`` reads
it back (``archcost plot`` / ``compare`` use it).
"""

from __future__ import annotations

import json
import math
import typing
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TypedDict

import pandas as pd

from archcost.errors import InputError
from archcost.profiling.nvml import PowerFields
from archcost.profiling.roofline import RooflineFields
from archcost.tables import render_table

SCHEMA = "archcost.profile/1"

#: Status of a record: measured, ran out of memory (at this or a smaller batch), dtype not supported on
#: the device, or the forward raised (the message is in ``error``).
STATUSES = ("ok", "oom", "unsupported", "error")


class EnvFields(TypedDict, total=False):
    """Where and with what a record was measured (``environment.environment``)."""

    env_device_name: str | None
    env_driver: str | None
    env_cuda: str | None
    env_cudnn: int | None
    env_cudnn_benchmark: bool | None
    env_torch: str | None
    env_threads: int | None
    env_quantized_engine: str | None  # torch.backends.quantized.engine: the integer kernels of a quantized model
    env_dtype: str | None
    env_archcost: str | None
    env_python: str | None
    env_platform: str | None
    env_host: str | None  # the machine that measured (socket.gethostname())
    env_ray_node: str | None  # with --ray: the Ray node id of the worker
    env_thp: str | None  # the kernel's transparent-huge-page mode (environment.huge_pages)
    env_torch_thp: bool | None  # THP_MEM_ALLOC_ENABLE=1: torch's CPU allocator asks for huge pages
    env_heap: str | None  # "steady": freed memory kept in the heap (environment.steady_heap); "as-is": glibc's own


class _Measurement(TypedDict, total=False):
    schema: str  # SCHEMA
    run_id: str | None
    timestamp: str | None
    model: str | None
    model_source: str | None
    model_file: str | None
    model_commit: str | None
    input_shape: str | None
    batch_size: int | None
    device: str | None
    dtype: str | None
    channels_last: bool | None
    compiled: bool | None
    # what was timed: "infer" (a forward) or "train" (a step: forward, loss, backward, optimizer step); with
    # model, device, dtype and batch_size it identifies a measurement (resume.record_key)
    mode: str | None
    optimizer: str | None  # mode "train": sgd, momentum, adam or adamw
    amp: bool | None  # mode "train": autocast (float16 on CUDA, bfloat16 on the CPU)
    threads: int | None
    status: str | None  # STATUSES
    error: str | None
    # timing
    latency_median_s: float | None  # mode "train": the whole step
    forward_median_s: float | None  # mode "train": the step's phases (archcost.profiling.train_step)
    backward_median_s: float | None
    optimizer_median_s: float | None
    latency_p10_s: float | None
    latency_p90_s: float | None
    latency_mean_s: float | None
    latency_min_s: float | None
    latency_max_s: float | None
    latency_cv: float | None
    samples: int | None
    iterations_per_sample: int | None
    warmup_iterations: int | None
    warmup_s: float | None
    warmup_settled: bool | None
    min_time_s: float | None
    timer: str | None
    throughput_ips: float | None
    # what the machine took while timing (timing.Timing): the CPUs' stolen share of ticks (a VM's hypervisor
    # running others, /proc/stat; None off Linux), and the process's CPU seconds per wall second
    cpu_steal_fraction: float | None
    process_cpu_per_wall: float | None
    # the process's minor page faults per call during the timed samples (getrusage): memory mapped afresh and
    # faulted in, page by page, on every call (environment.steady_heap); None where getrusage is missing
    minor_faults_per_call: float | None
    # memory
    memory_peak_bytes: int | None
    memory_activation_peak_bytes: int | None
    memory_method: str | None
    memory_estimate_bytes: int | None
    memory_estimate_note: str | None
    # analysis
    params: int | None
    macs: int | None
    flops: int | None
    traffic_bytes: int | None
    analysis_note: str | None


class _Peaks(TypedDict, total=False):
    peaks_measured_at: str | None
    peak_cache_bytes_per_s: float | None
    peak_kernel: str | None
    peak_math_mode: str | None


class _Trust(TypedDict, total=False):
    power_note: str | None
    # trust: what should not be taken at face value (outcome.FLAGS), each with a sentence in warnings
    flags: list[str] | None
    warnings: list[str] | None
    # per layer (profile --layers): rows of layers.LAYER_FIELDS, and how they add up
    layers: list[dict] | None
    layer_time_sum_s: float | None
    layer_time_sum_ratio: float | None
    layer_unattributed_s: float | None
    layer_iterations: int | None
    layer_clock: str | None
    profiled_latency_median_s: float | None
    profiler_overhead: float | None
    layers_unmatched: list[str] | None
    layers_note: str | None


class ProfileRecord(_Measurement, RooflineFields, _Peaks, PowerFields, _Trust, EnvFields, total=False):
    """One profile record, every field in the order of the results file's lines (``FIELDS``); ``None`` where
    there is no value, with a ``*_note`` or ``error`` that says why. ``RECORD_JSON_SCHEMA`` is generated from it."""


#: Every field of a record, in order: the keys of ``ProfileRecord``.
FIELDS: tuple[str, ...] = tuple(ProfileRecord.__annotations__)
ENV_FIELDS: tuple[str, ...] = tuple(EnvFields.__annotations__)


def json_schema(record: type, title: str) -> dict:
    """A JSON Schema (draft 2020-12) of the TypedDict ``record``: one property per key with its JSON type (every
    field may be null), no other keys, every key required (a record has every field)."""
    hints = typing.get_type_hints(record)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        "type": "object",
        "required": list(hints),
        "additionalProperties": False,
        "properties": {name: _json_type(hint) for name, hint in hints.items()},
    }


_JSON_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number", dict: "object", list: "array"}


def _json_type(hint: object) -> dict:
    """``{"type": ...}`` for a field's annotation: ``X | None`` is ``[X's type, "null"]``, ``list[str]`` an array of
    strings."""
    args = typing.get_args(hint)
    if args and type(None) in args:  # X | None
        (inner,) = [a for a in args if a is not type(None)]
        nullable = _json_type(inner)
        nullable["type"] = [nullable["type"], "null"]
        return nullable
    origin = typing.get_origin(hint) or hint
    out: dict = {"type": _JSON_TYPES[origin]}  # type: ignore[index]  # a type the records do not use: KeyError
    if origin is list and args:
        out["items"] = _json_type(args[0])
    return out


#: The JSON Schema of one record of a results file (a line of ``append_records``, an item of ``--format json``).
RECORD_JSON_SCHEMA = json_schema(ProfileRecord, "archcost profile record")


def new_record(**values) -> dict:
    """A record with every field, ``None`` unless given; unknown fields are a bug and raise."""
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise KeyError(f"not profile record fields: {sorted(unknown)}")
    record = dict.fromkeys(FIELDS)
    record["schema"] = SCHEMA
    record.update(values)
    return record


def unfinished_records(
    config,
    batch_sizes: Iterable[int],
    done: set,
    *,
    model: str,
    device: str,
    run_id: str,
    status: str,
    error: str,
    **env,
) -> list[dict]:
    """The one writer of records for the batch sizes of ``batch_sizes`` not in ``done`` (a child process that
    exited, a Ray task that failed, a worker without the device): ``status`` and ``error`` say why, the
    settings come from ``config`` (``sweep.ProfileConfig``), ``env`` adds what is known of the machine."""
    import time

    values = {
        "run_id": run_id,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": model,
        "device": device,
        "dtype": config.dtype,
        "threads": config.threads,
        "channels_last": config.channels_last,
        "compiled": config.compile,
        "mode": config.mode,
        "min_time_s": config.min_time_s,
        "status": status,
        "error": error,
        **env,
    }
    values = {k: v for k, v in values.items() if k in FIELDS}
    return [new_record(**values, batch_size=batch) for batch in batch_sizes if batch not in done]


def to_dataframe(records: Iterable[dict]) -> pd.DataFrame:
    return pd.DataFrame(list(records), columns=list(FIELDS))


def _clean(value):
    """JSON-safe: NaN and infinities become null, numpy scalars plain numbers (inside lists and dicts too)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        try:
            value = value.item()
        except (ValueError, TypeError):  # an array of several values
            value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def record_json(record: dict) -> str:
    return json.dumps({k: _clean(record.get(k)) for k in FIELDS}, sort_keys=False)


def append_records(path: str | Path, records: Iterable[dict]) -> int:
    """Append records to a JSON-lines results file (created if missing), flushed to disk; returns how many."""
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"cannot write {path}: the folder {path.parent} does not exist", "create it first")
    n = 0
    cut = False  # a killed run cut the last line: the next record must not be glued to it
    if path.is_file() and path.stat().st_size:
        with path.open("rb") as fh:
            fh.seek(-1, 2)
            cut = fh.read(1) != b"\n"
    with path.open("a", encoding="utf-8") as fh:
        if cut:
            fh.write("\n")
        for r in records:
            fh.write(record_json(r) + "\n")
            n += 1
        fh.flush()
    return n


def read_results(paths: str | Path | Sequence[str | Path]) -> pd.DataFrame:
    """Records from one or more JSON-lines results files (or ``--format json`` arrays) as one DataFrame.

    Fields a record lacks are ``None``; a record of another schema raises ``InputError``. A line that is
    not a complete record (the last line of a run killed while writing it) is skipped: every complete
    record is read, and a ``ResultsFileWarning`` (also in ``df.attrs["warnings"]``) names the file and the
    line number.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    records: list[dict] = []
    problems: list[str] = []
    for path in paths:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(
                f"cannot read results file {path}: {exc.strerror}", "give a file archcost profile wrote"
            ) from None
        stripped = text.lstrip()
        if stripped.startswith("["):
            try:
                items = list(enumerate(json.loads(stripped), 1))
            except ValueError as exc:
                raise InputError(f"{path} is not JSON: {exc}", "give a file archcost profile wrote") from None
            where = "record"
        else:
            items, where = _json_lines(path, text, problems), "line"
        for i, item in items:
            if not isinstance(item, dict) or item.get("schema") != SCHEMA:
                got = item.get("schema") if isinstance(item, dict) else type(item).__name__
                raise InputError(
                    f"{path}, {where} {i}: schema {got!r}, expected {SCHEMA!r}",
                    "give a results file written by archcost profile",
                )
            records.append(item)
    df = to_dataframe(records)
    df.attrs["warnings"] = problems
    for problem in problems:
        warnings.warn(problem, ResultsFileWarning, stacklevel=2)
    return df


class ResultsFileWarning(UserWarning):
    """A line of a results file that is not a complete record (a run killed while writing it) was skipped."""


def _json_lines(path: Path, text: str, problems: list[str]) -> list[tuple[int, object]]:
    """(line number, record) for every line that parses; a line that does not is skipped with a message
    naming its line number in ``problems``. No complete record at all raises ``InputError``."""
    items: list[tuple[int, object]] = []
    broken: list[tuple[int, str, int]] = []
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            items.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            broken.append((number, exc.msg, exc.colno))
    if broken and not items:
        number, msg, col = broken[0]
        raise InputError(
            f"{path} is not JSON lines: line {number}, column {col}: {msg}", "give a file archcost profile wrote"
        )
    last = max((n for n, line in enumerate(lines, 1) if line.strip()), default=0)
    for number, msg, col in broken:
        cause = "cut short (a run killed while writing it?)" if number == last else "not a JSON record"
        problems.append(f"{path}:{number}: skipped, the line is {cause}: {msg} at column {col}")
    return items


# -- output ---------------------------------------------------------------------------------------------


def _none(v):
    """None for a missing value (pandas turns None into NaN in number columns)."""
    try:
        return None if v is None or pd.isna(v) else v
    except (TypeError, ValueError):  # a list or array: not missing
        return v


def _ms(v) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v * 1e3:.3f}"


def _num(v, fmt: str) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def _phases(r: dict, train: bool) -> dict:
    """The mode and a training step's phase medians, as columns of the text table (only when some record trains)."""
    if not train:
        return {}
    return {
        "mode": r.get("mode") or "infer",
        "fwd ms": _ms(r.get("forward_median_s")),
        "bwd ms": _ms(r.get("backward_median_s")),
        "opt ms": _ms(r.get("optimizer_median_s")),
    }


def text_table(df: pd.DataFrame) -> str:
    """A human table: one line per record, and the environment and notes once below it."""
    from archcost.units import format_bytes, format_count

    def b(v):
        return "" if v is None or (isinstance(v, float) and math.isnan(v)) else format_bytes(v)

    rows = []
    records = [{k: _none(v) for k, v in r.items()} for r in df.to_dict(orient="records")]
    train = any(r.get("mode") == "train" for r in records)
    for r in records:
        rows.append(
            {
                "model": r["model"],
                "input": r["input_shape"] or "",
                "batch": r["batch_size"],
                "status": r["status"],
                "median ms": _ms(r["latency_median_s"]),
                **_phases(r, train),
                "p10 ms": _ms(r["latency_p10_s"]),
                "p90 ms": _ms(r["latency_p90_s"]),
                "CV %": _num(None if r["latency_cv"] is None else 100 * r["latency_cv"], ".1f"),
                "n": "" if r["samples"] is None else int(r["samples"]),
                "img/s": _num(r["throughput_ips"], ".1f"),
                "peak mem": b(r["memory_peak_bytes"]),
                "act. peak": b(r["memory_activation_peak_bytes"]),
                "act. est.": b(r["memory_estimate_bytes"]),
                "FLOP/s": "" if r["achieved_flops_per_s"] is None else format_count(r["achieved_flops_per_s"]),
                "% peak": _num(r["percent_of_peak"], ".1f"),
                "FLOP/B": _num(r["arithmetic_intensity"], ".1f"),
                "bound": r["bound"] or "",
                "W": _num(r["power_mean_w"], ".1f"),
                "J/img": _num(r["energy_per_image_j"], ".4f"),
            }
        )
    words = {"model", "input", "status", "mode", "bound"}  # flush left; the figures flush right
    table = render_table(pd.DataFrame(rows), left=words) if rows else "(no results)"
    lines = [table, ""]
    if records:
        first = records[0]
        lines.append(
            f"device {first['device']} ({first['env_device_name']}), dtype {first['dtype']}, "
            f"threads {first['threads']}, "
            f"torch {first['env_torch']}, archcost {first['env_archcost']}"
            + (
                f", CUDA {first['env_cuda']}, cuDNN {first['env_cudnn']}, driver {first['env_driver']}"
                if first["env_cuda"]
                else ""
            )
            + (f", cudnn.benchmark={first['env_cudnn_benchmark']}" if first["env_cudnn_benchmark"] is not None else "")
            + (
                f", transparent huge pages {first.get('env_thp')} (torch's allocator "
                f"{'asks for them' if first.get('env_torch_thp') else 'does not ask'}: THP_MEM_ALLOC_ENABLE)"
                if first["device"] == "cpu" and first.get("env_thp")
                else ""
            )
            + (f", heap {first['env_heap']} (--heap)" if first.get("env_heap") else "")
        )
        lines.append(
            "latency per batch: median, p10, p90 and coefficient of variation of n samples; img/s = batch / median; "
            "act. peak = input + the most the forward allocated (measured), act. est. = the analytic estimate of it "
            "(archcost.cost.memory), peak mem = act. peak + weights and buffers"
        )
        if train:
            lines.append(
                "mode train: median = one training step (fwd ms: forward and loss, bwd ms: backward, opt ms: "
                "optimizer step and zero_grad); peak mem = the first step's measured peak, act. est. = "
                "archcost.cost.training's estimate of that whole peak (weights, gradients and optimizer state included)"
            )
        if any(r.get("flags") for r in records):
            lines.append("")
            for r in records:
                for w in r.get("warnings") or []:
                    lines.append(f"WARNING {r['model']}@{r['batch_size']}: {w}")
        notes: dict[str, list[str]] = {}
        for r in records:
            for key in ("error", "power_note", "roofline_note", "memory_estimate_note", "analysis_note"):
                if r.get(key):
                    notes.setdefault(f"{key.replace('_', ' ')}: {r[key]}", []).append(f"{r['model']}@{r['batch_size']}")
        for note, where in notes.items():
            lines.append(f"{note} ({', '.join(where[:6])}{', ...' if len(where) > 6 else ''})")
        for r in records:
            if r.get("layers"):
                lines += ["", *layers_text(r)]
            elif r.get("layers_note"):
                lines += ["", f"{r['model']}@{r['batch_size']}: {r['layers_note']}"]
    return "\n".join(lines) + "\n"


#: The record fields repeated on every row of ``layers_frame``.
LAYER_KEYS = ("model", "batch_size", "input_shape", "device", "dtype", "threads", "latency_median_s")


def layers_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The ``layers`` of every record flattened: one row per layer, with the record's ``LAYER_KEYS`` in front."""
    from archcost.profiling.layers import LAYER_FIELDS

    rows = []
    for r in df.to_dict(orient="records"):
        for layer in _none(r.get("layers")) or []:
            rows.append({**{k: _none(r.get(k)) for k in LAYER_KEYS}, **{k: layer.get(k) for k in LAYER_FIELDS}})
    return pd.DataFrame(rows, columns=[*LAYER_KEYS, *LAYER_FIELDS])


def layers_text(r: dict) -> list[str]:
    """The per-layer table of one record, and how the layer times add up against the median latency."""
    from archcost.units import format_bytes, format_count

    def count(v):
        return "" if v is None else format_count(v)

    rows = [
        {
            "layer": x["name"],
            "type": x["type"],
            "MACs": count(x["macs"]),
            "FLOPs": count(x["flops"]),
            "bytes": "" if x["bytes"] is None else format_bytes(x["bytes"]),
            "ms": _ms(x["time_s"]),
            "share %": _num(None if x["time_share"] is None else 100 * x["time_share"], ".1f"),
            "FLOP/s": count(x["flops_per_s"]),
            "% peak": _num(x.get("percent_of_peak"), ".1f"),
            "FLOP/B": _num(x["arithmetic_intensity"], ".1f"),
            "bound": x["bound"] or "",
        }
        for x in r["layers"]
    ]
    head = (
        f"{r['model']}, input {r['batch_size']}x{r['input_shape']}, {r['dtype']}, {r['device']}, "
        f"{r['threads']} threads: time per layer (torch.profiler, {r['layer_clock']}, median of "
        f"{r['layer_iterations']} profiled forwards)"
    )
    lines = [head, render_table(pd.DataFrame(rows), left={"layer", "type", "bound"})]
    ratio = r.get("layer_time_sum_ratio")
    lines.append(
        f"layers add up to {_ms(r['layer_time_sum_s'])} ms = "
        f"{_num(None if ratio is None else 100 * ratio, '.1f')}% of the median latency "
        f"{_ms(r['latency_median_s'])} ms measured without the profiler in the same run; "
        f"time between layers (Python, ops without a row): {_ms(r['layer_unattributed_s'])} ms per forward; "
        f"profiler overhead: a profiled forward took {_ms(r['profiled_latency_median_s'])} ms "
        f"({_num(None if r['profiler_overhead'] is None else 100 * r['profiler_overhead'], '+.1f')}%)"
    )
    lines.append(
        "bytes = inputs read + parameters read + output written; share = the layer's time / the layers' sum; "
        "FLOP/s = FLOPs / time; FLOP/B = FLOPs / bytes; bound against the device's measured roofline"
    )
    if r.get("layers_unmatched"):
        names = r["layers_unmatched"]
        lines.append(
            f"no profiler event matched {len(names)} row(s), left empty: {', '.join(names[:8])}"
            + (", ..." if len(names) > 8 else "")
        )
    return lines


def render(df: pd.DataFrame, fmt: str) -> str:
    """``text`` (the table), ``json`` (an array of records), ``csv`` (one row per record) or ``jsonl``."""
    records = df.to_dict(orient="records")
    if fmt == "json":
        return "[\n" + ",\n".join(record_json(r) for r in records) + "\n]\n" if records else "[]\n"
    if fmt == "jsonl":
        return "".join(record_json(r) + "\n" for r in records)
    if fmt == "csv":
        if any(_none(v) for v in df.get("layers", [])):
            return layers_frame(df).to_csv(index=False)  # --layers: one row per layer
        flat = df.copy()  # every field, lists joined by ';' (no layers here: those come one row each above)
        for key in ("flags", "warnings", "layers_unmatched"):
            flat[key] = [";".join(v) if isinstance(v, (list, tuple)) else v for v in flat[key]]
        return flat.to_csv(index=False)
    return text_table(df)
