"""Analytic cost: per-layer params, MACs, FLOPs and bytes from shapes and layer settings.

Names are imported on first use, so the light modules here (``record``, ``inputs``) load without torch.
"""

from __future__ import annotations

from archcost._lazy import lazy_attributes

_PUBLIC = {
    "Cost": "archcost.cost._registry",
    "register_cost": "archcost.cost._registry",
    "analyze": "archcost.cost.analysis",
    "CostReport": "archcost.cost.record",
    "LayerCost": "archcost.cost.record",
    "Unsupported": "archcost.cost.record",
}

__all__ = sorted(_PUBLIC)


__getattr__ = lazy_attributes("archcost.cost", _PUBLIC, globals())
