"""The bench results file: its versioned schema, how a model's figures are recorded, and reading it back.

A bench file is one JSON object (keys sorted, two-space indent, written atomically)::

    {
      "schema": "archcost.bench/1",
      "environment": {"archcost": "0.1.0", "torch": "2.13.0+cpu", "python": "3.11.7", "platform": "Linux-x86_64"},
      "settings": {"batch_size": 1, "dtype": "float32", "input_size": null, "options": {}, "profile": null},
      "models": {
        "resnet50": {
          "spec": "resnet50", "name": "resnet50", "source": "zoo", "options": {},
          "input_shape": [1, 3, 224, 224], "dtype": "float32",
          "analytic": {
            "params": 25557032, "macs": 3857973248, "flops": 7753428968,
            "param_bytes": 102228128, "activation_bytes": 143925152,
            "peak_activation_bytes": 11841536, "peak_activation_at": "conv1",
            "receptive_field": [483, 483], "receptive_field_at": "conv5_x.2.relu",
            "unsupported_ops": {}
          },
          "measured": [ {one archcost.profile record per batch size, without run_id and timestamp} ]
        }
      }
    }

``models`` is keyed by the MODEL argument as given. ``analytic`` figures follow archcost's conventions
(README: macs, flops, decimal bytes) for one forward pass at ``input_shape`` (batch included) and
``dtype``: ``activation_bytes`` is the sum of every layer's new output storage (views and in-place results
count 0), ``peak_activation_bytes`` the most alive at once (input included), ``receptive_field`` the final
spatial receptive field per axis in input pixels (``null`` where the model has none or archcost cannot derive
it), ``unsupported_ops`` the ops archcost could not cost (op -> count; they add 0 to the totals).
``measured`` is there only for ``--profile``.

The analytic part holds no timestamps, so the same model, settings and versions give a byte-identical
file. A reader accepts any file of its own schema version or older, ignores fields it does not know,
and refuses a newer version with a clear error. ``JSON_SCHEMA`` is the contract, written once as a JSON
Schema: ``validate`` checks files against it, and so can any JSON Schema validator.
"""

from __future__ import annotations

import json
import math
import platform
import re
from collections.abc import Sequence
from pathlib import Path

from archcost.errors import ArchcostError, InputError

SCHEMA_NAME = "archcost.bench"
SCHEMA_VERSION = 1
SCHEMA = f"{SCHEMA_NAME}/{SCHEMA_VERSION}"

#: The analytic figures recorded for every model, all whole numbers >= 0 (``peak_activation_bytes`` may be
#: null where no estimate exists).
ANALYTIC_COUNTS = ("params", "macs", "flops", "param_bytes", "activation_bytes", "peak_activation_bytes")

#: Fields of a profile record that are not kept: they differ on every run and say nothing about cost.
DROPPED_PROFILE_FIELDS = ("run_id", "timestamp")


class BenchFileError(InputError):
    """A bench results file that cannot be read: missing, malformed, truncated, or of another schema."""


#: The measured figures ``compare`` reads from a bench file's ``measured`` records: numbers >= 0, or null.
MEASURED_FIGURES = ("latency_median_s", "latency_p10_s", "latency_p90_s", "throughput_ips", "memory_peak_bytes")

