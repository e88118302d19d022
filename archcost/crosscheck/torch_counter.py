"""Running torch's own ``FlopCounterMode`` on a model, on the meta device (no weights, no arithmetic)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import cast

import torch
from torch import nn

from archcost.errors import one_line

#: FlopCounterMode's op names -> the family a Rule reports them under (conventions.py).
_FAMILY = {
    "convolution": "convolution",
    "_convolution": "convolution",
    "cudnn_convolution": "convolution",
    "_slow_conv2d_forward": "convolution",
    "convolution_overrideable": "convolution",
    "mm": "matmul",
    "addmm": "matmul",
    "bmm": "matmul",
    "baddbmm": "matmul",
    "convolution_backward": "convolution",
}


def family(op: object) -> str:
    """``aten.addmm`` (an OpOverloadPacket) -> ``matmul``; ``aten.convolution`` -> ``convolution``."""
    name = str(op).removeprefix("aten.")
    return _FAMILY.get(name, name)


@dataclass
class TorchCount:
    """FlopCounterMode's counts per module path ("" is the model), inclusive of submodules, per op family."""

    flops: dict[str, Counter] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def total(self) -> int:
        return sum(self.flops.get("", Counter()).values())


def _meta_state(model: nn.Module, *, grad: bool) -> dict[str, torch.Tensor]:
    """Empty meta tensors for ``model``'s parameters and buffers, by name, in their own dtypes; with ``grad``,
    the parameters that require gradients in the model require them here too (buffers never)."""
    trainable = {k for k, p in model.named_parameters() if p.requires_grad} if grad else set()
    return {
        k: torch.empty(t.shape, device="meta", dtype=t.dtype, requires_grad=k in trainable)
        for k, t in [*model.named_parameters(), *model.named_buffers()]
    }


def seeded():
    """torch's CPU generator seeded as archcost's analysis seeds it (``analysis.SEED``), the caller's state put
    back after: a forward that draws (a random layer-drop) takes the same draw in both tools."""
    import contextlib

    from archcost.cost.analysis import SEED

    stack = contextlib.ExitStack()
    stack.enter_context(torch.random.fork_rng(devices=[]))
    torch.default_generator.manual_seed(SEED)
    return stack


def forward_inputs(inputs: object, device: str, *, seed: int = 0) -> tuple[list, dict]:
    """``(args, kwargs)`` of forward on ``device`` for ``inputs``: a ``Workload`` (``archcost.cost.workload``,
    every input kind) or one input's shape with the batch (a seeded random float tensor; empty on meta)."""
    if hasattr(inputs, "tensors"):
        return inputs.tensors(device, seed=seed)
    shape = tuple(cast(Iterable[int], inputs))  # not a Workload: one input's shape
    if device == "meta":
        return [torch.empty(shape, device="meta")], {}
    return [torch.randn(shape, generator=torch.Generator().manual_seed(seed))], {}


def run_flop_counter(model: nn.Module, input_shape: object, *, training: bool = False) -> TorchCount:
    """FlopCounterMode's per-module counts for ``model`` on ``input_shape``: one input's shape (batch
    included) or a ``Workload`` (``forward_inputs``).

    Like ``archcost.analyze``, the parameters are swapped for meta tensors with
    ``torch.func.functional_call``: the model is not copied or changed, and nothing is computed.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from archcost.cost.untouched import private_state

    state = _meta_state(model, grad=False)
    args, kwargs = forward_inputs(input_shape, "meta")
    flags = {m: m.training for m in model.modules()}
    result = TorchCount()
    try:
        model.train(training)
        with seeded(), FlopCounterMode(display=False) as counter, torch.no_grad(), private_state(model, "meta"):
            torch.func.functional_call(model, state, tuple(args), kwargs, tie_weights=True, strict=False)
    except Exception as exc:
        result.error = one_line(exc)
        return result
    finally:
        for m, flag in flags.items():
            m.training = flag
    _by_module(model, counter, result)
    return result


def _by_module(model: nn.Module, counter, result: TorchCount, *, minus: dict | None = None) -> None:
    """``counter``'s counts per module path into ``result.flops`` (less ``minus``, counts taken earlier)."""
    root = type(model).__name__
    for name, ops in counter.get_flop_counts().items():
        if name == "Global":
            path = ""
        elif name == root:
            continue  # the same ops as Global: the model's call covers the whole forward
        elif name.startswith(root + "."):
            path = name[len(root) + 1 :]
        else:
            continue
        before = (minus or {}).get(name, Counter())
        c = result.flops.setdefault(path, Counter())
        for op, n in ops.items():
            if int(n) - int(before.get(op, 0)):
                c[family(op)] += int(n) - int(before.get(op, 0))


def run_flop_counter_backward(model: nn.Module, input_shape: object) -> TorchCount:
    """FlopCounterMode's per-module counts of the **backward** of a training-mode forward, on meta tensors.

    The forward runs inside the counter too (its module tracker attributes backward ops to the module
    whose forward made them only when it saw that forward); the counts at the end of the forward are
    subtracted, leaving what ``output.sum().backward()`` added per module (the loss ``archcost.cost.training``
    assumes). Parameters require gradients as the model's own do (frozen ones get none). The model is not
    copied or changed: parameters are swapped for meta tensors with ``torch.func.functional_call``.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from archcost.cost.training import loss_tensors
    from archcost.cost.untouched import private_state

    state = _meta_state(model, grad=True)
    args, kwargs = forward_inputs(input_shape, "meta")
    flags = {m: m.training for m in model.modules()}
    result = TorchCount()
    try:
        model.train(True)
        with seeded(), FlopCounterMode(display=False) as counter, torch.enable_grad(), private_state(model, "meta"):
            out = torch.func.functional_call(model, state, tuple(args), kwargs, tie_weights=True, strict=False)
            forward = {k: Counter(v) for k, v in counter.get_flop_counts().items()}
            outs = loss_tensors(out)  # the tensors archcost's training step sums, dataclasses included
            loss = sum(t.sum() for t in outs)  # the int 0 when there are none
            if not isinstance(loss, torch.Tensor):
                raise ValueError("the output does not depend on any trainable parameter: no backward to count")
            loss.backward()
    except Exception as exc:
        result.error = one_line(exc)
        return result
    finally:
        for m, flag in flags.items():
            m.training = flag
    _by_module(model, counter, result, minus=forward)
    return result
