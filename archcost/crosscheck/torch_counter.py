"""Running torch's own ``FlopCounterMode`` on a model, on the meta device (no weights, no arithmetic)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import torch
from torch import nn

from archcost.crosscheck.fvcore_run import one_line

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


def run_flop_counter(model: nn.Module, input_shape: tuple[int, ...], *, training: bool = False) -> TorchCount:
    """FlopCounterMode's per-module counts for ``model`` on an input of ``input_shape`` (batch included).

    Like ``archcost.analyze``, the parameters are swapped for meta tensors with
    ``torch.func.functional_call``: the model is not copied or changed, and nothing is computed.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from archcost.cost.untouched import private_state

    state = {
        k: torch.empty(t.shape, device="meta", dtype=t.dtype)
        for k, t in [*model.named_parameters(), *model.named_buffers()]
    }
    x = torch.empty(input_shape, device="meta")
    flags = {m: m.training for m in model.modules()}
    result = TorchCount()
    try:
        model.train(training)
        with FlopCounterMode(display=False) as counter, torch.no_grad(), private_state(model, "meta"):
            torch.func.functional_call(model, state, (x,), tie_weights=True, strict=False)
    except Exception as exc:
        result.error = one_line(exc)
        return result
    finally:
        for m, flag in flags.items():
            m.training = flag
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
        c = result.flops.setdefault(path, Counter())
        for op, n in ops.items():
            c[family(op)] += int(n)
    return result
