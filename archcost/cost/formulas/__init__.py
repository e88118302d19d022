"""Cost formulas: pure shape arithmetic per layer type, registered with ``@register_cost``.

Every public module here is imported so that its registrations take effect.
"""

import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
