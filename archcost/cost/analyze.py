"""The crawler: runs a model's forward on the meta device and turns every layer and op into a row.

How it works: the model's parameters and buffers are swapped for meta tensors with
``torch.func.functional_call`` (the caller's model is never moved or copied), forward hooks track which
module is running, and a ``TorchFunctionMode`` sees every torch function and tensor method called in
``forward``. A leaf module (no children), or a module with a registered module formula, becomes one row
whose cost is the sum of the ops it ran; ops called directly in a non-leaf module's ``forward``
(residual adds, concatenations, ``torch.flatten``) become rows of their own, attributed to that module.
Nothing is computed on real data, so the cost of analysis does not depend on batch or image size.
"""

from __future__ import annotations

import weakref
from collections import Counter
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from archcost.cost._registry import Cost, module_formula, op_formula, op_name
from archcost.cost.formulas._args import tensors
from archcost.cost.memory import workspace_bytes
from archcost.cost.receptive import Unknown, propagate, spatial, step_of, with_field
from archcost.cost.record import CostReport, LayerCost, Unsupported
from archcost.errors import AnalysisError, InputError
from archcost.units import DTYPES


@dataclass
class _Frame:
    """One module call in progress."""

    module: nn.Module
    path: str
    inputs: list[torch.Tensor]
    covered: bool  # this call becomes one row; ops inside it are summed into it
    cost: Cost = Cost()
    ops: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    act_ids: set[int] = field(default_factory=set)  # tensors on the path from the call's inputs
    steps: list = field(default_factory=list)  # receptive-field geometry of the ops on that path


def _storage(t: torch.Tensor) -> int:
    """Identity of the memory behind a tensor: views and in-place results share their input's."""
    return t.untyped_storage()._cdata


def _shape(value: object):
    ts = tensors(value)
    if len(ts) == 1 and isinstance(value, torch.Tensor):
        return tuple(ts[0].shape)
    return tuple(tuple(t.shape) for t in ts)


