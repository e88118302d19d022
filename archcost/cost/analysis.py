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

import contextlib
import math
import os
from typing import TypeVar

import torch
from torch import nn

from archcost.cost._registry import formula_overrides, held_weights
from archcost.cost.crawl import Crawl, shape_of, storage_key
from archcost.cost.formulas._args import tensors
from archcost.cost.inputs import InputSpec, assemble, check_signature, describe_spec, input_specs, make_tensor
from archcost.cost.precision import check_bits, with_precision
from archcost.cost.receptive import propagate, with_field
from archcost.cost.record import CostReport, LayerCost
from archcost.cost.untouched import has_lazy, is_lazy, lazy_copy, private_state, refuse_torchscript, unwrap
from archcost.cost.workload import Workload
from archcost.errors import AnalysisError, InputError, InternalError, first_line
from archcost.units import DTYPES, bytes_by_dtype, format_bytes, inner_tensors, stored_bytes


def _parse_dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return DTYPES[dtype]
    except KeyError:
        raise InputError(f"unknown dtype {dtype!r}", f"use one of {', '.join(DTYPES)}") from None


_T = TypeVar("_T", bound=torch.Tensor)
DEVICES = ("auto", "meta", "cpu")


def analyze(
    model: nn.Module | Workload | str,
    input_size: object = None,
    batch_size: int = 1,
    dtype: torch.dtype | str = torch.float32,
    *,
    inputs: object = None,
    kwargs: dict | None = None,
    name: str | None = None,
    training: bool = False,
    device: str = "auto",
    max_memory: int | None = None,
    mode: str = "infer",
    optimizer: str = "adam",
    batch_dim: int = 0,
    int_range: tuple[int, int] | None = None,
    formulas: dict | None = None,
    weight_bits: int | None = None,
    act_bits: int | None = None,
    first_last_bits: int | None = None,
) -> CostReport:
    """Per-layer params, MACs, FLOPs and bytes of ``model`` on its inputs.

    Inputs (see ``archcost.cost.inputs``): ``input_size`` is one shape without the batch (default
    ``(3, 224, 224)``), a ``(dtype, shape)`` pair or spec string (``"int64:77"``), or a list of those, one
    per positional input; ``inputs=`` takes example tensors (a tensor, a tuple, or a dict of keyword
    inputs; their shapes include the batch); ``kwargs=`` passes keyword inputs (tensors or plain values).
    Floating inputs and parameters take ``dtype``; ``batch_size`` is prepended to every shape, or put at
    ``batch_dim`` (or where a spec string's ``B`` stands). ``int_range=(low, high)``: integer inputs of a CPU
    run take seeded random values in ``[low, high)`` instead of zeros. ``model`` may instead be a
    ``archcost.cost.workload.Workload`` (model and inputs in one object; the other input arguments are then
    not given), or a model spec string as the commands take it (``"resnet18"``, ``"nets.py:Net"``,
    ``"torchvision:vit_b_16"``: built on meta, with its own default input unless ``input_size`` is given). A
    ``torch.compile``d module is analysed through its original module (said in ``notes``).

    Where it runs: on the meta device (nothing computed, however large the batch or image). A forward that
    needs values (``.item()``, ``bool(tensor)``, ``.tolist()``, mask indexing, ``nonzero``, NMS, a tensor
    made on the CPU inside forward) is analysed again on the CPU with real tensors (the model's weights,
    seeded random floats, zero integers, or the values of ``inputs=``) when ``device="auto"`` (the
    default); ``device="cpu"`` always runs there, ``device="meta"`` never. ``report.analysed_on`` and
    ``report.analysed_on_because`` say which and why; a CPU run needing more than ``max_memory`` bytes
    (default: a quarter of the machine's RAM), estimated from the meta pass, is refused.

    The model is left as it was: parameters, buffers, attributes cached by forward, ``training`` flags,
    dtype and device, even if forward raises. ``nn.DataParallel`` / ``DistributedDataParallel`` are
    unwrapped; lazy modules are materialised on a private copy. ``training=True`` analyses the
    training-mode forward (batch statistics, active dropout).

    ``mode="train"``: the training-mode forward, plus per row the backward MACs/FLOPs (from autograd's real
    backward on meta tensors) and the ``optimizer``'s FLOPs (sgd, momentum, adam, adamw), and the peak bytes
    of a training step (``archcost.cost.step``), on the same crawl, state and guards as inference: every
    input kind, the CPU fallback, activation checkpointing (recompute counted in backward, said in ``notes``),
    one seeded draw of forward's random numbers for forward and backward alike.

    ``weight_bits=``/``act_bits=`` (1..32): price the model as if quantized to those widths
    (``archcost.cost.precision.with_precision``: bytes and BOPs = MACs x weight bits x activation bits per row
    and in the totals, params and MACs unchanged); ``first_last_bits=``: the width of the first and last
    layers with MACs (default: the same).

    ``formulas={key: fn}``: cost formulas for this call only, replacing the registered ones (keys as
    ``register_cost`` takes them: a torch callable, an op name, an ``nn.Module`` class; fvcore's
    ``set_op_handle``). The registry is unchanged for every other call.

    Raises ``InputError`` (bad inputs, TorchScript, a CPU run over the memory limit), ``AnalysisError``
    (forward failed; the message names the layer, op and shapes) and ``InternalError`` (archcost's bug).
    """
    if formulas:
        call = {k: v for k, v in locals().items() if k != "formulas"}
        with formula_overrides(formulas):
            return analyze(**call)
    check_bits(weight_bits, "weight_bits")
    check_bits(act_bits, "act_bits")
    check_bits(first_last_bits, "first_last_bits")
    if weight_bits is not None or act_bits is not None or first_last_bits is not None:
        if mode == "train":
            raise InputError("weight_bits/act_bits price an inference pass", "leave out mode='train' or the bit widths")
        call = {k: v for k, v in locals().items() if k not in ("weight_bits", "act_bits", "first_last_bits")}
        return with_precision(analyze(**call), weight_bits, act_bits, first_last_bits)
    notes: list[str] = []
    if isinstance(model, str):  # a spec as the commands take it: a zoo name, file.py:factory, torchvision:NAME
        model = Workload.of(model, input_size, batch_size, dtype, inputs=inputs, kwargs=kwargs, batch_dim=batch_dim,
                            int_range=int_range, max_memory=max_memory, name=name)  # fmt: skip
    if isinstance(model, Workload):
        work = model.load("meta") if not isinstance(model.model, nn.Module) else model.load()
        model, name = work.module, name or work.name
        specs, plain = list(work.specs), dict(work.plain)
        batch_size, dtype, int_range = work.batch_size, work.dtype, work.int_range
        device, max_memory = work.device if device == "auto" else device, max_memory or work.max_memory
        notes.extend(work.notes)
    else:
        specs, plain = input_specs(input_size, inputs, kwargs, batch_dim=batch_dim)
    model, compiled = _uncompiled(model)
    if compiled:
        notes.append(
            "analysed through the original module of this torch.compile'd model (archcost's hooks are not "
            "compiled); the compiled graph runs the same ops, fused kernels aside"
        )
    dtype = _parse_dtype(dtype)
    if mode not in ("infer", "train"):
        raise InputError(f"unknown mode {mode!r}", "use mode='infer' (the forward) or 'train' (+ backward, optimizer)")
    training = training or mode == "train"
    if device not in DEVICES:
        raise InputError(f"unknown analysis device {device!r}", f"use one of {', '.join(DEVICES)}")
    if batch_size < 1:
        raise InputError(f"batch size must be >= 1, got {batch_size}", "give a batch size >= 1")
    model = unwrap(model)
    refuse_torchscript(model)
    check_signature(model, specs, plain)
    quantized = quantized_layers(model)
    if quantized:
        what = ", ".join(quantized[:3]) + (f" and {len(quantized) - 3} more" if len(quantized) > 3 else "")
        if training:
            raise InputError(
                f"the model holds quantized layers ({what}): quantized kernels have no backward, so it cannot be "
                "analysed in training mode",
                "analyse it for inference (leave out --mode train / mode='train'), or analyse its float original",
            )
        if device == "meta":
            raise InputError(
                f"the model holds quantized layers ({what}), whose packed weights exist only on the CPU",
                "analyse on the CPU: --device cpu or --device auto (the default); in Python device='cpu'",
            )
        device = "cpu"
    kept = _stored_precision(model, dtype)
    if kept is not None:
        notes.append(
            f"parameters and buffers priced at the dtypes the model stores ({', '.join(kept[1])}), floating inputs "
            f"given as {dtype_name_of(kept[0])}; --dtype (dtype=) other than float32 casts the floating tensors"
        )
        dtype = kept[0]
    # float dtypes apply to parameters; int8 is a storage format: analyse in float32, bytes at 1 each.
    compute_dtype = dtype if dtype.is_floating_point else torch.float32
    target = model
    if has_lazy(model):
        target = lazy_copy(model)
        _materialise(target, specs, plain, batch_size, compute_dtype, training)
    run = _Run(target, specs, plain, batch_size, compute_dtype, training, int_range, keep=kept is not None)

    because = None
    if device != "cpu":
        try:
            crawl, out = run.forward("meta")
        except _Failed as failed:
            if not failed.needs_data:
                raise _explained(run, failed) from failed.cause
            if device == "meta":
                raise AnalysisError(
                    f"the forward needs real data: {failed.reason}",
                    "analyse on the CPU: --device cpu or --device auto (the default); in Python device='cpu'",
                ) from failed.cause
            because = f"{failed.reason}. The figures are for this input's data: other data may take other branches"
            _check_memory(run.cpu_bytes(failed.crawl.peak), max_memory)
    if device == "cpu" or because is not None:
        if because is None:
            because = (
                f"the model holds torch.ao quantized layers ({what}), whose packed weights and kernels exist only "
                "on the CPU; their parameters are read from the packed weights, the caller's model is not changed"
                if quantized
                else "asked for (device='cpu')"
            )
            _check_memory(run.cpu_bytes(0), max_memory)
        try:
            crawl, out = run.forward("cpu")
        except _Failed as failed:
            raise _explained(run, failed) from failed.cause
    report = _report(
        run, crawl, out, model_name=name or type(model).__name__, dtype=dtype, on="cpu" if because else "meta",
        because=because,
    )  # fmt: skip
    report.notes.extend(notes)
    if mode == "train":
        return _train(run, report, dtype=dtype, device=device, max_memory=max_memory, optimizer=optimizer)
    return report


