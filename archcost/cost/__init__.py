"""Analytic cost: per-layer params, MACs, FLOPs and bytes from shapes and layer settings."""

from archcost.cost._registry import Cost, register_cost
from archcost.cost.analyze import analyze
from archcost.cost.record import CostReport, LayerCost, Unsupported

__all__ = ["Cost", "CostReport", "LayerCost", "Unsupported", "analyze", "register_cost"]
