"""archcost: what a convolutional network costs, layer by layer, and why.

The public API is imported on first use (PEP 562), so ``archcost --help`` and ``import archcost`` do not
load torch, pandas or matplotlib until a function that needs them is called.
"""

from __future__ import annotations

import importlib

from archcost._lazy import lazy_attributes

__version__ = "0.1.0"

#: public name -> the module that defines it
_PUBLIC = {
    "CostReport": "archcost.cost.record",
    "LayerCost": "archcost.cost.record",
    "analyze": "archcost.cost.analysis",
    "register_cost": "archcost.cost._registry",
    "summary": "archcost.report.summary",
    "profile": "archcost.profiling",
    "ModelMeta": "archcost.zoo",
    "Published": "archcost.zoo",
    "get_meta": "archcost.zoo",
    "get_model": "archcost.zoo",
    "list_models": "archcost.zoo",
    "register_model": "archcost.zoo",
}

__all__ = sorted(_PUBLIC)


def _registers_presenters(module: str) -> None:
    if module.startswith("archcost.cost"):
        importlib.import_module("archcost.report.table")  # registers how a CostReport prints (str, notebooks)


__getattr__ = lazy_attributes("archcost", _PUBLIC, globals(), after=_registers_presenters)


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
