"""What a chart function returns: the matplotlib ``Figure`` and what the chart found (warnings, frontier, fit,
roofs), as data beside the figure rather than attributes set on it."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any

from matplotlib.figure import Figure

#: the font size of a warning under a chart, and the width of a character in it (em, a generous average)
WARN_FONTSIZE, _CHAR_EM = 8, 0.6


def wrap_to_figure(fig: Figure, text: str, fontsize: float = WARN_FONTSIZE) -> str:
    """``text`` broken into lines that fit the figure's width (with a margin): a long warning is never cut
    off at the figure's edges."""
    width = max(20, int(0.92 * fig.get_figwidth() * 72 / (fontsize * _CHAR_EM)))
    return textwrap.fill(text, width=width, break_on_hyphens=False)


@dataclass
class Chart:
    """One chart: ``figure`` (made without pyplot; ``savefig`` renders it headless) and its findings.

    - ``warnings``: what the chart cannot show, in the order found; each is also written under the x axis
      (``warn``), and the CLI prints them.
    - ``frontier``: the models on the chart's frontier, where it draws one (the Pareto frontier of accuracy
      against MACs or weight bytes; the upper envelope of accuracy against throughput).
    - ``fit``: the least-squares fit drawn, ``(slope or exponent, intercept or coefficient, R²)``, or None.
    - ``roofs``: per roof of a roofline chart, ``(peak FLOP/s, peak bytes/s, models under it)``; ``above``:
      the models above their own run's compute roof.
    - ``data``: further chart-specific values a caller may read (documented by the chart function).
    """

    figure: Figure
    warnings: list[str] = field(default_factory=list)
    frontier: list[str] = field(default_factory=list)
    fit: tuple[float, float, float] | None = None
    roofs: list[tuple[float, float, list[str]]] = field(default_factory=list)
    above: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def warn(self, text: str) -> None:
        """Say on the figure (under the x axis, in red, wrapped to its width) what it cannot show, and keep
        the text in ``warnings``."""
        self.warnings.append(text)
        self.figure.supxlabel("\n".join(wrap_to_figure(self.figure, f"Warning: {w}") for w in self.warnings),
                              fontsize=WARN_FONTSIZE, color="firebrick", gid="warnings")  # fmt: skip

    def savefig(self, *args: Any, **kwargs: Any) -> None:
        """``Figure.savefig``: render the chart to a file (PNG, SVG, PDF by the name's suffix)."""
        self.figure.savefig(*args, **kwargs)
