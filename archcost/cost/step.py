"""Training cost: backward MACs/FLOPs per layer, optimizer FLOPs per parameter, and the peak memory of a step.

How it works: ``analyze(mode="train")`` hands its own run (``analysis._Run``: the model, inputs of every
kind, the analysis tensors, ``private_state`` and the seeded random draw) a ``StepPlan``: forward runs there
with autograd on, under the same crawler (so the rows are the same rows), then autograd's real backward and
the optimizer run inside the same ``functional_call`` and guards, on meta tensors (on the CPU where the step
needs values), and a ``TorchDispatchMode`` sees every aten op they execute. Modules called during backward
are activation checkpointing re-running a forward: ``_Recompute`` costs them by the forward formulas.
Each autograd node is owned by the
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

import contextvars
import gc
import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from torch import nn
from torch.autograd.graph import Node
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.checkpoint import set_checkpoint_early_stop

from archcost.cost._registry import Cost
from archcost.cost.crawl import Crawl, held_tensors, storage_key
from archcost.cost.formulas._args import tensors
from archcost.cost.record import CostReport, Unsupported
from archcost.errors import InputError, InternalError


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
    "contiguous alias constant_pad_nd slice_backward select_backward lift_fresh _copy_from pixel_shuffle "
    "pixel_unshuffle channel_shuffle native_channel_shuffle".split()
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
    "embedding_dense_backward": (1, "grad_out", "one add of each output gradient element into its token's row"),
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
    if name == "_weight_norm_interface_backward":
        # weight = g * v / ||v||: grad_g = sum(grad_w * v) / norm (a multiply and an add per element of v, a
        # divide per norm); grad_v = (g / norm) * (grad_w - v * (grad_g / norm)) (multiply, subtract,
        # multiply per element of v; two divides per norm): torch's weight_norm_backward kernels.
        v, norms = args[1], args[3]
        return Cost(0, 5 * v.numel() + 3 * norms.numel())
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


# -- the step, inside the analysis run ---------------------------------------------------------------------
class _Memory:
    """Bytes alive on each storage the step creates, from Python's own reference counting of the tensors."""

    def __init__(self, external: set[int]) -> None:
        self.external = external  # parameters, buffers, the inputs: counted apart
        self.storages: dict[int, list[int]] = {}
        self.live = 0
        self.peak = 0
        self.phase = "forward"
        self.peak_phase = "forward"

    def track(self, t: torch.Tensor) -> None:
        key = storage_key(t)
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
    """Tracks every aten op's outputs in ``memory``; while ``costing`` (and not ``recomputing`` a
    checkpointed forward, which ``_Recompute`` costs), costs each op to ``row``."""

    def __init__(self, memory: _Memory) -> None:
        super().__init__()
        self.memory = memory
        self.costing = False
        self.recomputing = False
        self.row: int | None = None
        self.costs: dict[int | None, Cost] = {}
        self.unsupported: dict[int | None, list[str]] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        for t in tensors(out):
            self.memory.track(t)
        if self.costing and not self.recomputing:
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

    shortcuts = False

    def __init__(self, params: dict[int, torch.Tensor], axes: int) -> None:
        super().__init__(params, axes)
        self.node_row: dict[Node, int] = {}
        self.row_params: list[set[int]] = []

    def _add_row(self, **kw) -> None:
        before = set(self.counted)
        super()._add_row(**kw)
        index = len(self.rows) - 1
        self.row_params.append(self.counted - before)
        for t in tensors(kw["out"]):
            if t.grad_fn is not None:
                self.node_row.setdefault(t.grad_fn, index)


