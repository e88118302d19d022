"""The crawler: a ``TorchFunctionMode`` plus module hooks that turn every layer and op of a forward into rows.

A leaf module (no children), or a module with a registered module formula, becomes one row whose cost is
the sum of the ops it ran; ops called directly in a non-leaf module's ``forward`` (residual adds,
concatenations, ``torch.flatten``) become rows of their own, attributed to that module. The crawler
also follows the real Python lifetimes of the tensors forward makes, for the activation-memory peak.
``analysis.py`` sets it up and turns what it recorded into a ``CostReport``.
"""

from __future__ import annotations

import inspect
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from archcost.cost._registry import (
    Cost,
    NotCostable,
    apply_formula,
    bind,
    lookup,
    module_formula,
    op_entry,
    op_formula,
    op_name,
    tool_counts,
)
from archcost.cost.formulas._args import tensors
from archcost.cost.memory import workspace_bytes
from archcost.cost.meta_shapes import META_SHAPE
from archcost.cost.receptive import Unknown, spatial, step_of
from archcost.cost.record import LayerCost, OpCost, Unsupported
from archcost.errors import InternalError


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
    since: int = 0  # storages allocated before the call (``Crawl.allocations``): not new memory of its row
    parts: list = field(default_factory=list)  # OpCost of each op summed into the row


def storage_key(t: torch.Tensor) -> int:
    """Identity of the memory behind a tensor: views and in-place results share their input's."""
    return t.untyped_storage()._cdata


def _is_leaf(module: nn.Module) -> bool:
    """No children, or only the ``parametrizations`` that compute its weights (weight_norm, spectral_norm):
    such a layer is one row, its re-parametrised weights counted on it."""
    return all(name == "parametrizations" for name, _ in module.named_children())


def shape_of(value: object):
    """The output's shape, or the shapes of every tensor it holds: tuples, lists and dicts, and also dataclass
    fields (Hugging Face ``ModelOutput`` style) and plain objects' attributes (``torch.distributions``)."""
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    ts = tensors(value) or held_tensors(value)
    return tuple(tuple(t.shape) for t in ts)


def held_tensors(value: object) -> list[torch.Tensor]:
    """Every tensor ``value`` holds, each once, in order: through tuples, lists, dicts, dataclass fields and
    plain objects' attributes (``torch.distributions``), a few levels deep."""
    found: dict[int, torch.Tensor] = {}
    _held(value, found, 0)  # a module-level function: a recursive closure would hold ``found`` in a cycle
    return list(found.values())


def _held(v: object, found: dict, depth: int) -> None:
    import dataclasses

    if isinstance(v, torch.Tensor):
        found.setdefault(id(v), v)
    elif depth > 4 or v is None or isinstance(v, (str, bytes, int, float, bool, nn.Module, type)):
        return
    elif isinstance(v, (list, tuple)):
        for x in v:
            _held(x, found, depth + 1)
    elif isinstance(v, dict):
        for x in v.values():
            _held(x, found, depth + 1)
    elif dataclasses.is_dataclass(v):
        for f in dataclasses.fields(v):
            _held(getattr(v, f.name), found, depth + 1)
    elif hasattr(v, "__dict__") and not callable(v):
        for x in vars(v).values():
            _held(x, found, depth + 1)