def _train(run: _Run, report: CostReport, *, dtype, device: str, max_memory: int | None, optimizer: str) -> CostReport:
    """``report`` with one training step of ``run`` (``archcost.cost.step``), on the same crawl, state and
    guards: where the report was analysed (meta, or the CPU); a step that needs values on meta runs on the
    CPU when ``device="auto"``, the forward analysed again there so that both see the same data and draws."""
    from archcost.cost.step import STEP_OPTIONS, optimizer_rule, train_step, with_training

    rule = optimizer_rule(optimizer)
    if not dtype.is_floating_point:
        raise InputError(f"a training step needs a floating-point dtype, not {dtype}", "use float32 or bfloat16")
    options = STEP_OPTIONS.get()
    foreach, cost = (options.foreach, options.cost) if options else (False, True)  # train_step's defaults
    try:
        sim = train_step(run, report.analysed_on, optimizer=optimizer, foreach=foreach, cost=cost)
    except _Failed as failed:
        if not failed.needs_data:
            raise failed.error(run) from failed.cause
        if device == "meta":
            raise AnalysisError(
                f"the training step needs real data: {failed.reason}",
                "analyse on the CPU: --device cpu or --device auto (the default); in Python device='cpu'",
            ) from failed.cause
        weights = sum(r.param_bytes for r in report.layers)
        _check_memory(run.cpu_bytes(sum(r.activation_bytes for r in report.layers)) + (1 + rule.states) * weights,
                      max_memory)  # fmt: skip
        because = f"{failed.reason} (in the training step)"
        try:
            crawl, out = run.forward("cpu")
            again = _report(run, crawl, out, model_name=report.model, dtype=dtype, on="cpu", because=because)
            sim = train_step(run, "cpu", optimizer=optimizer, foreach=foreach, cost=cost)
        except _Failed as failed_cpu:
            raise failed_cpu.error(run) from failed_cpu.cause
        from dataclasses import replace

        kept = [n for n in report.notes if n != DREW_NOTE]
        report = replace(again, notes=[*again.notes, *(n for n in kept if n not in again.notes)])
    if options is not None:
        options.result = sim
    return with_training(report, sim, optimizer)