_COUNT = {"type": "integer", "minimum": 0}
_MEASURE = {"type": ["number", "null"], "minimum": 0}
#: The contract of a bench file, written once: ``validate`` checks a document against it (the subset of JSON
#: Schema it uses: type, required, properties, additionalProperties, items, minItems, minimum, pattern), and
#: the tests check the same documents with ``jsonschema``.
JSON_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "archcost bench results",
    "type": "object",
    "required": ["schema", "environment", "models"],
    "properties": {
        "schema": {"type": "string", "pattern": r"^archcost\.bench/[0-9]+$"},
        "environment": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
        "settings": {"type": "object"},
        "models": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["spec", "input_shape", "dtype", "analytic"],
                "properties": {
                    "spec": {"type": "string"},
                    "name": {"type": "string"},
                    "source": {"type": "string"},
                    "options": {"type": "object"},
                    "input_shape": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1},
                    "dtype": {"type": "string"},
                    "analytic": {
                        "type": "object",
                        "required": ["params", "macs", "flops", "param_bytes", "activation_bytes"],
                        "properties": {
                            **{k: _COUNT for k in ANALYTIC_COUNTS[:-1]},
                            "peak_activation_bytes": {"type": ["integer", "null"], "minimum": 0},
                            "peak_activation_at": {"type": ["string", "null"]},
                            "receptive_field": {
                                "type": ["array", "null"],
                                "items": {"type": "number", "minimum": 0},
                                "minItems": 1,
                            },
                            "receptive_field_at": {"type": ["string", "null"]},
                            "unsupported_ops": {"type": "object", "additionalProperties": _COUNT},
                        },
                    },
                    "measured": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["batch_size", "status"],
                            "properties": {
                                "batch_size": {"type": "integer", "minimum": 1},
                                "status": {"type": "string"},
                                **{k: _MEASURE for k in MEASURED_FIGURES},
                            },
                        },
                    },
                    "measured_note": {"type": "string"},
                    "predicted": {
                        "type": "object",
                        "required": ["latency_s", "batch_size", "device_profile"],
                        "properties": {
                            "latency_s": {"type": "number", "minimum": 0},
                            "batch_size": {"type": "integer", "minimum": 1},
                            "device_profile": {
                                "type": "object",
                                "required": ["digest"],
                                "properties": {"digest": {"type": "string"}},
                            },
                            "fallbacks": {"type": "object", "additionalProperties": {"type": "string"}},
                        },
                    },
                },
            },
        },
    },
}


# -- recording ----------------------------------------------------------------------------------------------


