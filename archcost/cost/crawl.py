"""The crawler: a ``TorchFunctionMode`` plus module hooks that turn every layer and op of a forward into rows.

A leaf module (no children), or a module with a registered module formula, becomes one row whose cost is
the sum of the ops it ran; ops called directly in a non-leaf module's ``forward`` (residual adds,
concatenations, ``torch.flatten``) become rows of their own, attributed to that module. The crawler
also follows the real Python lifetimes of the tensors forward makes, for the activation-memory peak.
``analyze.py`` sets it up and turns what it recorded into a ``CostReport``.
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
from archcost.cost.meta_shapes import META_SHAPE
from archcost.cost.receptive import Unknown, spatial, step_of
from archcost.cost.record import LayerCost, Unsupported


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


def storage_key(t: torch.Tensor) -> int:
    """Identity of the memory behind a tensor: views and in-place results share their input's."""
    return t.untyped_storage()._cdata


def shape_of(value: object):
    ts = tensors(value)
    if len(ts) == 1 and isinstance(value, torch.Tensor):
        return tuple(ts[0].shape)
    return tuple(tuple(t.shape) for t in ts)


class Crawl(TorchFunctionMode):
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
            shortcut = META_SHAPE.get(op_name(func))
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
                output_shape=shape_of(out),
                params=sum(p.numel() for p in new_params),
                macs=cost.macs,
                flops=cost.flops,
                param_bytes=sum(p.numel() * p.element_size() for p in new_params),
                activation_bytes=sum(t.numel() * t.element_size() for t in outs),
                supported=not unsupported,
                ops=ops,
                alias_of=next((self.storage_row[k] for k in [storage_key(outs[0])] if k in self.storage_row), None)
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
            self.storage_row.setdefault(storage_key(t), index)

    # -- memory ---------------------------------------------------------------------------------
    def track(self, t: torch.Tensor) -> None:
        """Count ``t`` on its storage until Python frees it; a new storage is an allocation."""
        key = storage_key(t)
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


def _integer_op(args: tuple, kwargs: dict, out: object) -> Cost:
    return Cost()
