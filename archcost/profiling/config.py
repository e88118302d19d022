"""The settings of a profile sweep, one name each: ``ProfileConfig``.

The same names everywhere: ``profile(models, config=ProfileConfig(...))`` or ``profile(models, NAME=...)``,
the ``--isolate`` child's request (``dataclasses.asdict(config)``), a Ray task's argument, and the
``profile`` settings that ``archcost bench`` passes through (``bench.collect.PROFILE_KEYS``). The names that
were used before (``warmup``, ``min_time``) are still taken by ``settings`` with a ``DeprecationWarning``
naming the new one. This module imports nothing heavy (no torch), so ``archcost.bench`` can read the names.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ProfileConfig:
    """How every model of a sweep is measured (``archcost.profiling.profile`` documents each setting)."""

    device: str = "auto"  # auto, cpu, cuda, cuda:N
    batch_sizes: Sequence[int] = (1,)  # or "1,2,4" where profile() takes it
    dtype: str = "float32"  # float32, float16, bfloat16
    channels_last: bool = False
    compile: bool = False  # torch.compile the model
    threads: int | None = None  # torch threads; None: as the process has them
    warmup_s: float = 1.0  # seconds of warm-up at least, until the single calls settle
    min_time_s: float = 0.2  # seconds each timed sample lasts at least
    repeats: int = 10  # timed samples
    workload: dict | None = None  # the inputs as ``Workload.to_json()`` (every kind); None: each model's own
    options: dict = field(default_factory=dict)  # the model builder's options (--opt)
    roofline: bool = True
    recalibrate: bool = False  # measure the device peaks again instead of reading the cache
    power: bool = True
    memory: bool = True
    layers: bool = False  # time every layer under torch.profiler (archcost.profiling.layers)
    isolate: bool = False  # each model in a fresh process (archcost.profiling.isolated)
    mode: str = "infer"  # "train": a timed training step (archcost.profiling.train_step)
    optimizer: str = "adam"  # mode "train" only
    amp: bool = False  # mode "train" only: autocast (float16 on CUDA, bfloat16 on the CPU)
    quantized_engine: str | None = None  # torch.backends.quantized.engine for the sweep; None: as it is
    heap: str = "steady"  # "steady": freed memory kept in the heap (environment.steady_heap); "as-is": glibc's own


#: ``ProfileConfig.heap``'s values (``environment.steady_heap``)
HEAPS = ("steady", "as-is")


def check_heap(heap: str) -> None:
    """``InputError`` for a ``heap`` setting that is not one of ``HEAPS``."""
    from archcost.errors import InputError

    if heap not in HEAPS:
        raise InputError(f"unknown heap setting {heap!r}", f"use one of {', '.join(HEAPS)}")


#: Every setting's name, in the dataclass's order.
SETTINGS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(ProfileConfig))

#: Names used before there was one vocabulary -> the setting's name now.
DEPRECATED: dict[str, str] = {"warmup": "warmup_s", "min_time": "min_time_s"}


def renamed(values: Mapping[str, Any], *, where: str = "profile", stacklevel: int = 2) -> dict[str, Any]:
    """``values`` with each deprecated name (``DEPRECATED``) replaced by the setting's name, with a
    ``DeprecationWarning`` that names it (``stacklevel`` as ``warnings.warn`` counts from the caller of
    ``renamed``); a setting given under both names is a ``TypeError``."""
    out = dict(values)
    for old, new in DEPRECATED.items():
        if old in out:
            if new in out:
                raise TypeError(f"{where}() got both {old}= and {new}=; {old} is the old name of {new}")
            warnings.warn(
                f"{where}({old}=) is deprecated: use {new}= (the ProfileConfig field and the record's name)",
                DeprecationWarning,
                stacklevel=stacklevel + 1,
            )
            out[new] = out.pop(old)
    return out


def settings(
    config: ProfileConfig | None = None, *, where: str = "profile", stacklevel: int = 2, **values: Any
) -> ProfileConfig:
    """``config`` (default ``ProfileConfig()``) with the settings named in ``values`` replaced; a name that is
    not a setting is a ``TypeError``, as for any keyword a function does not take. ``where``: the function
    named in messages; ``stacklevel``: the frame a deprecation warning points at, 2 being ``settings``' caller."""
    values = renamed(values, where=where, stacklevel=stacklevel + 1)
    unknown = sorted(set(values) - set(SETTINGS))
    if unknown:
        raise TypeError(f"{where}() got unexpected keyword argument(s) {', '.join(unknown)}; settings: {SETTINGS}")
    if config is not None and not isinstance(config, ProfileConfig):
        raise TypeError(f"config must be a ProfileConfig, not {type(config).__name__}")
    return dataclasses.replace(config or ProfileConfig(), **values)


def from_json(data: Mapping[str, Any]) -> ProfileConfig:
    """The config that ``dataclasses.asdict`` wrote (the ``--isolate`` child's request): lists back to tuples."""
    values = dict(data)
    values["batch_sizes"] = tuple(values.get("batch_sizes", (1,)))
    return ProfileConfig(**values)