class _Recompute(_GradCrawl):
    """The crawler while backward runs: a module called then is activation checkpointing
    (``torch.utils.checkpoint``) re-running a forward to rebuild what it did not save. Its ops are costed
    by the forward formulas, as forward work done in backward, each to the forward row of the same name;
    the autograd nodes that re-run makes (``use_reentrant=True`` differentiates them) are owned by it."""

    def __init__(self, params, axes: int, step: _Step, owner: dict[Node, int | None], rows: list, hooks: list) -> None:
        super().__init__(params, axes)
        self.step, self.owner, self.hooks = step, owner, hooks
        self.by_name = {r.name: i for i, r in enumerate(rows)}
        self.target: list[int | None] = []  # per recompute row: the forward row it re-runs (None: none)

    def pre_hook(self, path: str):
        inner = super().pre_hook(path)

        def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
            if not self.stack:  # the checkpointed call's inputs: the data of this re-run
                for t in tensors((args, kwargs)):
                    self.producer[id(t)] = -1
                    self.track(t)
            inner(module, args, kwargs)
            self.step.recomputing = True

        return hook

    def post_hook(self, module: nn.Module, args: tuple, kwargs: dict, out: object) -> None:
        super().post_hook(module, args, kwargs, out)
        self.step.recomputing = bool(self.stack)

    def _add_row(self, **kw) -> None:
        inside = kw["kind"] == "module" or bool(self.stack)  # ops outside modules: backward's (``_Step``)
        super()._add_row(**kw)
        name = self.rows[-1].name
        row = self.by_name.get(name, self.by_name.get(name.partition("#")[0]))
        self.target.append(row if inside else -1)
        for t in tensors(kw["out"]):
            stack = [t.grad_fn] if t.grad_fn is not None else []
            while stack:
                n = stack.pop()
                if n in self.owner:
                    continue
                self.owner[n] = row
                self.hooks.append(n.register_prehook(_enter(self.step, row)))
                stack.extend(nxt for nxt, _ in n.next_functions if nxt is not None)

    def costs(self) -> tuple[dict[int | None, Cost], list[str]]:
        """Re-run forward work per forward row, and the recompute rows that match none."""
        out: dict[int | None, Cost] = {}
        lost = []
        for r, target in zip(self.rows, self.target, strict=True):
            if target == -1:
                continue
            if target is None:
                lost.append(r.name)
            out[target] = out.get(target, Cost()) + Cost(r.macs, r.flops)
        return out, lost


def _owners(crawl: _GradCrawl, roots: list[Node | None]) -> dict[Node, int | None]:
    """Every autograd node reachable from ``roots`` -> the row that created it (None: none, e.g. the loss).

    A row owns the nodes between its output and the outputs of other rows: its own ops and any work on
    parameters it consumed (a transposed weight)."""
    owner: dict[Node, int | None] = {}
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
    stack = [r for r in roots if r is not None]  # a root is None where the loss has no graph
    while stack:  # nodes of no row (the loss): registered so that their ops are not charged to a row
        n = stack.pop()
        if n in owner:
            continue
        owner[n] = None
        stack.extend(nxt for nxt, _ in n.next_functions if nxt is not None)
    return owner


def _row_name(crawl: Crawl, row: int | None) -> str:
    return crawl.rows[row].name if row is not None else "(loss)"


def _enter(step: _Step, row: int | None):
    def hook(grad_outputs):
        step.row = row

    return hook


def loss_tensors(value: object) -> list[torch.Tensor]:
    """The floating tensors of forward's output that carry a gradient, followed through tuples (NamedTuple),
    lists, dicts (Hugging Face ``ModelOutput``), dataclasses and other plain objects
    (``torch.distributions``: their parameters, e.g. a ``Categorical``'s normalised ``logits``), each once
    (``crawl.held_tensors``)."""
    return [t for t in held_tensors(value) if t.requires_grad and t.is_floating_point()]


@dataclass
class TrainingStep:
    """What one training step found: backward cost per crawler row, and the memory of the step."""

    rows: list  # the crawler's rows (names align with ``analyze``'s)
    backward: list[Cost]
    recompute: list[Cost]  # forward work re-run in backward by activation checkpointing, per row
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
    analysed_on: str = "meta"
    details: dict = field(default_factory=dict)

    @property
    def peak_bytes(self) -> int:
        """Parameters + input + the step's own peak (saved activations, gradients, state, temporaries)."""
        return self.param_bytes + self.input_bytes + self.peak_dynamic_bytes


class _Inside(nn.Module):
    """Holds the model so that ``torch.func.functional_call`` keeps the analysis tensors in place while
    ``body`` runs forward, backward (and a checkpointed forward's re-run in it) and the optimizer step."""

    def __init__(self, model: nn.Module, body: Callable) -> None:
        super().__init__()
        self.model = model
        self.body = body

    def forward(self, *args, **kwargs):
        return self.body(*args, **kwargs)


