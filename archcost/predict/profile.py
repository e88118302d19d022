"""The device profile: a versioned JSON of one device's fitted per-kind latency rules and the points behind them.

Written by ``archcost calibrate`` (``archcost.predict.calibrate``), read by ``archcost predict``. The file::

    {
      "schema": "archcost.device_profile", "schema_version": 3,
      "created": "2025-01-01T12:00:00Z", "archcost_version": "0.1.0", "mode": "full" | "smoke",
      "machine": {"device": "cpu" | "cuda:0", "device_name": "AMD EPYC ...", "host": "...", "platform": "...",
                  "heap": "steady" | "as-is" | null},
      "torch": {"version": "2.13.0+cpu", "git_version": "...", "cuda": null, "cudnn": null,
                "float32_matmul_precision": "highest"},
      "threads": 2, "dtype": "float32",
      "kinds": {"conv": {"form": "max" | "sum", "seconds_per_flop": 2e-11, "seconds_per_byte": 1e-10,
                         "overhead_s": 5e-6, "peak_flops_per_s": 5e10, "bytes_per_s": 1e10,
                         "fit_error": {"points": 40, "median_abs_pct": 4.1, "max_abs_pct": 21.0, "rms_pct": 7.2,
                                       "within_10pct": 0.85, "within_20pct": 0.97}}, ...},
      "block_fit_error": {"points": 126, "median_abs_pct": ...} | null,
      "points": [{"key": "conv k3 s1 64->64 56x56 b1", "kind": "conv", "flops": 231211008, "bytes": 1753344,
                  "time_s": 0.0041, "p10_s": 0.0040, "p90_s": 0.0043, "dispatches": 1, "rows": []},
                 {"key": "block basic c64 56x56x56 b1", "kind": "block", ...,
                  "rows": [["conv", 2.3e8, 1.8e6, 1], ...]},
                 ...]
    }

A row is ``[kind, flops, bytes, dispatches, large_bytes]``: ``dispatches`` is how many kernel-running ops the row
holds (``kinds.row_dispatches``), each paying the kind's overhead; ``large_bytes`` the bytes of its tensors of
``kinds.LARGE_TENSOR_BYTES`` or more (``kinds.row_large_bytes``), priced by the kind's
``seconds_per_large_byte``. A single kernel's point has both fields too. ``machine.heap`` is the calibrating
process's heap policy (``archcost.profiling.environment.heap_state``; null in files written before it was recorded,
whose processes kept glibc's own). Schema 3 files (rows of four, no large
bytes, no ``seconds_per_large_byte``: 0), schema 2 files (rows of three, no ``dispatches``: one each) and
schema 1 files (no blocks, no ``rows``) are read as before.

``peak_flops_per_s`` and ``bytes_per_s`` are ``1 / seconds_per_*`` (null for a zero coefficient), written for a
reader; the loader ignores them. A reader refuses a newer ``schema_version`` than ``SCHEMA_VERSION``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archcost.errors import InputError
from archcost.predict.fit import FORMS, FitError, Rule

SCHEMA = "archcost.device_profile"
#: 2: designed blocks among the points ("rows"), joint fit, "block_fit_error"; 3: each row's and point's
#: ``dispatches`` (the overhead is paid per kernel-running op, not per row); 4: ``large_bytes`` of every row and
#: point, ``seconds_per_large_byte`` of every kind
SCHEMA_VERSION = 4


class ProfileError(InputError):
    """A device profile file that cannot be read: missing, not JSON, another schema, newer, fields missing."""


class ProfileMismatchError(InputError):
    """A device profile made for another device or dtype than the prediction asks for."""


Row = tuple[str, float, float, float, float]  # kind, flops, bytes, dispatches, large_bytes


def _row(r: Sequence) -> Row:
    """A stored row as a ``Row``: one dispatch where a row of three leaves it out (schema 2), no large bytes where a
    row of four does (schema 3)."""
    return (str(r[0]), float(r[1]), float(r[2]), float(r[3]) if len(r) > 3 else 1.0, float(r[4]) if len(r) > 4 else 0.0)


@dataclass(frozen=True)
class CalibrationPoint:
    """One timed kernel: its key, its kind (from the analysis of the one-layer module), FLOPs and bytes (the
    features the predictor reads from a real model's rows), and its median, 10th and 90th percentile seconds;
    ``dispatches``: the kernel-running ops of a single kernel's row (``kinds.row_dispatches``). A designed
    block (``archcost.predict.blocks``) is kind ``"block"``, its FLOPs and bytes the sums of ``rows``: each of
    its analysed rows as ``(kind, flops, bytes, dispatches, large_bytes)`` (a row of three reads as one
    dispatch, of four as no large bytes); a single kernel's ``rows`` is empty, its ``large_bytes`` its own."""

    key: str
    kind: str
    flops: float
    bytes: float
    time_s: float
    p10_s: float
    p90_s: float
    rows: tuple[Row, ...] = ()
    dispatches: float = 1.0
    large_bytes: float = 0.0

    def __post_init__(self) -> None:  # JSON gives lists: keep tuples, so points read back compare equal
        object.__setattr__(self, "rows", tuple(_row(r) for r in self.rows))
        object.__setattr__(self, "dispatches", float(self.dispatches))
        object.__setattr__(self, "large_bytes", float(self.large_bytes))

    @property
    def parts(self) -> tuple[Row, ...]:
        """The rows the point's time is the sum of: a block's ``rows``, or the kernel itself."""
        return self.rows or ((self.kind, self.flops, self.bytes, self.dispatches, self.large_bytes),)

    def to_dict(self) -> dict:
        return {**vars(self), "rows": [list(r) for r in self.rows]}


@dataclass(frozen=True)
class KindRule:
    """One kind's rule and its error on the calibration points it was fitted to."""

    rule: Rule
    error: FitError


@dataclass(frozen=True)
class DeviceProfile:
    """A device profile (the module docstring lays out its JSON). ``device``: ``cpu`` or ``cuda:N``."""

    device: str
    device_name: str
    threads: int
    dtype: str
    torch_version: str
    kinds: dict[str, KindRule]
    points: tuple[CalibrationPoint, ...] = ()
    created: str = ""
    mode: str = "full"
    archcost_version: str = ""
    host: str = ""
    platform: str = ""
    torch_git_version: str | None = None
    cuda: str | None = None
    cudnn: int | None = None
    float32_matmul_precision: str | None = None
    #: the calibrating process's heap: "steady" or "as-is" (``environment.heap_state``); None: not recorded
    heap: str | None = None
    schema_version: int = SCHEMA_VERSION
    #: the rules' error on the designed blocks (each block's predicted sum of rows against its measured time);
    #: None when the profile has no blocks (schema 1, or a kernel set without them)
    block_error: FitError | None = None
    #: where it was read from (not in the JSON)
    path: str | None = field(default=None, compare=False)

    @property
    def device_type(self) -> str:
        return self.device.split(":", 1)[0]

    def to_dict(self) -> dict:
        def rate(seconds_per: float) -> float | None:
            return 1 / seconds_per if seconds_per > 0 else None

        return {
            "schema": SCHEMA,
            "schema_version": self.schema_version,
            "created": self.created,
            "archcost_version": self.archcost_version,
            "mode": self.mode,
            "machine": {
                "device": self.device,
                "device_name": self.device_name,
                "host": self.host,
                "platform": self.platform,
                "heap": self.heap,
            },
            "torch": {
                "version": self.torch_version,
                "git_version": self.torch_git_version,
                "cuda": self.cuda,
                "cudnn": self.cudnn,
                "float32_matmul_precision": self.float32_matmul_precision,
            },
            "threads": self.threads,
            "dtype": self.dtype,
            "kinds": {
                kind: {
                    "form": k.rule.form,
                    "seconds_per_flop": k.rule.seconds_per_flop,
                    "seconds_per_byte": k.rule.seconds_per_byte,
                    "overhead_s": k.rule.overhead_s,
                    "seconds_per_large_byte": k.rule.seconds_per_large_byte,
                    "peak_flops_per_s": rate(k.rule.seconds_per_flop),
                    "bytes_per_s": rate(k.rule.seconds_per_byte),
                    "fit_error": _finite(vars(k.error)),
                }
                for kind, k in sorted(self.kinds.items())
            },
            "block_fit_error": None if self.block_error is None else _finite(vars(self.block_error)),
            "points": [p.to_dict() for p in self.points],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save(self, path: str | Path) -> Path:
        """Write the profile's JSON to ``path`` atomically (``archcost.files.write_atomic``)."""
        from archcost.files import write_atomic

        return write_atomic(path, self.to_json())


def _finite(d: dict) -> dict:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def _get(data: dict, dotted: str, kinds: tuple[type, ...], where: str, *, optional: bool = False) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            if optional:
                return None
            raise ProfileError(
                f"device profile {where}: field {dotted!r} is missing",
                "the file is damaged or not a device profile: make a new one with archcost calibrate",
            )
        node = node[part]
    if node is None and optional:
        return None
    if not isinstance(node, kinds) or (isinstance(node, bool) and bool not in kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise ProfileError(
            f"device profile {where}: field {dotted!r} should be {names}, not {type(node).__name__} ({node!r:.40})",
            "the file is damaged: make a new one with archcost calibrate",
        )
    return node


_NUMBER = (int, float)


def profile_from_dict(data: object, where: str = "<dict>") -> DeviceProfile:
    """A ``DeviceProfile`` from its JSON document. Raises ``ProfileError`` (exit 2) for another schema, a
    ``schema_version`` newer than ``SCHEMA_VERSION``, and missing or mistyped fields, naming the field."""
    if not isinstance(data, dict):
        raise ProfileError(
            f"device profile {where}: the file holds a JSON {type(data).__name__}, not a device profile object",
            "give the JSON file archcost calibrate --output wrote",
        )
    schema = data.get("schema")
    if schema != SCHEMA:
        raise ProfileError(
            f"device profile {where}: its schema is {schema!r}, not {SCHEMA!r}",
            "give the JSON file archcost calibrate --output wrote (a bench or profile file is another thing)",
        )
    version = _get(data, "schema_version", (int,), where)
    if version > SCHEMA_VERSION:
        raise ProfileError(
            f"device profile {where}: schema_version {version} is newer than this archcost reads "
            f"(up to {SCHEMA_VERSION})",
            "upgrade archcost, or calibrate again with this one",
        )
    if version < 1:
        raise ProfileError(f"device profile {where}: schema_version {version} is not a version", "calibrate again")
    kinds: dict[str, KindRule] = {}
    for kind in _get(data, "kinds", (dict,), where):
        base = f"kinds.{kind}"
        form = _get(data, f"{base}.form", (str,), where)
        if form not in FORMS:
            raise ProfileError(
                f"device profile {where}: {base}.form is {form!r}, not one of {FORMS}", "calibrate again"
            )
        coefficients = [
            float(_get(data, f"{base}.{name}", _NUMBER, where))
            for name in ("seconds_per_flop", "seconds_per_byte", "overhead_s")
        ]
        large = _get(data, f"{base}.seconds_per_large_byte", _NUMBER, where, optional=True)
        coefficients.append(float(large or 0.0))
        if any(not math.isfinite(c) or c < 0 for c in coefficients):
            raise ProfileError(
                f"device profile {where}: {base} has a negative or non-finite coefficient {coefficients}",
                "calibrate again",
            )
        kinds[str(kind)] = KindRule(Rule(form, *coefficients), _fit_error(data, f"{base}.fit_error", where))
    points = []
    for i, p in enumerate(_get(data, "points", (list,), where)):
        if not isinstance(p, dict):
            raise ProfileError(f"device profile {where}: points[{i}] is not an object", "calibrate again")
        sub = {"p": p}
        points.append(
            CalibrationPoint(
                key=_get(sub, "p.key", (str,), f"{where} points[{i}]"),
                kind=_get(sub, "p.kind", (str,), f"{where} points[{i}]"),
                **{
                    k: float(_get(sub, f"p.{k}", _NUMBER, f"{where} points[{i}]"))
                    for k in ("flops", "bytes", "time_s", "p10_s", "p90_s")
                },
                rows=_rows(sub, f"{where} points[{i}]"),
                dispatches=float(_get(sub, "p.dispatches", _NUMBER, f"{where} points[{i}]", optional=True) or 1.0),
                large_bytes=float(_get(sub, "p.large_bytes", _NUMBER, f"{where} points[{i}]", optional=True) or 0.0),
            )
        )
    threads = _get(data, "threads", (int,), where)
    if threads < 1:
        raise ProfileError(f"device profile {where}: threads is {threads}", "calibrate again")
    return DeviceProfile(
        device=_get(data, "machine.device", (str,), where),
        device_name=_get(data, "machine.device_name", (str,), where),
        threads=threads,
        dtype=_get(data, "dtype", (str,), where),
        torch_version=_get(data, "torch.version", (str,), where),
        kinds=kinds,
        points=tuple(points),
        created=_get(data, "created", (str,), where, optional=True) or "",
        mode=_get(data, "mode", (str,), where, optional=True) or "full",
        archcost_version=_get(data, "archcost_version", (str,), where, optional=True) or "",
        host=_get(data, "machine.host", (str,), where, optional=True) or "",
        platform=_get(data, "machine.platform", (str,), where, optional=True) or "",
        heap=_get(data, "machine.heap", (str,), where, optional=True),
        torch_git_version=_get(data, "torch.git_version", (str,), where, optional=True),
        cuda=_get(data, "torch.cuda", (str,), where, optional=True),
        cudnn=_get(data, "torch.cudnn", (int,), where, optional=True),
        float32_matmul_precision=_get(data, "torch.float32_matmul_precision", (str,), where, optional=True),
        schema_version=version,
        block_error=None if data.get("block_fit_error") is None else _fit_error(data, "block_fit_error", where),
    )


def _fit_error(data: dict, dotted: str, where: str) -> FitError:
    err = _get(data, dotted, (dict,), where)
    return FitError(
        points=int(_get(data, f"{dotted}.points", (int,), where)),
        **{
            k: (math.nan if err.get(k) is None else float(_get(data, f"{dotted}.{k}", _NUMBER, where)))
            for k in ("median_abs_pct", "max_abs_pct", "rms_pct", "within_10pct", "within_20pct")
        },
    )


def _rows(sub: dict, where: str) -> tuple[Row, ...]:
    rows = _get(sub, "p.rows", (list,), where, optional=True) or []
    ok = all(
        isinstance(r, list)
        and len(r) in (3, 4, 5)
        and isinstance(r[0], str)
        and all(isinstance(v, _NUMBER) and not isinstance(v, bool) for v in r[1:])
        for r in rows
    )
    if not ok:
        raise ProfileError(
            f"device profile {where}: field 'rows' should be [kind, flops, bytes, dispatches, large_bytes] lists",
            "calibrate again",
        )
    return tuple(_row(r) for r in rows)


def load_profile(path: str | Path) -> DeviceProfile:
    """Read a device profile JSON file (module docstring). Raises ``ProfileError`` (an ``InputError``: the CLI
    exits 2) for a missing or unreadable file, text that is not JSON, and what ``profile_from_dict`` refuses."""
    from archcost.files import read_text

    path = Path(path)
    text = read_text(path, "device profile", ProfileError, "make one with archcost calibrate --output FILE")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProfileError(
            f"device profile {path}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})",
            "the file is damaged or cut short: make a new one with archcost calibrate",
        ) from None
    profile = profile_from_dict(data, str(path))
    return DeviceProfile(**{**vars(profile), "path": str(path)})


def check_matches(
    profile: DeviceProfile,
    *,
    device: str | None = None,
    device_name: str | None = None,
    threads: int | None = None,
    dtype: str | None = None,
    torch: str | None = None,
    strict: bool = False,
) -> list[str]:
    """Whether ``profile`` fits a prediction for this setup; ``None`` arguments are not checked.

    Refused (``ProfileMismatchError``, exit 2): another device type (``device`` ``cpu`` vs ``cuda:N``) or
    another ``dtype``: the kernels are different ones. Returned as warnings, one string each that begins with
    the field's name (``"threads: ..."``): another ``device_name`` (another CPU or GPU model), another
    ``threads`` count, another ``torch`` build (its version string). ``strict``: warnings are refused too.
    """
    where = profile.path or "given"
    if device is not None and device.split(":", 1)[0] != profile.device_type:
        raise ProfileMismatchError(
            f"device: the device profile {where} was calibrated on {profile.device} ({profile.device_name}), and "
            f"the prediction is for {device}",
            f"calibrate on {device}: archcost calibrate --device {device} --output FILE",
        )
    if dtype is not None and dtype != profile.dtype:
        raise ProfileMismatchError(
            f"dtype: the device profile {where} was calibrated in {profile.dtype}, and the prediction is for {dtype}",
            f"leave out --dtype (the profile's {profile.dtype}), or calibrate with --dtype {dtype}",
        )
    warnings = []
    if device_name is not None and device_name != profile.device_name:
        warnings.append(
            f"device_name: the device profile {where} was calibrated on {profile.device_name!r}, this device is "
            f"{device_name!r}: the prediction is for the profile's device"
        )
    if threads is not None and threads != profile.threads:
        warnings.append(
            f"threads: the device profile {where} was calibrated with {profile.threads} torch thread(s), the "
            f"prediction is for {threads}: kernels scale differently with threads, so it is a rough one"
        )
    if torch is not None and torch != profile.torch_version:
        warnings.append(
            f"torch: the device profile {where} was calibrated with torch {profile.torch_version}, this is torch "
            f"{torch}: another build may run other kernels"
        )
    if strict and warnings:
        raise ProfileMismatchError(
            "; ".join(warnings), "calibrate for this setup, or allow the differences (leave out --strict-profile)"
        )
    return warnings
