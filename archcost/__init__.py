"""archcost: what a convolutional network costs, layer by layer, and why."""

try:
    from archcost.cost import CostReport, LayerCost, analyze, register_cost
    from archcost.profile import profile  # the function; its package stays importable as archcost.profile.*
    from archcost.zoo import ModelMeta, Published, get_meta, get_model, list_models, register_model
except KeyboardInterrupt:  # Ctrl-C while torch loads, before the command's own handler exists: no traceback
    import sys as _sys

    if _sys.argv and _sys.argv[0].replace("\\", "/").rsplit("/", 1)[-1] in ("archcost", "archcost.exe"):
        _sys.stderr.write("archcost: interrupted while starting\n")
        raise SystemExit(130) from None
    raise

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
