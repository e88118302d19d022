"""Measured cost: latency, throughput, peak memory, power and roofline efficiency, swept over batch sizes.

``archcost.profile(models, ...)`` returns a pandas DataFrame with one row per model and batch size (the
columns are ``archcost.profile.results.FIELDS``). ``archcost profile`` on the command line wraps it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from torch import nn

from archcost.profile.results import (
    FIELDS,
    SCHEMA,
    append_records,
    layers_frame,
    read_results,
    render,
    to_dataframe,
)
from archcost.profile.sweep import (
    ProfileConfig,
    check_config,
    check_writable,
    iter_profile,
    parse_batch_sizes,
    validate_models,
)

__all__ = ["FIELDS", "SCHEMA", "ProfileConfig", "iter_profile", "layers_frame", "profile", "read_results", "render"]


def profile(
    models: str | nn.Module | Sequence[str | nn.Module],
    *,
    device: str = "auto",
    batch_sizes: str | Sequence[int] = (1,),
    dtype: str = "float32",
    channels_last: bool = False,
    compile: bool = False,
    threads: int | None = None,
    warmup: float = 1.0,
    min_time: float = 0.2,
    repeats: int = 10,
    input_size: tuple[int, ...] | None = None,
    options: dict | None = None,
    roofline: bool = True,
    recalibrate: bool = False,
    power: bool = True,
    memory: bool = True,
    layers: bool = False,
    isolate: bool = False,
    results_file: str | Path | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Time ``models`` (zoo names, ``package.module:callable`` / ``file.py:callable`` specs, or modules)
    at each batch size on ``device`` and return one DataFrame row per model and batch size.

    Per row: latency median / p10 / p90 / CV over ``repeats`` samples of at least ``min_time`` seconds
    each (after ``warmup`` seconds and until the timings settle), throughput = batch / median, the measured
    peak memory next to the analytic estimate, power and energy per image on NVIDIA GPUs, and roofline
    efficiency against the device's measured peaks. Out-of-memory, unsupported dtypes and forwards that
    raise are rows with ``status`` ``oom`` / ``unsupported`` / ``error``, never exceptions.

    ``layers``: also time every layer of the cost table under ``torch.profiler`` (``archcost.profile.layers``):
    each row gains ``layers`` (name, type, macs, flops, bytes, time_s, time_share, flops_per_s,
    arithmetic_intensity, percent_of_peak, bound) and how they add up (``layer_time_sum_ratio``,
    ``profiler_overhead``); ``layers_frame(df)`` flattens them to one row per layer.

    Every ``ok`` row has ``flags`` (``cv_high``, ``warmup_unsettled``, ``peaks_stale``, ``layer_sum_off``)
    and ``warnings``, one sentence each saying what to do.

    ``isolate``: measure each model in a fresh Python process (model specs only), as a user's own timing
    script would: a CPU latency depends on what the measuring process did before (``archcost.profile.isolated``).

    ``results_file``: also append every row, as it is measured, to this JSON-lines file (its folder is
    checked before anything is measured: ``InputError``).
    ``progress``: show a tqdm bar on standard error. On Ctrl-C the rows measured so far are returned with
    ``df.attrs["interrupted"] = True``. A model passed as a module is measured on a deep copy: the caller's
    module (weights, buffers, attributes, ``training`` flags, dtype, device) is never changed.
    """
    if isinstance(models, (str, nn.Module)):
        models = [models]
    models = list(models)
    config = ProfileConfig(
        device=device,
        batch_sizes=parse_batch_sizes(batch_sizes),
        dtype=dtype,
        channels_last=channels_last,
        compile=compile,
        threads=threads,
        warmup_s=warmup,
        min_time_s=min_time,
        repeats=repeats,
        input_size=tuple(input_size) if input_size else None,
        options=dict(options or {}),
        roofline=roofline,
        recalibrate=recalibrate,
        power=power,
        memory=memory,
        layers=layers,
        isolate=isolate,
    )
    check_config(config)
    if results_file is not None:
        check_writable(results_file, "results file")
    validate_models(models, config.options, isolate=isolate)
    records: list[dict] = []
    interrupted = False
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(models) * len(config.batch_sizes), file=sys.stderr, unit="run", leave=False)
    try:
        for rec in iter_profile(models, config, on_step=bar.set_description if bar else None):
            records.append(rec)
            if results_file is not None:
                append_records(results_file, [rec])
            if bar:
                bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if bar:
            bar.close()
    df = to_dataframe(records)
    df.attrs["interrupted"] = interrupted
    return df