def _uncompiled(model: nn.Module) -> tuple[nn.Module, bool]:
    """The module a ``torch.compile``d wrapper holds (``_orig_mod``), and whether it was one."""
    original = getattr(model, "_orig_mod", None)
    if isinstance(original, nn.Module) and type(model).__name__ == "OptimizedModule":
        return original, True
    return model, False


def _explained(run: _Run, failed: _Failed) -> Exception:
    """The error of a failed forward: an input mistake when the inputs explain it (``explain_inputs``),
    else the failure as the forward reported it."""
    from archcost.cost.workload import explain_inputs

    if isinstance(failed.cause, (InputError, AnalysisError)):
        return failed.cause
    return explain_inputs(run.model, run.specs, run.int_range) or failed.error(run)


class _Failed(Exception):
    """Forward raised during an analysis run: the cause, where, and whether values were what it needed."""

    def __init__(self, cause: BaseException, crawl: Crawl, device: str, phase: str = "forward") -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.crawl = crawl
        self.phase = phase  # forward, or the training step's backward / optimizer
        text = str(cause).strip()
        self.detail = first_line(cause)
        self.needs_data = device == "meta" and (
            isinstance(cause, NotImplementedError) or "meta" in text.lower() or _op(crawl) in _NEEDS_DATA
        )
        frame = crawl.stack[-1] if crawl.stack else None
        if frame is None:
            where = "forward" if phase == "forward" else f"the training step's {phase}"
        else:
            where = (
                f"{frame.path} ({type(frame.module).__name__})"
                if frame.path
                else f"{type(frame.module).__name__}.forward"
            )
        op = _op(crawl)
        self.reason = f"{_op_label(op)} in {where}" if op else f"{self.detail} in {where}"

    def error(self, run: _Run) -> Exception:
        if isinstance(self.cause, InternalError):
            return self.cause
        if self.phase == "forward":
            return AnalysisError(f"the forward pass failed in {self.crawl.failure_site()}: {self.detail}", run.hint())
        site = self.crawl.failure_site() if self.crawl.stack else "autograd's backward"
        if self.phase == "backward" and self.crawl.stack:
            site += " (the forward that activation checkpointing re-runs in backward)"
        if self.phase == "optimizer":
            site = "the optimizer's step"
        return AnalysisError(f"the training step's {self.phase} failed in {site}: {self.detail}", run.hint())


