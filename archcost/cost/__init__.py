"""Analytic cost: per-layer params, MACs, FLOPs and bytes from shapes and layer settings.

Names are imported on first use, so the light modules here (``record``, ``inputs``) load without torch.
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "Cost": "archcost.cost._registry",
    "register_cost": "archcost.cost._registry",
    "analyze": "archcost.cost.analysis",
    "CostReport": "archcost.cost.record",
    "LayerCost": "archcost.cost.record",
    "Unsupported": "archcost.cost.record",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'archcost.cost' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
