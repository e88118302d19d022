"""``archcost maxbatch MODEL --memory 24GB``: the largest batch whose estimated peak memory fits."""

from __future__ import annotations

import argparse
import json

from archcost.commands._common import EXIT_OK, byte_size, emit, load
from archcost.errors import InputError


def run(args: argparse.Namespace) -> int:
    from archcost.cost.training import estimated_peak, max_batch, optimizer_rule
    from archcost.units import format_bytes

    rule = optimizer_rule(args.optimizer)  # an unknown name fails before the model is built
    loaded, size = load(args)
    device = _device(args.device)
    if args.mode == "train" and not any(p.requires_grad for p in loaded.module.parameters()):
        raise InputError(
            f"{loaded.name} has no trainable parameters: a training step has nothing to update",
            "use --mode infer, or a model with parameters that require gradients",
        )
    foreach = device.type == "cuda"  # torch's optimizers default to the multi-tensor path on CUDA

    def peak(n: int) -> int:
        return estimated_peak(
            loaded.module, size, n, args.dtype, mode=args.mode, optimizer=args.optimizer, foreach=foreach
        )

    found = max_batch(peak, args.memory)
    result = {
        "model": loaded.name,
        "mode": args.mode,
        "optimizer": args.optimizer if args.mode == "train" else None,
        "dtype": args.dtype,
        "input_size": list(size),
        "device": str(device),
        "batch_size": found.batch_size,
        "memory_limit_bytes": found.memory_limit_bytes,
        "estimated_peak_bytes": found.estimated_peak_bytes,
        "estimated_peak_next_bytes": found.next_peak_bytes,
    }
    if args.verify:
        result["measured_peak_bytes"] = _verify(size, found.batch_size, args, device)
    if args.format == "json":
        emit(json.dumps(result, sort_keys=True, indent=2) + "\n", args.output)
        return EXIT_OK
    what = f"a training step with {args.optimizer} ({rule.states} state tensors per parameter)"
    lines = [
        f"{loaded.name}, {'x'.join(map(str, size))} {args.dtype}, "
        f"{what if args.mode == 'train' else 'inference'}, limit {format_bytes(args.memory)}:",
        f"  largest batch that fits: {found.batch_size} (estimated peak {format_bytes(found.estimated_peak_bytes)}; "
        f"batch {found.batch_size + 1} needs {format_bytes(found.next_peak_bytes)})",
    ]
    if args.verify:
        measured = result["measured_peak_bytes"]
        lines.append(
            f"  measured on {device}: {format_bytes(measured)} "
            f"(estimate / measured = {found.estimated_peak_bytes / measured:.3f})"
        )
    emit("\n".join(lines) + "\n", args.output)
    return EXIT_OK


def _device(spec: str):
    from archcost.profiling.sweep import resolve_device

    return resolve_device(spec)


def _verify(size, batch: int, args: argparse.Namespace, device) -> int:
    import torch

    from archcost.commands._common import parse_opts
    from archcost.models import load_model
    from archcost.profiling.train_step import measured_inference_peak, measured_training_peak
    from archcost.units import DTYPES

    dtype = DTYPES[args.dtype]
    model = load_model(args.model, parse_opts(args.opt), device="cpu").module.to(device=device, dtype=dtype)
    x = torch.randn(batch, *size, device=device, dtype=dtype)
    if args.mode == "train":
        return measured_training_peak(model, x, args.optimizer)
    return measured_inference_peak(model, x)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "maxbatch",
        help="the largest batch whose estimated peak memory fits a memory limit",
        description="Bisection over the meta-device analysis (nothing is allocated): the largest batch size "
        "whose estimated peak (a training step: weights, gradients, optimizer state, saved activations; or an "
        "inference forward) fits --memory. --verify runs that batch for real and reports the measured peak.",
    )
    p.add_argument("model", help="zoo name, package.module:callable, file.py:callable, torchvision:NAME, timm:NAME")
    p.add_argument("--memory", type=byte_size, required=True, metavar="SIZE", help="memory limit, e.g. 24GB, 80GiB")
    p.add_argument("--mode", default="train", choices=["train", "infer"], help="training step (default) or inference")
    p.add_argument("--optimizer", default="adam", help="sgd, momentum, adam (default) or adamw")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    p.add_argument("--input-size", help="CxHxW (default: the model's own)")
    p.add_argument("--opt", action="append", metavar="KEY=VALUE", help="model option, repeatable")
    p.add_argument("--device", default="auto", help="device for --verify, and whose optimizer path is assumed")
    p.add_argument("--verify", action="store_true", help="run the batch found for real and measure its peak")
    p.add_argument("--format", default="text", choices=["text", "json"])
    p.add_argument("--output", help="write to this file instead of standard output")
    p.set_defaults(func=run)


def train_report(args: argparse.Namespace):
    """``archcost table --mode train``: the training-mode analysis of the flagged model with its training figures."""
    from archcost.cost.analysis import analyze
    from archcost.cost.training import analyze_training, optimizer_rule

    optimizer_rule(args.optimizer)
    if args.depth is not None:
        raise InputError("--depth rolls up the inference table only", "drop --depth with --mode train")
    loaded, size = load(args)
    report = analyze(loaded.module, size, args.batch_size, args.dtype, name=loaded.name, training=True, device="meta")
    return analyze_training(
        loaded.module, size, args.batch_size, args.dtype, name=loaded.name, optimizer=args.optimizer, report=report
    )
