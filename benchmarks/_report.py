"""Writing one benchmark's section of reports/performance.md, below the marker line, between its own
begin/end comments, leaving everything else in the file as it was."""

from __future__ import annotations

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
