"""Amounts written by people: ``25M``, ``3.5 G``, ``100MB``, ``1.5e9``, ``12ms`` -> plain numbers."""

from __future__ import annotations

import re

from archcost.errors import InputError

#: Decimal prefixes, as everywhere in archcost (1 KB = 1000 B).
PREFIXES = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}

_AMOUNT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([KMGT]?)\s*(B?)\s*$", re.IGNORECASE)
_SECONDS = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*(s|ms|us|ns)\s*$", re.IGNORECASE)
_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def parse_amount(value: float | int | str, what: str = "amount") -> float:
    """A non-negative number, or text with a decimal prefix and an optional ``B``: ``'3.5G'`` -> 3.5e9,
    ``'100MB'`` -> 1e8, ``'12ms'`` -> 0.012 (seconds). Raises ``InputError`` naming ``what`` otherwise."""
    if isinstance(value, bool):
        raise InputError(f"{what} is {value!r}, not a number", "give a number such as 4e9 or text such as '4G'")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        text = str(value)
        m = _AMOUNT.match(text)
        t = _SECONDS.match(text)
        if m:
            number = float(m.group(1)) * PREFIXES[m.group(2).upper()]
        elif t:
            number = float(t.group(1)) * _TIME_UNITS[t.group(2).lower()]
        else:
            raise InputError(
                f"{what} {text!r} is not an amount",
                "write a number with an optional decimal prefix K, M, G, T and B for bytes: 25M, 3.5G, 100MB, "
                "or a time in s, ms, us: 12ms",
            )
    if number < 0 or number != number:
        raise InputError(f"{what} {value!r} is negative or not a number", "give an amount >= 0")
    return number
