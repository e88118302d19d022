"""How fvcore and torch's FlopCounterMode count ops: the ``Counted`` facets the formulas' entries carry.

Each is read from the tool's source (versions as the project pins them) and cites it:

* fvcore 0.1.5: ``fvcore/nn/flop_count.py`` ``_DEFAULT_SUPPORTED_OPS`` (the aten op -> handle table of
  ``FlopCountAnalysis``; every other op counts 0) and the handles in ``fvcore/nn/jit_handles.py``. fvcore
  traces the model with ``torch.jit.trace`` on the CPU, so it sees the aten op a Python call becomes
  (``F.linear`` -> ``aten::linear``, ``F.interpolate(mode="nearest")`` on 4-d -> ``aten::upsample_nearest2d``).
* torch: ``torch/utils/flop_counter.py`` (``flop_registry``, filled by ``@register_flop_formula``): it counts
  only ``aten.mm``, ``addmm``, ``bmm``, ``baddbmm``, ``_scaled_mm``, the convolutions and the attention
  kernels, 2 per multiply-accumulate, at dispatch (so it sees what a composite op decomposes into).
"""

from __future__ import annotations

import math

from archcost.cost._registry import Cost, Counted
from archcost.cost.formulas._args import out_numel

FV = "fvcore/nn/flop_count.py _DEFAULT_SUPPORTED_OPS"
FV_HANDLES = "fvcore/nn/jit_handles.py"
TORCH = "torch/utils/flop_counter.py"


def _macs(args: tuple, kwargs: dict, out, cost: Cost) -> int:
    return cost.macs


def _two_macs(args: tuple, kwargs: dict, out, cost: Cost) -> int:
    return 2 * cost.macs


# -- fvcore ----------------------------------------------------------------------------------------------
def _conv_fvcore(args: tuple, kwargs: dict, out, cost: Cost) -> int:
    """fvcore's count of a convolution: its MACs, or 0 where the padding is a string ('same', 'valid'): torch
    then calls ``aten::_convolution_mode``, which has no fvcore handle (fvcore lists it as unsupported)."""
    padding = kwargs.get("padding", args[4] if len(args) > 4 else 0)
    return 0 if isinstance(padding, str) else cost.macs


FV_CONV = Counted(
    _conv_fvcore,
    "conv",
    "1 per MAC (one fused multiply-add = one flop); bias not counted; 0 for padding='same'/'valid' "
    "(aten::_convolution_mode has no handle)",
    f"{FV}['aten::_convolution'] -> {FV_HANDLES} conv_flop_jit / conv_flop_count: "
    "batch * prod(w_shape) * prod(out_shape[2:]) (input spatial size when transposed); "
    "no entry for aten::_convolution_mode",
)
FV_LINEAR = Counted(
    _macs,
    "linear",
    "1 per MAC; bias not counted",
    f"{FV}['aten::linear'] -> {FV_HANDLES} linear_flop_jit: prod(input_shape) * out_features",
)


def _fv_matmul(args: tuple, kwargs: dict, out, cost: Cost) -> int | None:
    a, b = kwargs.get("input"), kwargs.get("other")
    if a is None or b is None or b.dim() < 2:
        return None  # 1-d second operand: matmul_flop_jit asserts, fvcore's analysis fails
    return math.prod(a.shape) * b.shape[-1]


FV_MATMUL = Counted(
    _fv_matmul,
    "matmul",
    "prod(a.shape) * b.shape[-1] (archcost's MACs unless a broadcasts)",
    f"{FV}['aten::matmul'] -> {FV_HANDLES} matmul_flop_jit",
)
FV_MM = Counted(_macs, "mm", "1 per MAC", f"{FV}['aten::mm'] -> {FV_HANDLES} matmul_flop_jit")
FV_BMM = Counted(_macs, "bmm", "1 per MAC", f"{FV}['aten::bmm'] -> {FV_HANDLES} bmm_flop_jit: n * c * t * d")
FV_ADDMM = Counted(
    _macs,
    "addmm",
    "1 per MAC; the added matrix not counted",
    f"{FV}['aten::addmm'] -> {FV_HANDLES} addmm_flop_jit: batch * input_dim * output_dim",
)


def _fv_norm(index_name: str):
    def count(args: tuple, kwargs: dict, out, cost: Cost) -> int:
        x = kwargs["input"]
        affine = kwargs.get(index_name) is not None
        return x.numel() * (5 if affine else 4)

    return count


def _fv_batch_norm(args: tuple, kwargs: dict, out, cost: Cost) -> int:
    x = kwargs["input"]
    affine = kwargs.get("weight") is not None
    if kwargs.get("training"):  # batchnorm_flop_jit falls back to norm_flop_counter(1)
        return x.numel() * (5 if affine else 4)
    return x.numel() * (2 if affine else 1)


