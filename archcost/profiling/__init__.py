"""Measured cost: latency, throughput, peak memory, power and roofline efficiency, swept over batch sizes.

``archcost.profile(models, ...)`` returns a pandas DataFrame with one row per model and batch size (the
columns are ``archcost.profiling.results.FIELDS``). ``archcost profile`` on the command line wraps it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archcost._lazy import lazy_attributes
from archcost.profiling.config import ProfileConfig, settings

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

#: public name -> the module that defines it, imported on first use (PEP 562): ``ProfileConfig`` and
#: ``archcost.profiling.config`` import no torch, so ``archcost.bench`` reads the setting names for free.
_PUBLIC = {
    "FIELDS": "archcost.profiling.results",
    "SCHEMA": "archcost.profiling.results",
    "layers_frame": "archcost.profiling.results",
    "read_results": "archcost.profiling.results",
    "render": "archcost.profiling.results",
    "iter_profile": "archcost.profiling.sweep",
}

__all__ = ["FIELDS", "SCHEMA", "ProfileConfig", "iter_profile", "layers_frame", "profile", "read_results", "render"]


__getattr__ = lazy_attributes("archcost.profiling", _PUBLIC, globals())


def profile(
    models: str | nn.Module | Sequence[str | nn.Module],
    config: ProfileConfig | None = None,
    *,
    input_size: object = None,
    inputs: object = None,
    kwargs: dict | None = None,
    batch_dim: int = 0,
    int_range: tuple[int, int] | None = None,
    results_file: str | Path | None = None,
    progress: bool = False,
    resume: bool = False,
    executor: str = "local",
    address: str | None = None,
    accelerator: str | None = None,
    **setting: Any,
) -> pd.DataFrame:
    """Time ``models`` (zoo names, ``package.module:callable`` / ``file.py:callable`` specs, or modules)
    at each batch size on ``device`` and return one DataFrame row per model and batch size.

    The settings are ``config`` (a ``ProfileConfig``), or keyword arguments of the same names (``device``,
    ``batch_sizes``, ``dtype``, ``warmup_s``, ``min_time_s``, ``repeats``, ... every field of ``ProfileConfig``),
    which replace the config's; ``warmup=`` and ``min_time=`` are the old names of ``warmup_s`` / ``min_time_s``
    (``DeprecationWarning``). A name that is not a setting is a ``TypeError``.

    Per row: latency median / p10 / p90 / CV over ``repeats`` samples of at least ``min_time_s`` seconds
    each (after ``warmup_s`` seconds and until the timings settle), throughput = batch / median, the measured
    peak memory next to the analytic estimate, power and energy per image on NVIDIA GPUs, and roofline
    efficiency against the device's measured peaks. Out-of-memory, unsupported dtypes and forwards that
    raise are rows with ``status`` ``oom`` / ``unsupported`` / ``error``, never exceptions.

    Inputs as ``archcost.analyze`` takes them (``archcost.cost.workload.Workload``): ``input_size`` (a shape,
    a spec string like ``"int64:77"``, or a list of them, one per positional input), ``inputs=`` example
    tensors (repeated along the batch dimension for the batch sizes asked), ``kwargs=`` keyword inputs,
    ``batch_dim``, ``int_range`` (integer inputs take seeded random values in it; default zeros); the same
    for every model (default: each model's own input). They fill ``config.workload`` (``Workload.to_json()``);
    a config that has one and input keywords as well is an ``InputError``.

    ``layers``: also time every layer of the cost table under ``torch.profiler`` (``archcost.profiling.layers``):
    each row gains ``layers`` (name, type, macs, flops, bytes, time_s, time_share, flops_per_s,
    arithmetic_intensity, percent_of_peak, bound) and how they add up (``layer_time_sum_ratio``,
    ``profiler_overhead``); ``layers_frame(df)`` flattens them to one row per layer.

    Every ``ok`` row has ``flags`` (``cv_high``, ``warmup_unsettled``, ``peaks_stale``, ``layer_sum_off``,
    ``cpu_stolen``) and ``warnings``, one sentence each saying what to do.

    ``isolate``: measure each model in a fresh Python process (model specs only), as a user's own timing
    script would: a CPU latency depends on what the measuring process did before (``archcost.profiling.isolated``).

    ``mode="train"``: time a training step instead of a forward (``archcost.profiling.train_step``): forward
    and a loss on random targets, backward, ``optimizer`` step (sgd, momentum, adam, adamw), with the same
    warm-up and statistics; rows add ``forward_median_s``, ``backward_median_s``, ``optimizer_median_s``
    (``latency_median_s`` is the whole step), ``memory_peak_bytes`` is the first step's measured peak and
    ``memory_estimate_bytes`` its estimate (``archcost.cost.training``). ``amp``: autocast (float16 on
    CUDA with a ``GradScaler``, bfloat16 on the CPU; float32 weights). Every row has ``mode``.

    ``quantized_engine``: ``torch.backends.quantized.engine`` (``x86``, ``fbgemm``, ``qnnpack``, ``onednn``;
    ``torch.backends.quantized.supported_engines``) for the whole sweep, builds included, restored after; every
    record has ``env_quantized_engine``. One this torch lacks: ``InputError`` naming the ones it has.

    ``heap``: ``"steady"`` (default) keeps the measuring process's freed memory in its heap from then on
    (``environment.steady_heap``: glibc's mmap threshold fixed at 32 MiB, no trimming; not undone, since glibc
    cannot read its old settings back), so that outputs are not faulted in afresh on every call depending on what
    the process freed before; ``"as-is"`` leaves the C library's policy alone. Every record has ``env_heap`` and
    ``minor_faults_per_call`` (flag ``page_faults`` over ``outcome.FAULT_LIMIT``).

    ``results_file``: also append every row, as it is measured, to this JSON-lines file (its folder is
    checked before anything is measured: ``InputError``).
    ``progress``: show a tqdm bar on standard error. On Ctrl-C the rows measured so far are returned with
    ``df.attrs["interrupted"] = True``. A model passed as a module is measured on a deep copy: the caller's
    module (weights, buffers, attributes, ``training`` flags, dtype, device) is never changed.

    ``resume``: measure only the (model, device, dtype, batch size, mode) that ``results_file`` has no
    record of (``archcost.profiling.resume``); ``df.attrs["skipped"]`` counts the rest.

    ``executor="ray"``: each model is one task on a Ray cluster (``archcost.profiling.distributed``; needs
    ``pip install "archcost[ray]"``), at ``address`` (``ray://HEAD:10001``, ``HEAD:6379``, ``auto``, ``local``;
    None: ``RAY_ADDRESS``, the cluster last started here, else a new local one; a process that already called
    ``ray.init`` keeps its cluster). CUDA tasks ask for one GPU (of Ray's ``accelerator_type`` ``accelerator``
    when given: ``"A100"``), CPU tasks for ``threads`` CPUs (required).
    Records arrive as each batch size is measured and are written here, by this process only; every record
    names its worker (``env_host``, ``env_ray_node``). Ray missing, a malformed or unreachable address, or a
    device no node has: ``InputError`` before anything is measured.
    """
    from torch import nn

    from archcost.errors import ArchcostError, InputError
    from archcost.profiling.results import append_records, to_dataframe
    from archcost.profiling.sweep import (
        check_config,
        check_writable,
        iter_profile,
        parse_batch_sizes,
        resolve_device,
        validate_models,
    )

    config = settings(config, stacklevel=3, **setting)
    if executor not in ("local", "ray"):
        raise InputError(f"unknown executor {executor!r}", "use executor='local' or executor='ray'")
    if (address is not None or accelerator is not None) and executor != "ray":
        what = "an address" if address is not None else "an accelerator type"
        raise InputError(f"{what} is for executor='ray' (archcost profile --ray)", "add executor='ray' (--ray)")
    if resume and results_file is None:
        raise InputError(
            "resume skips what the results file already holds, and no results file was given",
            "add --append FILE (results_file=...) with --resume",
        )
    workload = _inputs_json(input_size, inputs, kwargs, batch_dim, int_range)
    if workload is not None:
        if config.workload is not None:
            raise InputError(
                "the inputs are given twice: config.workload and input keywords (input_size, inputs, kwargs, ...)",
                "give them one way",
            )
        config = dataclasses.replace(config, workload=workload)
    config = dataclasses.replace(
        config, batch_sizes=tuple(parse_batch_sizes(config.batch_sizes)), options=dict(config.options or {})
    )
    check_config(config, ray=executor == "ray")
    if results_file is not None:
        check_writable(results_file, "results file")
    if executor == "ray":
        from archcost.profiling import distributed

        distributed.import_ray()  # Ray missing: say which extra to install, before anything else
    model_list = [models] if isinstance(models, (str, nn.Module)) else list(models)
    model_list = validate_models(
        model_list, config.options, isolate=config.isolate and executor == "local", mode=config.mode
    )
    session = distributed.connect(address) if executor == "ray" else None
    records: list[dict] = []
    interrupted = False
    bar = None
    skipped = 0
    names: list[str] = []
    try:
        todo = [tuple(config.batch_sizes)] * len(model_list)
        if session is not None or resume:
            from archcost.profiling.resume import model_name

            names = [model_name(spec, config.options) for spec in model_list]
        if session is not None:
            device, _ = distributed.task_device(config.device, config.threads, session.node_resources(), accelerator)
        else:
            device = str(resolve_device(config.device))
        if resume:
            from archcost.profiling.resume import recorded_keys, remaining

            assert results_file is not None  # checked above
            todo = remaining(names, device, config.dtype, config.mode, config.batch_sizes, recorded_keys(results_file))
        skipped = len(model_list) * len(config.batch_sizes) - sum(map(len, todo))
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=sum(map(len, todo)), file=sys.stderr, unit="run", leave=False)
        source: Generator[dict, None, None]
        if session is not None:
            import uuid

            run_id = uuid.uuid4().hex[:12]
            # a resolved spec travels as its string (the task resolves and builds it there); a module as itself
            specs = [m if isinstance(m, nn.Module) else str(m) for m in model_list]
            source = distributed.ray_records(session, specs, names, config, todo, run_id, accelerator)
        else:
            step = bar.set_description if bar else None
            source = iter_profile(model_list, config, on_step=step, model_batch_sizes=todo if resume else None)
        with contextlib.closing(source):
            for rec in source:
                records.append(rec)
                if results_file is not None:
                    append_records(results_file, [rec])
                if bar:
                    if session is not None:
                        bar.set_description(f"{rec['model']} batch {rec['batch_size']} on {rec.get('env_host')}")
                    bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
    except ArchcostError as exc:  # e.g. a model whose constructor fails when its turn comes: keep what came before
        exc.measured = to_dataframe(records)  # type: ignore[attr-defined]  # read by the CLI
        raise
    finally:
        if bar:
            bar.close()
        if session is not None:
            session.close()
    if session is not None:  # records arrive as they finish; show them in the order asked for
        order = {name: i for i, name in reversed(list(enumerate(names)))}
        records.sort(key=lambda r: (order.get(r["model"], len(order)), r["batch_size"]))
    df = to_dataframe(records)
    df.attrs["interrupted"] = interrupted
    df.attrs["skipped"] = skipped
    return df


def _inputs_json(
    input_size: object, inputs: object, kwargs: dict | None, batch_dim: int, int_range: tuple[int, int] | None
) -> dict | None:
    """The inputs given to ``profile`` as ``Workload.to_json()`` (what a sweep, a child process and a Ray task
    carry), or ``None`` for each model's own input."""
    if input_size is None and inputs is None and not kwargs and batch_dim == 0 and int_range is None:
        return None
    from archcost.cost.workload import Workload

    return Workload.of(
        None, input_size, inputs=inputs, kwargs=kwargs, batch_dim=batch_dim, int_range=int_range
    ).to_json()
