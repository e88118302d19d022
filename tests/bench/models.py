"""Tiny models for the bench tests (also as tests.bench.models:NAME on the command line)."""

from torch import nn


class ConvNet(nn.Module):
    """conv 3->``width`` 3x3 (no padding) and a ReLU: on 3x8x8, the output is width x 6 x 6."""

    input_size = (3, 8, 8)

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.conv(x))


def convnet(width: int = 4) -> nn.Module:
    return ConvNet(width)


class Head(nn.Module):
    """A linear layer on a flat input: no spatial receptive field."""

    input_size = (16,)

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc(x)