FV_BATCH_NORM = Counted(
    _fv_batch_norm,
    "batch_norm",
    "inference: 2 per element with a weight, 1 without; training: 5 with a weight, 4 without",
    f"{FV}['aten::batch_norm'] -> {FV_HANDLES} batchnorm_flop_jit",
)
FV_GROUP_NORM = Counted(
    _fv_norm("weight"),
    "group_norm",
    "5 per input element with a weight, 4 without (a bias alone is not looked at)",
    f"{FV}['aten::group_norm'] -> {FV_HANDLES} norm_flop_counter(2)",
)
FV_LAYER_NORM = Counted(
    _fv_norm("weight"),
    "layer_norm",
    "5 per input element with a weight, 4 without (a bias alone is not looked at)",
    f"{FV}['aten::layer_norm'] -> {FV_HANDLES} norm_flop_counter(2)",
)
FV_INSTANCE_NORM = Counted(
    _fv_norm("weight"),
    "instance_norm",
    "5 per input element with a weight, 4 without",
    f"{FV}['aten::instance_norm'] -> {FV_HANDLES} norm_flop_counter(1)",
)
FV_ADAPTIVE_AVG_POOL2D = Counted(
    lambda args, kwargs, out, cost: kwargs["input"].numel(),
    "adaptive_avg_pool2d",
    "1 per input element (archcost: 1 per element read by the windows)",
    f"{FV}['aten::adaptive_avg_pool2d'] -> {FV_HANDLES} elementwise_flop_counter(1, 0)",
)


def _fv_interpolate(args: tuple, kwargs: dict, out, cost: Cost) -> int:
    mode = kwargs.get("mode", "nearest")
    if out.dim() == 4 and mode == "nearest":  # aten::upsample_nearest2d: elementwise_flop_counter(0, 1)
        return out.numel()
    if out.dim() == 4 and mode == "bilinear":  # aten::upsample_bilinear2d: elementwise_flop_counter(0, 4)
        return 4 * out.numel()
    return 0


FV_INTERPOLATE = Counted(
    _fv_interpolate,
    "upsample",
    "2-d nearest: 1 per output element (upsample_nearest2d); 2-d bilinear: 4 per output element "
    "(upsample_bilinear2d); other modes and dimensions: no handle, counted 0",
    f"{FV}['aten::upsample_nearest2d'] elementwise_flop_counter(0, 1), "
    "['aten::upsample_bilinear2d'] elementwise_flop_counter(0, 4)",
)


def _fv_grid_sample(args: tuple, kwargs: dict, out: object, cost: Cost) -> int:
    return 4 * out_numel(out)


FV_GRID_SAMPLE = Counted(
    _fv_grid_sample,
    "grid_sampler",
    "4 per output element whatever the mode and dimensions ('assume bilinear')",
    f"{FV}['aten::grid_sampler'] -> {FV_HANDLES} elementwise_flop_counter(0, 4)",
)

# -- torch FlopCounterMode ---------------------------------------------------------------------------------
FC_CONV = Counted(
    _two_macs,
    "convolution",
    "2 per MAC; bias not counted",
    f"{TORCH} conv_flop / conv_flop_count: prod(conv_shape) * prod(filter_size) * batch * c_out * c_in * 2",
)
FC_MATMUL = Counted(
    _two_macs,
    "matmul",
    "2 per MAC (linear and matmul reach it as aten.mm, addmm or bmm); bias not counted",
    f"{TORCH} mm_flop / addmm_flop / bmm_flop / baddbmm_flop: 2 * m * k * n (per batch)",
)


def _fc_matmul(args: tuple, kwargs: dict, out, cost: Cost) -> int:
    b = kwargs.get("other")
    a = kwargs.get("input")
    if b is None or a is None or b.dim() == 1:
        return 0  # a vector second operand runs as aten.dot or aten.mv, which have no formula
    return 2 * cost.macs


FC_TORCH_MATMUL = Counted(
    _fc_matmul,
    "matmul",
    "2 per MAC where it runs as aten.mm or bmm; a vector second operand (aten.dot, aten.mv): counted 0",
    f"{TORCH} mm_flop / bmm_flop: 2 * m * k * n; flop_registry has no aten.dot or aten.mv",
)
FC_EINSUM = Counted(
    _two_macs,
    "matmul",
    "2 per MAC: torch.einsum runs its contractions as aten.bmm (archcost's MACs are those bmm's); a "
    "broadcast multiply or a sum has no formula",
    f"{TORCH} bmm_flop: 2 * b * m * k * n",
)
FC_SDPA = Counted(
    _two_macs,
    "attention",
    "2 per MAC of Q K^T and of (scores) V, whatever the mask, scale and backend",
    f"{TORCH} sdpa_flop_count: bmm_flop(q, k^T) + bmm_flop(scores, v)",
)
FC_RECURRENT = Counted(
    _two_macs,
    "matmul",
    "2 per MAC on the meta device: the recurrent op decomposes into one aten.mm / addmm per weight matrix "
    "and step (on the CPU with oneDNN it runs as one kernel and counts 0; archcost's check runs on meta)",
    f"{TORCH} mm_flop / addmm_flop: 2 * m * k * n",
)
FC_AFFINE_GRID = Counted(
    _two_macs,
    "matmul",
    "2 per MAC: affine_grid_generator runs a aten.bmm of the base grid by theta",
    f"{TORCH} bmm_flop: 2 * b * m * k * n",
)
