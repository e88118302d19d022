"""The batch sweep: for each model and batch size, time, measure memory and power, and fill one record.

Failures are data, never a crash: an out-of-memory at one batch size is recorded as ``oom`` for it and
every larger size, memory is released, and the sweep goes on with the next model; a dtype the device
cannot run is ``unsupported``; a forward that raises anything else is ``error`` with its message. The
records are yielded one at a time, so a caller that stops early (Ctrl-C) keeps all that was measured.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import re
import time
import uuid
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from archcost.errors import ArchcostError, InputError
from archcost.profiling.config import ProfileConfig, check_heap
from archcost.profiling.environment import environment, git_commit, model_file, steady_heap
from archcost.profiling.environment import quantized_engine as quantized_engine_setting
from archcost.profiling.outcome import (  # re-exported: sweep's public names before outcome.py
    CV_LIMIT,  # noqa: F401
    FLAGS,  # noqa: F401
    LAYER_SUM_TOLERANCE,  # noqa: F401
    analysis_fields,  # noqa: F401
    carry_over,
    classify_failure,
    first_line,
    flags_and_warnings,  # noqa: F401
    is_oom,  # noqa: F401
)
from archcost.profiling.outcome import release as _release
from archcost.profiling.results import new_record
from archcost.profiling.roofline import DevicePeaks, device_peaks, peaks_key
from archcost.profiling.steps import RunContext, measure_step, step_for
from archcost.units import DTYPES

if TYPE_CHECKING:
    from archcost.cost.workload import Workload
    from archcost.models import ModelSpec

PROFILE_DTYPES = ("float32", "float16", "bfloat16")


class DeviceError(ArchcostError):
    """A device that is not there (``--device cuda`` without CUDA, ``cuda:3`` on a one-GPU machine)."""


# -- pure decisions ---------------------------------------------------------------------------------------


def resolve_device(spec: str, *, cuda_available: bool | None = None, cuda_count: int | None = None) -> torch.device:
    """``auto`` -> ``cuda`` when CUDA is available, else ``cpu``; ``cuda[:N]`` must exist (``DeviceError``)."""
    spec = (spec or "auto").strip().lower()
    available = torch.cuda.is_available() if cuda_available is None else cuda_available
    if spec == "auto":
        return torch.device("cuda", 0) if available else torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    m = re.fullmatch(r"cuda(?::(\d+))?", spec)
    if not m:
        raise InputError(f"unknown device {spec!r}", "use auto, cpu, cuda or cuda:N")
    if not available:
        built = f"torch {torch.__version__} " + (
            f"is built with CUDA {torch.version.cuda} but finds no GPU" if torch.version.cuda else "is a CPU-only build"
        )
        raise DeviceError(
            f"--device {spec} asks for CUDA, but CUDA is not available here: {built}",
            "use --device cpu (or auto), or run on a machine with an NVIDIA GPU and a CUDA build of torch",
        )
    count = torch.cuda.device_count() if cuda_count is None else cuda_count
    index = int(m.group(1) or 0)
    if index >= count:
        raise DeviceError(
            f"--device {spec}: this machine has {count} CUDA device(s)", f"use cuda:0 .. cuda:{count - 1}"
        )
    return torch.device("cuda", index)


def parse_batch_sizes(text: str | Sequence[int]) -> list[int]:
    """'1,2,4,8' (or a sequence) -> [1, 2, 4, 8]: positive, de-duplicated, ascending (so 'larger' is 'later')."""
    items = text.split(",") if isinstance(text, str) else list(text)
    sizes = []
    for item in items:
        try:
            value = int(str(item).strip())
        except ValueError:
            raise InputError(f"batch size {item!r} is not a whole number", "write --batch-sizes 1,2,4,8") from None
        if value < 1:
            raise InputError(f"batch size {value} must be >= 1", "write --batch-sizes 1,2,4,8")
        sizes.append(value)
    if not sizes:
        raise InputError("no batch sizes given", "write --batch-sizes 1,2,4,8")
    return sorted(set(sizes))


# -- the sweep --------------------------------------------------------------------------------------------


def _to_device(module: nn.Module, device: torch.device, dtype: torch.dtype, channels_last: bool) -> nn.Module:
    module = module.to(device=device, dtype=dtype)
    if channels_last:
        module = module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # Module.to takes it
    return module


def _analyses(work, batch_sizes: Sequence[int]) -> dict:
    """``{batch: CostReport or ArchcostError}``: the workload analysed (meta device: costs no memory) at the
    smallest and largest batch size, the sizes between derived from those two where exact
    (``archcost.cost.batch.analyze_batches``)."""
    from archcost.cost import analyze
    from archcost.cost.batch import analyze_batches

    return analyze_batches(lambda batch: analyze(work.with_batch(batch)), batch_sizes)


def workload_of(config: ProfileConfig, module: nn.Module, name: str, default_size: Sequence[int]) -> Workload:
    """The ``Workload`` a sweep measures ``module`` on: the config's inputs, else the model's own input."""
    from archcost.cost.workload import Workload

    if config.workload:
        work = Workload.from_json(config.workload, model=module)
    else:
        work = Workload.of(module)
    work = dataclasses.replace(work, name=name, default_input=tuple(default_size), dtype=config.dtype)
    return work.load()


def _load(spec, options: dict):
    """``(name, module on the CPU, default input size, source)`` for a model spec or an ``nn.Module``: the one
    build of a spec in a sweep (``validate_models`` resolved it without building)."""
    if isinstance(spec, nn.Module):
        size = tuple(getattr(spec, "input_size", None) or (3, 224, 224))
        return type(spec).__name__, spec, size, "module"
    from archcost.models import ModelSpec, resolve_model

    resolved = spec if isinstance(spec, ModelSpec) else resolve_model(str(spec), options)
    loaded = resolved.build("cpu")
    return loaded.name, loaded.module, loaded.input_size, loaded.source


def validate_models(models: Sequence, options: dict, *, isolate: bool = False, mode: str = "infer") -> list:
    """Fail before measuring anything if a model name or option is wrong, without building any model:
    each spec is resolved (``archcost.models.resolve_model``: the name, the import, the option names and
    types, the callable's signature) and built later, once, when its turn comes. Returns the models with
    each spec resolved (``ModelSpec``; modules as given). In mode "train", a module given as an object
    must have a trainable parameter (a spec's model is checked when it is built)."""
    from archcost.models import resolve_model

    out: list[nn.Module | ModelSpec] = []
    for spec in models:
        if isolate and isinstance(spec, nn.Module):
            raise InputError(
                f"isolate=True measures each model in a fresh process, which cannot receive the module object "
                f"{type(spec).__name__}",
                "give the model as a spec (zoo name, package.module:callable or file.py:callable)",
            )
        if isinstance(spec, nn.Module):
            if mode == "train":
                from archcost.profiling.train_step import require_trainable

                require_trainable(spec)
            out.append(spec)
        else:
            out.append(resolve_model(str(spec), options))
    return out


def check_writable(path, what: str = "output") -> None:
    """Raise ``InputError`` now if ``path`` could not be written later: a missing folder, a folder in its
    place, no permission. Called before anything is measured, so a typo never throws away a sweep."""
    import os
    from pathlib import Path

    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise InputError(
            f"cannot write the {what} {path}: the folder {folder} does not exist",
            "create it first, or fix the path (nothing was measured)",
        )
    if path.is_dir():
        raise InputError(f"cannot write the {what} {path}: it is a folder", "give a file name (nothing was measured)")
    target = path if path.exists() else folder
    if not os.access(target, os.W_OK):
        raise InputError(
            f"cannot write the {what} {path}: permission denied on {target}",
            "choose a path you can write (nothing was measured)",
        )


def check_config(config: ProfileConfig, *, ray: bool = False) -> None:
    """Raise ``InputError`` for settings that cannot be measured, before anything runs (``ray``: measured on a
    Ray cluster, whose CPUs are not this process's)."""
    if config.dtype not in PROFILE_DTYPES:
        raise InputError(f"dtype {config.dtype!r} cannot be profiled", f"use one of {', '.join(PROFILE_DTYPES)}")
    for name, value in (("warmup", config.warmup_s), ("min-time", config.min_time_s)):
        if value < 0:
            raise InputError(f"--{name} {value} is negative", "give seconds >= 0")
    if config.repeats < 1:
        raise InputError(f"--repeats {config.repeats} must be >= 1", "give at least one sample")
    if config.threads is not None and config.threads < 1:
        raise InputError(f"--threads {config.threads} must be >= 1", "give a thread count >= 1")
    if not ray:  # a Ray task's threads are its worker's CPUs, checked against the cluster (distributed.task_device)
        from archcost.profiling.environment import check_threads

        check_threads(config.threads)
    from archcost.profiling.environment import check_quantized_engine

    check_quantized_engine(config.quantized_engine)
    check_heap(config.heap)
    if config.mode not in ("infer", "train"):
        raise InputError(f"unknown mode {config.mode!r}", "use infer (the default) or train")
    if config.mode == "train":
        from archcost.profiling.train_step import check_train_config

        check_train_config(config)
    elif config.amp:
        raise InputError("--amp is for --mode train", "add --mode train, or time inference with --dtype float16")
    if config.layers and config.compile:
        raise InputError(
            "--layers times the eager model's layers, and --compile fuses them into kernels no layer owns",
            "drop --compile to time the layers, or drop --layers to time the compiled model",
        )


@contextlib.contextmanager
def measurement_setup(
    device: torch.device,
    threads: int | None,
    dtype: str,
    quantized_engine: str | None = None,
    heap: str = "steady",
) -> Iterator[dict]:
    """The one setup of every executor (this process, the ``--isolate`` child, a Ray worker through
    ``iter_profile``, ``archcost calibrate``): ``threads`` torch threads when given, ``cudnn.benchmark`` on for
    CUDA; yields the record's environment fields (``environment.environment``) and restores both settings after;
    ``quantized_engine`` sets ``torch.backends.quantized.engine`` for the block (``environment.quantized_engine``).
    ``heap="steady"`` keeps the process's freed memory in its heap from here on (``environment.steady_heap``: not
    undone, glibc cannot read its settings back); ``"as-is"`` leaves the C library's policy alone."""
    check_heap(heap)
    if heap == "steady":
        steady_heap()
    old_threads = torch.get_num_threads()
    old_benchmark = torch.backends.cudnn.benchmark
    engine = quantized_engine_setting(quantized_engine)
    engine.__enter__()
    try:
        if threads:
            torch.set_num_threads(threads)
        cudnn_benchmark = None
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            cudnn_benchmark = torch.backends.cudnn.benchmark
        yield environment(device, threads=torch.get_num_threads(), dtype=dtype, cudnn_benchmark=cudnn_benchmark)
    finally:
        torch.set_num_threads(old_threads)
        torch.backends.cudnn.benchmark = old_benchmark
        engine.__exit__(None, None, None)


def iter_profile(
    models: Sequence,
    config: ProfileConfig,
    *,
    on_step: Callable[[str], None] | None = None,
    model_batch_sizes: Sequence[Sequence[int]] | None = None,
) -> Generator[dict, None, None]:
    """Yield one record per model and batch size, as each is measured (see ``results.FIELDS``).

    ``model_batch_sizes``: per model (parallel to ``models``), the sizes to measure instead of ``config``'s (a
    resumed sweep measures only what its results file lacks); a model with none is not loaded."""
    check_config(config)
    device = resolve_device(config.device)
    batch_sizes = parse_batch_sizes(config.batch_sizes)
    dtype = DTYPES[config.dtype]
    step = on_step or (lambda text: None)

    with measurement_setup(device, config.threads, config.dtype, config.quantized_engine, config.heap) as env:
        threads = env["env_threads"]
        peaks: DevicePeaks | None = None
        peaks_note = None
        if config.roofline:
            step("measuring device peaks (cached after the first run)")
            key = peaks_key(env["env_device_name"], str(device), config.dtype, threads, torch.__version__)
            peaks = device_peaks(device, dtype, key, recalibrate=config.recalibrate, isolated=True, threads=threads)
            peaks_note = peaks.note
        else:
            peaks_note = "roofline off"
        ctx = RunContext(config, device, tuple(batch_sizes), dtype, env, peaks, peaks_note, uuid.uuid4().hex[:12])
        for i, spec in enumerate(models):
            run = ctx
            if model_batch_sizes is not None:
                if not model_batch_sizes[i]:
                    continue
                run = dataclasses.replace(ctx, batch_sizes=tuple(parse_batch_sizes(model_batch_sizes[i])))
            if config.isolate:
                from archcost.profiling.isolated import profile_model_isolated  # the parent side: no sweep import

                yield from profile_model_isolated(spec, run, step)
            else:
                yield from run_model(spec, run, step)


def working_copy(module: nn.Module) -> nn.Module:
    """A deep copy of the caller's module to measure on, so that nothing of theirs changes (weights, dtype,
    device, memory format, ``training`` flags, tensors that forward caches on the module)."""
    try:
        return copy.deepcopy(module)
    except Exception as exc:
        raise InputError(
            f"cannot copy {type(module).__name__} to measure it ({first_line(exc)}); archcost measures a copy so "
            "that your model is never changed",
            "make the module deep-copyable, or pass it as a model spec (package.module:callable) to build it fresh",
        ) from None


def run_model(spec, ctx: RunContext, step: Callable[[str], None] = lambda text: None) -> Iterator[dict]:
    """The records of one model (a spec or an ``nn.Module``) at each batch size of ``ctx``, as measured.

    This is the unit of work of a sweep, and every executor wraps it: the local loop (``iter_profile``), the
    ``--isolate`` child (``isolated_child``) and a Ray task (``distributed.profile_task``, through
    ``iter_profile``). It needs nothing but its arguments; a module passed in is measured on a deep copy
    (``working_copy``), never changed. Each batch size is one ``steps.measure_step`` of the mode's step.
    """
    config, device, dtype, peaks = ctx.config, ctx.device, ctx.dtype, ctx.peaks
    name, original, default_size, source = _load(spec, config.options)
    if config.mode == "train" and not isinstance(spec, nn.Module):
        from archcost.profiling.train_step import require_trainable

        require_trainable(original)
    inputs = workload_of(config, original, name, default_size)
    path = model_file(original)
    base = {
        "run_id": ctx.run_id,
        "model": name,
        "model_source": source,
        "model_file": path,
        "model_commit": git_commit(path),
        "input_shape": inputs.label(),
        "device": str(device),
        "dtype": config.dtype,
        "channels_last": config.channels_last,
        "compiled": config.compile,
        "mode": config.mode,
        "optimizer": config.optimizer if config.mode == "train" else None,
        "amp": config.amp if config.mode == "train" else None,
        "threads": ctx.env["env_threads"],
        "min_time_s": config.min_time_s,
        "peak_flops_per_s": peaks.flops_per_s if peaks else None,
        "peak_bytes_per_s": peaks.bytes_per_s if peaks else None,
        "peaks_measured_at": peaks.measured_at if peaks else None,
        "peak_cache_bytes_per_s": peaks.cache_bytes_per_s if peaks else None,
        "peak_kernel": peaks.flops_kernel if peaks else None,
        "peak_math_mode": peaks.math_mode if peaks else None,
        **ctx.env,
    }

    def record(batch: int, **values) -> dict:
        return new_record(**{**base, **values, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "batch_size": batch})

    carried: tuple[str, str] | None = None
    if config.dtype == "bfloat16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        carried = ("unsupported", f"{torch.cuda.get_device_name(device)} does not support bfloat16")
    module = runner = None
    try:
        if carried is None:
            try:
                work = working_copy(original) if isinstance(spec, nn.Module) else original
                work.train(config.mode == "train")
                module = _to_device(work, device, dtype, config.channels_last)
                runner = torch.compile(module) if config.compile else module
            except ArchcostError:
                raise
            except Exception as exc:
                status = classify_failure(exc, config.dtype)
                message = f"moving the model to {device} in {config.dtype} failed: {first_line(exc)}"
                carried = (status, message if status != "oom" else f"the model does not fit on {device}: {message}")
                module = runner = None
                _release(device)
        reports = None  # every size's analysis, made when the first batch size is measured (``_analyses``)
        for batch in ctx.batch_sizes:
            step(f"{name} batch {batch}")
            if carried is not None:
                yield record(batch, status=carried[0], error=carried[1])
                continue
            if reports is None:
                reports = _analyses(inputs, ctx.batch_sizes)
            assert runner is not None and module is not None  # placed, or carried is set
            measured = step_for(runner, module, ctx, reports[batch])
            rec = record(batch, **measure_step(measured, inputs, batch, ctx, reports[batch]))
            if rec["status"] != "ok":
                _release(device)
                carried = carry_over(rec["status"], batch, rec["error"])
            yield rec
    finally:
        module = runner = work = None
        _release(device)


profile_model = run_model  # its name before the executors shared it
