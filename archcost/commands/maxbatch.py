"""``archcost maxbatch MODEL --memory 24GB``: the largest batch whose estimated peak memory fits."""

from __future__ import annotations

import argparse
import json

from archcost.commands._common import (
    EXIT_OK,
    add_device_arg,
    add_model_args,
    add_output_args,
    byte_size,
    emit,
    load,
)
from archcost.errors import InputError


def run(args: argparse.Namespace) -> int:
    from archcost.cost.training import estimated_peak, max_batch, optimizer_rule
    from archcost.units import format_bytes

    rule = optimizer_rule(args.optimizer)  # an unknown name fails before the model is built
    device = _device(args.device)  # a device that is not there fails before the model is built
    work = load(args, "meta")
    if args.mode == "train" and not any(p.requires_grad for p in work.module.parameters()):
        raise InputError(
            f"{work.name} has no trainable parameters: a training step has nothing to update",
            "use --mode infer, or a model with parameters that require gradients",
        )
    foreach = device.type == "cuda"  # torch's optimizers default to the multi-tensor path on CUDA

    def peak(n: int) -> int:
        # a Workload in the model's place: analyze takes its inputs from it
        return estimated_peak(
            work.with_batch(n), None, n, args.dtype, mode=args.mode, optimizer=args.optimizer, foreach=foreach
        )

    found = max_batch(peak, args.memory)
    result = {
        "model": work.name,
        "mode": args.mode,
        "optimizer": args.optimizer if args.mode == "train" else None,
        "dtype": args.dtype,
        "input_size": work.label(),
        "inputs": work.describe(1),
        "device": str(device),
        "batch_size": found.batch_size,
        "memory_limit_bytes": found.memory_limit_bytes,
        "estimated_peak_bytes": found.estimated_peak_bytes,
        "estimated_peak_next_bytes": found.next_peak_bytes,
    }
    if args.verify:
        result["measured_peak_bytes"] = _verify(work, found.batch_size, args, device)
        result["measured_fits"] = result["measured_peak_bytes"] <= found.memory_limit_bytes
    if args.format == "json":
        emit(json.dumps(result, sort_keys=True, indent=2) + "\n", args.output)
        return _verdict(result)
    what = f"a training step with {args.optimizer} ({rule.states} state tensors per parameter)"
    lines = [
        f"{work.name}, {work.label()} {args.dtype}, "
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
    return _verdict(result)


def _verdict(result: dict) -> int:
    """EXIT_FAIL, with a warning on stderr, when ``--verify`` measured more than the limit: the batch found does
    not fit after all; else EXIT_OK."""
    import sys

    from archcost.commands._common import EXIT_FAIL
    from archcost.units import format_bytes

    if result.get("measured_fits", True):
        return EXIT_OK
    measured, limit = result["measured_peak_bytes"], result["memory_limit_bytes"]
    print(
        f"archcost: warning: batch {result['batch_size']} measured {format_bytes(measured)}, over the "
        f"{format_bytes(limit)} limit by {100 * (measured / limit - 1):.0f}%: the estimate is low for this model "
        "here; use a smaller batch, or give --memory the headroom (exit 1)",
        file=sys.stderr,
    )
    return EXIT_FAIL


def _device(spec: str):
    from archcost.profiling.sweep import resolve_device

    return resolve_device(spec)


def _verify(work, batch: int, args: argparse.Namespace, device) -> int:
    from archcost.profiling.memory import measure_inference_peak, measure_training_peak
    from archcost.units import DTYPES

    dtype = DTYPES[args.dtype]
    built = load(args, "cpu")
    model = built.module.to(device=device, dtype=dtype)
    args_, kwargs = built.with_batch(batch).tensors(device, dtype=dtype)
    # the model was built for this run: measured as it is (no second copy of the weights on the device)
    if args.mode == "train":
        return measure_training_peak(model, (args_, kwargs), args.optimizer, copy_model=False).peak_bytes
    return measure_inference_peak(model, (args_, kwargs), copy_model=False).peak_bytes


def add_parser(sub) -> None:
    p = sub.add_parser(
        "maxbatch",
        help="the largest batch whose estimated peak memory fits a memory limit",
        description="Bisection over the meta-device analysis (nothing is allocated): the largest batch size "
        "whose estimated peak (a training step: weights, gradients, optimizer state, saved activations; or an "
        "inference forward) fits --memory. --verify runs that batch for real and reports the measured peak.",
    )
    add_model_args(p, batch=False, dtypes=("float32", "float16", "bfloat16"))
    p.add_argument("--memory", type=byte_size, required=True, metavar="SIZE", help="memory limit, e.g. 24GB, 80GiB")
    p.add_argument("--mode", default="train", choices=["train", "infer"], help="training step (default) or inference")
    p.add_argument("--optimizer", default="adam", help="sgd, momentum, adam (default) or adamw")
    add_device_arg(p, "run")
    p.add_argument("--verify", action="store_true", help="run the batch found for real and measure its peak")
    add_output_args(p, ("text", "json"))
    p.set_defaults(func=run)


def train_report(args: argparse.Namespace):
    """``archcost table --mode train``: the training-mode analysis of the flagged workload with its training
    figures (``archcost.analyze(..., mode="train")``)."""
    from archcost.cost.analysis import analyze
    from archcost.cost.training import optimizer_rule

    optimizer_rule(args.optimizer)
    if args.depth is not None:
        raise InputError("--depth rolls up the inference table only", "drop --depth with --mode train")
    work = load(args, "meta")
    return analyze(work, mode="train", optimizer=args.optimizer, device=getattr(args, "device", "auto"))