def environment() -> dict[str, str]:
    """Versions that produced the figures; no timestamps and no host names, so files stay reproducible."""
    import torch

    import archcost

    return {
        "archcost": getattr(archcost, "__version__", "unknown"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": f"{platform.system()}-{platform.machine()}",
    }


def _whole(v: float) -> float | int:
    return int(v) if float(v).is_integer() else float(v)


def analytic_figures(report) -> dict:
    """The ``analytic`` block of one model from its ``CostReport``."""
    from archcost.cost.memory import estimate
    from archcost.report.table import final_field

    totals = report.totals
    memory = estimate(report)
    field = final_field(report)
    unsupported: dict[str, int] = {}
    for u in report.unsupported:
        unsupported[u.op] = unsupported.get(u.op, 0) + 1
    return {
        **{k: int(totals[k]) for k in ("params", "macs", "flops", "param_bytes", "activation_bytes")},
        "peak_activation_bytes": int(memory.inference_peak_activation_bytes),
        "peak_activation_at": memory.peak_layer,
        "receptive_field": [_whole(v) for v in field.rf] if field is not None else None,
        "receptive_field_at": field.name if field is not None else None,
        "unsupported_ops": dict(sorted(unsupported.items())),
    }


def _json_value(value):
    """JSON-safe: numpy scalars -> Python, NaN/inf -> None, tuples -> lists."""
    if hasattr(value, "item") and not isinstance(value, (list, dict, str, bytes)):
        try:
            value = value.item()
        except (ValueError, TypeError):
            value = value.tolist() if hasattr(value, "tolist") else str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    try:
        import pandas as pd

        if value is not None and not isinstance(value, (str, int, float, bool)) and pd.isna(value):
            return None
    except (TypeError, ValueError, ImportError):
        pass
    return value


def measured_records(rows: Sequence[dict]) -> list[dict]:
    """Profile records as kept in a bench file: every field but ``run_id`` / ``timestamp``, JSON-safe,
    sorted by batch size."""
    kept = [{k: _json_value(v) for k, v in r.items() if k not in DROPPED_PROFILE_FIELDS} for r in rows]
    return sorted(kept, key=lambda r: r.get("batch_size") or 0)


def _analyse(spec: str, *, batch_size: int, dtype: str, input_size, options: dict, inputs: dict | None = None):
    """CostReport, name and source for one MODEL argument on the inputs given (``input_size`` and the
    ``Workload.of`` keywords in ``inputs``: ``kwargs``, ``batch_dim``, ``int_range``; default the model's own)."""
    if spec.lower().endswith(".onnx"):
        if options:
            raise InputError(f"--opt does not apply to the ONNX file {spec}", "drop --opt, or bench it separately")
        if input_size is not None and not (
            isinstance(input_size, tuple) and all(isinstance(d, int) for d in input_size)
        ):
            raise InputError(
                f"the ONNX file {spec} takes one input shape CxHxW here, not {input_size!r}",
                "bench the torch model the file came from for other inputs",
            )
        from archcost.onnx_graph import analyze_onnx

        report = analyze_onnx(spec, input_size, batch_size, dtype, name=Path(spec).stem)
        return report, Path(spec).stem, "onnx"
    from archcost.cost import analyze
    from archcost.cost.workload import Workload

    work = Workload.of(spec, input_size, batch_size, dtype, options=options, **(inputs or {})).load("meta")
    return analyze(work), work.name, work.source


def predicted_figures(report, profile) -> dict:
    """The ``predicted`` block of one model: its latency at the report's batch size predicted with a device
    profile (``archcost.predict``), the profile's identity (``digest``: the SHA-256 of its fitted rules, so two
    files predicted with the same profile compare, and any other are told apart) and the kinds priced by a
    nearer kind's rule."""
    from archcost.predict.annotate import profile_identity, with_prediction

    predicted = with_prediction(report, profile)
    assert predicted.prediction is not None
    return {
        "latency_s": predicted.prediction["total_ms"] / 1e3,
        "batch_size": int(predicted.prediction["batch_size"]),
        "device_profile": profile_identity(profile),
        "fallbacks": dict(sorted(predicted.prediction["fallbacks"].items())),
    }


def model_entry(
    spec: str,
    *,
    batch_size: int = 1,
    dtype: str = "float32",
    input_size=None,
    options=None,
    inputs=None,
    device_profile=None,
) -> dict:
    """One model's entry of a bench file (analytic figures, and predicted latency with a ``device_profile``:
    an ``archcost.predict.DeviceProfile``); ``inputs``: see ``_analyse``."""
    options = dict(options or {})
    try:
        report, name, source = _analyse(
            spec, batch_size=batch_size, dtype=dtype, input_size=input_size, options=options, inputs=inputs
        )
    except ArchcostError as exc:  # say which of several models it was
        if spec not in exc.message:
            exc.message = f"{spec}: {exc.message}"
        raise
    entry = {
        "spec": spec,
        "name": name,
        "source": source,
        "options": {k: str(v) for k, v in sorted(options.items())},
        "input_shape": [int(d) for d in report.input_shape],
        "dtype": report.dtype,
        "analytic": analytic_figures(report),
    }
    if device_profile is not None:
        entry["predicted"] = predicted_figures(report, device_profile)
    if len(report.input_shapes) > 1 or any(i.get("dtype") != report.dtype for i in report.input_shapes):
        entry["inputs"] = report.input_shapes  # every input, with its dtype (one float input: input_shape says it)
    return entry


def new_document(models: dict[str, dict], settings: dict) -> dict:
    return {"schema": SCHEMA, "environment": environment(), "settings": settings, "models": models}


def dumps(doc: dict) -> str:
    """The file's text: sorted keys, two-space indent, a final newline; NaN is refused, never written."""
    return json.dumps(doc, sort_keys=True, indent=2, allow_nan=False) + "\n"


def write_bench(doc: dict, path: str | Path) -> Path:
    """Check ``doc`` against the schema and write it atomically to ``path``."""
    from archcost.files import write_atomic

    validate(doc, str(path))
    return write_atomic(path, dumps(doc))


# -- reading ------------------------------------------------------------------------------------------------

_SCHEMA_RE = re.compile(r"^archcost\.bench/([0-9]+)$")


def schema_version(doc: dict, source: str) -> int:
    """The schema version of a parsed bench file; ``BenchFileError`` for another kind of file or a newer version."""
    schema = doc.get("schema") if isinstance(doc, dict) else None
    if not isinstance(schema, str) or not _SCHEMA_RE.match(schema):
        if isinstance(schema, str) and schema.startswith("archcost.profile/"):
            what = "an archcost profile results file, not a bench file"
        elif isinstance(doc, dict) and "layers" in doc and "totals" in doc:
            what = "an `archcost table --format json` report, not a bench file"
        else:
            what = f"not an archcost bench file (its schema field is {schema!r}, expected {SCHEMA!r})"
        raise BenchFileError(f"{source} is {what}", "give a file written by `archcost bench ... --output FILE`")
    version = int(schema.split("/", 1)[1])  # the pattern matched: digits
    if version > SCHEMA_VERSION:
        raise BenchFileError(
            f"{source} was written by a newer archcost: schema {schema}, and this archcost reads up to {SCHEMA}",
            "upgrade archcost (pip install -U archcost), or write both files with the same archcost version",
        )
    if version < 1:
        raise BenchFileError(f"{source} has schema {schema}, which no archcost wrote", "rerun archcost bench")
    return version


def _fail(source: str, where: str, problem: str) -> BenchFileError:
    return BenchFileError(
        f"{source}: {where} {problem}",
        "the file was edited or damaged; rerun `archcost bench ... --output FILE` to write it again",
    )


_JSON_TYPES = {
    "object": "an object",
    "array": "a list",
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def _is_type(value: object, kind: str) -> bool:
    if kind == "null":
        return value is None
    if kind == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):  # JSON's true/false are no numbers
        return False
    if kind == "integer":
        return isinstance(value, int)
    if kind == "number":
        return isinstance(value, (int, float)) and math.isfinite(value)
    return isinstance(value, {"object": dict, "array": list, "string": str}[kind])


def _expected(schema: dict) -> str:
    kinds = schema.get("type")
    words = " or ".join(_JSON_TYPES[k] for k in ([kinds] if isinstance(kinds, str) else kinds or []))
    if "minimum" in schema:
        words += f" >= {schema['minimum']}"
    if schema.get("items"):
        inner = _expected(schema["items"]).removeprefix("a ").removeprefix("an ")
        words += " of " + inner.replace("number", "numbers", 1).replace("string", "strings", 1)
    return words or "a valid value"


def check(value: object, schema: dict, source: str, where: str) -> None:
    """Check ``value`` against the JSON Schema ``schema`` (the subset ``JSON_SCHEMA`` uses); ``BenchFileError``
    names the first field that is wrong (``where``: its path in the document)."""
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is_type(value, k) for k in kinds):
            raise _fail(source, where, f"is {value!r}, expected {_expected(schema)}")
    if value is None:
        return
    if "minimum" in schema and isinstance(value, (int, float)) and value < schema["minimum"]:
        raise _fail(source, where, f"is {value!r}, expected {_expected(schema)}")
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        raise _fail(source, where, f"is {value!r}, which does not match {schema['pattern']}")
    if isinstance(value, dict):
        for name in schema.get("required", ()):
            if name not in value:
                raise _fail(source, f"{where}.{name}".lstrip("."), "is missing")
        properties = schema.get("properties", {})
        rest = schema.get("additionalProperties")
        for name, item in value.items():
            sub = properties.get(name, rest if isinstance(rest, dict) else None)
            if sub is not None:
                inner = f"{where}[{name!r}]" if name not in properties else f"{where}.{name}".lstrip(".")
                check(item, sub, source, inner)
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            raise _fail(source, where, f"is {value!r}, expected {_expected(schema)}, at least {schema['minItems']}")
        if "items" in schema:
            for i, item in enumerate(value):
                check(item, schema["items"], source, f"{where}[{i}]")


