"""What the commands share: exit codes, flag types and parsers, the model and input flags, output writing.

Only ``archcost.commands.*`` and ``archcost.cli`` import this module (the library never takes flags).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from archcost.errors import InputError

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def parse_input_size(text: str | Sequence[str]):
    """One or more ``--input-size`` values -> what ``archcost.analyze`` takes as ``input_size``.

    '3x224x224' (or '3,224,224') -> (3, 224, 224); '224' -> (3, 224, 224); a single plain shape stays a
    tuple. Several values, a dtype prefix ('int64:77', 'bool:1x77') or a keyword name ('mask=bool:77')
    give a list of ``InputSpec``, one per input (see ``archcost.cost.inputs``).
    """
    from archcost.cost.inputs import parse_spec

    texts = [text] if isinstance(text, str) else list(text)
    specs = [parse_spec(t) for t in texts]
    if len(specs) == 1 and specs[0].dtype is None and specs[0].name is None:
        return specs[0].shape
    return specs


def byte_size(text: str) -> int:
    """A flag's amount of memory: '24GB', '512MB', '16GiB', '1e9' -> bytes (decimal units, as printed)."""
    units = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
    units |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
    clean = text.strip().upper().replace(" ", "")
    number = clean.rstrip("KMGTIB")
    try:
        value = float(number) * units[clean[len(number) :]]
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount of memory: write it like 24GB or 512MB") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 bytes")
    return int(value)


def parse_opts(items: Sequence[str] | None) -> dict[str, str]:
    """['width_mult=0.5', 'num_classes=10'] -> {'width_mult': '0.5', 'num_classes': '10'}."""
    opts: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"malformed --opt {item!r}", "write model options as --opt key=value")
        opts[key.strip()] = value.strip()
    return opts


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def seconds(text: str) -> float:
    """A flag's number of seconds, >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be >= 0 seconds")
    return value


def add_model_args(p: argparse.ArgumentParser) -> None:
    """MODEL and the flags every command that analyses a model takes."""
    p.add_argument(
        "model",
        help="zoo name (archcost list), package.module:callable, file.py:callable, torchvision:NAME, "
        "timm:NAME, or a model.onnx file",
    )
    p.add_argument(
        "--input-size",
        action="append",
        metavar="[NAME=][DTYPE:]SHAPE",
        help="CxHxW (default: the model's own, e.g. 3x224x224); repeat it for each positional input "
        "(--input-size 3x16x16 --input-size 3x32x32); a dtype prefix for non-float inputs (int64:77, bool:1x77); "
        "NAME= for a keyword input (mask=bool:77)",
    )
    p.add_argument("--batch-size", type=positive_int, default=1, help="batch size (default 1)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16", "int8"])
    p.add_argument("--opt", action="append", metavar="KEY=VALUE", help="model option, repeatable")


def add_analysis_args(p: argparse.ArgumentParser) -> None:
    """Where ``archcost.analyze`` runs: meta, CPU, or meta with a CPU fallback for forwards that need data."""
    p.add_argument(
        "--device",
        default="auto",
        choices=["auto", "meta", "cpu"],
        help="analyse on the meta device (shapes only), on the CPU (real tensors), or auto (default): meta, "
        "and the CPU when forward needs values (.item(), masks, NMS)",
    )
    p.add_argument(
        "--max-memory",
        type=byte_size,
        metavar="SIZE",
        help="refuse a CPU analysis estimated to need more (e.g. 16GB; default a quarter of the RAM)",
    )


def add_output_args(p: argparse.ArgumentParser, formats: Sequence[str] = ("text", "markdown", "csv", "json")) -> None:
    p.add_argument("--format", default=formats[0], choices=list(formats))
    p.add_argument("--output", help="write to this file instead of standard output")


def emit(text: str, path: str | None) -> None:
    """Print ``text``, or write it atomically to ``path``."""
    if path:
        from archcost.report.files import write_atomic

        write_atomic(path, text)
        print(f"wrote {path}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def load(args: argparse.Namespace):
    """The model named by ``args.model`` with its options, and the input size to use."""
    from archcost.models import load_model
    from archcost.onnx_graph import is_onnx_path

    if is_onnx_path(args.model):
        raise InputError(
            f"archcost {args.command} needs a torch model, and {args.model} is an ONNX graph",
            "use the zoo name or module:callable the file was exported from; `archcost table FILE.onnx` reads it",
        )
    loaded = load_model(args.model, parse_opts(args.opt))
    size = parse_input_size(args.input_size) if args.input_size else loaded.input_size
    return loaded, size


def analyse(args: argparse.Namespace):
    """``archcost.analyze`` of the model the flags name (an ``.onnx`` file is analysed from its graph)."""
    from archcost.cost import analyze
    from archcost.onnx_graph import is_onnx_path

    if is_onnx_path(args.model):
        from archcost.onnx_graph import analyze_onnx  # needs the onnx package, imported only for .onnx files

        if args.opt:
            raise InputError("--opt sets a model builder's options; an ONNX file has none", "drop --opt")
        size = parse_input_size(args.input_size) if args.input_size else None
        return analyze_onnx(args.model, size, args.batch_size, args.dtype)
    loaded, size = load(args)
    return analyze(
        loaded.module,
        size,
        args.batch_size,
        args.dtype,
        name=loaded.name,
        device=getattr(args, "device", "auto"),
        max_memory=getattr(args, "max_memory", None),
    )
