"""The caller's model never changes: wrappers unwrapped, lazy modules materialised on a private copy, and
every attribute forward might cache put back exactly as it was.

``torch.func.functional_call`` swaps parameters and buffers for the analysis tensors and restores them,
but forward can also cache plain attributes on its module (a YOLO anchor grid), mutate a list held by the
module, or flip a flag. ``private_state`` gives each module private copies of such attributes for the run
(tensors moved to the analysis device) and restores every module's ``__dict__``, parameter, buffer and
child tables and ``training`` flag afterwards, whatever forward did or raised.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import TypeVar

import torch
from torch import nn
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter, is_lazy

from archcost.errors import InputError

_V = TypeVar("_V")
_PARALLEL = (nn.DataParallel, nn.parallel.DistributedDataParallel)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside ``nn.DataParallel`` / ``DistributedDataParallel`` wrappers (rows named as it)."""
    while isinstance(model, _PARALLEL):
        model = model.module
    return model


def refuse_torchscript(model: nn.Module) -> None:
    """TorchScript runs compiled code archcost cannot see into: say what to pass instead."""
    for path, m in model.named_modules():
        if isinstance(m, torch.jit.ScriptModule):
            where = f"its submodule {path!r} ({m.original_name})" if path else "it"
            raise InputError(
                f"{type(model).__name__ if path else m.original_name} is or holds TorchScript: {where} runs compiled "
                "code whose ops archcost cannot see",
                "pass the eager nn.Module (the one given to torch.jit.script / torch.jit.trace) instead",
            )


def has_lazy(model: nn.Module) -> bool:
    return any(is_lazy(t) for t in [*model.parameters(), *model.buffers()])


def lazy_copy(model: nn.Module) -> nn.Module:
    """A private copy of ``model`` whose tensors are meta (no memory, no data copied), lazy ones still
    uninitialised (on meta), ready to be materialised by one forward. The caller's model is not touched."""
    memo: dict[int, object] = {}
    for t in [*model.parameters(), *model.buffers()]:
        if id(t) in memo:
            continue
        if is_lazy(t):
            cls = UninitializedParameter if isinstance(t, nn.Parameter) else UninitializedBuffer
            # torch's parameter.pyi gives these classes Parameter's __init__(data, requires_grad); at runtime
            # they are made by __new__(requires_grad, device, dtype), as called here
            memo[id(t)] = cls(requires_grad=t.requires_grad, device="meta", dtype=t.dtype)  # type: ignore[call-arg]
        else:
            new = torch.empty(t.shape, dtype=t.dtype, device="meta")
            memo[id(t)] = nn.Parameter(new, t.requires_grad) if isinstance(t, nn.Parameter) else new
    return copy.deepcopy(model, memo)


def _private(value: object, device: str, depth: int = 0) -> tuple[object, bool]:
    """A copy of ``value`` safe to hand to forward: tensors on ``device``, containers copied. The flag says
    whether anything was replaced (so untouched values keep their identity)."""
    if isinstance(value, nn.Parameter | nn.Module) or depth > 3:
        return value, False
    if isinstance(value, torch.Tensor):
        if value.device.type == "meta" and device == "meta":
            return value, False
        if device == "meta":
            return torch.empty(value.shape, dtype=value.dtype, device="meta"), True
        return value.detach().to("cpu", copy=True), True
    if isinstance(value, list | tuple | dict):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        new = {k: _private(v, device, depth + 1) for k, v in items}
        if not any(changed for _, changed in new.values()):
            if isinstance(value, list | dict):
                return (dict(value) if isinstance(value, dict) else list(value)), True  # forward may mutate it
            return value, False
        if isinstance(value, dict):
            return type(value)({k: v for k, (v, _) in new.items()}) if type(value) is dict else value, True
        seq = [v for v, _ in new.values()]
        return (list(seq) if isinstance(value, list) else tuple(seq)) if type(value) in (list, tuple) else value, True
    return value, False


@contextlib.contextmanager
def private_state(model: nn.Module, device: str) -> Iterator[None]:
    """Run forward on private copies of every module's plain attributes; restore everything on exit.

    Restored: each module's ``__dict__`` (attributes added, removed or rebound by forward), its parameter,
    buffer and child tables, and its ``training`` flag. ``nn.DataParallel`` submodules call their module
    directly (no scatter to GPUs) while inside.
    """
    saved = []
    for m in model.modules():
        saved.append((m, dict(m.__dict__), dict(m._parameters), dict(m._buffers), dict(m._modules), m.training))
    try:
        for m in model.modules():
            for key, value in list(m.__dict__.items()):
                if key.startswith("_") or key == "training":
                    continue
                new, changed = _private(value, device)
                if changed:
                    m.__dict__[key] = new
            if isinstance(m, _PARALLEL):
                m.__dict__["forward"] = m.module.__call__  # no scatter/replicate: the inner module, once
        yield
    finally:
        for m, attrs, params, buffers, modules, training in saved:
            m.__dict__.clear()
            m.__dict__.update(attrs)
            _refill(m._parameters, params)
            _refill(m._buffers, buffers)
            _refill(m._modules, modules)
            m.training = training


def _refill(table: dict[str, _V], old: dict[str, _V]) -> None:
    """Put ``table``'s entries back to ``old`` (in place: the module keeps the same dict)."""
    table.clear()
    table.update(old)