class _Crawl(TorchFunctionMode):
    """Records rows while the forward pass runs; one instance per analysis."""

    def __init__(self, params: dict[int, torch.Tensor], axes: int) -> None:
        super().__init__()
        self.axes = axes  # spatial axes of the model input
        self.steps: list[list] = []  # per row: receptive-field geometry of its ops
        self.storage_row: dict[int, int] = {}  # storage of an output -> the row that created it
        self.params = params  # id -> meta parameter tensor
        self.counted: set[int] = set()
        self.rows: list[LayerCost] = []
        self.unsupported: list[Unsupported] = []
        self.stack: list[_Frame] = []
        self.producer: dict[int, int] = {}  # id(tensor) -> row index, -1 for the model input
        self.param_origin: dict[int, frozenset[int]] = {}  # id(tensor) -> parameter ids it derives from
        # Memory timeline: storages alive now, from Python's own reference counting (a finalizer on every
        # tensor an op returns), so the peak follows the forward code's real lifetimes.
        self.storages: dict[int, list[int]] = {}  # storage -> [tensors alive on it, bytes]
        self.live = 0
        self.peak = 0
        self.peak_at = "(input)"
        self.where = "(input)"
        self.names: Counter[str] = Counter()
        self.failed_op: tuple[str, list] | None = None

    # -- module hooks ---------------------------------------------------------------------------
    def pre_hook(self, path: str):
        def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
            inside_covered = any(f.covered for f in self.stack)
            covered = not inside_covered and (
                module_formula(module) is not None or next(module.children(), None) is None
            )
            inputs = tensors((args, kwargs))
            self.stack.append(_Frame(module, path, inputs, covered, act_ids={id(t) for t in inputs}))

        return hook

    def post_hook(self, module: nn.Module, args: tuple, kwargs: dict, out: object) -> None:
        frame = self.stack.pop()
        if not frame.covered:
            return
        formula = module_formula(module)
        cost = formula(module, tuple(frame.inputs), out) if formula is not None else frame.cost
        own = [p for p in module.parameters() if id(p) in self.params]
        self._add_row(
            base=frame.path or type(module).__name__,
            type_=type(module).__name__,
            module=frame.path,
            kind="module",
            inputs=frame.inputs,
            out=out,
            cost=cost,
            param_ids={id(p) for p in own},
            ops=tuple(frame.ops),
            unsupported=[] if formula is not None else frame.unsupported,
            steps=frame.steps if formula is None else [(Unknown(type(module).__name__), ())],
        )

    # -- ops ------------------------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        try:
            shortcut = _META_SHAPE.get(op_name(func))
            out = shortcut(func, *args, **kwargs) if shortcut is not None else func(*args, **kwargs)
        except Exception:
            self.failed_op = (op_name(func), [tuple(t.shape) for t in tensors((args, kwargs))])
            raise
        out_tensors = tensors(out)
        if out_tensors:
            self._on_op(op_name(func), args, kwargs, out, out_tensors)
        return out

    def _on_op(self, name: str, args: tuple, kwargs: dict, out: object, out_tensors: list) -> None:
        frame = self.stack[-1] if self.stack else None
        covering = next((f for f in self.stack if f.covered), None)
        self.where = covering.path if covering is not None else f"{frame.path}/{name}" if frame and frame.path else name
        for t in out_tensors:
            if id(t) not in self.params:
                self.track(t)
        self._workspace(name, out_tensors)
        formula = op_formula(name)
        if not any(t.is_floating_point() for t in out_tensors):
            formula = _integer_op  # integer bookkeeping (num_batches_tracked += 1, indices): no FLOPs
        covered = next((f for f in self.stack if f.covered), None)
        if covered is not None:
            on_path = [t for t in tensors((args, kwargs)) if id(t) in covered.act_ids]
            if on_path:
                covered.steps.append(self._step(name, args, kwargs, on_path[0], out_tensors[0]))
                covered.act_ids.update(id(t) for t in out_tensors)
            if module_formula(covered.module) is None:
                covered.ops.append(name)
                if formula is None:
                    covered.unsupported.append(name)
                else:
                    covered.cost = covered.cost + formula(args, kwargs, out)
            return
        ins = tensors((args, kwargs))
        acts = [t for t in ins if id(t) in self.producer]
        origins = frozenset().union(
            *(self.param_origin.get(id(t), frozenset()) for t in ins), (id(t) for t in ins if id(t) in self.params)
        )
        if id(out_tensors[0]) in self.params or (not acts and not origins):
            return  # reading a parameter, or creating a constant: no work on activations
        cost = formula(args, kwargs, out) if formula is not None else Cost()
        if not acts:
            # Work on parameters only (e.g. building a weight): follow it, row only if it costs.
            for t in out_tensors:
                self.param_origin[id(t)] = origins
            if formula is not None and cost == Cost():
                return
        frame = self.stack[-1] if self.stack else None
        path = frame.path if frame else ""
        self._add_row(
            base=f"{path}/{name}" if path else name,
            type_=name,
            module=path,
            kind="op",
            inputs=acts,
            out=out,
            cost=cost,
            param_ids=set(origins),
            ops=(name,),
            unsupported=[] if formula is not None else [name],
            steps=[self._step(name, args, kwargs, acts[0], out_tensors[0])] if acts else [],
        )

    def _step(self, name: str, args: tuple, kwargs: dict, x: torch.Tensor, out: torch.Tensor) -> tuple:
        shape = tuple(x.shape)
        return step_of(name, args, kwargs, shape, tuple(out.shape), self.axes), spatial(shape, self.axes)

    # -- rows -----------------------------------------------------------------------------------
    def _add_row(self, *, base, type_, module, kind, inputs, out, cost, param_ids, ops, unsupported, steps):
        new_params = [self.params[i] for i in sorted(param_ids - self.counted) if i in self.params]
        self.counted.update(id(p) for p in new_params)
        self.names[base] += 1
        name = base if self.names[base] == 1 else f"{base}#{self.names[base]}"
        outs = tensors(out)
        index = len(self.rows)
        depth = (module.count(".") + 1 if module else 0) + (1 if kind == "op" else 0)
        self.rows.append(
            LayerCost(
                name=name,
                type=type_,
                module=module,
                kind=kind,
                depth=depth,
                input_shapes=tuple(tuple(t.shape) for t in inputs),
                output_shape=_shape(out),
                params=sum(p.numel() for p in new_params),
                macs=cost.macs,
                flops=cost.flops,
                param_bytes=sum(p.numel() * p.element_size() for p in new_params),
                activation_bytes=sum(t.numel() * t.element_size() for t in outs),
                supported=not unsupported,
                ops=ops,
                alias_of=next((self.storage_row[k] for k in [_storage(outs[0])] if k in self.storage_row), None)
                if outs
                else None,
                sources=tuple(dict.fromkeys(self.producer[id(t)] for t in inputs if id(t) in self.producer)),
            )
        )
        for op in dict.fromkeys(unsupported):
            self.unsupported.append(Unsupported(name, op, f"no cost formula for op {op!r}"))
        self.steps.append(list(steps))
        for t in outs:
            self.producer[id(t)] = index
            self.storage_row.setdefault(_storage(t), index)

    # -- memory ---------------------------------------------------------------------------------
    def track(self, t: torch.Tensor) -> None:
        """Count ``t`` on its storage until Python frees it; a new storage is an allocation."""
        key = _storage(t)
        entry = self.storages.get(key)
        if entry is None:
            entry = self.storages[key] = [0, t.untyped_storage().nbytes()]
            self.live += entry[1]
            self._at(self.live)
        entry[0] += 1
        weakref.finalize(t, self._release, key, id(t))

    def _release(self, key: int, tid: int) -> None:
        self.producer.pop(tid, None)  # the id may now be reused by another tensor
        self.param_origin.pop(tid, None)
        for frame in self.stack:
            frame.act_ids.discard(tid)
        entry = self.storages[key]
        entry[0] -= 1
        if entry[0] == 0:
            self.live -= entry[1]
            del self.storages[key]
            self.storage_row.pop(key, None)

    def _workspace(self, name: str, outs: list) -> None:
        extra = workspace_bytes(name, sum(t.untyped_storage().nbytes() for t in outs))
        if extra:
            self._at(self.live + extra)

    def _at(self, live: int) -> None:
        if live > self.peak:
            self.peak, self.peak_at = live, self.where

    def failure_site(self) -> str:
        frame = self.stack[-1] if self.stack else None
        where = f"{frame.path} ({type(frame.module).__name__})" if frame and frame.path else "the model's forward"
        if frame is not None and frame.inputs:
            where += f" with input shapes {[list(t.shape) for t in frame.inputs]}"
        if self.failed_op is not None:
            op, shapes = self.failed_op
            where += f", in op {op} on shapes {[list(s) for s in shapes]}"
        return where