class Crawl(TorchFunctionMode):
    """Records rows while the forward pass runs; one instance per analysis."""

    shortcuts = True  # meta shape rules (``META_SHAPE``); off where autograd must see the real ops

    def __init__(self, params: dict[int, torch.Tensor], axes: int) -> None:
        super().__init__()
        self.axes = axes  # spatial axes of the model input
        self.steps: list[list] = []  # per row: receptive-field geometry of its ops
        self.storage_row: dict[int, int] = {}  # storage of an output -> the row that created it
        self.params = params  # id -> meta parameter tensor
        self.counted: set[int] = set()
        #: id(module) -> the weights it holds outside its parameters (``held_weights``), unpacked before the
        #: forward (outside this mode); popped when the module's row counts them
        self.held: dict[int, list[tuple[int, int, str]]] = {}  # (elements, bytes as stored, dtype name)
        self.held_bytes: dict[str, int] = {}  # bytes of those weights by dtype
        #: id(parameter) -> bytes as the model stores it, where that is not its elements at its dtype (a
        #: torchao quantized weight, analysed as a plain float tensor of its shape)
        self.stored: dict[int, int] = {}
        #: id of each module whose MACs are integer MACs though its formula is the float layer's (torchao
        #: weights with quantized activations: ``analysis.integer_modules``)
        self.integer: set[int] = set()
        self.rows: list[LayerCost] = []
        self.unsupported: list[Unsupported] = []
        self.stack: list[_Frame] = []
        self.producer: dict[int, int] = {}  # id(tensor) -> row index, -1 for the model input
        self.param_origin: dict[int, frozenset[int]] = {}  # id(tensor) -> parameter ids it derives from
        # Memory timeline: storages alive now, from Python's own reference counting (a finalizer on every
        # tensor an op returns), so the peak follows the forward code's real lifetimes.
        self.storages: dict[int, list[int]] = {}  # storage -> [tensors alive on it, bytes]
        self.allocations = 0  # storages allocated so far
        self.born: dict[int, int] = {}  # live storage -> its allocation number (a row's output is new memory
        # only where its storage was allocated after the row began: views and in-place results are not)
        self.live = 0
        self.peak = 0
        self.peak_at = "(input)"
        self.where = "(input)"
        self.names: Counter[str] = Counter()
        self.failed_op: tuple[str, list] | None = None
        self.covers: list[_Cover] = []  # decomposed functions in progress outside covered modules
        self.leaf_ops = 0  # ops seen so far (a decomposed function that adds none is a leaf)
        self.reasons: dict[str, str] = {}  # op -> why it could not be costed, where a formula said so

    def param_bytes(self, p: torch.Tensor) -> int:
        """Bytes of parameter ``p`` as the model stores it (``stored``), else its elements at its dtype."""
        return self.stored.get(id(p), p.numel() * p.element_size())

    # -- module hooks ---------------------------------------------------------------------------
    def pre_hook(self, path: str):
        def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
            inside_covered = any(f.covered for f in self.stack)
            covered = not inside_covered and (module_formula(module) is not None or _is_leaf(module))
            inputs = tensors((args, kwargs))
            frame = _Frame(module, path, inputs, covered, act_ids={id(t) for t in inputs}, since=self.allocations)
            self.stack.append(frame)

        return hook

    def post_hook(self, module: nn.Module, args: tuple, kwargs: dict, out: object) -> None:
        frame = self.stack.pop()
        if not frame.covered:
            return
        formula = module_formula(module)
        try:
            cost = formula(module, tuple(frame.inputs), out) if formula is not None else frame.cost
        except Exception as exc:  # a module formula that raises is archcost's bug, not the user's input
            raise InternalError(
                f"the cost formula for layer {frame.path or '(model)'} ({type(module).__name__}) failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if id(module) in self.integer:
            cost = replace(cost, int_macs=cost.macs)
        own = [p for p in module.parameters() if id(p) in self.params]
        held = self.held.pop(id(module), None)
        if held:  # packed quantized weights: parameters priced at their own dtype, counted once per module
            for _, size, dtype in held:
                self.held_bytes[dtype] = self.held_bytes.get(dtype, 0) + size
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
            parts=frame.parts if formula is None else (),
            unsupported=[] if formula is not None else frame.unsupported,
            steps=frame.steps if formula is None else [(Unknown(type(module).__name__), ())],
            since=frame.since,
            held=held or (),
        )

    # -- ops ------------------------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = op_name(func)
        if _redispatch is not None and op_formula(name) is None and _composite(func):
            return self._decompose(_redispatch, name, func, types, args, kwargs)
        try:
            if name in _SAME_DTYPE:
                _check_dtypes(name, args)
            shortcut = META_SHAPE.get(name) if self.shortcuts else None
            out = shortcut(func, *args, **kwargs) if shortcut is not None else func(*args, **kwargs)
        except Exception:
            self.failed_op = (name, [tuple(t.shape) for t in tensors((args, kwargs))])
            raise
        out_tensors = tensors(out)
        if out_tensors:
            self._on_op(name, args, kwargs, out, out_tensors, func=func)
        return out

    def _decompose(self, redispatch: Callable, name: str, func, types, args: tuple, kwargs: dict):
        """Run a torch function implemented in Python on top of other torch functions (``F.normalize``,
        ``F.multi_head_attention_forward``, ``Tensor.norm``, a user's helper that goes through
        ``handle_torch_function``) with this mode active inside it, so the ops it runs are seen and costed.
        Inside a covered module they add to its row; elsewhere they add up to one row for the call, whose
        ``ops`` name them. A function that runs no torch op through the mode is a leaf without a formula.
        ``redispatch``: ``_redispatch`` (not None where torch has it)."""
        cover = None
        if not any(f.covered for f in self.stack) and not self.covers:
            frame = self.stack[-1] if self.stack else None
            ins = tensors((args, kwargs))
            acts = [t for t in ins if id(t) in self.producer]
            cover = _Cover(name, frame.path if frame else "", acts, {id(t) for t in acts}, origins=self._origins(ins))
            cover.since = self.allocations
            self.covers.append(cover)
        seen = self.leaf_ops
        try:
            with self:
                out = redispatch(func, types, args, kwargs)
        finally:
            if cover is not None:
                self.covers.pop()
        out_tensors = tensors(out)
        if not out_tensors:
            return out
        if self.leaf_ops == seen:  # nothing inside reached torch through the mode: no formula, no parts
            self._on_op(name, args, kwargs, out, out_tensors, func=func)
        elif cover is not None:
            self._cover_row(cover, out, out_tensors)
        return out

    def _origins(self, ins: list) -> frozenset[int]:
        """Parameters the tensors ``ins`` are, or were computed from."""
        return frozenset().union(
            *(self.param_origin.get(id(t), frozenset()) for t in ins), (id(t) for t in ins if id(t) in self.params)
        )

    def _cost(self, name: str, formula, args: tuple, kwargs: dict, out: object, unsupported: list) -> Cost:
        """The op's cost by its formula; no formula, or one that says this call cannot be costed: listed in
        ``unsupported`` and 0. A formula that fails is archcost's bug (``InternalError``)."""
        if formula is None:
            unsupported.append(name)
            return Cost()
        try:
            return apply_formula(name, formula, args, kwargs, out)
        except NotCostable as why:
            self.reasons[name] = f"{name}: {why}"
            unsupported.append(name)
            return Cost()

    def _part(self, name: str, func, args: tuple, kwargs: dict, out: object, unsupported: list) -> OpCost:
        """The op's cost (``_cost``) with its arguments bound by name (``bind``: by the signature of ``func``,
        the callable that ran), and what fvcore and FlopCounterMode count for it (its catalogue entry)."""
        formula, entry = lookup(name)
        if func is not None and formula is not None:
            kwargs = bind(func, name, args, kwargs)
        cost = self._cost(name, formula, args, kwargs, out, unsupported)
        if entry is None or (entry.fvcore is None and entry.flop_counter is None):
            fvcore = flop_counter = 0  # neither tool has a formula for it
        else:
            fvcore, flop_counter = tool_counts(entry, args, kwargs, out, cost)
        first = out if isinstance(out, torch.Tensor) else tensors(out)[0]
        return OpCost(name, cost.macs, cost.flops, fvcore, flop_counter, first.numel())

    def _on_op(self, name: str, args: tuple, kwargs: dict, out: object, out_tensors: list, func=None) -> None:
        self.leaf_ops += 1
        since = self.allocations
        frame = self.stack[-1] if self.stack else None
        covering = next((f for f in self.stack if f.covered), None)
        here = self.covers[0].name if self.covers else name
        self.where = covering.path if covering is not None else f"{frame.path}/{here}" if frame and frame.path else here
        for t in out_tensors:
            if id(t) not in self.params:
                self.track(t)
        self._workspace(name, out_tensors)
        ins = tensors((args, kwargs))
        origins = self._origins(ins)
        covered = next((f for f in self.stack if f.covered), None)
        cover = covered if covered is not None else self.covers[0] if self.covers else None
        if cover is not None:
            on_path = [t for t in ins if id(t) in cover.act_ids]
            if on_path:
                cover.steps.append(self._step(name, args, kwargs, on_path[0], out_tensors[0]))
                cover.act_ids.update(id(t) for t in out_tensors)
            elif not origins and not any(id(t) in self.producer for t in ins):
                return  # bookkeeping on buffers or constants (num_batches_tracked += 1): not the model's data
            else:
                for t in out_tensors:  # work on parameters (e.g. standardising a weight): follow it
                    self.param_origin[id(t)] = origins
            if isinstance(cover, _Cover):
                cover.origins |= origins
            elif module_formula(cover.module) is not None:
                return  # the module's own formula costs the whole call
            cover.ops.append(name)
            part = self._part(name, func, args, kwargs, out, cover.unsupported)
            cover.parts.append(part)
            cover.cost = cover.cost + Cost(part.macs, part.flops)
            return
        acts = [t for t in ins if id(t) in self.producer]
        if id(out_tensors[0]) in self.params or (not acts and not origins):
            return  # reading a parameter, or creating a constant: no work on activations
        unsupported: list[str] = []
        part = self._part(name, func, args, kwargs, out, unsupported)
        cost = Cost(part.macs, part.flops)
        if not acts:
            # Work on parameters only (e.g. building a weight): follow it, row only if it costs.
            for t in out_tensors:
                self.param_origin[id(t)] = origins
            if not unsupported and cost == Cost():
                return
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
            parts=(part,),
            unsupported=unsupported,
            steps=[self._step(name, args, kwargs, acts[0], out_tensors[0])] if acts else [],
            since=since,
        )

    def _cover_row(self, cover: _Cover, out: object, out_tensors: list) -> None:
        """The row of a decomposed function called outside any covered module: the sum of its parts."""
        if not cover.inputs and not cover.origins:
            return  # computed from constants only
        if not cover.inputs:
            for t in out_tensors:
                self.param_origin[id(t)] = cover.origins
            if not cover.unsupported and cover.cost == Cost():
                return
        self._add_row(
            base=f"{cover.path}/{cover.name}" if cover.path else cover.name,
            type_=cover.name,
            module=cover.path,
            kind="op",
            inputs=cover.inputs,
            out=out,
            cost=cover.cost,
            param_ids=set(cover.origins),
            ops=tuple(cover.ops),
            parts=cover.parts,
            unsupported=cover.unsupported,
            steps=cover.steps,
            since=cover.since,
        )

    def _step(self, name: str, args: tuple, kwargs: dict, x: torch.Tensor, out: torch.Tensor) -> tuple:
        shape = tuple(x.shape)
        entry = op_entry(name)
        if entry is not None and entry.geometry is not None:  # the catalogue's own geometry for the op
            return entry.geometry(args, kwargs, shape, tuple(out.shape), self.axes), spatial(shape, self.axes)
        return step_of(name, args, kwargs, shape, tuple(out.shape), self.axes), spatial(shape, self.axes)

    # -- rows -----------------------------------------------------------------------------------
    def _add_row(
        self,
        *,
        base,
        type_,
        module,
        kind,
        inputs,
        out,
        cost,
        param_ids,
        ops,
        unsupported,
        steps,
        since,
        parts=(),
        held=(),
    ):
        new_params = [self.params[i] for i in sorted(param_ids - self.counted) if i in self.params]
        self.counted.update(id(p) for p in new_params)
        self.names[base] += 1
        name = base if self.names[base] == 1 else f"{base}#{self.names[base]}"
        outs = tensors(out)
        new, shared = self._output_bytes(outs, since)
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
                params=sum(p.numel() for p in new_params) + sum(n for n, _, _ in held),
                trainable_params=sum(p.numel() for p in new_params if p.requires_grad),
                macs=cost.macs,
                int_macs=cost.int_macs,
                flops=cost.flops,
                param_bytes=sum(self.param_bytes(p) for p in new_params) + sum(size for _, size, _ in held),
                activation_bytes=new,
                view_bytes=shared,
                supported=not unsupported,
                ops=ops,
                parts=tuple(parts),
                alias_of=next((self.storage_row[k] for k in [storage_key(outs[0])] if k in self.storage_row), None)
                if outs
                else None,
                sources=tuple(dict.fromkeys(self.producer[id(t)] for t in inputs if id(t) in self.producer)),
            )
        )
        for op in dict.fromkeys(unsupported):
            self.unsupported.append(Unsupported(name, op, self.reasons.get(op, f"no cost formula for op {op!r}")))
        self.steps.append(list(steps))
        for t in outs:
            self.producer[id(t)] = index
            self.storage_row.setdefault(storage_key(t), index)

    # -- memory ---------------------------------------------------------------------------------
    def _output_bytes(self, outs: list[torch.Tensor], since: int) -> tuple[int, int]:
        """Bytes of the storages behind ``outs`` allocated after allocation number ``since`` (new memory),
        and bytes of the outputs on storage that existed before (views, in-place results, parameters)."""
        new, shared, seen = 0, 0, set()
        for t in outs:
            key = storage_key(t)
            if self.born.get(key, 0) > since:
                if key not in seen:
                    seen.add(key)
                    new += t.untyped_storage().nbytes()
            else:
                shared += t.numel() * t.element_size()
        return new, shared

    def track(self, t: torch.Tensor) -> None:
        """Count ``t`` on its storage until Python frees it; a new storage is an allocation."""
        key = storage_key(t)
        entry = self.storages.get(key)
        if entry is None:
            entry = self.storages[key] = [0, t.untyped_storage().nbytes()]
            self.allocations += 1
            self.born[key] = self.allocations
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
            self.born.pop(key, None)
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


