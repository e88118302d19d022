"""Checking an analytic receptive field empirically, by the support of a gradient.

On a float64 CPU copy of the model with positive weights (1 / fan-in), identity in place of every
non-linearity, average in place of max pooling and batch norm reduced to the identity, the gradient of
one centre output unit of a layer with respect to the input is non-zero exactly on that unit's receptive
field: every path contributes with the same sign, so nothing cancels. The input is made large enough
that the field lies inside it. The extent of the support (first to last non-zero pixel, per axis) and
its centre are compared with the analytic field of that unit: ``rf`` wide around ``rf_start + u * rf_stride``,
or, where the fields repeat over several units (``rf_pattern``: after a transposed convolution or an
upsampling), the pattern's own field for the unit, which is taken where the pattern's field is widest.

Limits: float64 underflows for paths through more than about 100 layers of fan-in 1000 (the gradient
at the edge of the field is a product of 1/fan-in); normalisation with run-time statistics (group and
layer norm) is kept and may cancel; the layer checked must be a module (hooks capture its output).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from archcost.cost import analyze
from archcost.cost._registry import op_name
from archcost.cost.record import CostReport, LayerCost
from archcost.errors import InputError, InternalError

_IDENTITY = frozenset(
    """relu relu6 hardtanh leaky_relu prelu elu selu threshold tanh sigmoid hardsigmoid hardswish silu mish gelu
    softplus softmax log_softmax dropout dropout1d dropout2d dropout3d alpha_dropout feature_alpha_dropout
    local_response_norm""".split()
)


@dataclass(frozen=True)
class RFCheck:
    layer: str
    input_size: tuple[int, ...]
    analytic_rf: tuple[float, ...]
    empirical_rf: tuple[int, ...]
    analytic_centre: tuple[float, ...]
    empirical_centre: tuple[float, ...]
    is_global: bool

    @property
    def agrees(self) -> bool:
        if self.is_global:
            return all(e == n for e, n in zip(self.empirical_rf, self.input_size[1:], strict=True))
        return all(math.isclose(a, e) for a, e in zip(self.analytic_rf, self.empirical_rf, strict=True)) and all(
            math.isclose(a, e) for a, e in zip(self.analytic_centre, self.empirical_centre, strict=True)
        )


class _Linearise(TorchFunctionMode):
    """Non-linearities become the identity; max pooling becomes average pooling."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = op_name(func)
        if name in _IDENTITY:
            return args[0] if args else kwargs["input"]
        if name.startswith("max_pool") and name[-2:] in ("1d", "2d", "3d"):
            return _avg_pool(name[-2:], *args, **kwargs)
        if name.startswith("adaptive_max_pool"):
            return getattr(F, f"adaptive_avg_pool{name[-2:]}")(
                args[0], *args[1:2], **{k: v for k, v in kwargs.items() if k == "output_size"}
            )
        return func(*args, **kwargs)


def _avg_pool(dims: str, input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
              return_indices=False):  # fmt: skip
    if dilation not in (1, (1,) * int(dims[0]), [1] * int(dims[0])):
        raise InputError("receptive-field verification cannot linearise a dilated max pooling", "")
    pool = getattr(F, f"avg_pool{dims}")
    return pool(input, kernel_size, stride if stride else None, padding, ceil_mode, count_include_pad=True)


class _Stop(Exception):
    pass


def _run_until(model: nn.Module, x: torch.Tensor, target: nn.Module, state: dict | None = None) -> torch.Tensor:
    """Run forward (with ``state`` swapped in, if given) until ``target`` has produced its output."""
    captured = {}

    def hook(_m, _i, out):
        captured["out"] = out if isinstance(out, torch.Tensor) else next(t for t in out if isinstance(t, torch.Tensor))
        raise _Stop

    handle = target.register_forward_hook(hook)
    try:
        if state is None:
            model(x)
        else:
            torch.func.functional_call(model, state, (x,), strict=False)
    except _Stop:
        pass
    finally:
        handle.remove()
    if "out" not in captured:  # pragma: no cover - the module ran in the analysis
        raise InputError("the layer to check did not run in forward", "choose a layer from `archcost rf MODEL`")
    return captured["out"]


def _positive(model: nn.Module) -> nn.Module:
    """A float64 copy with weights 1/fan-in, zero biases, identity batch norm."""
    net = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.dim() >= 2:
                p.fill_(1.0 / p[0].numel())
            else:
                p.fill_(0.0 if name.endswith("bias") else 1.0)
        for name, b in net.named_buffers():
            if name.endswith("running_mean"):
                b.zero_()
            elif name.endswith("running_var"):
                b.fill_(1.0)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_var is not None:
                m.running_var.fill_(1.0 - m.eps)  # var + eps = 1: identity (torch 2.11 refuses eps = 0)
    return net


def target_row(report: CostReport, layer: str | None) -> tuple[LayerCost, str]:
    """The row to check and the module whose output it is: ``layer`` (a leaf's row, or any module, whose
    output is its last row's), or by default the last module row with a known, spatial field."""
    if layer is None:
        spatial = [r for r in report.layers if r.kind == "module" and r.rf is not None and not r.rf_global]
        if not spatial:
            raise InputError("the model has no module layer with a known spatial receptive field", "")
        return spatial[-1], spatial[-1].module
    inside = [r for r in report.layers if r.module == layer or r.module.startswith(f"{layer}.")]
    if not inside:
        raise InputError(f"no module named {layer!r} ran in forward", "pick a module name from `archcost table MODEL`")
    row = inside[-1]
    if row.rf is None:
        raise InputError(f"the receptive field of {layer!r} is unknown ({row.rf_unknown})", "pick another layer")
    return row, layer


