"""Package attributes imported on first use (PEP 562), so that a light module of a package loads without the
heavy ones (torch, pandas) its other names need."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_attributes(package: str, public: dict[str, str], namespace: dict[str, Any],
                    after: Callable[[str], None] | None = None) -> Callable[[str], Any]:  # fmt: skip
    """A module ``__getattr__`` for ``package``: ``public`` maps each name to the module defining it; the value
    is imported on first use and kept in ``namespace`` (the package's ``globals()``), so later reads are plain.
    ``after(module)``: called once the module is imported (e.g. to register what the value needs). An unknown
    name raises ``AttributeError`` as a module would."""

    def __getattr__(name: str) -> Any:
        module = public.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        if after is not None:
            after(module)
        namespace[name] = value
        return value

    return __getattr__
