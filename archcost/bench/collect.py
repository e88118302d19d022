"""``bench``: every model's analytic figures and, when asked, its measured ones, as one bench document."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from archcost.bench.record import measured_records, model_entry, new_document
from archcost.errors import InputError, ModelLoadError, UnknownModelError
from archcost.profiling.config import SETTINGS, renamed

#: The settings ``bench`` gives ``archcost.profiling.profile`` itself: the analysis's dtype, options and inputs,
#: no roofline (the peaks' calibration would dominate a CI run), always the measured memory.
BENCH_SETS = ("dtype", "options", "workload", "roofline", "memory")
#: The ``ProfileConfig`` settings a ``profile=`` dict may hold, under their one name each.
PROFILE_KEYS = tuple(name for name in SETTINGS if name not in BENCH_SETS)
PROFILE_DTYPES = ("float32", "float16", "bfloat16")


def bench(
    models: Sequence[str],
    *,
    batch_size: int = 1,
    dtype: str = "float32",
    input_size: object = None,
    options: dict | None = None,
    kwargs: dict | None = None,
    batch_dim: int = 0,
    int_range: tuple[int, int] | None = None,
    profile: dict | None = None,
    on_step: Callable[[str], None] | None = None,
    skip_missing: bool = False,
    device_profile: str | None = None,
) -> dict:
    """The bench document (``archcost.bench.record``) for ``models`` (MODEL arguments: zoo names,
    ``package.module:callable``, ``file.py:callable``, ``.onnx`` files).

    Every model is analysed first (on the meta device, seconds for the whole zoo); a model that cannot be
    analysed raises its ``ArchcostError`` before anything is measured. ``profile``: keyword arguments for
    ``archcost.profiling.profile`` under ``ProfileConfig``'s names (``PROFILE_KEYS``: ``device``, ``batch_sizes``
    (default: ``batch_size``), ``threads``, ``warmup_s``, ``min_time_s``, ``repeats``, ...; ``warmup`` and
    ``min_time``, the old names, with a ``DeprecationWarning``); each model's records go to its ``measured``
    list. On Ctrl-C during profiling, the document keeps what was measured and ``settings.profile.interrupted`` is true.
    Inputs (``input_size``, ``kwargs``, ``batch_dim``, ``int_range``) as ``archcost.analyze`` takes them, the
    same for every model (default: each model's own); the file records them replayably
    (``settings.input_size``: a shape, or the ``--input-size`` values).
    ``on_step`` is called with a short progress message before each model. ``skip_missing``: a model that
    cannot be found or imported (``UnknownModelError``, ``ModelLoadError``: e.g. benching the base commit of a
    pull request that adds the model) is left out and listed in ``settings.skipped`` with the reason; a model
    that is found but fails its analysis still raises. ``device_profile``: a device profile file (``archcost
    calibrate``): each model's ``predicted`` block holds its latency predicted with it (``archcost.predict``),
    which ``compare --fail-on "predicted_latency>5%"`` gates without timing anything; a bad file raises
    ``ProfileError`` before any model is analysed.
    """
    specs = list(models)
    if not specs:
        raise InputError("no model given", "name one or more models: archcost bench resnet50 vgg16")
    seen = {s for s in specs if specs.count(s) > 1}
    if seen:
        raise InputError(f"model given twice: {', '.join(sorted(seen))}", "name each model once")
    options = dict(options or {})
    if profile is not None and dtype not in PROFILE_DTYPES:
        raise InputError(f"--profile cannot run dtype {dtype}", f"profile with one of {', '.join(PROFILE_DTYPES)}")
    inputs = {"kwargs": kwargs, "batch_dim": batch_dim, "int_range": int_range}
    predictor = None
    if device_profile is not None:
        from archcost.predict.annotate import read_profile

        predictor, profile_warnings = read_profile(device_profile)
    entries: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    for spec in specs:
        if on_step:
            on_step(f"analysing {spec}")
        try:
            entries[spec] = model_entry(
                spec,
                batch_size=batch_size,
                dtype=dtype,
                input_size=input_size,
                options=options,
                inputs=inputs,
                device_profile=predictor,
            )
        except (UnknownModelError, ModelLoadError) as exc:
            if not skip_missing:
                raise
            skipped[spec] = exc.message
            if on_step:
                on_step(f"skipped {spec}: {exc.message}")
    if not entries:
        raise InputError(
            f"none of the models could be loaded: {'; '.join(skipped.values())}", "check the MODEL arguments"
        )
    settings = {
        "batch_size": batch_size,
        "dtype": dtype,
        "input_size": _replayable(input_size),
        "options": {k: str(v) for k, v in sorted(options.items())},
        "profile": None,
    }
    if kwargs or batch_dim or int_range:
        settings["inputs"] = {
            "kwargs": {k: repr(v) for k, v in (kwargs or {}).items() if not hasattr(v, "shape")},
            "batch_dim": batch_dim,
            "int_range": list(int_range) if int_range else None,
        }
    if skipped:
        settings["skipped"] = skipped
    if predictor is not None:
        from archcost.predict.annotate import profile_identity

        settings["device_profile"] = {"path": str(device_profile), **profile_identity(predictor),
                                      "warnings": profile_warnings}  # fmt: skip
    if profile is not None:
        profile = renamed(profile, where="bench(profile=...)")  # warmup / min_time: the old names
        kwargs = {k: v for k, v in profile.items() if k in PROFILE_KEYS and v is not None}
        unknown = set(profile) - set(PROFILE_KEYS)
        if unknown:
            raise ValueError(f"not profile settings: {sorted(unknown)}")
        kwargs.setdefault("batch_sizes", [batch_size])
        kwargs["batch_sizes"] = list(kwargs["batch_sizes"])
        settings["profile"] = {
            **kwargs,
            "interrupted": _measure(entries, kwargs, dtype, input_size, options, on_step, inputs),
        }
    return new_document(entries, settings)


def _measure(entries: dict[str, dict], kwargs: dict, dtype, input_size, options, on_step, inputs: dict) -> bool:
    """Fill each entry's ``measured`` list; True if Ctrl-C stopped it (what was measured is kept)."""
    from archcost.profiling import profile as run_profile  # measured side: imported only when asked for

    for spec, entry in entries.items():
        if entry["source"] == "onnx":
            entry["measured"] = []
            entry["measured_note"] = "not measured: archcost profile runs torch models, not ONNX files"
            continue
        if on_step:
            on_step(f"profiling {spec}")
        try:
            df = run_profile(
                spec,
                dtype=dtype,
                input_size=input_size,
                options=options,
                **inputs,
                roofline=False,
                memory=True,
                **kwargs,
            )
        except KeyboardInterrupt:
            return True
        entry["measured"] = measured_records(df.to_dict(orient="records"))
        if df.attrs.get("interrupted"):
            return True
    return False


def _replayable(input_size: object) -> object:
    """``settings.input_size`` of a bench file: ``None``, a shape ``[3, 224, 224]``, or the ``--input-size``
    values (``["int64:77", "mask=bool:77"]``) that give the inputs again."""
    if input_size is None:
        return None
    if isinstance(input_size, (tuple, list)) and all(isinstance(d, int) for d in input_size):
        return list(input_size)
    from archcost.cost.inputs import describe_spec, input_specs

    return [describe_spec(s) for s in input_specs(input_size)[0]]
