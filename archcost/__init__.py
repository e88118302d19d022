"""archcost: what a convolutional network costs, layer by layer, and why."""

from archcost.cost import CostReport, LayerCost, analyze, register_cost
from archcost.profile import profile  # the function; its package stays importable as archcost.profile.*
from archcost.zoo import ModelMeta, Published, get_meta, get_model, list_models, register_model

__version__ = "0.1.0"

__all__ = [
    "CostReport",
    "LayerCost",
    "ModelMeta",
    "Published",
    "analyze",
    "get_meta",
    "get_model",
    "list_models",
    "profile",
    "register_cost",
    "register_model",
]
