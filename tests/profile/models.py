"""Tiny models for the profile tests (also as tests.profile.models:NAME on the command line)."""

import torch
from torch import nn


class TwoLayer(nn.Module):
    input_size = (3, 8, 8)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.conv(x))


class OomAbove(nn.Module):
    """Raises CUDA's out-of-memory error for batches larger than ``limit``; counts its calls per batch."""

    input_size = (3, 8, 8)

    def __init__(self, limit=2):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.limit = limit
        self.calls = {}

    def forward(self, x):
        b = x.shape[0]
        self.calls[b] = self.calls.get(b, 0) + 1
        if b > self.limit:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {b} GiB")
        return self.conv(x)


class NoHalf(nn.Module):
    input_size = (3, 8, 8)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        if x.dtype == torch.float16:
            raise RuntimeError("\"slow_conv2d_cpu\" not implemented for 'Half'")
        return self.conv(x)


class Broken(nn.Module):
    input_size = (3, 8, 8)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        raise ValueError("shapes do not match")


class CtrlC(nn.Module):
    input_size = (3, 8, 8)

    def __init__(self, at=4):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.at = at

    def forward(self, x):
        # Ctrl-C while batch `at` is being timed (not during its analysis, which runs on the meta device and,
        # since the sweep analyses each model once, before the first batch is timed)
        if x.shape[0] >= self.at and x.device.type != "meta":
            raise KeyboardInterrupt
        return self.conv(x)


class Crashes(nn.Module):
    """Ends its process in forward, as a segfault in a kernel would (for --isolate)."""

    input_size = (3, 8, 8)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        import os

        os._exit(3)


class Counted(TwoLayer):
    """Counts its constructions (class attribute ``builds``)."""

    builds = 0

    def __init__(self):
        super().__init__()
        type(self).builds += 1


class FailsToBuild(nn.Module):
    """A constructor that rejects its (valid-looking) option value only when called."""

    input_size = (3, 8, 8)

    def __init__(self, width=4):
        super().__init__()
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        self.conv = nn.Conv2d(3, width, 3)

    def forward(self, x):
        return self.conv(x)


class TakesWidth(TwoLayer):
    """Accepts any ``width`` (ignored)."""

    def __init__(self, width=4):
        super().__init__()
