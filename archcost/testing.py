"""Cost budgets for a user's own test suite: ``assert_cost(model, input_size=..., max_macs=..., max_params=...)``.

    from archcost.testing import assert_cost

    def test_backbone_stays_small():
        assert_cost(build_backbone(), input_size=(3, 224, 224), max_macs="600M", max_params=4.5e6)

A budget over its limit raises ``AssertionError`` whose message lists every budget checked, the figure,
the limit and by how much it is over. An op archcost could not cost counts 0 in the totals, so by default
it fails the assertion too (the figures would be too low to trust); pass ``allow_unsupported=True`` to
accept it.
"""

from __future__ import annotations

from torch import nn

from archcost.bench.amount import parse_amount
from archcost.cost.record import CostReport
from archcost.errors import InputError

#: Budget keyword -> (figure, unit, direction): "max" limits from above, "min" from below.
BUDGETS = {
    "max_params": ("params", "count", "max"),
    "max_macs": ("macs", "count", "max"),
    "max_flops": ("flops", "count", "max"),
    "max_param_bytes": ("param_bytes", "bytes", "max"),
    "max_activation_bytes": ("activation_bytes", "bytes", "max"),
    "max_peak_activation_bytes": ("peak_activation_bytes", "bytes", "max"),
    "min_receptive_field": ("receptive_field", "pixels", "min"),
    "max_receptive_field": ("receptive_field", "pixels", "max"),
}


def _show(value: float, unit: str) -> str:
    from archcost.units import format_bytes, format_count

    exact = f"{value:,.0f}" if float(value).is_integer() else f"{value:,}"
    if unit == "pixels":
        return exact
    short = format_bytes(value) if unit == "bytes" else format_count(value)
    return exact if short.replace(",", "") == exact.replace(",", "") else f"{exact} ({short})"


def cost_figures(report: CostReport) -> dict[str, float | None]:
    """The figures budgets are checked against: totals, peak activations, the final receptive field
    (the largest over the axes; None where the model has no spatial field)."""
    from archcost.bench.record import analytic_figures

    a = analytic_figures(report)
    rf = a["receptive_field"]
    return {
        **{k: a[k] for k in ("params", "macs", "flops", "param_bytes", "activation_bytes", "peak_activation_bytes")},
        "receptive_field": max(rf) if rf else None,
    }


def assert_cost(
    model: nn.Module | str,
    input_size: object = None,
    *,
    batch_size: int = 1,
    dtype: str = "float32",
    options: dict | None = None,
    inputs: object = None,
    kwargs: dict | None = None,
    batch_dim: int = 0,
    allow_unsupported: bool = False,
    max_params: float | str | None = None,
    max_macs: float | str | None = None,
    max_flops: float | str | None = None,
    max_param_bytes: float | str | None = None,
    max_activation_bytes: float | str | None = None,
    max_peak_activation_bytes: float | str | None = None,
    min_receptive_field: float | None = None,
    max_receptive_field: float | None = None,
) -> CostReport:
    """Analyse ``model`` (an ``nn.Module`` or a MODEL argument such as ``"resnet50"`` or
    ``"mypkg.nets:build"``) at ``input_size`` (CxHxW as a tuple or ``"3x224x224"``, or any input form
    ``archcost.analyze`` takes: ``("int64", (77,))``, ``"int64:77"``, a list of them; ``inputs=`` example
    tensors, ``kwargs=`` keyword inputs, ``batch_dim``; default: the zoo model's own, or the module's
    ``input_size`` attribute) and assert each budget given. Limits are numbers or
    text with decimal prefixes (``"600M"``, ``"4.5e6"``, ``"20MB"``). Returns the ``CostReport``.
    """
    from archcost.cost import analyze

    limits = {
        "max_params": max_params,
        "max_macs": max_macs,
        "max_flops": max_flops,
        "max_param_bytes": max_param_bytes,
        "max_activation_bytes": max_activation_bytes,
        "max_peak_activation_bytes": max_peak_activation_bytes,
        "min_receptive_field": min_receptive_field,
        "max_receptive_field": max_receptive_field,
    }
    given = {k: parse_amount(v, k) for k, v in limits.items() if v is not None}
    if not given:
        raise TypeError(f"assert_cost needs at least one budget: {', '.join(BUDGETS)}")
    from archcost.cost.workload import Workload

    if not isinstance(model, (str, nn.Module)):
        raise TypeError(f"model must be an nn.Module or a MODEL string, not {type(model).__name__}")
    if isinstance(model, nn.Module) and options:
        raise TypeError("options apply to a model given by name; build the module with them instead")
    given_inputs = input_size is not None or inputs is not None or bool(kwargs)
    if isinstance(model, nn.Module) and not given_inputs and getattr(model, "input_size", None) is None:
        raise InputError(
            f"no input size for {type(model).__name__}",
            "pass input_size=(C, H, W) (or inputs=, kwargs=), or give the module an input_size attribute",
        )
    work = Workload.of(
        model, input_size, batch_size, dtype, inputs=inputs, kwargs=kwargs, batch_dim=batch_dim, options=options
    ).load("meta")
    name = work.name
    report = analyze(work)
    figures = cost_figures(report)
    lines, over = [], False
    for key, limit in given.items():
        figure, unit, direction = BUDGETS[key]
        value = figures[figure]
        if value is None:
            lines.append(f"  {figure:<22} unknown (no spatial receptive field)   {key}={_show(limit, unit)}: FAILED")
            over = True
            continue
        bad = value > limit if direction == "max" else value < limit
        sign = (">" if bad else "<=") if direction == "max" else ("<" if bad else ">=")
        verdict = "ok"
        if bad:
            over = True
            if limit:
                verdict = f"{abs(value - limit) / limit:.2%} {'over' if direction == 'max' else 'under'}"
            else:
                verdict = "over"
            verdict = f"FAILED, {verdict}"
        lines.append(f"  {figure:<22} {_show(value, unit)} {sign} {direction} {_show(limit, unit)}: {verdict}")
    if report.unsupported and not allow_unsupported:
        ops = sorted({f"{u.op} (in {u.layer})" for u in report.unsupported})
        lines.append(
            f"  unsupported ops        {', '.join(ops)}: archcost counts them as 0, so the figures above are too "
            "low; pass allow_unsupported=True to accept that"
        )
        over = True
    if over:
        shape = "x".join(str(d) for d in report.input_shape)
        raise AssertionError(
            f"{name} on input {shape} ({report.dtype}) does not meet its cost budget:\n" + "\n".join(lines)
        )
    return report


__all__ = ["BUDGETS", "assert_cost", "cost_figures"]
