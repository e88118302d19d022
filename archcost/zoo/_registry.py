"""The zoo's registry: ``@register_model`` adds a builder, ``get_model`` builds one by name."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from archcost.errors import ArchcostError, InternalError, ModelOptionError, UnknownModelError
from archcost.zoo._meta import ModelMeta


@dataclass(frozen=True)
class ZooEntry:
    name: str
    builder: Callable[..., nn.Module]
    meta: ModelMeta

    def options(self) -> dict[str, object]:
        """The builder's keyword-only options and their defaults."""
        sig = inspect.signature(self.builder)
        return {p.name: p.default for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}


_MODELS: dict[str, ZooEntry] = {}


def register_model(meta: ModelMeta, name: str | None = None) -> Callable:
    """Register a builder ``def net(*, num_classes=1000, ...) -> nn.Module`` under its function name.

    Builders take keyword-only arguments only. A name registered twice raises.
    """

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or fn.__name__
        if key in _MODELS:
            raise ValueError(f"model {key!r} is already registered")
        sig = inspect.signature(fn)
        positional = [p.name for p in sig.parameters.values() if p.kind is not inspect.Parameter.KEYWORD_ONLY]
        if positional:
            raise TypeError(f"zoo builder {key!r} must take keyword-only arguments, not {positional}")
        _MODELS[key] = ZooEntry(key, fn, meta)
        return fn

    return wrap


def _ensure_loaded() -> None:
    # Importing the package imports every family module, which registers its models.
    import archcost.zoo  # noqa: F401


def list_models(family: str | None = None) -> list[str]:
    """Names of the registered zoo models, sorted, optionally of one family."""
    _ensure_loaded()
    return sorted(k for k, e in _MODELS.items() if family is None or e.meta.family == family)


def get_entry(name: str) -> ZooEntry:
    _ensure_loaded()
    try:
        return _MODELS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_MODELS), n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(close)}?" if close else "run `archcost list` to see the zoo"
        raise UnknownModelError(f"unknown model {name!r}", hint) from None


def get_meta(name: str) -> ModelMeta:
    return get_entry(name).meta


def _literal(value: str) -> object:
    """A command-line string with no typed default to go by: int, float, bool, or the string itself."""
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(value.lower(), value)


def coerce_options(fn: Callable, options: dict[str, object], what: str) -> dict[str, object]:
    """Convert command-line strings to the types of ``fn``'s defaults (or int/float/bool literals)."""
    params: Mapping[str, inspect.Parameter]
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    out = {}
    for key, value in options.items():
        p = params.get(key)
        default = p.default if p is not None and p.default is not inspect.Parameter.empty else None
        if isinstance(value, str) and default is None:
            out[key] = _literal(value)
        else:
            out[key] = _coerce(value, default, key, what)
    return out


def _coerce(value: object, default: object, key: str, model: str) -> object:
    """Convert a command-line string to the type of the option's default."""
    if not isinstance(value, str) or default is None or isinstance(default, str):
        return value
    try:
        if isinstance(default, bool):
            low = value.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError:
        raise ModelOptionError(
            f"option {key}={value!r} of {model} is not a valid {type(default).__name__}",
            f"give {key} {'an' if type(default).__name__[0] in 'aeiou' else 'a'} {type(default).__name__}, "
            f"e.g. {key}={default}",
        ) from None
    return value


def check_options(name: str, options: dict[str, object]) -> dict[str, object]:
    """The keyword arguments zoo model ``name``'s builder would get for ``options``, without building it.

    Raises ``UnknownModelError`` for a name the zoo lacks and ``ModelOptionError`` for an option it does not
    take or a value that does not convert to the option's type (the checks ``get_model`` makes first).
    """
    entry = get_entry(name)
    accepted = entry.options()
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        listed = ", ".join(f"{k}={v}" for k, v in accepted.items()) or "none"
        raise ModelOptionError(f"{name} has no option {', '.join(unknown)}", f"its options are: {listed}")
    return coerce_options(entry.builder, options, name)


def get_model(name: str, *, device: str | torch.device | None = "meta", **options: object) -> nn.Module:
    """Build zoo model ``name`` (on the meta device by default: no memory, no weights).

    ``options`` are the builder's keyword arguments; strings are converted to the option's type.
    Unknown options and invalid values raise ``ModelOptionError`` naming what is accepted (the builders
    check their own options and raise it); any other failure of a builder is archcost's bug
    (``InternalError``, exit 1).
    """
    entry = get_entry(name)
    accepted = entry.options()
    kwargs = check_options(name, options)
    try:
        if device is None:
            return entry.builder(**kwargs)
        with torch.device(device):
            return entry.builder(**kwargs)
    except ModelOptionError as exc:  # the builder's own check of its options
        if not exc.hint:
            exc.hint = "its options and defaults: " + ", ".join(f"{k}={v}" for k, v in accepted.items())
        raise
    except ArchcostError:
        raise
    except Exception as exc:  # options it accepted, yet the build failed: a bug in archcost's zoo
        raise InternalError(
            f"zoo model {name} failed to build with {kwargs} on {device}: {type(exc).__name__}: {exc}"
        ) from exc