@dataclass
class _Cover:
    """A decomposed function called outside any covered module: its parts add up to one row."""

    name: str
    path: str
    inputs: list[torch.Tensor]  # activations among its arguments
    act_ids: set[int]  # tensors on the path from them
    cost: Cost = Cost()
    ops: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    steps: list = field(default_factory=list)
    origins: frozenset[int] = frozenset()
    parts: list = field(default_factory=list)
    since: int = 0  # storages allocated before the call (``Crawl.allocations``)


def _composite(func) -> bool:
    """A torch function written in Python (its body calls other torch functions), not a C++ builtin."""
    return inspect.isfunction(func) or inspect.ismethod(func)


#: torch's "skip one level of __torch_function__ and call the function" (``torch.overrides.redispatch_function``
#: from torch 2.13; its C++ core before that). None on older torch: composites are then leaves.
_redispatch = getattr(torch.overrides, "redispatch_function", None) or getattr(
    torch._C, "_skip_one_hop_torch_function", None
)


#: ops whose tensors must share one dtype: torch refuses an int64 input to a float convolution on the CPU and
#: GPU, but its meta kernels accept it, so the analysis says so itself (the error of the real run)
_SAME_DTYPE = frozenset(
    {"conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "linear"}
)


def _check_dtypes(name: str, args: tuple) -> None:
    """Raise as torch's real kernels would when ``name``'s input and weight dtypes differ (meta does not)."""
    if len(args) < 2 or not all(isinstance(a, torch.Tensor) for a in args[:2]):
        return
    x, w = args[0], args[1]
    if x.device.type == "meta" and x.dtype != w.dtype and not (x.is_floating_point() and w.is_floating_point()):
        raise RuntimeError(
            f"{name} got an input of dtype {str(x.dtype).removeprefix('torch.')} and a weight of dtype "
            f"{str(w.dtype).removeprefix('torch.')}: input and weight must have the same dtype"
        )
