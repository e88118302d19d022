"""``analyze``: runs a model's forward on the meta device and turns every layer and op into a row.

How it works: the model's parameters and buffers are swapped for meta tensors with
``torch.func.functional_call`` (the caller's model is never moved or copied), forward hooks track which
module is running, and a ``TorchFunctionMode`` sees every torch function and tensor method called in
``forward``. A leaf module (no children), or a module with a registered module formula, becomes one row
whose cost is the sum of the ops it ran; ops called directly in a non-leaf module's ``forward``
(residual adds, concatenations, ``torch.flatten``) become rows of their own, attributed to that module.
Nothing is computed on real data, so the cost of analysis does not depend on batch or image size.
"""

from __future__ import annotations

import torch
from torch import nn

from archcost.cost.crawl import Crawl, shape_of, storage_key
from archcost.cost.receptive import propagate, with_field
from archcost.cost.record import CostReport, LayerCost
from archcost.errors import AnalysisError, InputError
from archcost.units import DTYPES


def _parse_dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return DTYPES[dtype]
    except KeyError:
        raise InputError(f"unknown dtype {dtype!r}", f"use one of {', '.join(DTYPES)}") from None


def analyze(
    model: nn.Module,
    input_size: tuple[int, ...] = (3, 224, 224),
    batch_size: int = 1,
    dtype: torch.dtype | str = torch.float32,
    *,
    name: str | None = None,
    training: bool = False,
) -> CostReport:
    """Per-layer params, MACs, FLOPs and bytes of ``model`` on an input of ``(batch_size, *input_size)``.

    Runs on the meta device: nothing is computed, however large the batch or image. The model is left
    as it was: parameters untouched, hooks removed, ``training`` flags restored, even if forward raises.
    ``training=True`` analyses the training-mode forward (batch statistics, active dropout).
    """
    dtype = _parse_dtype(dtype)
    if batch_size < 1 or any(int(s) < 1 for s in input_size):
        raise InputError(
            f"sizes must be positive, got batch {batch_size} and input {tuple(input_size)}",
            "give a batch size >= 1 and an input size like 3x224x224",
        )
    # float dtypes apply to parameters; int8 is a storage format: analyse in float32, bytes at 1 each.
    compute_dtype = dtype if dtype.is_floating_point else torch.float32
    state: dict[str, torch.Tensor] = {}
    for key, t in [*model.named_parameters(), *model.named_buffers()]:
        target = compute_dtype if t.is_floating_point() else t.dtype
        state[key] = torch.empty(t.shape, device="meta", dtype=target)  # not empty_like: it imports sympy
    param_names = {k for k, _ in model.named_parameters()}
    params = {id(t): t for k, t in state.items() if k in param_names}
    crawl = Crawl(params, axes=len(input_size) - 1)
    x = torch.empty((batch_size, *input_size), device="meta", dtype=compute_dtype)
    crawl.producer[id(x)] = -1
    crawl.storage_row[storage_key(x)] = -1
    crawl.track(x)

    flags = {m: m.training for m in model.modules()}
    handles = []
    try:
        model.train(training)
        for path, m in model.named_modules():
            handles.append(m.register_forward_pre_hook(crawl.pre_hook(path), with_kwargs=True))
            handles.append(m.register_forward_hook(crawl.post_hook, with_kwargs=True))
        with torch.no_grad(), crawl:
            out = torch.func.functional_call(model, state, (x,), tie_weights=True, strict=False)
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AnalysisError(
            f"the forward pass failed in {crawl.failure_site()}: {detail}",
            f"check the input size (given {list(x.shape)}) and that forward runs without real data "
            "(no .item() or data-dependent branches)",
        ) from exc
    finally:
        for h in handles:
            h.remove()
        for m, flag in flags.items():
            m.training = flag

    fields = propagate([r.sources for r in crawl.rows], crawl.steps, [r.name for r in crawl.rows], crawl.axes)
    rows = [with_field(r, f) for r, f in zip(crawl.rows, fields, strict=True)]
    # Parameters never used in forward still occupy memory: one row per module that owns them.
    unused: dict[str, list[torch.Tensor]] = {}
    for key, t in state.items():
        if key in param_names and id(t) not in crawl.counted:
            crawl.counted.add(id(t))
            unused.setdefault(key.rpartition(".")[0], []).append(t)
    for path, ts in unused.items():
        rows.append(
            LayerCost(
                name=path or "(model)",
                type="unused parameters",
                module=path,
                kind="module",
                depth=path.count(".") + 1 if path else 0,
                input_shapes=(),
                output_shape=(),
                params=sum(t.numel() for t in ts),
                macs=0,
                flops=0,
                param_bytes=sum(t.numel() * t.element_size() for t in ts),
                activation_bytes=0,
            )
        )
    peak = crawl.peak
    if not dtype.is_floating_point:  # bytes at the storage dtype
        scale = torch.empty((), dtype=dtype).element_size()
        base = torch.empty((), dtype=compute_dtype).element_size()
        rows = [_rescale(r, scale, base) for r in rows]
        peak = peak * scale // base
    return CostReport(
        model=name or type(model).__name__,
        input_shape=tuple(x.shape),
        dtype=str(dtype).removeprefix("torch."),
        layers=rows,
        output_shape=shape_of(out),
        unsupported=crawl.unsupported,
        training=training,
        peak_activation_bytes=peak,
        peak_at=crawl.peak_at,
    )


def _rescale(row: LayerCost, scale: int, base: int) -> LayerCost:
    from dataclasses import replace

    return replace(
        row,
        param_bytes=row.param_bytes * scale // base,
        activation_bytes=row.activation_bytes * scale // base,
    )
