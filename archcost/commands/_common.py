"""What the commands share: exit codes, flag types and parsers, the model and input flags, output writing.

Only ``archcost.commands.*`` and ``archcost.cli`` import this module (the library never takes flags).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator, Sequence

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


def _whole(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"{value} must be >= {least}")
    return value


def positive_int(text: str) -> int:
    """A flag's whole number >= 1."""
    return _whole(text, 1)


def non_negative_int(text: str) -> int:
    """A flag's whole number >= 0."""
    return _whole(text, 0)


def seconds(text: str) -> float:
    """A flag's number of seconds, >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be >= 0 seconds")
    return value


def add_model_args(p: argparse.ArgumentParser, *, batch: bool = True, dtypes: Sequence[str] | None = None) -> None:
    """MODEL and the workload flags (``add_input_args``) every command that analyses one model takes."""
    p.add_argument(
        "model",
        help="zoo name (archcost list), package.module:callable, file.py:callable, torchvision:NAME, "
        "timm:NAME, or a model.onnx file",
    )
    add_input_args(p, batch=batch, dtypes=dtypes)


def add_input_args(
    p: argparse.ArgumentParser, *, batch: bool = True, dtypes: Sequence[str] | None = None, many: bool = False
) -> None:
    """The flags that say what forward receives (one declaration for every command): --input-size,
    --batch-size, --batch-dim, --int-range, --kwarg, --dtype, --opt. ``many``: the command takes several models,
    to whom the flags apply alike."""
    every = " for every model" if many else ""
    g = p.add_argument_group("inputs (what forward receives)")
    g.add_argument(
        "--input-size",
        action="append",
        metavar="[NAME=][DTYPE:]SHAPE",
        help=f"the input{every} without the batch: CxHxW (default: the model's own, e.g. 3x224x224; a bare 224 "
        "means 3x224x224); repeat it for each positional input (--input-size 3x16x16 --input-size 3x32x32); a "
        "dtype prefix takes the shape as written (int64:77 token ids, float32:10 a feature vector, bool:1x77); "
        "NAME= for a keyword input (mask=bool:77), NAME.KEY= for a tensor in a dict argument "
        "(batch.image=3x32x32), NAME.0= / NAME.1= for a tuple argument (hx.0=2xBx20); B marks the batch's place",
    )
    if batch:
        g.add_argument("--batch-size", type=positive_int, default=1, help="batch size (default 1)")
    g.add_argument(
        "--batch-dim",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="where the batch goes in inputs that do not mark it with B (default 0; 1 for sequence-first models)",
    )
    g.add_argument(
        "--int-range",
        type=int_range,
        metavar="LOW:HIGH",
        help="integer inputs of a real run take seeded random values in [LOW, HIGH) (default: zeros), "
        "e.g. 0:50257 for GPT-2 token ids",
    )
    g.add_argument(
        "--kwarg",
        action="append",
        metavar="NAME=VALUE",
        help="a plain (non-tensor) keyword argument of forward, as a Python literal: --kwarg return_dict=False",
    )
    g.add_argument("--dtype", default="float32", choices=list(dtypes or ("float32", "float16", "bfloat16", "int8")))
    g.add_argument("--opt", action="append", metavar="KEY=VALUE", help=f"model builder option{every}, repeatable")


#: what --device means in every command: the device forward runs on (README: "What --device means").
DEVICE_HELP = {
    "analysis": "where forward runs for the analysis: meta (shapes only, no memory), cpu (real tensors), or auto "
    "(default: meta, and the CPU when forward needs values: .item(), masks, NMS)",
    "run": "where forward runs to be measured: auto (default: CUDA when available, else the CPU), cpu, cuda, cuda:N",
    "records": "with --results: the device forward ran on in the records to show (cpu, cuda:0, or the device's "
    "name; default: the one device the records hold)",
}


def add_device_arg(p, kind: str, *, default: str | None = "auto") -> None:
    """``--device``, one meaning in every command: the device forward runs on (``DEVICE_HELP``)."""
    choices = ["auto", "meta", "cpu"] if kind == "analysis" else None
    p.add_argument("--device", default=default, choices=choices, help=DEVICE_HELP[kind])


def add_analysis_args(p: argparse.ArgumentParser) -> None:
    """Where ``archcost.analyze`` runs: meta, CPU, or meta with a CPU fallback for forwards that need data."""
    add_device_arg(p, "analysis")
    p.add_argument(
        "--max-memory",
        type=byte_size,
        metavar="SIZE",
        help="refuse a CPU analysis estimated to need more (e.g. 16GB; default a quarter of the RAM)",
    )


def int_range(text: str) -> tuple[int, int]:
    """'0:50257' -> (0, 50257)."""
    low, sep, high = text.partition(":")
    try:
        values = (int(low), int(high)) if sep else None
    except ValueError:
        values = None
    if values is None or values[1] <= values[0]:
        raise argparse.ArgumentTypeError(f"{text!r} is not a range LOW:HIGH with HIGH > LOW, e.g. 0:50257")
    return values


def parse_kwargs(items: Sequence[str] | None) -> dict[str, object]:
    """['return_dict=False', 'mode="fast"'] -> {'return_dict': False, 'mode': 'fast'} (Python literals; text
    that is not one stays a string)."""
    import ast

    out: dict[str, object] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise InputError(f"malformed --kwarg {item!r}", "write a plain keyword argument as --kwarg name=value")
        try:
            out[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = value.strip()
    return out


def add_output_args(p: argparse.ArgumentParser, formats: Sequence[str] = ("text", "markdown", "csv", "json")) -> None:
    p.add_argument("--format", default=formats[0], choices=list(formats))
    p.add_argument("--output", help="write to this file instead of standard output")


#: Where a command's results go: standard output as it was when ``archcost.cli.main`` began. While a command
#: runs, ``sys.stdout`` is standard error (``results_to``), so what user code prints (a model's constructor or
#: forward) cannot mix with the results (``--format json`` stays JSON).
_RESULTS: list = []


@contextlib.contextmanager
def results_to(stream) -> Iterator[None]:
    """Run a command with its results (``emit``) going to ``stream`` and everything else printed to stdout going
    to standard error."""
    _RESULTS.append(stream)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        _RESULTS.pop()


def emit(text: str, path: str | None) -> None:
    """Print ``text`` as the command's result (``results_to``), or write it atomically to ``path``."""
    if path:
        from archcost.report.files import write_atomic

        write_atomic(path, text)
        print(f"wrote {path}", file=sys.stderr)
    else:
        (_RESULTS[-1] if _RESULTS else sys.stdout).write(text)


