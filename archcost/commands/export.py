"""``archcost export MODEL --onnx out.onnx``: a zoo or user model written as an ONNX file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from archcost.commands._common import EXIT_OK, add_model_args, load, positive_int
from archcost.errors import InputError


def run(args: argparse.Namespace) -> int:
    from archcost.onnx_graph import export_onnx, is_onnx_path

    if is_onnx_path(args.model):
        raise InputError(f"{args.model} is already an ONNX file", "export takes a zoo name or a user model")
    if args.dtype != "float32":
        raise InputError(
            f"export writes float32 weights, not {args.dtype}",
            f"export in float32, then analyse the file with --dtype {args.dtype} for its bytes at that precision",
        )
    folder = Path(args.onnx).parent
    if not folder.is_dir():  # before building the model: a large one takes seconds to initialise
        raise InputError(f"cannot write {args.onnx}: the folder {folder} does not exist", "create it first")
    work = load(args, "cpu").runnable()  # wrappers unwrapped, lazy layers initialised by one forward
    path = export_onnx(work.module, work, args.onnx, args.opset, fold_constants=args.fold_constants)
    print(f"wrote {path} ({work.name}, input {work.with_batch(work.batch_size).label()}, batch {work.batch_size})",
          file=sys.stderr)  # fmt: skip
    return EXIT_OK


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write a model to an ONNX file",
        description="Write a zoo or user model, with its CPU weights, to ONNX at a static input shape.",
    )
    add_model_args(p)
    p.add_argument("--onnx", required=True, metavar="PATH", help="the ONNX file to write")
    p.add_argument("--opset", type=positive_int, help="ONNX opset (default: the torch exporter's)")
    p.add_argument(
        "--fold-constants",
        action="store_true",
        help="fold batch norm into the convolutions and precompute constant expressions (the deployment "
        "graph: fewer params and FLOPs than the model)",
    )
    p.set_defaults(func=run)