#: ops whose result needs the tensor's values (they cannot run on meta tensors).
_NEEDS_DATA = {"item", "bool", "tolist", "nonzero", "numpy", "float", "int", "index", "len", "masked_select"}


def _op(crawl: Crawl) -> str | None:
    return crawl.failed_op[0] if crawl.failed_op else None


def _op_label(op: str) -> str:
    return {"bool": "bool(tensor)", "getitem": "indexing (tensor[mask])", "len": "len(tensor)"}.get(
        op, f"Tensor.{op}()" if op in {"item", "tolist", "numpy", "nonzero"} else f"{op}()"
    )


class _Run:
    """One model, its inputs and settings; ``forward(device)`` crawls it on meta or on the CPU."""

    def __init__(self, model, specs, plain, batch_size, dtype, training, int_range=None, keep=False) -> None:
        self.model, self.specs, self.plain = model, specs, plain
        self.keep = keep  # parameters and buffers keep their own dtypes (a model stored at other precisions)
        self.batch_size, self.dtype, self.training = batch_size, dtype, training
        self.int_range = int_range  # integer inputs of a CPU run: seeded values in [low, high), else zeros
        self.param_names = {k for k, _ in model.named_parameters()}
        #: parameters and buffers held as wrapper tensor subclasses (torchao): priced at their inner tensors
        self.wrapped = {k: t for k, t in [*model.named_parameters(), *model.named_buffers()] if is_wrapper(t)}
        self.state: dict[str, torch.Tensor] = {}
        self.axes = _spatial_axes(specs)
        self.drew = False  # a forward drew random numbers (``_seeded``)

    def tensors(self, device: str) -> tuple[list, dict]:
        """Forward's ``(args, kwargs)`` on ``device`` (tuple and dict arguments put together; the plain
        keyword values are ``self.plain``, not included)."""
        generator = torch.Generator().manual_seed(0) if device == "cpu" else None
        made = [make_tensor(s, self.batch_size, self.dtype, device, generator, self.int_range) for s in self.specs]
        self.made = made
        return assemble(self.specs, made)

    def forward(self, device: str, step=None) -> tuple[Crawl, object]:
        """Crawl forward on ``device`` (meta or cpu) on private tensors, under the guards of
        ``private_state`` and one seeded draw of torch's CPU generator (``_seeded``). With ``step`` (an
        ``archcost.cost.step.StepPlan``), forward runs with autograd on and the step's backward and
        optimizer run inside the same guards and ``functional_call`` (so a checkpointed forward re-run in
        backward sees the analysis tensors too). Raises ``_Failed``."""
        self.state = _state(self.model, device, None if self.keep else self.dtype)
        params = {id(t): t for k, t in self.state.items() if k in self.param_names}
        crawl = Crawl(params, axes=self.axes) if step is None else step.crawl(params, self.axes)
        crawl.held = held_by_module(self.model)
        crawl.stored = {id(self.state[k]): stored_bytes(t) for k, t in self.wrapped.items() if k in self.state}
        crawl.integer = integer_modules(self.model)
        args, kwargs = self.tensors(device)
        made = tensors((args, kwargs))  # every input tensor, also those inside tuple and dict arguments
        for t in made:
            crawl.producer[id(t)] = -1
            crawl.storage_row[storage_key(t)] = -1
            crawl.track(t)
        self.first = made[0]
        handles = []
        try:
            with private_state(self.model, device), _seeded(self):
                self.model.train(self.training)
                for path, m in self.model.named_modules():
                    handles.append(m.register_forward_pre_hook(crawl.pre_hook(path), with_kwargs=True, prepend=True))
                    handles.append(m.register_forward_hook(crawl.post_hook, with_kwargs=True))
                if step is not None:
                    out = step.run(self.model, self.state, self.param_names, args, {**kwargs, **self.plain}, made,
                                   handles, device)  # fmt: skip
                else:
                    with torch.no_grad(), crawl:
                        out = torch.func.functional_call(
                            self.model, self.state, tuple(args), {**kwargs, **self.plain}, tie_weights=True,
                            strict=False,
                        )  # fmt: skip
        except Exception as exc:
            if step is None:
                raise _Failed(exc, crawl, device) from exc
            if isinstance(exc, InputError):
                raise  # the step's own verdict on the model (nothing to train)
            raise _Failed(exc, step.crawl_now, device, step.phase) from exc
        finally:
            for h in handles:
                h.remove()
        return crawl, out

    def cpu_bytes(self, activation_peak: int) -> int:
        """Memory a CPU run needs: parameters and buffers at the analysis dtype, the inputs, and the
        activation peak the meta pass saw before it stopped."""
        size = torch.empty((), dtype=self.dtype).element_size()
        weights = sum(t.numel() * (size if t.is_floating_point() else t.element_size()) for t in _tensors(self.model))
        ins = sum(math.prod(s.full_shape(self.batch_size)) * size for s in self.specs)
        return weights + ins + activation_peak

    def hint(self) -> str:
        given = ", ".join(describe_spec(s) for s in self.specs)
        shapes = ", ".join(f"{s.full_shape(self.batch_size)}" for s in self.specs)
        text = f"check the inputs: --input-size {given} was understood as shape {shapes} (batch first)"
        first = _first_layer(self.model)
        if first:
            text += f"; {first}"
        return text


