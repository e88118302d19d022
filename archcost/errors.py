"""Errors archcost raises for bad input: each says what is wrong and what to do about it."""

from __future__ import annotations


class ArchcostError(Exception):
    """Base class: ``message`` says what is wrong, ``hint`` what to do. The CLI exits with ``exit_code``."""

    exit_code = 2

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class UnknownModelError(ArchcostError):
    """A model name that is neither in the zoo nor an import path."""


class ModelOptionError(ArchcostError):
    """A ``--opt key=value`` the builder does not accept, or an invalid value."""


class ModelLoadError(ArchcostError):
    """An import path that fails, or a factory that does not return an ``nn.Module``."""


class InputError(ArchcostError):
    """A malformed command-line value (input size, batch size, dtype, file)."""


class AnalysisError(ArchcostError):
    """The model's forward failed during analysis; the message names the layer and the shapes."""


class InternalError(ArchcostError):
    """A failure inside archcost itself (a cost formula, the crawler): archcost's bug, not the user's. Exit 1."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(
            message, hint or "this is a bug in archcost, not in your model: please report it with the model and command"
        )


def first_line(exc: BaseException, *, with_type: bool = False) -> str:
    """The first line of ``exc``'s message, or its type name when the message is empty; ``with_type``:
    ``"ValueError: first line"`` (how the sweep records a model's failure)."""
    lines = str(exc).strip().splitlines()
    if with_type:
        return f"{type(exc).__name__}: {lines[0] if lines else ''}".strip()
    return lines[0] if lines else type(exc).__name__


def one_line(exc: BaseException, limit: int = 300) -> str:
    """``RuntimeError: what went wrong`` on one line, at most ``limit`` characters."""
    text = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
