"""``profile(..., resume=True)`` / ``archcost profile --resume``: skip what the results file already holds.

A measurement is identified by (model, device, dtype, batch size, mode). ``remaining`` gives, per model, the
batch sizes of this sweep that the file has no record of, whatever that record's status: an ``oom``,
``unsupported`` or ``error`` record is an answer too (delete its line, or use a new file, to measure it again).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import nn

#: The mode of a record that names none (inference, as every record before ``--mode train``).
DEFAULT_MODE = "infer"

Key = tuple[str, str, str, int, str]


def normalize_device(device: str) -> str:
    """``cuda`` and ``cuda:0`` are one device in a record (a Ray worker's GPU is always its ``cuda:0``)."""
    device = str(device).strip().lower()
    return "cuda:0" if device == "cuda" else device


def record_key(model: str, device: str, dtype: str, batch_size: int, mode: str | None) -> Key:
    return (str(model), normalize_device(device), str(dtype), int(batch_size), mode or DEFAULT_MODE)


def recorded_keys(path: str | Path) -> set[Key]:
    """The keys of every record in the JSON-lines results file ``path`` (none when it does not exist yet).

    Read with ``read_results``: a line cut short by a killed run is skipped (and warned about), so that
    measurement is taken again."""
    from archcost.profiling.results import read_results

    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return set()
    df = read_results(path)
    keys = set()
    for r in df.to_dict(orient="records"):
        model, device, dtype, batch, mode = (r.get(k) for k in ("model", "device", "dtype", "batch_size", "mode"))
        if not all(isinstance(v, str) for v in (model, device, dtype)) or batch is None or batch != batch:  # NaN
            continue
        keys.add(record_key(model, device, dtype, int(batch), mode if isinstance(mode, str) else None))
    return keys


def model_name(spec, options: dict) -> str:
    """The name a record of ``spec`` will carry (a ``ModelSpec``, a spec string resolved without building
    it, or a module)."""
    if isinstance(spec, nn.Module):
        return type(spec).__name__
    from archcost.models import ModelSpec, resolve_model

    return (spec if isinstance(spec, ModelSpec) else resolve_model(str(spec), options)).name


def remaining(
    names: Sequence[str],
    device: str,
    dtype: str,
    mode: str | None,
    batch_sizes: Sequence[int],
    done: set[Key],
) -> list[tuple[int, ...]]:
    """Per model (in the order of ``names``), the batch sizes with no record in ``done``."""
    return [tuple(b for b in batch_sizes if record_key(name, device, dtype, b, mode) not in done) for name in names]
