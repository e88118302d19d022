"""``bench``: every model's analytic figures and, when asked, its measured ones, as one bench document."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from archcost.bench.record import measured_records, model_entry, new_document
from archcost.errors import InputError, ModelLoadError, UnknownModelError

#: Keyword arguments of ``archcost.profiling.profile`` that ``bench`` passes through.
PROFILE_KEYS = ("device", "batch_sizes", "threads", "warmup", "min_time", "repeats", "channels_last", "power")
PROFILE_DTYPES = ("float32", "float16", "bfloat16")


def bench(
    models: Sequence[str],
    *,
    batch_size: int = 1,
    dtype: str = "float32",
    input_size: tuple[int, ...] | None = None,
    options: dict | None = None,
    profile: dict | None = None,
    on_step: Callable[[str], None] | None = None,
    skip_missing: bool = False,
) -> dict:
    """The bench document (``archcost.bench.record``) for ``models`` (MODEL arguments: zoo names,
    ``package.module:callable``, ``file.py:callable``, ``.onnx`` files).

    Every model is analysed first (on the meta device, seconds for the whole zoo); a model that cannot be
    analysed raises its ``ArchcostError`` before anything is measured. ``profile``: keyword arguments for
    ``archcost.profiling.profile`` (``device``, ``batch_sizes`` (default: ``batch_size``), ``threads``,
    ``warmup``, ``min_time``, ``repeats``, ...); each model's records go to its ``measured`` list. On Ctrl-C
    during profiling, the document keeps what was measured and ``settings.profile.interrupted`` is true.
    ``on_step`` is called with a short progress message before each model. ``skip_missing``: a model that
    cannot be found or imported (``UnknownModelError``, ``ModelLoadError``: e.g. benching the base commit of a
    pull request that adds the model) is left out and listed in ``settings.skipped`` with the reason; a model
    that is found but fails its analysis still raises.
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
    entries: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    for spec in specs:
        if on_step:
            on_step(f"analysing {spec}")
        try:
            entries[spec] = model_entry(
                spec, batch_size=batch_size, dtype=dtype, input_size=input_size, options=options
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
        "input_size": list(input_size) if input_size else None,
        "options": {k: str(v) for k, v in sorted(options.items())},
        "profile": None,
    }
    if skipped:
        settings["skipped"] = skipped
    if profile is not None:
        kwargs = {k: v for k, v in profile.items() if k in PROFILE_KEYS and v is not None}
        unknown = set(profile) - set(PROFILE_KEYS)
        if unknown:
            raise ValueError(f"not profile settings: {sorted(unknown)}")
        kwargs.setdefault("batch_sizes", [batch_size])
        kwargs["batch_sizes"] = list(kwargs["batch_sizes"])
        settings["profile"] = {**kwargs, "interrupted": _measure(entries, kwargs, dtype, input_size, options, on_step)}
    return new_document(entries, settings)


def _measure(entries: dict[str, dict], kwargs: dict, dtype, input_size, options, on_step) -> bool:
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
                input_size=tuple(input_size) if input_size else None,
                options=options,
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
