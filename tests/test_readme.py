"""The README stays true: its FLOP conventions are the ones in units.py, its commands exist."""

from pathlib import Path

from archcost.cli import build_parser
from archcost.units import FLOPS_PER_ELEMENT

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_per_element_table_matches_units():
    for op, (count, why) in FLOPS_PER_ELEMENT.items():
        assert f"| `{op}` | {count} | {why} |" in README


def test_every_command_has_an_example():
    commands = build_parser()._subparsers._group_actions[0].choices
    for name in commands:
        assert f"archcost {name}" in README