class StepPlan:
    """One training step, run by ``archcost.cost.analysis._Run.forward`` inside the analysis guards
    (``private_state``, the seeded random draws, ``functional_call`` with the analysis tensors): forward
    under ``crawl()``'s ``_GradCrawl``, backward of the sum of the output's tensors, the first step of the
    optimizer. ``phase`` and ``crawl_now`` say where a failure happened; ``result`` is the ``TrainingStep``."""

    def __init__(self, optimizer: str = "adam", *, foreach: bool = False, cost: bool = True) -> None:
        self.rule = optimizer_rule(optimizer)
        self.foreach, self.cost = foreach, cost
        self.phase = "forward"
        self.result: TrainingStep | None = None

    def crawl(self, params: dict[int, torch.Tensor], axes: int) -> _GradCrawl:
        self.params, self.axes = params, axes
        self.forward_crawl = self.crawl_now = _GradCrawl(params, axes)
        return self.forward_crawl

    def run(self, model: nn.Module, state: dict, param_names: set, args, kwargs, inputs: list, handles: list, device):
        """Forward, backward and the optimizer on ``state`` (the run's tensors; ``model``'s hooks in
        ``handles`` are removed after forward). Returns None: the step keeps nothing of forward's output."""
        trainable = {k for k, t in state.items() if k in param_names and t.requires_grad}
        if not trainable:
            raise InputError(
                f"{type(model).__name__} has no trainable parameters (every requires_grad is False): a training "
                "step has nothing to update",
                "set requires_grad=True on the parameters to train, or use the inference mode",
            )
        self.model, self.state, self.trainable, self.handles, self.device = model, state, trainable, handles, device
        self.param_names, self.inputs = param_names, inputs
        self.memory = _Memory({storage_key(t) for t in [*state.values(), *inputs]})
        self.step = _Step(self.memory)

        def pack(t: torch.Tensor) -> _Saved:
            self.memory.track(t)
            return _Saved(t)

        wrapper = _Inside(model, self._body)
        tensors_in = {f"model.{k}": t for k, t in state.items()}
        collecting = gc.isenabled()
        gc.disable()  # tensors freed by refcount only, never by a collection that happens to run: one peak
        try:
            self._run(wrapper, tensors_in, args, kwargs, pack)
        finally:
            if collecting:
                gc.enable()

    def _run(self, wrapper: nn.Module, tensors_in: dict, args, kwargs: dict, pack: Callable) -> None:
        # Checkpointed regions re-run whole in backward (torch's early stop off: it ends a re-run at the last
        # op whose output backward needs, by raising inside that op, which would hide the op from the crawler).
        with (
            torch.enable_grad(),
            torch.autograd.graph.saved_tensors_hooks(pack, lambda s: s.tensor),
            set_checkpoint_early_stop(False),
            self.step,
        ):
            torch.func.functional_call(wrapper, tensors_in, tuple(args), kwargs, tie_weights=True, strict=False)

    def _body(self, *args, **kwargs) -> None:
        memory, step, crawl = self.memory, self.step, self.forward_crawl
        with crawl:
            out = self.model(*args, **kwargs)
        for h in self.handles:
            h.remove()
        outs = loss_tensors(out)
        if not outs:
            raise InputError(
                "the model's output does not depend on any trainable parameter: backward has nothing to do",
                "check which parameters have requires_grad=True, and that forward returns tensors computed "
                "from them (in a tuple, dict, dataclass or distribution)",
            )
        saved_bytes = memory.live
        memory.phase = self.phase = "backward"
        loss = sum((t.sum() for t in outs[1:]), outs[0].sum())
        owner = _owners(crawl, [loss.grad_fn]) if self.cost else {}
        hooks = [n.register_prehook(_enter(step, row)) for n, row in owner.items()]
        recompute = self.crawl_now = _Recompute(self.params, self.axes, step, owner, crawl.rows, hooks)
        module_hooks = []
        del out, outs
        try:
            for path, m in self.model.named_modules():
                module_hooks.append(m.register_forward_pre_hook(recompute.pre_hook(path), with_kwargs=True))
                module_hooks.append(m.register_forward_hook(recompute.post_hook, with_kwargs=True))
            step.costing = self.cost
            with recompute:
                loss.backward()
        finally:
            step.costing = False
            for h in [*hooks, *module_hooks]:
                h.remove()
        del loss, owner
        memory.phase = self.phase = "optimizer"
        leaves = [t for k, t in self.state.items() if k in self.trainable and t.grad is not None]
        grad_bytes = sum(t.grad.untyped_storage().nbytes() for t in leaves)
        opt = self.rule.make(leaves)
        if self.foreach and "foreach" in opt.defaults:
            for group in opt.param_groups:
                group["foreach"] = True
        with torch.no_grad():
            opt.step()
        state_bytes = sum(
            v.untyped_storage().nbytes()
            for s in opt.state.values()
            for key, v in s.items()
            if isinstance(v, torch.Tensor) and key != "step"
        )
        with_grad = {id(t) for t in leaves}
        again, lost = recompute.costs()
        unsupported = [
            Unsupported(_row_name(crawl, row), op, f"no backward cost formula for {op!r}")
            for row, ops in step.unsupported.items()
            for op in ops
        ]
        unsupported += [
            Unsupported(name, "recompute", "a checkpointed forward re-ran an op of no forward row: counted apart")
            for name in lost
        ]
        n_rows = len(crawl.rows)
        self.result = TrainingStep(
            rows=crawl.rows,
            backward=[step.costs.get(i, Cost()) for i in range(n_rows)],
            recompute=[again.get(i, Cost()) for i in range(n_rows)],
            optimizer_params=[sum(self.params[p].numel() for p in ps if p in with_grad) for ps in crawl.row_params],
            unsupported=unsupported,
            unattributed=step.costs.get(None, Cost()) + again.get(None, Cost()),
            param_bytes=sum(t.untyped_storage().nbytes() for k, t in self.state.items() if k in self.param_names),
            input_bytes=sum(t.untyped_storage().nbytes() for t in {storage_key(t): t for t in self.inputs}.values()),
            gradient_bytes=grad_bytes,
            optimizer_state_bytes=state_bytes,
            saved_activation_bytes=saved_bytes,
            peak_dynamic_bytes=memory.peak,
            peak_phase=memory.peak_phase,
            trainable_params=sum(t.numel() for t in leaves),
            analysed_on=self.device,
        )
        return None


