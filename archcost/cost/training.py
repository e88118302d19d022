"""Training cost: backward MACs/FLOPs per layer, optimizer FLOPs per parameter, and the peak memory of a step.

How it works: the model's forward runs on the meta device with parameters that require gradients, under
the same crawler ``analyze`` uses (so the rows are the same rows), then autograd's real backward runs on
meta tensors and a ``TorchDispatchMode`` sees every aten op it executes. Each autograd node is owned by the
row whose forward created it (walking the graph from a row's output back to the outputs of other rows), a
pre-hook on every node says which row is running, and each backward aten op is costed by a formula below
(``backward_op_cost``). Nothing is computed: the cost does not depend on the batch or image size.

What backward costs is what autograd runs: the gradient of an input is computed only where an earlier
layer needs it (the first conv's input, the image, needs none), the gradient of a weight only where the
weight is trainable. MACs count convolution and matrix-product work (as in the forward: papers'
mult-adds); FLOPs add 2 per MAC, bias gradients and the per-element work of ``BACKWARD_FLOPS_PER_ELEMENT``.

The same run follows memory: every tensor an aten op returns, and every tensor autograd saves for backward,
is counted on its storage until it is freed, through forward, backward and the first optimizer step (the
real ``torch.optim`` class on meta parameters, which allocates its state). ``training_peak_bytes`` is the
largest total seen: parameters + input + everything live at that moment (saved activations, gradients,
optimizer state, temporaries). Work buffers inside a backend kernel (a CPU convolution's scratch) are not
seen on the meta device.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from archcost.cost._registry import Cost, op_name
from archcost.cost.crawl import Crawl
from archcost.cost.formulas._args import tensors
from archcost.cost.record import CostReport, Unsupported
from archcost.errors import AnalysisError, InputError, first_line
from archcost.units import DTYPES


# -- optimizers --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OptimizerRule:
    """FLOPs one steady-state step spends per parameter, the state tensors it keeps per parameter, and how."""

    flops_per_param: int
    states: int  # parameter-sized state tensors
    make: Callable[[list[torch.Tensor]], torch.optim.Optimizer]
    why: str


#: Counts from torch's own update rules with default settings (no weight decay unless the optimizer has
#: one by default, no Nesterov, no AMSGrad), ``torch/optim/sgd.py::_single_tensor_sgd`` and
#: ``torch/optim/adam.py::_single_tensor_adam`` (torch 2.x). ``add_(x, alpha=a)`` is a multiply and an add
#: (2); ``lerp_(x, w)`` is a + w(x - a) (3); ``addcmul_(a, b, value=v)`` and ``addcdiv_`` are 3; scalar
#: bias corrections are Python floats and cost nothing per parameter.
OPTIMIZERS: dict[str, OptimizerRule] = {
    "sgd": OptimizerRule(
        2,
        0,
        lambda ps: torch.optim.SGD(ps, lr=0.1),
        "param.add_(grad, alpha=-lr): multiply, add",
    ),
    "momentum": OptimizerRule(
        5,
        1,
        lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
        "buf.mul_(momentum) 1, buf.add_(grad, alpha=1 - dampening) 2, param.add_(buf, alpha=-lr) 2 "
        "(the first step copies grad into buf instead)",
    ),
    "adam": OptimizerRule(
        13,
        2,
        lambda ps: torch.optim.Adam(ps),
        "exp_avg.lerp_(grad, 1 - beta1) 3, exp_avg_sq.mul_(beta2) 1 .addcmul_(grad, grad, 1 - beta2) 3, "
        "denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps) 3, param.addcdiv_(exp_avg, denom, "
        "-step_size) 3",
    ),
    "adamw": OptimizerRule(
        14,
        2,
        lambda ps: torch.optim.AdamW(ps),
        "param.mul_(1 - lr * weight_decay) 1 (decoupled weight decay, on by default), then Adam's 13",
    ),
}


def optimizer_rule(name: str) -> OptimizerRule:
    """The rule of optimizer ``name``; an unknown name is an ``InputError`` that lists the known ones."""
    try:
        return OPTIMIZERS[name]
    except KeyError:
        raise InputError(f"unknown optimizer {name!r}", f"use one of {', '.join(OPTIMIZERS)}") from None


# -- backward ops ------------------------------------------------------------------------------------------
#: aten ops of a backward pass that move, view, allocate or fill memory and do no arithmetic.
NO_ARITHMETIC = frozenset(
    "detach view _unsafe_view reshape _reshape_alias t transpose permute expand squeeze unsqueeze as_strided "
    "slice select narrow clone copy _to_copy empty_like empty empty_strided zeros zeros_like new_zeros new_empty "
    "new_empty_strided new_ones ones_like full_like fill zero cat stack split split_with_sizes chunk unbind "
    "contiguous alias constant_pad_nd slice_backward select_backward lift_fresh _copy_from".split()
)

#: FLOPs per element of the backward aten ops archcost costs element by element, counted on the numel of
#: the tensor named second, and why. Counts follow the forward conventions of ``units.FLOPS_PER_ELEMENT``:
#: one per add, multiply, comparison or transcendental.
BACKWARD_FLOPS_PER_ELEMENT: dict[str, tuple[int, str, str]] = {
    "threshold_backward": (1, "out", "compare with the threshold, keep the gradient or 0 (ReLU)"),
    "hardtanh_backward": (2, "out", "two comparisons (ReLU6, hardtanh)"),
    "leaky_relu_backward": (2, "out", "comparison, multiply by the slope"),
    "elu_backward": (3, "out", "comparison, add alpha to the output, multiply"),
    "sigmoid_backward": (3, "out", "grad * y * (1 - y): subtract, 2 multiplies"),
    "tanh_backward": (3, "out", "grad * (1 - y * y): multiply, subtract, multiply"),
    "silu_backward": (8, "out", "sigmoid (3), grad * s * (1 + x * (1 - s)): subtract, multiply, add, 2 multiplies"),
    "hardswish_backward": (6, "out", "two comparisons, grad * (2x + 3) / 6: multiply, add, divide, multiply"),
    "hardsigmoid_backward": (3, "out", "two comparisons, grad / 6"),
    "gelu_backward": (
        11,
        "out",
        "0.5 (1 + erf(x / sqrt 2)) + x exp(-x^2 / 2) / sqrt(2 pi), times grad: divide, erf, add, multiply, "
        "square, scale, exp, multiply, scale, add, multiply",
    ),
    "softplus_backward": (5, "out", "z = exp(beta x): multiply, exp; grad * z / (z + 1): add, divide, multiply"),
    "mish_backward": (9, "out", "softplus (3), tanh, sech^2 (2), sigmoid-weighted sum (2), multiply by grad"),
    "_softmax_backward_data": (4, "out", "y * (grad - sum(grad * y)): multiply, sum, subtract, multiply"),
    "_log_softmax_backward_data": (4, "out", "grad - exp(y) * sum(grad): sum, exp, multiply, subtract"),
    "native_dropout_backward": (2, "out", "grad * mask * scale"),
    "max_pool2d_with_indices_backward": (1, "grad_out", "one add of each output's gradient at its argmax"),
    "max_pool3d_with_indices_backward": (1, "grad_out", "one add of each output's gradient at its argmax"),
    "adaptive_max_pool2d_backward": (1, "grad_out", "one add of each output's gradient at its argmax"),
    "adaptive_max_pool3d_backward": (1, "grad_out", "one add of each output's gradient at its argmax"),
    "add": (1, "out", "one add"),
    "sub": (1, "out", "one subtract"),
    "rsub": (1, "out", "one subtract"),
    "mul": (1, "out", "one multiply"),
    "div": (1, "out", "one divide"),
    "neg": (1, "out", "one negation"),
    "pow": (1, "out", "one power"),
    "sqrt": (1, "out", "one square root"),
    "rsqrt": (1, "out", "one reciprocal square root"),
    "exp": (1, "out", "one exp"),
    "log": (1, "out", "one log"),
    "reciprocal": (1, "out", "one divide"),
    "sign": (1, "out", "one comparison"),
    "where": (1, "out", "one select"),
    "masked_fill": (1, "out", "one select"),
    "ge": (1, "out", "one comparison"),
    "gt": (1, "out", "one comparison"),
    "le": (1, "out", "one comparison"),
    "lt": (1, "out", "one comparison"),
    "eq": (1, "out", "one comparison"),
    "logical_and": (1, "out", "one logical and"),
    "addcmul": (3, "out", "a + v * b * c"),
    "addcdiv": (3, "out", "a + v * b / c"),
    "lerp": (3, "out", "a + w * (b - a)"),
}


def _numel(t) -> int:
    return t.numel() if isinstance(t, torch.Tensor) else 0


def _conv_macs(grad_out: torch.Tensor, x: torch.Tensor, w: torch.Tensor, transposed: bool) -> int:
    """MACs of the forward convolution: N * (output positions, input positions if transposed) * numel(w).

    ``numel(w)`` is C_out * (C_in / groups) * kernel (C_in * (C_out / groups) * kernel transposed), so
    grouped and depthwise convolutions are costed with their groups."""
    spatial = x.shape[2:] if transposed else grad_out.shape[2:]
    return x.shape[0] * math.prod(spatial) * w.numel()


def backward_op_cost(name: str, args: tuple, kwargs: dict, out: object) -> Cost | None:
    """MACs and FLOPs of one aten op of a backward pass, or None where archcost has no formula for it.

    ``convolution_backward``: the gradient of the input is a transposed convolution of the output's
    gradient with the weight, the gradient of the weight a convolution of the input with the output's
    gradient; each is as many MACs as the forward (``_conv_macs``, groups included), and each is paid only
    where ``output_mask`` asks for it; a bias gradient is one add per output-gradient element.
    ``mm``/``bmm`` (linear's backward): m * k * n MACs; ``addmm``/``baddbmm`` add one add per output.
    """
    name = name.rstrip("_") if not name.endswith("__") else name
    outs = tensors(out)
    numel_out = sum(t.numel() for t in outs)
    if name in NO_ARITHMETIC:
        return Cost()
    if name == "convolution_backward":
        grad_out, x, w = args[0], args[1], args[2]
        transposed, mask = bool(args[7]), list(args[10])
        one = _conv_macs(grad_out, x, w, transposed)
        macs = one * (int(mask[0]) + int(mask[1]))
        return Cost(macs, 2 * macs + (grad_out.numel() if mask[2] else 0))
    if name in ("mm", "bmm", "addmm", "baddbmm"):
        a, b = (args[0], args[1]) if name in ("mm", "bmm") else (args[1], args[2])
        macs = math.prod(a.shape) * b.shape[-1]
        return Cost(macs, 2 * macs + (numel_out if name in ("addmm", "baddbmm") else 0))
    if name in ("sum", "mean"):
        x = args[0]
        return Cost(0, max(x.numel() - numel_out, 0) + (numel_out if name == "mean" else 0))
    if name in ("native_batch_norm_backward", "native_layer_norm_backward", "native_group_norm_backward"):
        # grad_in = scale * (grad - mean(grad) - xhat * mean(grad * xhat)): xhat 2, the two sums 3,
        # the gradient 4 per element; without grad_in only xhat and the sums (weight, bias grads): 5.
        # Eval-mode batch norm: grad_in = grad * (gamma * invstd) 1, grad of gamma xhat 2 + mul-add 2, beta 1.
        x = args[1]
        mask = list(args[-1])
        if name == "native_batch_norm_backward" and not args[7]:
            per = int(mask[0]) + 4 * int(mask[1]) + int(mask[2])
        else:
            per = 9 if mask[0] else 5
        return Cost(0, per * x.numel())
    if name in ("avg_pool2d_backward", "avg_pool3d_backward"):
        grad_out, kernel = args[0], args[2]
        window = math.prod(kernel) if isinstance(kernel, (list, tuple)) else kernel ** (2 if "2d" in name else 3)
        return Cost(0, grad_out.numel() * (1 + window))  # divide by the window, add into each of its inputs
    if name in ("_adaptive_avg_pool2d_backward", "_adaptive_avg_pool3d_backward"):
        return Cost(0, args[0].numel() + numel_out)  # divide each output's gradient, add into each input
    if name == "index_put":  # indexing's backward: scatter the gradient; accumulate=True adds each value
        accumulate = args[3] if len(args) > 3 else kwargs.get("accumulate", False)
        return Cost(0, _numel(args[2]) if accumulate else 0)
    if name in BACKWARD_FLOPS_PER_ELEMENT:
        per, on, _ = BACKWARD_FLOPS_PER_ELEMENT[name]
        return Cost(0, per * (numel_out if on == "out" else _numel(args[0])))
    return None


# -- the step, on meta tensors ----------------------------------------------------------------------------
class _Memory:
    """Bytes alive on each storage the step creates, from Python's own reference counting of the tensors."""

    def __init__(self, external: set[int]) -> None:
        self.external = external  # parameters, buffers, the input: counted apart
        self.storages: dict[int, list[int]] = {}
        self.live = 0
        self.peak = 0
        self.phase = "forward"
        self.peak_phase = "forward"

    def track(self, t: torch.Tensor) -> None:
        key = t.untyped_storage()._cdata
        if key in self.external:
            return
        entry = self.storages.get(key)
        if entry is None:
            entry = self.storages[key] = [0, t.untyped_storage().nbytes()]
            self.live += entry[1]
            if self.live > self.peak:
                self.peak, self.peak_phase = self.live, self.phase
        entry[0] += 1
        weakref.finalize(t, self._release, key)

    def _release(self, key: int) -> None:
        entry = self.storages[key]
        entry[0] -= 1
        if entry[0] == 0:
            self.live -= entry[1]
            del self.storages[key]


class _Saved:
    """What autograd keeps of a saved tensor: holding it here makes its lifetime visible to ``_Memory``."""

    __slots__ = ("tensor", "__weakref__")

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor


class _Step(TorchDispatchMode):
    """Tracks every aten op's outputs in ``memory``; while ``costing``, costs each op to ``row``."""

    def __init__(self, memory: _Memory) -> None:
        super().__init__()
        self.memory = memory
        self.costing = False
        self.row: int | None = None
        self.costs: dict[int | None, Cost] = {}
        self.unsupported: dict[int | None, list[str]] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        for t in tensors(out):
            self.memory.track(t)
        if self.costing:
            name = func.overloadpacket.__name__
            cost = backward_op_cost(name, args, kwargs, out)
            if cost is None:
                names = self.unsupported.setdefault(self.row, [])
                if name not in names:
                    names.append(name)
            else:
                self.costs[self.row] = self.costs.get(self.row, Cost()) + cost
        return out


class _GradCrawl(Crawl):
    """The crawler with autograd on: no shape shortcuts (they return tensors without history), and a
    record of each row's output autograd nodes and of the parameters each row counted."""

    def __init__(self, params: dict[int, torch.Tensor], axes: int) -> None:
        super().__init__(params, axes)
        self.node_row: dict[object, int] = {}
        self.row_params: list[set[int]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        try:
            out = func(*args, **kwargs)
        except Exception:
            self.failed_op = (op_name(func), [tuple(t.shape) for t in tensors((args, kwargs))])
            raise
        out_tensors = tensors(out)
        if out_tensors:
            self._on_op(op_name(func), args, kwargs, out, out_tensors)
        return out

    def _add_row(self, **kw) -> None:
        before = set(self.counted)
        super()._add_row(**kw)
        index = len(self.rows) - 1
        self.row_params.append(self.counted - before)
        for t in tensors(kw["out"]):
            if t.grad_fn is not None:
                self.node_row.setdefault(t.grad_fn, index)


def _owners(crawl: _GradCrawl, roots: list) -> dict[object, int | None]:
    """Every autograd node reachable from ``roots`` -> the row that created it (None: none, e.g. the loss).

    A row owns the nodes between its output and the outputs of other rows: its own ops and any work on
    parameters it consumed (a transposed weight)."""
    owner: dict[object, int | None] = {}
    for node, row in crawl.node_row.items():
        stack = [node]
        while stack:
            n = stack.pop()
            if n in owner:
                continue
            owner[n] = row
            for nxt, _ in n.next_functions:
                if nxt is not None and nxt not in owner and crawl.node_row.get(nxt, row) == row:
                    stack.append(nxt)
    stack = list(roots)
    while stack:  # nodes of no row (the loss): registered so that their ops are not charged to a row
        n = stack.pop()
        if n in owner:
            continue
        owner[n] = None
        stack.extend(nxt for nxt, _ in n.next_functions if nxt is not None)
    return owner


@dataclass
class TrainingStep:
    """What ``simulate_step`` found: backward cost per crawler row, and the memory of the step."""

    rows: list  # the crawler's rows (names align with ``analyze``'s)
    backward: list[Cost]
    optimizer_params: list[int]  # trainable parameters per row that received a gradient
    unsupported: list[Unsupported]
    unattributed: Cost  # backward work of no row (the loss)
    param_bytes: int
    input_bytes: int
    gradient_bytes: int
    optimizer_state_bytes: int
    saved_activation_bytes: int  # alive at the end of forward (output included): what backward needs
    peak_dynamic_bytes: int  # the most the step had alive beyond parameters, buffers and input
    peak_phase: str
    trainable_params: int
    details: dict = field(default_factory=dict)

    @property
    def peak_bytes(self) -> int:
        """Parameters + input + the step's own peak (saved activations, gradients, state, temporaries)."""
        return self.param_bytes + self.input_bytes + self.peak_dynamic_bytes


def simulate_step(
    model: nn.Module,
    input_size: tuple[int, ...] = (3, 224, 224),
    batch_size: int = 1,
    dtype: torch.dtype | str = torch.float32,
    *,
    optimizer: str = "adam",
    foreach: bool = False,
    cost: bool = True,
) -> TrainingStep:
    """Forward, backward of ``output.sum()`` and the first ``optimizer`` step of ``model`` on meta tensors.

    ``foreach`` runs the optimizer's multi-tensor path (torch's default on CUDA, which holds a temporary
    per parameter at once); the CPU default is one parameter at a time. ``cost=False`` skips the
    per-row attribution (memory only). The caller's model is not changed: parameters are swapped for meta
    tensors with ``torch.func.functional_call``, hooks removed and ``training`` flags restored.
    Raises ``InputError`` for a non-float dtype, an unknown optimizer or a model with nothing to train,
    ``AnalysisError`` when forward or backward fails on the meta device.
    """
    rule = optimizer_rule(optimizer)
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise InputError(f"unknown dtype {dtype!r}", f"use one of {', '.join(DTYPES)}")
        dtype = DTYPES[dtype]
    if not dtype.is_floating_point:
        raise InputError(f"a training step needs a floating-point dtype, not {dtype}", "use float32 or bfloat16")
    if not isinstance(input_size, (tuple, list)) or not all(isinstance(s, int) for s in input_size):
        raise InputError(
            f"the training step takes one input shape without the batch, like (3, 224, 224); got {input_size!r}",
            "several inputs, dtypes or keyword inputs are analysed for inference only for now",
        )
    if batch_size < 1 or any(int(s) < 1 for s in input_size):
        raise InputError(
            f"sizes must be positive, got batch {batch_size} and input {tuple(input_size)}",
            "give a batch size >= 1 and an input size like 3x224x224",
        )
    trainable = {k for k, p in model.named_parameters() if p.requires_grad}
    if not trainable:
        raise InputError(
            f"{type(model).__name__} has no trainable parameters (every requires_grad is False): a training "
            "step has nothing to update",
            "set requires_grad=True on the parameters to train, or use the inference mode",
        )
    state: dict[str, torch.Tensor] = {}
    for key, t in [*model.named_parameters(), *model.named_buffers()]:
        target = dtype if t.is_floating_point() else t.dtype
        state[key] = torch.empty(t.shape, device="meta", dtype=target, requires_grad=key in trainable)
    param_names = {k for k, _ in model.named_parameters()}
    params = {id(t): t for k, t in state.items() if k in param_names}
    x = torch.empty((batch_size, *input_size), device="meta", dtype=dtype)
    external = {t.untyped_storage()._cdata for t in [*state.values(), x]}
    memory = _Memory(external)
    step = _Step(memory)
    crawl = _GradCrawl(params, axes=len(input_size) - 1)
    crawl.producer[id(x)] = -1
    crawl.storage_row[x.untyped_storage()._cdata] = -1
    crawl.track(x)

    def pack(t: torch.Tensor) -> _Saved:
        memory.track(t)
        return _Saved(t)

    flags = {m: m.training for m in model.modules()}
    handles: list = []
    try:
        model.train(True)
        for path, m in model.named_modules():
            handles.append(m.register_forward_pre_hook(crawl.pre_hook(path), with_kwargs=True))
            handles.append(m.register_forward_hook(crawl.post_hook, with_kwargs=True))
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda s: s.tensor), step:
            with crawl:
                out = torch.func.functional_call(model, state, (x,), tie_weights=True, strict=False)
            for h in handles:
                h.remove()
            handles = []
            outs = [t for t in tensors(out) if t.requires_grad]
            if not outs:
                raise InputError(
                    "the model's output does not depend on any trainable parameter: backward has nothing to do",
                    "check which parameters have requires_grad=True",
                )
            saved_bytes = memory.live
            memory.phase = "backward"
            loss = sum(t.sum() for t in outs)
            owner = _owners(crawl, [loss.grad_fn]) if cost else {}
            hooks = [n.register_prehook(_enter(step, row)) for n, row in owner.items()]
            del out, outs
            step.costing = cost
            try:
                loss.backward()
            finally:
                step.costing = False
                for h in hooks:
                    h.remove()
            del loss, owner
            memory.phase = "optimizer"
            leaves = [t for k, t in state.items() if k in trainable and t.grad is not None]
            grad_bytes = sum(t.grad.untyped_storage().nbytes() for t in leaves)
            opt = rule.make(leaves)
            if foreach and "foreach" in opt.defaults:
                for group in opt.param_groups:
                    group["foreach"] = True
            opt.step()
            state_bytes = sum(
                v.untyped_storage().nbytes()
                for s in opt.state.values()
                for v in s.values()
                if isinstance(v, torch.Tensor) and v.device.type == "meta"
            )
    except (InputError, AnalysisError):
        raise
    except Exception as exc:
        detail = first_line(exc)
        raise AnalysisError(
            f"the training step failed on the meta device in {crawl.failure_site()}: {detail}",
            "check the input size and that forward and backward run without real data",
        ) from exc
    finally:
        for h in handles:
            h.remove()
        for m, flag in flags.items():
            m.training = flag

    with_grad = {id(t) for t in leaves}
    n_rows = len(crawl.rows)
    unsupported = [
        Unsupported(crawl.rows[row].name if row is not None else "(loss)", op, f"no backward cost formula for {op!r}")
        for row, ops in step.unsupported.items()
        for op in ops
    ]
    return TrainingStep(
        rows=crawl.rows,
        backward=[step.costs.get(i, Cost()) for i in range(n_rows)],
        optimizer_params=[sum(params[p].numel() for p in ps if p in with_grad) for ps in crawl.row_params],
        unsupported=unsupported,
        unattributed=step.costs.get(None, Cost()),
        param_bytes=sum(t.untyped_storage().nbytes() for k, t in state.items() if k in param_names),
        input_bytes=x.untyped_storage().nbytes(),
        gradient_bytes=grad_bytes,
        optimizer_state_bytes=state_bytes,
        saved_activation_bytes=saved_bytes,
        peak_dynamic_bytes=memory.peak,
        peak_phase=memory.peak_phase,
        trainable_params=sum(t.numel() for t in leaves),
    )


def _enter(step: _Step, row: int | None):
    def hook(grad_outputs):
        step.row = row

    return hook


# -- the report --------------------------------------------------------------------------------------------
def with_training(report: CostReport, sim: TrainingStep, optimizer: str) -> CostReport:
    """``report`` (a training-mode ``analyze``) with the backward, optimizer and peak figures of ``sim``.

    Rows are matched by name; rows the step did not see (unused parameters) cost nothing to train.
    """
    rule = optimizer_rule(optimizer)
    by_name = {r.name: i for i, r in enumerate(sim.rows)}
    rows = []
    for r in report.layers:
        i = by_name.get(r.name)
        b = sim.backward[i] if i is not None else Cost()
        n = sim.optimizer_params[i] if i is not None else 0
        rows.append(replace(r, backward_macs=b.macs, backward_flops=b.flops, optimizer_flops=rule.flops_per_param * n))
    missing = [r.name for r in sim.rows if r.name not in {x.name for x in report.layers}]
    if missing:
        from archcost.errors import InternalError

        raise InternalError(f"the training step saw rows the analysis did not: {', '.join(missing[:5])}")
    return replace(
        report,
        layers=rows,
        unsupported=[*report.unsupported, *sim.unsupported],
        optimizer=optimizer,
        training_peak_bytes=sim.peak_bytes,
        training_memory={
            "param_bytes": sim.param_bytes,
            "input_bytes": sim.input_bytes,
            "gradient_bytes": sim.gradient_bytes,
            "optimizer_state_bytes": sim.optimizer_state_bytes,
            "saved_activation_bytes": sim.saved_activation_bytes,
            "peak_phase": sim.peak_phase,
        },
    )


def analyze_training(
    model: nn.Module,
    input_size: tuple[int, ...] = (3, 224, 224),
    batch_size: int = 1,
    dtype: torch.dtype | str = torch.float32,
    *,
    name: str | None = None,
    optimizer: str = "adam",
    report: CostReport | None = None,
) -> CostReport:
    """``analyze`` of the training-mode forward, with backward MACs/FLOPs and optimizer FLOPs per row and
    ``training_peak_bytes``. ``report``: an existing training-mode analysis of the same model and input."""
    optimizer_rule(optimizer)
    if report is None:
        from archcost.cost.analysis import analyze

        report = analyze(model, input_size, batch_size, dtype, name=name, training=True)
    sim = simulate_step(model, input_size, batch_size, dtype, optimizer=optimizer)
    return with_training(report, sim, optimizer)


def training_peak_bytes(
    model: nn.Module,
    input_size: tuple[int, ...],
    batch_size: int,
    dtype: torch.dtype | str = torch.float32,
    *,
    optimizer: str = "adam",
    foreach: bool = False,
) -> int:
    """Peak bytes of one training step (``simulate_step``, memory only)."""
    sim = simulate_step(model, input_size, batch_size, dtype, optimizer=optimizer, foreach=foreach, cost=False)
    return sim.peak_bytes


# -- the largest batch that fits ---------------------------------------------------------------------------
@dataclass(frozen=True)
class MaxBatch:
    batch_size: int
    memory_limit_bytes: int
    estimated_peak_bytes: int  # at batch_size
    next_peak_bytes: int  # at batch_size + 1: over the limit
    evaluations: int


def max_batch(peak: Callable[[int], int], limit: int, *, cap: int = 1 << 24) -> MaxBatch:
    """The largest batch size ``n`` with ``peak(n) <= limit`` (``peak``: bytes at a batch size, increasing).

    The peak is a sum of tensor sizes that are each constant or proportional to the batch, taken at the
    worst moment, so it is convex in the batch size: the line through ``peak(1)`` and ``peak(2)`` is a lower
    bound beyond 2, and where it crosses the limit bounds the answer from above. Bisection between a size
    that fits and one that does not finds it; the answer is confirmed by ``peak(n + 1) > limit``.
    Raises ``InputError`` when one sample does not fit (with both figures).
    """
    seen: dict[int, int] = {}

    def p(n: int) -> int:
        if n not in seen:
            seen[n] = peak(n)
        return seen[n]

    if p(1) > limit:
        raise InputError(
            f"one sample needs an estimated {p(1):,} bytes ({p(1) / 1e9:.3f} GB), over the limit of {limit:,} bytes",
            "raise --memory, or choose a smaller input size or a lower-precision --dtype",
        )
    lo, hi = 1, None  # lo fits; hi (when known) does not
    if p(2) <= limit:
        lo = 2
        slope = p(2) - p(1)
        if slope > 0:
            guess = min(1 + (limit - p(1)) // slope, cap)
            if p(guess) <= limit:
                lo = guess
            else:
                hi = guess
            if hi is None and p(guess + 1) > limit:
                hi = guess + 1
    else:
        hi = 2
    while hi is None:  # the bound failed (the peak is not convex here): grow until a size does not fit
        nxt = min(lo * 2, cap + 1)
        if nxt > cap:
            hi = cap + 1
            break
        if p(nxt) <= limit:
            lo = nxt
        else:
            hi = nxt
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if p(mid) <= limit:
            lo = mid
        else:
            hi = mid
    return MaxBatch(lo, limit, p(lo), p(lo + 1) if lo + 1 <= cap else p(lo), len(seen))


def estimated_peak(
    model: nn.Module,
    input_size: tuple[int, ...],
    batch_size: int,
    dtype: torch.dtype | str = torch.float32,
    *,
    mode: str = "train",
    optimizer: str = "adam",
    foreach: bool = False,
) -> int:
    """Estimated peak bytes at ``batch_size``: a training step (``simulate_step``) or an inference forward
    (parameters + ``analyze``'s peak of live activations, input included)."""
    if mode == "train":
        return simulate_step(
            model, input_size, batch_size, dtype, optimizer=optimizer, foreach=foreach, cost=False
        ).peak_bytes
    from archcost.cost.analysis import analyze
    from archcost.cost.memory import estimate

    return estimate(analyze(model, input_size, batch_size, dtype, device="meta")).inference_total_bytes
