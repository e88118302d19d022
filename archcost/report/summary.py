"""``archcost.summary``: analyse a model and show its table in one call (a notebook or a Python prompt)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from archcost.cost.record import CostReport


class _Shown:
    """What ``summary`` hands to IPython's display: HTML where the front end shows HTML, else the text."""

    def __init__(self, text: str, html: str) -> None:
        self.text, self.html = text, html

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return self.html


class _Summarised(CostReport):
    """The report ``summary`` returns inside IPython: a ``CostReport`` that the cell which showed it does not
    show again (as its last line, the returned report would add its full table under the chosen columns);
    displayed in a later cell, it shows as any report does."""

    def _ipython_display_(self) -> None:
        from IPython import get_ipython
        from IPython.display import display

        shell = get_ipython()
        if shell is not None and getattr(shell, "execution_count", None) == self.__dict__.get("_shown_in"):
            return
        display({"text/plain": repr(self), "text/html": self._repr_html_()}, raw=True)


def _returned(report: CostReport) -> CostReport:
    """``report`` as a ``_Summarised`` that knows the IPython cell which showed it."""
    import copy

    from IPython import get_ipython

    shell = get_ipython()
    out = copy.copy(report)
    out.__class__ = _Summarised
    out.__dict__["_shown_in"] = getattr(shell, "execution_count", None)
    return out


def _ipython_display():
    """IPython's ``display`` when an IPython shell is running in this process, else None (IPython is never
    imported here: a program that has not imported it is not running in it)."""
    ipython = sys.modules.get("IPython")
    if ipython is None or getattr(ipython, "get_ipython", lambda: None)() is None:
        return None
    from IPython.display import display

    return display


def summary(
    model,
    input_size=None,
    *,
    columns: Sequence[str] | str | None = None,
    depth: int | None = None,
    top: int | None = None,
    **analyze_kwargs,
) -> CostReport:
    """Analyse ``model`` with ``archcost.analyze(model, input_size, **analyze_kwargs)``, show its cost table
    and return the report.

    The one library function that shows something: in IPython or Jupyter it goes through
    ``IPython.display.display`` (an HTML table in a notebook, the text table at an IPython prompt); anywhere
    else it is printed to standard output. Use ``archcost.analyze`` to get the report without showing it.

    ``columns``: what the table shows, names from ``archcost.report.table.COLUMNS`` (name, type, output_shape,
    params, trainable_params, frozen_params, macs, share, flops, param_bytes, activation_bytes, rf), default
    the ``archcost table`` columns; ``depth``: roll rows up to that depth of the module tree; ``top``: only the
    ``top`` rows with the most MACs (the totals stay the whole model's). ``share`` is the row's part of the
    total MACs; trainable/frozen count parameters with ``requires_grad`` True/False.

    Raises what ``analyze`` raises, and ``InputError`` for an unknown column (the message lists the valid
    ones) or a ``top`` below 1, before analysing.
    """
    from archcost.cost.analysis import analyze
    from archcost.report.table import check_columns, check_top, render

    check_columns(columns)
    check_top(top)
    report = analyze(model, input_size, **analyze_kwargs)
    text = render(report, "text", depth, columns, top)
    display = _ipython_display()
    if display is not None:
        display(_Shown(text.rstrip("\n"), render(report, "html", depth, columns, top)))
        return _returned(report)
    else:
        print(text, end="")
    return report
