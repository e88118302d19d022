"""Shared by the zoo tests: per-layer MACs from torch's own counter, output shapes, parameter counts."""

import math

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def layer_costs(model: nn.Module, input_size):
    """MACs of each named submodule (FlopCounterMode) and the shape of what it outputs."""
    shapes = {}
    hooks = [
        module.register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape)))
        for name, module in model.named_modules()
        if name
    ]
    try:
        with FlopCounterMode(display=False) as counter:
            model(torch.empty(1, *input_size, device="meta"))
    finally:
        for h in hooks:
            h.remove()
    macs = {k.partition(".")[2]: sum(v.values()) // 2 for k, v in counter.get_flop_counts().items()}
    return macs, shapes


def layer_units(model: nn.Module, input_size):
    """MACs of each named submodule and the number of units (output elements) it produces."""
    macs, shapes = layer_costs(model, input_size)
    return macs, {name: math.prod(shape) for name, shape in shapes.items()}


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
