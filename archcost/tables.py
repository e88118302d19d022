"""The one table renderer: rows of already formatted cells -> a text, markdown or HTML table (tabulate).

Every command's table goes through ``render_table`` (table, check, profile, list, compare, rf, the training
table and the report's markdown). Numbers are formatted before they get here (``archcost.units``); this
module only lays cells out, so tabulate's number parsing is off: "77.0" stays "77.0" beside "76.4".
It sits beside ``units.py`` because every layer above the cost analysis renders tables.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("text", "markdown", "html")


def render_table(
    table: pd.DataFrame | Sequence[Sequence[object]],
    fmt: str = "text",
    *,
    headers: Sequence[str] | None = None,
    left: int | Collection[str] = 1,
    totals: bool = False,
) -> str:
    """``table`` (a DataFrame, whose columns are the headers, or rows with ``headers``) as ``fmt``.

    ``left``: the first ``left`` columns, or the columns named in it, are flush left; the others (numbers)
    flush right, headers aligned with their column. ``totals``: the last row holds totals and gets a rule
    above it (text only). Text is tabulate's "simple" layout (two spaces between columns, a dashed rule
    under the header) without trailing spaces; markdown is tabulate's "pipe" (GitHub) table; HTML is
    tabulate's "html" (cells escaped). None and NaN cells are empty. No trailing newline.
    Raises ``ValueError`` for another ``fmt``.
    """
    from tabulate import tabulate

    if fmt not in FORMATS:
        raise ValueError(f"unknown table format {fmt!r}: one of {', '.join(FORMATS)}")
    if headers is None:
        import pandas as pd

        if not isinstance(table, pd.DataFrame):
            raise TypeError("render_table: rows need headers (only a DataFrame brings its own)")
        headers = [str(c) for c in table.columns]
        rows = table.astype(object).values.tolist()
    else:
        rows = [list(r) for r in table]
    headers = list(headers)
    if not headers:
        return ""
    rows = [[_cell(v) for v in row] for row in rows]
    align = ["left" if (i < left if isinstance(left, int) else h in left) else "right" for i, h in enumerate(headers)]
    if fmt == "markdown":
        return tabulate(rows, headers=headers, tablefmt="pipe", colalign=align, disable_numparse=True)
    if fmt == "html":
        return tabulate(rows, headers=headers, tablefmt="html", colalign=align, disable_numparse=True)
    # "simple" without headers draws a rule above and below the rows: the header goes in as the first row
    # (aligned like its column, and no wider than its text), the top rule is reused under it and above totals.
    lines = tabulate([headers, *rows], tablefmt="simple", colalign=align, disable_numparse=True).split("\n")
    rule, body = lines[0], lines[1:-1]
    out = [body[0], rule, *body[1:]]
    if totals and rows:
        out.insert(len(out) - 1, rule)
    return "\n".join(line.rstrip() for line in out)


def _cell(value) -> str:
    """A cell as text: None and NaN empty, everything else ``str``."""
    if value is None:
        return ""
    if isinstance(value, float) and value != value:  # NaN
        return ""
    return str(value)
