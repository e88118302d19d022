"""What-if precision: a report's bytes and bit operations (BOPs) as if its weights and activations were
quantized to ``weight_bits`` / ``act_bits``, params and MACs unchanged.

BOPs follow the binary/quantized-network convention: a multiply-accumulate of a ``b_w``-bit weight and a
``b_a``-bit activation costs ``b_w * b_a`` bit operations, so a layer's BOPs are ``MACs x b_w x b_a``. This is
the product term of the BOPs count of Baskin et al., "UNIQ: Uniform Noise Injection for Non-Uniform
Quantization of Neural Networks" (2018), ``m n k^2 (b_a b_w + b_a + b_w + log2(n k^2))``, whose other terms
count the accumulation; van Baalen et al., "Bayesian Bits" (NeurIPS 2020), count the product form used here.
The first and last layers with MACs are commonly kept at higher precision (DoReFa-Net, Zhou et al. 2016, leaves
them in float; LSQ, Esser et al. 2020, keeps them at 8 bits): ``first_last_bits``.
"""

from __future__ import annotations

import math
from dataclasses import replace

from archcost.cost.record import CostReport
from archcost.errors import InputError
from archcost.units import DTYPES, dtype_bytes


def check_bits(value: object, what: str) -> int | None:
    """``value`` as a bit width in 1..32, or None; raises ``InputError`` (exit 2) otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 32:
        raise InputError(f"{what} must be a whole number of bits from 1 to 32, got {value!r}", f"e.g. {what} 8")
    return value


def with_precision(
    report: CostReport, weight_bits: int | None, act_bits: int | None, first_last_bits: int | None = None
) -> CostReport:
    """A copy of ``report`` priced at ``weight_bits``-bit weights and ``act_bits``-bit activations.

    Per row: ``param_bytes = ceil(params x weight bits / 8)``, ``activation_bytes`` (and the view bytes and the
    activation peak) scaled from the analysis dtype's bits to ``act_bits``, ``bops = macs x weight bits x act
    bits``. The first and last rows with MACs take ``first_last_bits`` for both (default: the same widths as
    the rest). A width not given stays the analysis dtype's (e.g. 32 for float32). ``params``, ``macs`` and
    ``flops`` are unchanged. Raises ``InputError`` for a width outside 1..32, or for a training report.
    """
    weight_bits = check_bits(weight_bits, "--weight-bits")
    act_bits = check_bits(act_bits, "--act-bits")
    first_last_bits = check_bits(first_last_bits, "--first-last-bits")
    if weight_bits is None and act_bits is None:
        if first_last_bits is not None:
            raise InputError("--first-last-bits needs --weight-bits or --act-bits", "add --weight-bits N --act-bits N")
        return report
    if report.training:
        raise InputError(
            "--weight-bits/--act-bits price an inference pass", "leave out --mode train, or the bit widths"
        )
    base = 8 * dtype_bytes(DTYPES[report.dtype]) if report.dtype in DTYPES else 32
    wb, ab = weight_bits or base, act_bits or base
    costed = [i for i, r in enumerate(report.layers) if r.macs]
    ends = {costed[0], costed[-1]} if costed and first_last_bits is not None else set()
    rows = []
    for i, r in enumerate(report.layers):
        w, a = (first_last_bits, first_last_bits) if i in ends else (wb, ab)
        assert w is not None and a is not None
        rows.append(
            replace(
                r,
                param_bytes=math.ceil(r.params * w / 8),
                activation_bytes=r.activation_bytes * a // base,
                view_bytes=r.view_bytes * a // base,
                bops=r.macs * w * a,
            )
        )
    peak = report.peak_activation_bytes
    out = replace(
        report,
        layers=rows,
        peak_activation_bytes=None if peak is None else peak * ab // base,
        precision={"weight_bits": wb, "act_bits": ab, "first_last_bits": first_last_bits},
        param_bytes_by_dtype={},
        notes=[
            *report.notes,
            f"what-if precision: weights at {wb} bits and activations at {ab} bits"
            + (f", the first and last layers with MACs at {first_last_bits} bits" if ends else "")
            + "; params, MACs and FLOPs are the model's own, bytes and BOPs (MACs x weight bits x activation bits) "
            "at these widths",
        ],
    )
    return out