def _linear_meta(func, input, weight, bias=None):
    """``F.linear`` on meta tensors, by its shape rule. torch's own meta path for linear goes through the
    ``addmm`` decomposition, whose first call imports torch._dynamo: 3 to 5 s of every CLI run."""
    if input.device.type != "meta" or input.shape[-1] != weight.shape[-1]:
        return func(input, weight, bias)  # real data, or let torch raise its error
    return input.new_empty((*input.shape[:-1], weight.shape[0]))


def _batch_norm_meta(func, input, running_mean, running_var, weight=None, bias=None, training=False, *args, **kwargs):
    """``F.batch_norm`` on meta tensors: the output has the input's shape. torch's meta path goes through
    the ``native_batch_norm`` decomposition, whose first call imports torch._dynamo (about 1 s)."""
    channels = next((t.numel() for t in (weight, running_mean) if t is not None), None)
    if input.device.type != "meta" or input.dim() < 2 or (channels is not None and channels != input.shape[1]):
        return func(input, running_mean, running_var, weight, bias, training, *args, **kwargs)
    return input.new_empty(input.shape)


def _elementwise_meta(func, a, b, *args, **kwargs):
    """``a + b`` (and -, *, /, in place or not) on meta tensors, by broadcasting. torch's meta path goes
    through a primitive reference whose first call imports torch._dynamo (about 1 s)."""
    if not (isinstance(a, torch.Tensor) and a.device.type == "meta") or (
        isinstance(b, torch.Tensor) and b.device.type != "meta"
    ):
        return func(a, b, *args, **kwargs)
    try:
        shape = torch.broadcast_shapes(a.shape, b.shape if isinstance(b, torch.Tensor) else ())
    except RuntimeError:
        return func(a, b, *args, **kwargs)  # torch's own error
    name = getattr(func, "__name__", "")
    if name.endswith("_") and not name.endswith("__") or name.startswith("__i"):  # in place: returns a
        return a if shape == a.shape else func(a, b, *args, **kwargs)
    if name.startswith("__r"):  # 2 - x: the tensor is still the first argument here
        a, b = b, a
    return torch.empty(shape, dtype=torch.result_type(a, b), device="meta")


def _adaptive_avg_pool_meta(func, input, output_size):
    """``F.adaptive_avg_pool{1,2,3}d`` on meta tensors: the output is the requested size. torch's meta
    path decomposes to a mean whose first call imports torch._dynamo (about 1 s)."""
    dims = int(getattr(func, "__name__", "2d")[-2])
    size = (output_size,) * dims if isinstance(output_size, int) else tuple(output_size)
    if input.device.type != "meta" or input.dim() < dims + 1 or len(size) != dims or min(input.shape[-dims:]) < 1:
        return func(input, output_size)
    spatial = tuple(s if o is None else o for s, o in zip(input.shape[-dims:], size, strict=True))
    return input.new_empty((*input.shape[:-dims], *spatial))


_META_SHAPE = {
    "adaptive_avg_pool1d": _adaptive_avg_pool_meta,
    "adaptive_avg_pool2d": _adaptive_avg_pool_meta,
    "adaptive_avg_pool3d": _adaptive_avg_pool_meta,
    "linear": _linear_meta,
    "batch_norm": _batch_norm_meta,
    "add": _elementwise_meta,
    "sub": _elementwise_meta,
    "mul": _elementwise_meta,
}


def _integer_op(args: tuple, kwargs: dict, out: object) -> Cost:
    return Cost()


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
    crawl = _Crawl(params, axes=len(input_size) - 1)
    x = torch.empty((batch_size, *input_size), device="meta", dtype=compute_dtype)
    crawl.producer[id(x)] = -1
    crawl.storage_row[_storage(x)] = -1
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
        output_shape=_shape(out),
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
