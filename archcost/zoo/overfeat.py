"""OverFeat (Sermanet et al. 2014): the fast model of Table 1 and the accurate model of Table 3."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from archcost.errors import ModelOptionError
from archcost.zoo._meta import ModelMeta, Published
from archcost.zoo._registry import register_model

_PAPER = "OverFeat: Integrated Recognition, Localization and Detection using Convolutional Networks"

# Table 1 (fast) and Table 3 (accurate), one row per layer with weights:
# (name, out channels, kernel, stride, padding, max pooling size = stride or 0)
_CONVS = {
    "fast": (
        ("conv1", 96, 11, 4, 0, 2),
        ("conv2", 256, 5, 1, 0, 2),
        ("conv3", 512, 3, 1, 1, 0),
        ("conv4", 1024, 3, 1, 1, 0),
        ("conv5", 1024, 3, 1, 1, 2),
    ),
    "accurate": (
        ("conv1", 96, 7, 2, 0, 3),
        ("conv2", 256, 7, 1, 0, 2),
        ("conv3", 512, 3, 1, 1, 0),
        ("conv4", 512, 3, 1, 1, 0),
        ("conv5", 1024, 3, 1, 1, 0),
        ("conv6", 1024, 3, 1, 1, 3),
    ),
}
# (first fully connected layer's number, spatial size of its input, widths of the hidden layers)
_FULL = {"fast": (6, 6, (3072, 4096)), "accurate": (7, 5, (4096, 4096))}


class OverFeat(nn.Module):
    """``features`` (conv / max stages) -> flatten -> ``classifier`` (the full layers)."""

    def __init__(self, model: str, num_classes: int = 1000) -> None:
        super().__init__()
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        channels = 3
        for name, out, kernel, stride, pad, pool in _CONVS[model]:
            index = name.removeprefix("conv")
            layers[name] = nn.Conv2d(channels, out, kernel_size=kernel, stride=stride, padding=pad)
            layers[f"relu{index}"] = nn.ReLU(inplace=True)
            if pool:
                # Non-overlapping max pooling: pooling size = pooling stride in Tables 1 and 3.
                layers[f"pool{index}"] = nn.MaxPool2d(kernel_size=pool, stride=pool)
            channels = out
        self.features = nn.Sequential(layers)
        self.flatten = nn.Flatten()

        first, size, hidden = _FULL[model]
        fc: OrderedDict[str, nn.Module] = OrderedDict()
        width = channels * size * size
        for i, out in enumerate(hidden):
            n = first + i
            fc[f"fc{n}"] = nn.Linear(width, out)
            fc[f"relu{n}"] = nn.ReLU(inplace=True)
            fc[f"drop{n}"] = nn.Dropout(0.5)
            width = out
        fc[f"fc{first + len(hidden)}"] = nn.Linear(width, num_classes)
        self.classifier = nn.Sequential(fc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.features(x)))


def _check_num_classes(num_classes: int) -> None:
    if num_classes < 1:
        raise ModelOptionError(f"num_classes must be >= 1, got {num_classes}")


_NOTES = (
    "Table 1 / 3 list the fully connected layers as 'full'; in the detection system they run as "
    "convolutions over larger inputs (Sec. 3.5), which is not modelled here. Table 4's per-layer "
    "connection counts could not be read from any stored copy of the paper, so no published MAC "
    "figure is recorded."
)


@register_model(
    ModelMeta(
        family="overfeat",
        paper=_PAPER,
        year=2014,
        input_size=(3, 231, 231),
        params=Published(145e6, "Sermanet et al. 2014, Table 4 (fast model: 145 million parameters)"),
        notes=_NOTES,
    )
)
def overfeat_fast(*, num_classes: int = 1000) -> nn.Module:
    """The fast model (Table 1) at its 231x231 training input.

    conv1 96@11x11/4 -> 2x2/2 max -> conv2 256@5x5 -> 2x2/2 max -> conv3 512@3x3 -> conv4 1024@3x3 ->
    conv5 1024@3x3 -> 2x2/2 max -> full 3072 -> full 4096 -> full 1000. Spatial sizes
    231 -> 56 -> 28 -> 24 -> 12 -> 12 -> 12 -> 12 -> 6 -> 1. Table 1's "spatial input size" of layer 2
    reads 24x24, which is conv2's output (its input is 28x28 after pool1); the rest of the table agrees
    with this arithmetic. No LRN, non-overlapping pooling, ReLU after every layer, dropout 0.5 in full
    layers 6 and 7 (Sec. 3.1).
    """
    _check_num_classes(num_classes)
    return OverFeat("fast", num_classes)


@register_model(
    ModelMeta(
        family="overfeat",
        paper=_PAPER,
        year=2014,
        input_size=(3, 221, 221),
        params=Published(144e6, "Sermanet et al. 2014, Table 4 (accurate model: 144 million parameters)"),
        notes=_NOTES,
    )
)
def overfeat_accurate(*, num_classes: int = 1000) -> nn.Module:
    """The accurate model (Table 3) at its 221x221 training input.

    conv1 96@7x7/2 -> 3x3/3 max -> conv2 256@7x7 -> 2x2/2 max -> conv3 512@3x3 -> conv4 512@3x3 ->
    conv5 1024@3x3 -> conv6 1024@3x3 -> 3x3/3 max -> full 4096 -> full 4096 -> full 1000. Spatial sizes
    221 -> 108 -> 36 -> 30 -> 15 -> 15 -> 15 -> 15 -> 15 -> 5 -> 1, matching Table 3's input sizes.
    Dropout 0.5 on the two hidden full layers (7 and 8), by analogy with the fast model (Sec. 3.1 names
    layers 6 and 7 of the fast model).
    """
    _check_num_classes(num_classes)
    return OverFeat("accurate", num_classes)