def validate(doc: dict, source: str = "bench file") -> dict:
    """Check a bench document against ``JSON_SCHEMA`` (after its schema version: ``schema_version``);
    ``BenchFileError`` names the first field that is wrong. Returns ``doc``."""
    schema_version(doc, source)
    check(doc, JSON_SCHEMA, source, "")
    return doc


def loads(text: str, source: str = "bench file") -> dict:
    """Parse and validate a bench file's text."""
    if not text.strip():
        raise BenchFileError(f"{source} is empty", "rerun `archcost bench ... --output FILE`; it may have been cut off")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        at_end = exc.pos >= len(text.rstrip())
        cause = "it ends before the JSON does: the file is truncated" if at_end else "it is not valid JSON"
        raise BenchFileError(
            f"{source} cannot be read: {cause} (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            "rerun `archcost bench ... --output FILE` to write it again",
        ) from None
    if not isinstance(doc, dict):
        raise BenchFileError(
            f"{source} holds a JSON {type(doc).__name__}, not an archcost bench object",
            "give a file written by `archcost bench ... --output FILE`",
        )
    return validate(doc, source)


def read_bench(path: str | Path) -> dict:
    """A bench file, parsed and checked; ``BenchFileError`` (exit 2 on the command line) if it cannot be."""
    from archcost.files import read_text

    path = Path(path)
    text = read_text(path, "bench file", BenchFileError, "write it with `archcost bench MODEL --output FILE`")
    return loads(text, str(path))
