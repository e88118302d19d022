"""What the plain processes of profile_check.py and profile_paired.py share: the model built from
benchmarks/plain_models.py loaded by its path (so that nothing of archcost is imported), and the one thing
each variant of the plain process adds (a large allocation freed first; archcost's modules imported)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

MODELS = Path(__file__).resolve().parent / "plain_models.py"


def plain_model(factory: str):
    """``plain_models.<factory>()`` in eval mode, the file loaded by path (it imports torch only)."""
    spec = importlib.util.spec_from_file_location("plain_models", MODELS)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return getattr(mod, factory)().eval()


def allocate_and_free() -> None:
    """3 x 16 MB matrices (one product) and a 256 MB buffer, allocated and freed: what the device-peak
    calibration once did in archcost's own process before timing."""
    import torch

    a, b, c = (torch.randn(2048, 2048) for _ in range(3))
    torch.mm(a, b, out=c)
    big = torch.empty(64 * 10**6, dtype=torch.float32).uniform_()
    del a, b, c, big


def import_archcost() -> None:
    """The archcost modules an ``archcost profile`` process has loaded (the CLI, profiling, pandas, ...)."""
    import archcost.cli  # noqa: F401
    import archcost.commands.profile  # noqa: F401
    import archcost.profiling  # noqa: F401
    import archcost.profiling.sweep  # noqa: F401
