"""Turning a MODEL argument into an ``nn.Module``: a zoo name, ``package.module:callable``,
``path/to/file.py:callable``, ``torchvision:NAME`` or ``timm:NAME``."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from archcost.errors import ArchcostError, ModelLoadError, UnknownModelError, one_line
from archcost.zoo import get_entry, get_model
from archcost.zoo._registry import check_options, coerce_options


@dataclass
class LoadedModel:
    name: str
    module: nn.Module
    input_size: tuple[int, ...]
    source: str  # "zoo", "import", "torchvision", "timm"
    #: where the model was not built on the device asked for, and why (``_build``); None otherwise
    note: str | None = None


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
    _build: Callable[[str], LoadedModel]  # (device) -> LoadedModel

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


def _build(factory, options: dict, device: str, what: str) -> tuple[nn.Module, str | None]:
    """``factory(**options)`` built on ``device``, and a note when it was built elsewhere.

    Options the signature cannot take are the caller's mistake (``ModelLoadError`` naming the --opt names);
    anything the constructor itself raises is the model's error, reported with its type and message.
    A constructor that fails on the meta device (it needs real tensors: reads a weight's value, calls
    ``.item()``, loads a file) is built on the CPU instead, and the note says so and why."""
    options = coerce_options(factory, options, what)
    _check_call(factory, options, what)
    try:
        with torch.device(device):
            model = factory(**options)
    except ArchcostError:
        raise
    except Exception as exc:
        if device == "meta":
            model, _ = _build(factory, options, "cpu", what)
            return model, (
                f"built on the CPU (random weights), not the meta device: its constructor failed there "
                f"({one_line(exc, 160)})"
            )
        raise ModelLoadError(
            f"{what}'s constructor raised {one_line(exc)}",
            "the error is the model's own (its constructor), not archcost's: fix it, or the --opt values given",
        ) from None
    if not isinstance(model, nn.Module):
        raise ModelLoadError(
            f"{what} returned {'an' if type(model).__name__[0] in 'aeiouAEIOU' else 'a'} {type(model).__name__}, "
            "not a torch.nn.Module",
            "point to a class or function that returns an nn.Module",
        )
    return model, None


def _import_path(spec: str, options: dict) -> ModelSpec:
    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise ModelLoadError(f"malformed model path {spec!r}", "write it as package.module:callable")
    try:
        if target.endswith(".py"):
            path = Path(target)
            if not path.is_file():
                raise ModelLoadError(f"no such file {target!r}", "give an existing .py file")
            module = _exec_file(path)
        else:
            added = "" not in sys.path and str(Path.cwd()) not in sys.path
            if added:
                sys.path.insert(0, str(Path.cwd()))
            try:
                module = importlib.import_module(target)
            finally:  # the caller's sys.path as it was
                if added and str(Path.cwd()) in sys.path:
                    sys.path.remove(str(Path.cwd()))
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
        model, note = (factory, None) if isinstance(factory, nn.Module) else _build(factory, options, device, spec)
        size = getattr(model, "input_size", None) or getattr(factory, "input_size", None) or DEFAULT_INPUT
        return LoadedModel(attr, model, tuple(size), "import", note)

    return ModelSpec(spec, attr, build)


def _exec_file(path: Path):
    """Run ``path`` as a module that is in ``sys.modules`` while (and after) it runs, as an import would be:
    ``@dataclass`` (under ``from __future__ import annotations``), pickling and ``typing.get_type_hints``
    look their module up there. Named after the file, unless a module of that name is already loaded from
    elsewhere (``json.py`` must not replace the json module): then a name of its own."""
    import hashlib

    resolved = path.resolve()
    name = path.stem
    loaded = sys.modules.get(name)
    if loaded is not None and getattr(loaded, "__file__", None) != str(resolved):
        name = f"_archcost_file_{name}_{hashlib.sha1(str(resolved).encode()).hexdigest()[:8]}"
    mod_spec = importlib.util.spec_from_file_location(name, resolved)
    if mod_spec is None or mod_spec.loader is None:  # _import_path reports it as "cannot import"
        raise ImportError(f"no module loader for {resolved}")
    module = importlib.util.module_from_spec(mod_spec)
    sys.modules[name] = module
    try:
        mod_spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


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


def _broken_install(spec: str, package: str, exc: BaseException) -> ModelLoadError:
    """The error for an installed ``package`` whose import fails, naming its version and torch's."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version(package)
    except PackageNotFoundError:
        installed = "unknown"
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return ModelLoadError(
        f"{spec}: {package} {installed} is installed but its import fails with torch {torch.__version__} "
        f"({type(exc).__name__}: {message})",
        f"install the {package} built for torch {torch.__version__} without replacing torch: "
        f"pip install --no-deps {package}==VERSION (the README's install section gives the matching versions)",
    )


def _hub(spec: str, options: dict) -> ModelSpec:
    package, _, name = spec.partition(":")
    try:
        lib = importlib.import_module("torchvision.models" if package == "torchvision" else "timm")
    except ModuleNotFoundError as exc:
        if exc.name not in (package, f"{package}.models"):
            raise _broken_install(spec, package, exc) from None
        raise ModelLoadError(
            f"{spec} needs the {package} package, which is not installed",
            f"pip install {package} (see the README: it needs a matching torch)",
        ) from None
    except Exception as exc:  # installed, but its import fails: most often built for another torch
        raise _broken_install(spec, package, exc) from None
    if package == "torchvision":
        if name not in lib.list_models():
            raise UnknownModelError(f"torchvision has no model {name!r}", "see torchvision.models.list_models()")

        def build(device: str) -> LoadedModel:
            model, note = _build(lambda **kw: lib.get_model(name, weights=None, **kw), options, device, spec)
            size = (3, 299, 299) if name.startswith("inception") else DEFAULT_INPUT
            return LoadedModel(name, model, size, package, note)

    else:
        if not lib.is_model(name):
            raise UnknownModelError(f"timm has no model {name!r}", "see timm.list_models()")

        def build(device: str) -> LoadedModel:
            model, note = _build(lambda **kw: lib.create_model(name, pretrained=False, **kw), options, device, spec)
            size = tuple(getattr(model, "default_cfg", {}).get("input_size", DEFAULT_INPUT))
            return LoadedModel(name, model, size, package, note)

    return ModelSpec(spec, name, build)
