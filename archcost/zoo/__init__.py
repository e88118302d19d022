"""The model zoo: classic CNNs as their papers define them, one file per family.

Every public module in this package is imported here, so a family file registers its models just by
existing (``@register_model`` on a builder function).
"""

import importlib
import pkgutil

from archcost.zoo._meta import ModelMeta, Published
from archcost.zoo._registry import get_entry, get_meta, get_model, list_models, register_model

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["ModelMeta", "Published", "get_entry", "get_meta", "get_model", "list_models", "register_model"]
