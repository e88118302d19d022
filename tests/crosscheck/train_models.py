"""Small models for the backward cross-check (also loaded by the CLI as tests.crosscheck.train_models:NAME)."""

from torch import nn


class Depthwise(nn.Module):
    """A MobileNet unit on an 8x8 input: full conv, depthwise 3x3 (groups = 8 channels), pointwise, linear."""

    input_size = (3, 8, 8)

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.pointwise = nn.Conv2d(8, 4, 1, bias=False)
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        x = self.bn(self.stem(x)).relu()
        return self.fc(self.pointwise(self.depthwise(x)).flatten(1))


def depthwise() -> nn.Module:
    return Depthwise()


class Block(nn.Module):
    """A residual block whose shortcut is a 1x1 conv: its input feeds two branches."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(4, 8, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.shortcut = nn.Conv2d(4, 8, 1, bias=False)

    def forward(self, x):
        return self.conv2(self.conv1(x).relu()) + self.shortcut(x)


class Shortcut(nn.Module):
    input_size = (3, 8, 8)

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.block = Block()

    def forward(self, x):
        return self.block(self.stem(x))


def shortcut() -> nn.Module:
    return Shortcut()
