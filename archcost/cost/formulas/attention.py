"""Scaled dot-product attention (``F.scaled_dot_product_attention``), every backend alike.

``softmax(Q K^T * scale + mask) V`` with ``Q: (..., Hq, L, E)``, ``K: (..., Hkv, S, E)``,
``V: (..., Hkv, S, Ev)``. MACs: ``Q K^T`` is ``L * S * E`` per head and ``(scores) V`` is ``L * S * Ev``, so
``prod(out.shape[:-1]) * S * (E + Ev)``; grouped-query attention (``enable_gqa``, ``Hkv < Hq``) shares K and
V between query heads but every query head still does its own products. This is torch's own count
(``sdpa_flop_count`` in ``torch/utils/flop_counter.py``, used for the flash, efficient and cuDNN backends; the
math backend runs the same two ``bmm``). A causal mask is counted in full, as there: kernels skip masked
blocks, the math backend does not, and neither count depends on it.

FLOPs beyond 2 per MAC, per score (``prod(out.shape[:-1]) * S`` of them): the scale, the softmax, the mask
when there is one (``attn_mask`` or ``is_causal``), and the dropout multiply when ``dropout_p > 0``
(``units.FLOPS_PER_ELEMENT``).
"""

from __future__ import annotations

import math

from archcost.cost._registry import Cost, register_cost
from archcost.cost.formulas._args import arg, float_arg, tensor_arg
from archcost.cost.formulas._tools import FC_SDPA
from archcost.units import per_element


def sdpa_cost(
    q_shape: tuple[int, ...],
    k_shape: tuple[int, ...],
    v_shape: tuple[int, ...],
    *,
    masked: bool = False,
    dropout: bool = False,
) -> Cost:
    """Cost of one ``scaled_dot_product_attention`` call on ``Q``, ``K``, ``V`` of these shapes."""
    rows = math.prod(q_shape[:-1])  # batch x query heads x L
    keys = k_shape[-2]
    macs = rows * keys * (q_shape[-1] + v_shape[-1])
    per_score = per_element("attention_scale") + per_element("softmax")
    per_score += per_element("attention_mask") if masked else 0
    per_score += per_element("dropout_train") if dropout else 0
    return Cost(macs=macs, flops=2 * macs + rows * keys * per_score)


@register_cost("scaled_dot_product_attention", flop_counter=FC_SDPA)  # fvcore has no handle: 0
def _sdpa(args: tuple, kwargs: dict, out) -> Cost:
    q, k, v = (tensor_arg(args, kwargs, i, n) for i, n in enumerate(("query", "key", "value")))
    mask = arg(args, kwargs, 3, "attn_mask")
    dropout_p = float_arg(args, kwargs, 4, "dropout_p", 0.0)
    causal = bool(arg(args, kwargs, 5, "is_causal", False))
    return sdpa_cost(
        tuple(q.shape), tuple(k.shape), tuple(v.shape), masked=mask is not None or causal, dropout=dropout_p > 0
    )