def workload(args: argparse.Namespace, model: object = None, *, device: str | None = None):
    """The ``Workload`` the flags describe for ``model`` (default ``args.model``), not built yet: the one
    place a command turns its input flags into inputs."""
    from archcost.cost.workload import Workload

    size = parse_input_size(args.input_size) if getattr(args, "input_size", None) else None
    where = device or getattr(args, "device", None) or "auto"
    return Workload.of(
        args.model if model is None else model,
        size,
        getattr(args, "batch_size", None) or 1,
        getattr(args, "dtype", "float32"),
        kwargs=parse_kwargs(getattr(args, "kwarg", None)) or None,
        batch_dim=getattr(args, "batch_dim", 0) or 0,
        int_range=getattr(args, "int_range", None),
        device=where if where in ("auto", "meta", "cpu") else "auto",  # the analysis's; measuring is the command's
        max_memory=getattr(args, "max_memory", None),
        options=parse_opts(getattr(args, "opt", None)),
    )


def input_kwargs(args: argparse.Namespace) -> dict:
    """The input flags as the keyword arguments of the library calls that take them for several models
    (``archcost.profile``, ``archcost.bench``): ``input_size``, ``kwargs``, ``batch_dim``, ``int_range``."""
    return {
        "input_size": parse_input_size(args.input_size) if getattr(args, "input_size", None) else None,
        "kwargs": parse_kwargs(getattr(args, "kwarg", None)) or None,
        "batch_dim": getattr(args, "batch_dim", 0) or 0,
        "int_range": getattr(args, "int_range", None),
    }


def load(args: argparse.Namespace, device: str = "meta", model: object = None):
    """The flags' ``Workload`` with its model built on ``device``."""
    from archcost.onnx_graph import is_onnx_path

    spec = args.model if model is None else model
    if isinstance(spec, str) and is_onnx_path(spec):
        raise InputError(
            f"archcost {args.command} needs a torch model, and {spec} is an ONNX graph",
            "use the zoo name or module:callable the file was exported from; `archcost table FILE.onnx` reads it",
        )
    return workload(args, spec).load(device)


def analyse(args: argparse.Namespace):
    """``archcost.analyze`` of the model the flags name (an ``.onnx`` file is analysed from its graph)."""
    from archcost.cost import analyze
    from archcost.onnx_graph import is_onnx_path

    if is_onnx_path(args.model):
        from archcost.onnx_graph import analyze_onnx  # needs the onnx package, imported only for .onnx files

        if args.opt:
            raise InputError("--opt sets a model builder's options; an ONNX file has none", "drop --opt")
        size = parse_input_size(args.input_size) if args.input_size else None
        if size is not None and not isinstance(size, tuple):
            raise InputError(
                "an ONNX file's inputs are the graph's own: --input-size takes one shape CxHxW for it here",
                "give one --input-size without dtype or name, or none (the graph's own shape)",
            )
        return analyze_onnx(args.model, size, args.batch_size, args.dtype)
    return analyze(load(args, "meta"), device=getattr(args, "device", "auto") or "auto")
