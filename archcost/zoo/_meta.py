"""Typed, frozen metadata carried by every zoo model: its paper and the figures the paper publishes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Published:
    """One published figure and where it was published (paper, table, or reference implementation)."""

    value: float
    source: str

    def __post_init__(self) -> None:
        if not self.source.strip():
            raise ValueError("a published figure must name its source")


@dataclass(frozen=True)
class ModelMeta:
    """What a zoo model is and what its authors reported for it.

    ``params`` and ``macs`` are the published counts (MACs = multiply-accumulates, what papers call
    mult-adds); ``top1`` / ``top5`` are single-crop accuracies in percent on ``dataset``.
    """

    family: str
    paper: str
    year: int
    input_size: tuple[int, ...] = (3, 224, 224)
    num_classes: int = 1000
    dataset: str = "ImageNet"
    params: Published | None = None
    macs: Published | None = None
    top1: Published | None = None
    top5: Published | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        if not self.family or not self.paper:
            raise ValueError("ModelMeta needs a family and a paper")
        if any(int(s) <= 0 for s in self.input_size):
            raise ValueError(f"input_size must be positive, got {self.input_size}")
        for name in ("top1", "top5"):
            fig = getattr(self, name)
            if fig is not None and not 0.0 < fig.value <= 100.0:
                raise ValueError(f"{name} is a percentage, got {fig.value}")