#: the seed of torch's CPU generator during every analysis forward (and training step)
SEED = 0

DREW_NOTE = (
    f"forward drew random numbers (torch.rand, dropout or bernoulli on real tensors): archcost seeds torch's CPU "
    f"generator with {SEED} for each run, so these figures are one draw, the same on every analysis, and a "
    "training step's forward and backward run on that one draw; other draws may take other branches"
)


@contextlib.contextmanager
def _seeded(run: _Run):
    """Forward draws from torch's CPU generator seeded with ``SEED``; the caller's generator state is put
    back afterwards. ``run.drew`` says whether forward drew anything."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(SEED)
        start = torch.default_generator.get_state()
        try:
            yield
        finally:
            run.drew = run.drew or not torch.equal(torch.default_generator.get_state(), start)


def _spatial_axes(specs: list[InputSpec]) -> int:
    """Spatial axes of the first input (receptive fields follow it): CxHxW -> 2; token ids -> 0."""
    first = specs[0]
    if first.example is not None:
        return max(first.example.dim() - 2, 0)
    return max(len(first.shape) - 1, 0) if first.dtype is None or first.dtype.is_floating_point else 0


def _first_layer(model: nn.Module) -> str:
    """What the model's first layer expects, for error hints."""
    for path, m in model.named_modules():
        for attr, what in (("in_channels", "input channels"), ("in_features", "input features")):
            value = getattr(m, attr, None)
            if isinstance(value, int):
                return f"its first layer {path or type(m).__name__} ({type(m).__name__}) expects {value} {what}"
        if isinstance(m, nn.Embedding):
            return f"its first layer {path} is an embedding of {m.num_embeddings} tokens: give int64:LENGTH"
    return ""


