"""Writing one benchmark's section of reports/performance.md, below the marker line, between its own
begin/end comments, leaving everything else in the file as it was."""

from __future__ import annotations

import sys
from pathlib import Path

REPORT = Path(__file__).resolve().parent.parent / "reports" / "performance.md"
MARKER = "<!-- other benchmarks below -->"


def write_section(text: str, begin: str, end: str, path: Path = REPORT) -> None:
    """Replace the section between ``begin`` and ``end`` below the marker, or append it there."""
    content = path.read_text() if path.exists() else f"# archcost performance\n\n{MARKER}\n"
    if MARKER not in content:
        content = content.rstrip("\n") + f"\n\n{MARKER}\n"
    head, _, tail = content.partition(MARKER)
    if begin in tail and end in tail:
        before, _, rest = tail.partition(begin)
        _, _, after = rest.partition(end)
        tail = before + text + after
    else:
        tail = tail.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(head + MARKER + tail)


def publish(text: str, begin: str, end: str, no_write: bool, path: Path = REPORT) -> None:
    """Print the section (``no_write``) or write it into ``path`` (``write_section``) and say where."""
    if no_write:
        print(text)
    else:
        write_section(text, begin, end, path)
        print(f"wrote {path.relative_to(path.parent.parent)}", file=sys.stderr)