def verify(
    model: nn.Module, input_size: tuple[int, ...], layer: str | None = None, *, report: CostReport | None = None
) -> RFCheck:
    """Compare the analytic receptive field of ``layer`` (default: the last spatial module) with the
    support of the gradient of its centre unit. ``model`` must have real (not meta) parameters.
    ``report``: an analysis of ``model`` at ``input_size`` already made (it is not analysed again)."""
    report = report if report is not None else analyze(model, input_size)
    row, target_path = target_row(report, layer)
    rf = _geometry(row)[0]
    size = _input_size(model, report, row, input_size, target_path)
    net = _positive(model)
    target = net.get_submodule(target_path)
    x = torch.ones((1, *size), dtype=torch.float64, requires_grad=True)
    with _Linearise():
        y = _run_until(net, x, target)
    if y.dim() - 2 != len(rf):
        raise InputError(
            f"the output of {row.name} has {y.dim() - 2} spatial dimensions, the input {len(rf)}: its axes "
            "moved (squeeze, permute, ...) and the check reads them as the input's",
            "check a layer whose output keeps the input's spatial axes",
        )
    centre = tuple(_widest_unit(row, axis, n // 2) for axis, n in enumerate(y.shape[2:]))
    unit: tuple[int | slice, ...] = (0, slice(None), *centre)
    y[unit].sum().backward()
    if x.grad is None:  # backward through y reaches x, or raises
        raise InternalError(f"no gradient reached the input from {row.name}")
    support = (x.grad[0].abs().sum(0) > 0).nonzero()
    lo, hi = support.min(0).values.tolist(), support.max(0).values.tolist()
    analytic = [unit_field(row, axis, u) for axis, u in enumerate(centre)]
    return RFCheck(
        layer=row.name,
        input_size=size,
        analytic_rf=tuple(float(h - low + 1) for low, h in analytic),
        empirical_rf=tuple(h - low + 1 for low, h in zip(lo, hi, strict=True)),
        analytic_centre=tuple((low + h) / 2 for low, h in analytic),
        empirical_centre=tuple((low + h) / 2 for low, h in zip(lo, hi, strict=True)),
        is_global=row.rf_global,
    )


def unit_field(row: LayerCost, axis: int, u: int) -> tuple[float, float]:
    """The input pixels (first, last) that unit ``u`` of ``row``'s output sees along ``axis``, analytically."""
    rf, jump, start = _geometry(row)
    if row.rf_pattern is not None:
        period, fields = row.rf_pattern[axis]
        cycle, phase = divmod(u, period)
        low, high = fields[phase]
        if low is None:
            return (math.nan, math.nan)
        shift = round(jump[axis] * period)
        return (low + cycle * shift, high + cycle * shift)
    centre, half = start[axis] + u * jump[axis], (rf[axis] - 1) / 2
    return (centre - half, centre + half)


def _geometry(row: LayerCost) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """``row``'s receptive field, jump and start per axis; ``InputError`` where they are unknown."""
    if row.rf is None or row.rf_stride is None or row.rf_start is None:
        raise InputError(f"the receptive field of {row.name!r} is unknown ({row.rf_unknown})", "pick another layer")
    return row.rf, row.rf_stride, row.rf_start


def _widest_unit(row: LayerCost, axis: int, u: int) -> int:
    """``u``, or where the fields repeat over several units the nearest unit at or after it whose field is
    the widest (``rf``)."""
    if row.rf_pattern is None:
        return u
    period, fields = row.rf_pattern[axis]
    widest = max(h - low for low, h in fields if low is not None)
    return next(v for v in range(u, u + period) if (f := fields[v % period])[0] is not None and f[1] - f[0] == widest)


def _input_size(model, report, row, input_size, target_path) -> tuple[int, ...]:
    """The smallest input (grown from the given one) on which the centre unit's field lies inside."""
    channels, spatial = input_size[0], list(input_size[1:])
    state = {
        k: torch.empty(v.shape, dtype=v.dtype, device="meta")
        for k, v in (*model.named_parameters(), *model.named_buffers())
    }
    target = model.get_submodule(target_path)
    for _ in range(64):
        with torch.no_grad():
            out = _run_until(model, torch.empty((1, channels, *spatial), device="meta"), target, state)
        ok = True
        if out.dim() - 2 != len(spatial):
            return (channels, *spatial)  # axes moved: verify says so
        for axis, n in enumerate(out.shape[2:]):
            low, high = unit_field(row, axis, _widest_unit(row, axis, n // 2))
            if low < 0 or high > spatial[axis] - 1:
                ok = False
                spatial[axis] += int(max(2 * row.rf_stride[axis], spatial[axis] // 4))
        if ok:
            return (channels, *spatial)
    raise InputError(f"could not find an input size that contains the receptive field of {row.name}", "")
