"""Reading an op's arguments by position or keyword, and the shapes of tensors among them."""

from __future__ import annotations

import torch


def arg(args: tuple, kwargs: dict, index: int, name: str, default: object = None) -> object:
    """The op argument named ``name`` (``kwargs`` holds every argument by name where the crawler could bind
    them, ``_registry.bind``), else the one at ``index``, else ``default``."""
    if name in kwargs:
        return kwargs[name]
    if len(args) > index:
        return args[index]
    return default


def tensors(value: object) -> list[torch.Tensor]:
    """Every tensor in ``value`` (a tensor, or a possibly nested list/tuple/dict of them)."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in tensors(v)]
    return []


def out_numel(out: object) -> int:
    """Elements of the op's output tensor(s)."""
    return sum(t.numel() for t in tensors(out))
