"""Reading an op's arguments by position or keyword, and the shapes of tensors among them."""

from __future__ import annotations

from typing import SupportsFloat, SupportsInt

import torch


def arg(args: tuple, kwargs: dict, index: int, name: str, default: object = None) -> object:
    """The op argument named ``name`` (``kwargs`` holds every argument by name where the crawler could bind
    them, ``_registry.bind``), else the one at ``index``, else ``default``."""
    if name in kwargs:
        return kwargs[name]
    if len(args) > index:
        return args[index]
    return default


def tensor_arg(args: tuple, kwargs: dict, index: int, name: str) -> torch.Tensor:
    """The op's tensor argument ``name`` (as ``arg`` finds it); ``TypeError`` where it is not a tensor."""
    value = arg(args, kwargs, index, name)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"argument {name!r} is {type(value).__name__}, not a tensor")
    return value


def int_arg(args: tuple, kwargs: dict, index: int, name: str, default: int | None = None) -> int:
    """The op's integer argument ``name`` (as ``arg`` finds it) as an ``int`` (a 0-d tensor or SymInt
    converts); ``TypeError`` where it is missing or not a number."""
    value = arg(args, kwargs, index, name, default)
    if not isinstance(value, SupportsInt):
        raise TypeError(f"argument {name!r} is {type(value).__name__}, not an integer")
    return int(value)


def float_arg(args: tuple, kwargs: dict, index: int, name: str, default: float | None = None) -> float:
    """The op's numeric argument ``name`` (as ``arg`` finds it) as a ``float``; ``TypeError`` where it is
    missing or not a number."""
    value = arg(args, kwargs, index, name, default)
    if not isinstance(value, SupportsFloat):
        raise TypeError(f"argument {name!r} is {type(value).__name__}, not a number")
    return float(value)


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
