"""Turning a MODEL argument into an ``nn.Module``: a zoo name, ``package.module:callable``,
``path/to/file.py:callable``, ``torchvision:NAME`` or ``timm:NAME``."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from archcost.errors import ArchcostError, ModelLoadError, UnknownModelError
from archcost.zoo import get_entry, get_model
from archcost.zoo._registry import check_options, coerce_options


@dataclass
class LoadedModel:
    name: str
    module: nn.Module
    input_size: tuple[int, ...]
    source: str  # "zoo", "import", "torchvision", "timm"


DEFAULT_INPUT = (3, 224, 224)


@dataclass(frozen=True)
class ModelSpec:
    """A MODEL argument resolved and checked, not yet built: ``build(device)`` builds it (once per call).

    ``resolve_model`` makes every check that does not need the model itself (the zoo name, option names
    and types, the import and the callable, the hub name), so a command can check all its models before it
    builds or measures any. ``str(spec)`` is the argument as given (what a child process or a Ray task gets).
    """

    spec: str
    name: str  # what records of it are called (``LoadedModel.name``)
    _build: object  # (device) -> LoadedModel

    def build(self, device: str = "meta") -> LoadedModel:
        """Build the model on ``device`` (meta: no memory, no weights); ``ModelLoadError`` if its constructor
        fails."""
        return self._build(device)

    def __str__(self) -> str:
        return self.spec


def resolve_model(spec: str, options: dict[str, object] | None = None) -> ModelSpec:
    """Check the model ``spec`` names and its ``options`` without building it (see ``ModelSpec``).

    Raises ``UnknownModelError`` (no such zoo, torchvision or timm model), ``ModelOptionError`` (an option
    the zoo model does not take, a value of the wrong type) or ``ModelLoadError`` (an import that fails, a
    missing or non-callable attribute, options the callable's signature does not accept).
    """
    options = dict(options or {})
    if spec.startswith(("torchvision:", "timm:")):
        return _hub(spec, options)
    if ":" in spec:
        return _import_path(spec, options)
    try:
        entry = get_entry(spec)
    except UnknownModelError as exc:
        if "." in spec or "/" in spec:
            exc.hint += "; a user model is given as package.module:callable or file.py:callable"
        raise
    check_options(spec, options)

    def build(device: str) -> LoadedModel:
        return LoadedModel(spec, get_model(spec, device=device, **options), tuple(entry.meta.input_size), "zoo")

    return ModelSpec(spec, spec, build)


def load_model(spec: str, options: dict[str, object] | None = None, *, device: str = "meta") -> LoadedModel:
    """Build the model ``spec`` names, on ``device`` (meta by default: no memory, no weights)."""
    return resolve_model(spec, options).build(device)


def _cannot_call(what: str, options: dict, exc: TypeError) -> ModelLoadError:
    return ModelLoadError(
        f"{what} could not be called with options {options}: {exc}",
        "check the --opt names against the callable's arguments",
    )


def _build(factory, options: dict, device: str, what: str) -> nn.Module:
    options = coerce_options(factory, options, what)
    try:
        with torch.device(device):
            model = factory(**options)
    except TypeError as exc:
        raise _cannot_call(what, options, exc) from None
    except Exception as exc:
        if device == "meta":  # a constructor that needs real tensors: build on the CPU instead
            return _build(factory, options, "cpu", what)
        raise ModelLoadError(f"{what} raised {type(exc).__name__}: {exc}", "fix the model's constructor") from None
    if not isinstance(model, nn.Module):
        raise ModelLoadError(
            f"{what} returned {'an' if type(model).__name__[0] in 'aeiouAEIOU' else 'a'} {type(model).__name__}, "
            "not a torch.nn.Module",
            "point to a class or function that returns an nn.Module",
        )
    return model


def _import_path(spec: str, options: dict) -> ModelSpec:
    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise ModelLoadError(f"malformed model path {spec!r}", "write it as package.module:callable")
    try:
        if target.endswith(".py"):
            path = Path(target)
            if not path.is_file():
                raise ModelLoadError(f"no such file {target!r}", "give an existing .py file")
            mod_spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(mod_spec)
            mod_spec.loader.exec_module(module)
        else:
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))
            module = importlib.import_module(target)
    except ArchcostError:
        raise
    except Exception as exc:
        raise ModelLoadError(
            f"cannot import {target!r}: {type(exc).__name__}: {exc}",
            "check the module path, and run from the folder that contains the package",
        ) from None
    factory = getattr(module, attr, None)
    if factory is None:
        public = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
        raise ModelLoadError(f"{target} has no attribute {attr!r}", f"callables there: {', '.join(public[:12])}")
    if not isinstance(factory, nn.Module) and not callable(factory):
        raise ModelLoadError(
            f"{spec} is {'an' if type(factory).__name__[0] in 'aeiouAEIOU' else 'a'} {type(factory).__name__}, "
            "not callable",
            "point to a class or function that returns an nn.Module",
        )
    if not isinstance(factory, nn.Module):
        _check_call(factory, coerce_options(factory, options, spec), spec)

    def build(device: str) -> LoadedModel:
        model = factory if isinstance(factory, nn.Module) else _build(factory, options, device, spec)
        size = getattr(model, "input_size", None) or getattr(factory, "input_size", None) or DEFAULT_INPUT
        return LoadedModel(attr, model, tuple(size), "import")

    return ModelSpec(spec, attr, build)


def _check_call(factory, options: dict, what: str) -> None:
    """``ModelLoadError`` now if ``factory``'s signature cannot take ``options`` (what calling it would say)."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # a builtin or C callable: its call will tell
        return
    try:
        signature.bind(**options)
    except TypeError as exc:
        raise _cannot_call(what, options, exc) from None


def _hub(spec: str, options: dict) -> ModelSpec:
    package, _, name = spec.partition(":")
    try:
        lib = importlib.import_module("torchvision.models" if package == "torchvision" else "timm")
    except ImportError:
        raise ModelLoadError(
            f"{spec} needs the {package} package, which is not installed",
            f"pip install {package} (see the README: it needs a matching torch)",
        ) from None
    if package == "torchvision":
        if name not in lib.list_models():
            raise UnknownModelError(f"torchvision has no model {name!r}", "see torchvision.models.list_models()")

        def build(device: str) -> LoadedModel:
            model = _build(lambda **kw: lib.get_model(name, weights=None, **kw), options, device, spec)
            size = (3, 299, 299) if name.startswith("inception") else DEFAULT_INPUT
            return LoadedModel(name, model, size, package)

    else:
        if not lib.is_model(name):
            raise UnknownModelError(f"timm has no model {name!r}", "see timm.list_models()")

        def build(device: str) -> LoadedModel:
            model = _build(lambda **kw: lib.create_model(name, pretrained=False, **kw), options, device, spec)
            size = tuple(getattr(model, "default_cfg", {}).get("input_size", DEFAULT_INPUT))
            return LoadedModel(name, model, size, package)

    return ModelSpec(spec, name, build)
