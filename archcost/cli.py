"""The ``archcost`` command: parses flags, calls the library, prints. No logic of its own."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from archcost.commands._common import (  # noqa: F401  (re-exported for scripts written against archcost.cli)
    EXIT_FAIL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    add_analysis_args,
    add_model_args,
    add_output_args,
    analyse,
    byte_size,
    emit,
    load,
    parse_input_size,
    parse_opts,
    positive_int,
    results_to,
    seconds,
)
from archcost.errors import ArchcostError


def build_parser() -> argparse.ArgumentParser:
    """One sub-command per module of ``archcost.commands``, each with ``add_parser(subparsers)``."""
    import importlib
    import pkgutil

    import archcost.commands as commands
    from archcost import __version__

    parser = argparse.ArgumentParser(prog="archcost", description="What a convolutional network costs, and why.")
    parser.add_argument("--version", action="version", version=f"archcost {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue  # _common: what the commands share
        importlib.import_module(f"{commands.__name__}.{info.name}").add_parser(sub)
    return parser


def _torch_is_loading() -> bool:
    """True while ``import torch`` runs (importlib marks a module's spec ``_initializing`` until it is done)."""
    module = sys.modules.get("torch")
    return module is not None and bool(getattr(getattr(module, "__spec__", None), "_initializing", False))


@contextmanager
def _ctrl_c_after_torch_loads() -> Iterator[None]:
    """Ctrl-C as usual, except while torch imports: then it is answered as soon as the import is done.

    A KeyboardInterrupt raised while torch's C++ extensions load can surface inside a C++ frame that
    may not throw, and the process dies with ``terminate called ... KeyboardInterrupt`` (a core dump,
    no message of ours). So while torch loads the handler only notes the signal, and a watcher thread
    interrupts the main thread once the import has finished. Outside the main thread: nothing changes.
    """
    import _thread
    import signal
    import threading

    def answer_when_loaded() -> None:
        while _torch_is_loading():
            time.sleep(0.02)
        _thread.interrupt_main()

    watching: list[threading.Thread] = []

    def on_sigint(signum: int, frame: object) -> None:
        if not _torch_is_loading():
            raise KeyboardInterrupt
        if not watching:  # a second Ctrl-C while torch loads is the same request
            watching.append(threading.Thread(target=answer_when_loaded, daemon=True))
            watching[0].start()

    try:
        previous = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # main() called from a thread other than the main one
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def main(argv: Sequence[str] | None = None) -> int:
    with _ctrl_c_after_torch_loads():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:  # Ctrl-C while the commands load
        print("archcost: interrupted while starting", file=sys.stderr)
        return EXIT_INTERRUPTED
    try:
        with results_to(sys.stdout):  # what user code prints goes to stderr; the results to stdout
            return args.func(args)
    except ArchcostError as exc:
        print(f"archcost: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("archcost: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug in archcost or torch: say so plainly, no traceback unless asked
        if os.environ.get("ARCHCOST_DEBUG"):
            raise
        print(
            f"archcost: internal error: {type(exc).__name__}: {exc}\n"
            "  hint: this is a bug in archcost; rerun with ARCHCOST_DEBUG=1 for the traceback and report it",
            file=sys.stderr,
        )
        return EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
