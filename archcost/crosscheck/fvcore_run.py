"""Running fvcore on a model: FlopCountAnalysis, ActivationCountAnalysis and parameter_count, in one trace.

fvcore traces the model with ``torch.jit`` on a real input, so the model must live on the CPU with real
(here: freshly initialised) weights; the meta device does not trace. A model fvcore cannot trace
(data-dependent outputs, non-tensor outputs) gives an ``FvcoreResult`` whose ``error`` says why: that is
a finding to show, not a failure of archcost.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import torch
from torch import nn

from archcost.cost.untouched import private_state
from archcost.errors import InputError, one_line


@dataclass
class FvcoreResult:
    """fvcore's per-module figures; every dict is keyed by module path ("" is the model) and inclusive:
    a module's figure contains its submodules', as fvcore's ``by_module_and_operator`` reports it."""

    flops: dict[str, Counter] = field(default_factory=dict)  # FlopCountAnalysis, per op name
    activations: dict[str, Counter] = field(default_factory=dict)  # ActivationCountAnalysis, per op name
    params: dict[str, int] = field(default_factory=dict)  # parameter_count
    unsupported: dict[str, Counter] = field(default_factory=dict)  # aten op -> times seen
    error: str | None = None  # why fvcore could not trace the model

    @property
    def ok(self) -> bool:
        return self.error is None

    def total_flops(self) -> int:
        return sum(self.flops.get("", Counter()).values())

    def total_activations(self) -> int:
        return sum(self.activations.get("", Counter()).values())


def _both(op: str, flop_handle, act_handle):
    """One jit handle that returns fvcore's flop count under ``flop:<name>`` and its activation count under
    ``act:<name>``, so one trace serves both analyses. ``<name>`` is what fvcore itself reports: the
    handle's own key (``conv``) or the op without its namespace (``aten::linear`` -> ``linear``)."""
    simple = op.split("::", 1)[-1]

    def handle(inputs, outputs):
        out: Counter = Counter()
        for prefix, h in (("flop", flop_handle), ("act", act_handle)):
            if h is None:
                continue
            value = h(inputs, outputs)
            if isinstance(value, Counter):
                out.update({f"{prefix}:{k}": v for k, v in value.items()})
            else:
                out[f"{prefix}:{simple}"] += value
        return out

    return handle


def run_fvcore(model: nn.Module, input_shape: object, *, seed: int = 0) -> FvcoreResult:
    """fvcore's flops, activations, parameters and unsupported ops for ``model`` on a random input of
    ``input_shape`` (one input's shape, batch included) or a ``Workload``'s inputs (every positional kind;
    fvcore's trace takes no keyword inputs, which is recorded as its error). The model is put in eval mode
    for the trace and restored after.

    The handles are exactly fvcore's defaults (``FlopCountAnalysis``'s and ``ActivationCountAnalysis``'s
    ``_DEFAULT_SUPPORTED_OPS``), combined so that the model is traced once instead of twice.
    """
    try:
        from fvcore.nn import FlopCountAnalysis, parameter_count
        from fvcore.nn.activation_count import _DEFAULT_SUPPORTED_OPS as ACT_OPS
        from fvcore.nn.flop_count import _DEFAULT_SUPPORTED_OPS as FLOP_OPS
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.partition(".")[0] != "fvcore":
            raise
        raise InputError(
            "fvcore's figures (archcost check, table --fvcore) need the fvcore package, which is not installed",
            "pip install fvcore",
        ) from None

    result = FvcoreResult(params=dict(parameter_count(model)))
    result.params.setdefault("", 0)
    if any(t.device.type == "meta" for t in [*model.parameters(), *model.buffers()]):
        result.error = "fvcore traces with real tensors and cannot run a model on the meta device"
        return result
    from archcost.crosscheck.torch_counter import forward_inputs

    args, kwargs = forward_inputs(input_shape, "cpu", seed=seed)
    if kwargs:
        result.error = (
            f"fvcore traces positional inputs only; this forward takes keyword inputs ({', '.join(kwargs)}), "
            "so fvcore's figures are missing (archcost and FlopCounterMode are compared)"
        )
        return result
    x = args[0] if len(args) == 1 and isinstance(args[0], torch.Tensor) else tuple(args)
    handles = {op: _both(op, FLOP_OPS.get(op), ACT_OPS.get(op)) for op in {*FLOP_OPS, *ACT_OPS}}
    flags = {m: m.training for m in model.modules()}
    try:
        model.eval()
        analysis = FlopCountAnalysis(model, x).set_op_handle(**handles)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
        with torch.no_grad(), private_state(model, "cpu"):  # attributes forward caches are put back
            counts = analysis.by_module_and_operator()
        unsupported = {name: Counter(analysis.unsupported_ops(name)) for name in counts}
    except Exception as exc:  # fvcore's trace failed: report it, keep archcost's figures
        result.error = one_line(exc)
        return result
    finally:
        for m, flag in flags.items():
            m.training = flag
    for name, counter in counts.items():
        result.flops[name] = Counter({k[5:]: int(v) for k, v in counter.items() if k.startswith("flop:")})
        result.activations[name] = Counter({k[4:]: int(v) for k, v in counter.items() if k.startswith("act:")})
    result.unsupported = unsupported
    return result
