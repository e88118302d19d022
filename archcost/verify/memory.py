"""Measuring the peak memory of an inference pass or a training step on the CPU (torch.profiler)."""

from __future__ import annotations

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile


def _peak(prof) -> int:
    """Peak of the running sum of allocations and frees, in event order.

    Each op event carries the bytes it allocated net of what it freed (``self_cpu_memory_usage``);
    frees outside any op come as ``[memory]`` events."""
    current = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        current += event.cpu_memory_usage if event.name == "[memory]" else event.self_cpu_memory_usage
        peak = max(peak, current)
    return peak


def measured_inference_peak(model: nn.Module, x: torch.Tensor) -> int:
    """Peak bytes allocated during one inference forward pass (after a warm-up pass), input excluded."""
    model.eval()
    with torch.inference_mode():
        model(x)
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            model(x)
    return _peak(prof)


def measured_training_peak(model: nn.Module, x: torch.Tensor, optimizer: str = "adam") -> int:
    """Peak bytes allocated by the first training step (forward, backward, optimizer step), with the
    parameters and input already allocated: gradients and optimizer state are created inside it."""
    model.train()
    opt = torch.optim.Adam(model.parameters()) if optimizer == "adam" else torch.optim.SGD(model.parameters(), 0.1)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = model(x)
        loss = (out if isinstance(out, torch.Tensor) else out[0]).float().sum()
        loss.backward()
        opt.step()
    return _peak(prof)