def train_step(run, device: str, *, optimizer: str = "adam", foreach: bool = False, cost: bool = True) -> TrainingStep:
    """One training step of ``run`` (an ``archcost.cost.analysis._Run``: the model, its inputs of every kind,
    the analysis dtype) on ``device`` ("meta" or "cpu"), on the run's own tensors and guards.

    ``foreach`` runs the optimizer's multi-tensor path (torch's default on CUDA, which holds a temporary
    per parameter at once); the CPU default is one parameter at a time. ``cost=False`` skips the per-row
    attribution (memory only). Raises ``analysis._Failed`` where forward, backward or the optimizer failed
    (``needs_data`` says whether values were what it needed), ``InputError`` for a model with nothing to train.
    """
    _warm_optimizer(optimizer)
    plan = StepPlan(optimizer, foreach=foreach, cost=cost)
    run.forward(device, step=plan)
    if plan.result is None:
        raise InternalError("the training step returned without a result")
    return plan.result


_WARMED: set[str] = set()


def _warm_optimizer(name: str) -> None:
    """Build and step ``name``'s optimizer once in this process on a one-element CPU parameter, before the
    first measured step. The first ``torch.optim`` optimizer a process builds imports parts of torch lazily;
    done inside the step, that kept forward's activations referenced, so the first step of a process read up to
    one activation per layer higher than every later one (a small conv net: 136,184 then 80,504 bytes)."""
    if name in _WARMED:
        return
    p = nn.Parameter(torch.zeros(1))
    p.grad = torch.zeros(1)
    opt = optimizer_rule(name).make([p])
    opt.step()
    _WARMED.add(name)


@dataclass
class StepOptions:
    """How ``analyze(mode="train")`` runs its step when called by ``simulate_step``: the optimizer's
    multi-tensor path, costs or memory only; ``result`` receives the ``TrainingStep``."""

    foreach: bool = False
    cost: bool = True
    result: TrainingStep | None = None


#: set by ``training.simulate_step`` around its ``analyze`` call; read by ``analyze``'s training branch.
STEP_OPTIONS: contextvars.ContextVar[StepOptions | None] = contextvars.ContextVar("archcost_step", default=None)


# -- the report --------------------------------------------------------------------------------------------
def with_training(report: CostReport, sim: TrainingStep, optimizer: str) -> CostReport:
    """``report`` (a training-mode ``analyze``) with the backward, optimizer and peak figures of ``sim``.

    Rows are matched by name; rows the step did not see (unused parameters) cost nothing to train. The
    forward work activation checkpointing re-runs in backward is counted in the backward figures of the
    row it re-runs, and said in a note with its total."""
    rule = optimizer_rule(optimizer)
    by_name = {r.name: i for i, r in enumerate(sim.rows)}
    missing = [r.name for r in sim.rows if r.name not in {x.name for x in report.layers}]
    if missing:
        raise InternalError(f"the training step saw rows the analysis did not: {', '.join(missing[:5])}")
    rows = []
    for r in report.layers:
        i = by_name.get(r.name)
        b = sim.backward[i] + sim.recompute[i] if i is not None else Cost()
        n = sim.optimizer_params[i] if i is not None else 0
        rows.append(replace(r, backward_macs=b.macs, backward_flops=b.flops, optimizer_flops=rule.flops_per_param * n))
    notes = list(report.notes)
    again = sum(sim.recompute, Cost())
    if again != Cost():
        where = [sim.rows[i].name for i, c in enumerate(sim.recompute) if c != Cost()]
        shown = ", ".join(where[:4]) + (f" and {len(where) - 4} more" if len(where) > 4 else "")
        backward = sum(sim.backward, Cost())
        notes.append(
            f"activation checkpointing re-runs {again.macs:,} MACs ({again.flops:,} FLOPs) of forward work "
            f"inside backward ({shown}; the whole checkpointed forward: torch's early stop may skip ops after the "
            f"last one whose output backward needs): counted in the backward figures, which are "
            f"{backward.macs:,} MACs ({backward.flops:,} FLOPs) without it"
        )
    return replace(
        report,
        layers=rows,
        unsupported=[*report.unsupported, *sim.unsupported],
        notes=notes,
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