def _tensors(model: nn.Module) -> list[torch.Tensor]:
    return [*model.parameters(), *model.buffers()]


def _state(model: nn.Module, device: str, dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    """The parameters and buffers forward runs with: empty on meta; on the CPU copies of the model's own
    values (random normals where the model itself is on meta), never the caller's tensors. Floating tensors
    take ``dtype``; with None each keeps its own."""
    state: dict[str, torch.Tensor] = {}
    generator = torch.Generator().manual_seed(0)
    for key, t in [*model.named_parameters(), *model.named_buffers()]:
        target = dtype if t.is_floating_point() and dtype is not None else t.dtype
        if device == "meta":
            state[key] = torch.empty(t.shape, device="meta", dtype=target)  # not empty_like: it imports sympy
        elif is_wrapper(t):  # a torchao quantized weight: forward on its float values costs the same
            values = t.dequantize() if callable(getattr(t, "dequantize", None)) else None
            state[key] = (
                values.detach().to("cpu", target).clone()
                if isinstance(values, torch.Tensor) and not is_wrapper(values)
                else (torch.randn(t.shape, generator=generator) * 0.02).to(target)
            )
        elif t.device.type == "meta":
            state[key] = (
                (torch.randn(t.shape, generator=generator) * 0.02).to(target)
                if target.is_floating_point
                else torch.zeros(t.shape, dtype=target)
            )
        else:
            state[key] = t.detach().to("cpu", target, copy=True)
        if t.requires_grad:  # as the model has it: rows count trainable and frozen parameters from this
            state[key].requires_grad_(True)
    return state


#: the floating dtypes kernels compute in: a model stored in another (float8) gets float32 inputs
_COMPUTE = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def dtype_name_of(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _stored_precision(model: nn.Module, dtype: torch.dtype) -> tuple[torch.dtype, list[str]] | None:
    """Where ``dtype`` is the default float32 and the model stores floating tensors in other dtypes (a
    ``.half()`` model, fp16 weights beside fp32 norms, float8 weights): the dtype floating inputs take (the
    compute dtype most of its floating elements are stored in; float32 if none) and the floating dtypes
    seen. None: a float32 model, or another dtype asked for (every floating tensor is cast to it)."""
    if dtype != torch.float32:
        return None
    counts: dict[torch.dtype, int] = {}
    for t in _tensors(model):
        if not is_lazy(t) and t.is_floating_point():
            counts[t.dtype] = counts.get(t.dtype, 0) + t.numel()
    if not counts or set(counts) == {torch.float32}:
        return None
    compute = {d: n for d, n in counts.items() if d in _COMPUTE}
    lead = max(compute, key=lambda d: compute[d]) if compute else torch.float32
    return lead, sorted(dtype_name_of(d) for d in counts)


def is_wrapper(t: torch.Tensor) -> bool:
    """A wrapper tensor subclass (torch's traceable-wrapper protocol: torchao's quantized tensors)."""
    from torch.utils._python_dispatch import is_traceable_wrapper_subclass

    return is_traceable_wrapper_subclass(t)


def integer_modules(model: nn.Module) -> set[int]:
    """id of each module whose weight is a torchao quantized tensor with integer data that also quantizes
    its activations (``act_quant_kwargs`` set: ``Int8DynamicActivationInt8WeightConfig``): its MACs are
    int8 x int8 integer MACs. A weight-only tensor (``Int8WeightOnlyConfig``, ``IntxWeightOnlyConfig``) is
    dequantized to the activations' float dtype, so its MACs stay float MACs."""
    found = set()
    for m in model.modules():
        weight = m._parameters.get("weight")
        if weight is not None and is_wrapper(weight) and getattr(weight, "act_quant_kwargs", None) is not None:
            if any(not t.is_floating_point() for t in inner_tensors(weight)):
                found.add(id(m))
    return found


def quantized_layers(model: nn.Module) -> list[str]:
    """The paths of ``model``'s torch.ao quantized layers (those holding packed weights) and of modules with
    quantized parameters or buffers."""
    found = []
    for path, m in model.named_modules():
        if held_weights(m) is not None or any(
            t.is_quantized for t in [*m.parameters(recurse=False), *m.buffers(recurse=False)]
        ):
            found.append(path or type(m).__name__)
    return found


def held_by_module(model: nn.Module) -> dict[int, list[tuple[int, int, str]]]:
    """id(module) -> ``(elements, bytes as stored, dtype name)`` of each weight it holds outside its
    parameters (packed quantized weights, unpacked here, outside the crawl)."""
    held = {}
    with torch.no_grad():
        for m in model.modules():
            weights = held_weights(m)
            if weights:
                held[id(m)] = [(t.numel(), stored_bytes(t), dtype_name_of(t.dtype)) for t in weights]
    return held


def _materialise(model: nn.Module, specs, plain, batch_size, dtype, training) -> None:
    """Run one forward of the private lazy copy on meta so its lazy layers take their shapes."""
    args, kwargs = _Run(model, specs, plain, batch_size, dtype, training).tensors("meta")
    # uninitialised tensors that forward may replace (``self.w = nn.Parameter(...)``) rather than materialise
    lazy = [(m, _lazy_keys(m._parameters), _lazy_keys(m._buffers)) for m in model.modules()]
    try:
        with torch.no_grad(), private_state(model, "meta"):
            model.train(training)
            model(*args, **kwargs, **plain)
            made = [(m, _replaced(m._parameters, ps), _replaced(m._buffers, bs)) for m, ps, bs in lazy]
        for m, params, buffers in made:  # private_state restored the tables: keep what forward put there
            m._parameters.update(params)
            m._buffers.update(buffers)
    except Exception as exc:
        detail = first_line(exc)
        raise AnalysisError(
            f"the lazy modules could not take their shapes from the inputs given: {detail}",
            "check the input size, or run one forward of the model on real data before analysing it",
        ) from exc
    left = [k for k, t in [*model.named_parameters(), *model.named_buffers()] if is_lazy(t)]
    if left:
        raise AnalysisError(
            f"{', '.join(left)} still uninitialised after one forward: its shape is unknown",
            "give it a shape before analysing (initialise it in __init__, or run one forward on real data)",
        )


def _lazy_keys(table: dict[str, _T | None]) -> list[str]:
    """The keys of ``table`` (a module's parameters or buffers) that hold uninitialised tensors."""
    return [key for key, t in table.items() if t is not None and is_lazy(t)]


def _replaced(table: dict[str, _T | None], keys: list[str]) -> dict[str, _T]:
    """What ``table`` holds under ``keys`` that is no longer uninitialised (forward materialised or replaced it)."""
    return {key: t for key in keys if (t := table.get(key)) is not None and not is_lazy(t)}


def _check_memory(needed: int, limit: int | None) -> None:
    if limit is None:
        limit = default_max_memory()
    if needed > limit:
        raise InputError(
            f"analysing on the CPU would need about {format_bytes(needed)}, over the limit of {format_bytes(limit)}",
            "raise the limit with --max-memory (e.g. --max-memory 32GB; Python: max_memory=bytes), "
            "or give a smaller batch or input",
        )


def default_max_memory() -> int:
    """A quarter of the machine's RAM: the default limit of a CPU analysis."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError, AttributeError):
        return 4 * 10**9


def _report(run: _Run, crawl: Crawl, out, *, model_name: str, dtype: torch.dtype, on: str, because) -> CostReport:
    fields = propagate([r.sources for r in crawl.rows], crawl.steps, [r.name for r in crawl.rows], crawl.axes)
    rows = [with_field(r, f) for r, f in zip(crawl.rows, fields, strict=True)]
    rows += _unused_rows(run, crawl)
    peak = crawl.peak
    if not dtype.is_floating_point:  # bytes at the storage dtype
        scale = torch.empty((), dtype=dtype).element_size()
        base = torch.empty((), dtype=run.dtype).element_size()
        rows = [_rescale(r, scale, base) for r in rows]
        peak = peak * scale // base
    by_dtype, seen = _param_dtypes(run, crawl, dtype)
    seen.update(s.describe(run.batch_size, run.dtype)["dtype"] for s in run.specs)
    seen.update(dtype_name_of(t.dtype) for t in tensors(out))
    return CostReport(
        model=model_name,
        input_shape=tuple(run.first.shape),
        dtype=str(dtype).removeprefix("torch."),
        layers=rows,
        output_shape=shape_of(out),
        unsupported=crawl.unsupported,
        training=run.training,
        peak_activation_bytes=peak,
        peak_at=crawl.peak_at,
        input_shapes=[s.describe(run.batch_size, run.dtype) for s in run.specs],
        analysed_on=on,
        analysed_on_because=because,
        notes=[DREW_NOTE] if run.drew else [],
        param_bytes_by_dtype=by_dtype,
        dtypes_seen=sorted(seen),
    )


def _param_dtypes(run: _Run, crawl: Crawl, dtype: torch.dtype) -> tuple[dict[str, int], set[str]]:
    """Bytes of the parameters and packed weights by the dtype each is stored in (they add up to the
    ``param_bytes`` total; with a storage dtype such as int8 asked for, floating parameters count under it),
    and every dtype among the parameters, buffers and packed weights."""
    by_dtype = dict(crawl.held_bytes)
    seen = set(crawl.held_bytes)
    storage = None if dtype.is_floating_point else dtype
    for key, t in run.state.items():
        if key in run.wrapped:  # torchao: its inner tensors' dtypes and bytes
            for name, size in bytes_by_dtype(run.wrapped[key]).items():
                seen.add(name)
                if key in run.param_names:
                    by_dtype[name] = by_dtype.get(name, 0) + size
            continue
        stored = storage if storage is not None and t.is_floating_point() else t.dtype
        name = dtype_name_of(stored)
        seen.add(name)
        if key in run.param_names:
            size = t.numel() * torch.empty((), dtype=stored).element_size()
            by_dtype[name] = by_dtype.get(name, 0) + size
    return by_dtype, seen


def _unused_rows(run: _Run, crawl: Crawl) -> list[LayerCost]:
    """Parameters never used in forward still occupy memory: one row per module that owns them."""
    unused: dict[str, list[torch.Tensor]] = {}
    for key, t in run.state.items():
        if key in run.param_names and id(t) not in crawl.counted:
            crawl.counted.add(id(t))
            unused.setdefault(key.rpartition(".")[0], []).append(t)
    return [
        LayerCost(
            name=path or "(model)",
            type="unused parameters",
            module=path,
            kind="module",
            depth=path.count(".") + 1 if path else 0,
            input_shapes=(),
            output_shape=(),
            params=sum(t.numel() for t in ts),
            trainable_params=sum(t.numel() for t in ts if t.requires_grad),
            macs=0,
            flops=0,
            param_bytes=sum(crawl.param_bytes(t) for t in ts),
            activation_bytes=0,
        )
        for path, ts in unused.items()
    ]


def _rescale(row: LayerCost, scale: int, base: int) -> LayerCost:
    from dataclasses import replace

    return replace(
        row,
        param_bytes=row.param_bytes * scale // base,
        activation_bytes=row.activation_bytes * scale // base,
        view_bytes=row.view_bytes * scale // base,
    )
