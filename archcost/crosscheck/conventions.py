"""What fvcore and torch's FlopCounterMode count for each op, written down with the source it was read from.

Each ``Rule`` says, for the ops archcost records under some names, under which name a tool reports them,
how much it counts, in words and as a function of archcost's own row (its MACs, its input and output
shapes, its layer settings), and where in the tool's source that convention lives. The reconciliation
(``reconcile.py``) predicts each tool's figure for every archcost row from these rules and compares the
prediction with what the tool measured: a difference the rules do not predict is a mismatch.

Sources (read in the installed packages; versions as pinned by the project):

* fvcore 0.1.5: ``fvcore/nn/flop_count.py`` (``_DEFAULT_SUPPORTED_OPS``: the op -> handle table of
  ``FlopCountAnalysis``), ``fvcore/nn/jit_handles.py`` (the handles), ``fvcore/nn/jit_analysis.py``
  (``_IGNORED_OPS``: ops counted 0 without being reported unsupported),
  ``fvcore/nn/activation_count.py`` (``_DEFAULT_SUPPORTED_OPS`` of ``ActivationCountAnalysis``),
  ``fvcore/nn/parameter_count.py``.
* torch: ``torch/utils/flop_counter.py`` (``flop_registry``, filled by ``@register_flop_formula``:
  ``mm_flop``, ``addmm_flop``, ``bmm_flop``, ``baddbmm_flop``, ``conv_flop``, the attention formulas).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from archcost.cost.formulas.elementwise import INTERPOLATE_FLOPS

FVCORE, TORCH = "fvcore", "torch"
#: FlopCounterMode on the backward of a training step (``archcost check --mode train``)
TORCH_BACKWARD = "torch backward"


@dataclass(frozen=True)
class OpView:
    """One archcost row seen as one op: what the rules need, all taken from archcost's own analysis."""

    op: str  # archcost's op name (conv2d, batch_norm, ...)
    macs: int
    flops: int
    in_numel: int  # elements of the row's first input
    out_numel: int  # elements of the row's output
    out_dims: int  # dimensions of the row's output (4 for N, C, H, W)
    affine: bool = True  # norms: has a weight
    training: bool = False
    backward_macs: int = 0  # archcost's backward MACs of the row (archcost.cost.training)
    groups: int = 1  # convolutions: the layer's groups
    weight_grad: bool = False  # the row's weight gets a gradient (requires_grad)


@dataclass(frozen=True)
class Rule:
    """One tool's convention for some archcost ops."""

    tool: str  # FVCORE or TORCH
    ops: tuple[str, ...]  # archcost op names it covers
    tool_op: str  # the name the tool reports the count under ("" when the tool counts nothing)
    text: str  # the convention, in words
    source: str  # where in the tool's source it is written
    count: Callable[[OpView], int]

    @property
    def needs_shapes(self) -> bool:
        """Whether the count depends on more than the op's MACs (so on its own input or output shape)."""
        return self.count not in (_macs, _two_macs, _zero, _two_backward_macs)


_CONV = ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
_MATMUL = ("linear", "matmul", "mm", "bmm", "addmm", "baddbmm")
#: archcost ops whose work archcost counts as MACs (cost/formulas/conv.py and linear.py).
MAC_OPS = (*_CONV, *_MATMUL, "bilinear")

_FV_FLOPS = "fvcore/nn/flop_count.py _DEFAULT_SUPPORTED_OPS"
_FV_HANDLES = "fvcore/nn/jit_handles.py"
_TORCH = "torch/utils/flop_counter.py"


def _macs(v: OpView) -> int:
    return v.macs


def _two_macs(v: OpView) -> int:
    return 2 * v.macs


def _zero(v: OpView) -> int:
    return 0


def _two_backward_macs(v: OpView) -> int:
    return 2 * v.backward_macs


def _torch_conv_backward(v: OpView) -> int:
    """2 per backward MAC, plus (groups - 1) x 2 x forward MACs where the weight gets a gradient: the
    weight gradient counted as a dense convolution over every pair of input and output channels."""
    return 2 * v.backward_macs + (2 * v.macs * (v.groups - 1) if v.weight_grad else 0)


def _fv_batch_norm(v: OpView) -> int:
    if v.training:  # batchnorm_flop_jit falls back to norm_flop_counter(1)
        return v.in_numel * (5 if v.affine else 4)
    return v.in_numel * (2 if v.affine else 1)


def _fv_norm(v: OpView) -> int:
    return v.in_numel * (5 if v.affine else 4)


def _interpolate_mode(v: OpView) -> str | None:
    """The interpolation mode, read back from archcost's own FLOPs per output element."""
    if v.out_numel == 0 or v.flops % v.out_numel:
        return None
    per = v.flops // v.out_numel
    modes = [m for m, f in INTERPOLATE_FLOPS.items() if f == per and m != "nearest-exact"]
    return modes[0] if len(modes) == 1 else None


def _fv_interpolate(v: OpView) -> int:
    mode = _interpolate_mode(v)
    if v.out_dims == 4 and mode == "nearest":  # aten::upsample_nearest2d: elementwise_flop_counter(0, 1)
        return v.out_numel
    if v.out_dims == 4 and mode == "bilinear":  # aten::upsample_bilinear2d: elementwise_flop_counter(0, 4)
        return 4 * v.out_numel
    return 0


RULES: tuple[Rule, ...] = (
    # -- fvcore FlopCountAnalysis ------------------------------------------------------------------------
    Rule(
        FVCORE,
        _CONV,
        "conv",
        "1 per MAC (one fused multiply-add = one flop); bias not counted",
        f"{_FV_FLOPS}['aten::_convolution'] -> {_FV_HANDLES} conv_flop_jit / conv_flop_count: "
        "batch * prod(w_shape) * prod(out_shape[2:]) (input spatial size when transposed)",
        _macs,
    ),
    Rule(
        FVCORE,
        ("linear",),
        "linear",
        "1 per MAC; bias not counted",
        f"{_FV_FLOPS}['aten::linear'] -> {_FV_HANDLES} linear_flop_jit: prod(input_shape) * out_features",
        _macs,
    ),
    Rule(
        FVCORE,
        ("matmul",),
        "matmul",
        "1 per MAC",
        f"{_FV_FLOPS}['aten::matmul'] -> {_FV_HANDLES} matmul_flop_jit: prod(a_shape) * b_shape[-1]",
        _macs,
    ),
    Rule(FVCORE, ("mm",), "mm", "1 per MAC", f"{_FV_FLOPS}['aten::mm'] -> {_FV_HANDLES} matmul_flop_jit", _macs),
    Rule(
        FVCORE,
        ("bmm",),
        "bmm",
        "1 per MAC",
        f"{_FV_FLOPS}['aten::bmm'] -> {_FV_HANDLES} bmm_flop_jit: n * c * t * d",
        _macs,
    ),
    Rule(
        FVCORE,
        ("addmm",),
        "addmm",
        "1 per MAC; the added matrix not counted",
        f"{_FV_FLOPS}['aten::addmm'] -> {_FV_HANDLES} addmm_flop_jit: batch * input_dim * output_dim",
        _macs,
    ),
    Rule(
        FVCORE,
        ("baddbmm", "bilinear"),
        "",
        "no handle: reported unsupported, counted 0",
        f"{_FV_FLOPS} has no 'aten::baddbmm' or 'aten::bilinear'",
        _zero,
    ),
    Rule(
        FVCORE,
        ("batch_norm",),
        "batch_norm",
        "inference: 2 per element with affine, 1 without; training: 5 with affine, 4 without "
        "(archcost: 2 per element at inference, see units.FLOPS_PER_ELEMENT)",
        f"{_FV_FLOPS}['aten::batch_norm'] -> {_FV_HANDLES} batchnorm_flop_jit",
        _fv_batch_norm,
    ),
    Rule(
        FVCORE,
        ("group_norm",),
        "group_norm",
        "5 per input element with affine, 4 without",
        f"{_FV_FLOPS}['aten::group_norm'] -> {_FV_HANDLES} norm_flop_counter(2)",
        _fv_norm,
    ),
    Rule(
        FVCORE,
        ("layer_norm",),
        "layer_norm",
        "5 per input element with affine, 4 without",
        f"{_FV_FLOPS}['aten::layer_norm'] -> {_FV_HANDLES} norm_flop_counter(2)",
        _fv_norm,
    ),
    Rule(
        FVCORE,
        ("instance_norm",),
        "instance_norm",
        "5 per input element with affine, 4 without",
        f"{_FV_FLOPS}['aten::instance_norm'] -> {_FV_HANDLES} norm_flop_counter(1)",
        _fv_norm,
    ),
    Rule(
        FVCORE,
        ("adaptive_avg_pool2d",),
        "adaptive_avg_pool2d",
        "1 per input element (archcost: 1 per element read by the windows)",
        f"{_FV_FLOPS}['aten::adaptive_avg_pool2d'] -> {_FV_HANDLES} elementwise_flop_counter(1, 0)",
        lambda v: v.in_numel,
    ),
    Rule(
        FVCORE,
        ("interpolate", "upsample", "upsample_nearest", "upsample_bilinear"),
        "",
        "2-d nearest: 1 per output element (upsample_nearest2d); 2-d bilinear: 4 per output element "
        "(upsample_bilinear2d); other modes and dimensions: no handle, counted 0",
        f"{_FV_FLOPS}['aten::upsample_nearest2d'] elementwise_flop_counter(0, 1), "
        "['aten::upsample_bilinear2d'] elementwise_flop_counter(0, 4)",
        _fv_interpolate,
    ),
    # -- torch FlopCounterMode ---------------------------------------------------------------------------
    Rule(
        TORCH,
        _CONV,
        "convolution",
        "2 per MAC; bias not counted",
        f"{_TORCH} conv_flop / conv_flop_count: prod(conv_shape) * prod(filter_size) * batch * c_out * c_in * 2",
        _two_macs,
    ),
    Rule(
        TORCH,
        _MATMUL,
        "matmul",
        "2 per MAC (linear and matmul reach it as aten.mm, addmm or bmm); bias not counted",
        f"{_TORCH} mm_flop / addmm_flop / bmm_flop / baddbmm_flop: 2 * m * k * n (per batch)",
        _two_macs,
    ),
    Rule(
        TORCH,
        ("bilinear",),
        "",
        "aten.bilinear runs as aten._trilinear, which has no formula: counted 0",
        f"{_TORCH} flop_registry has no aten._trilinear",
        _zero,
    ),
    # -- torch FlopCounterMode, backward (archcost check --mode train) -----------------------------------
    Rule(
        TORCH_BACKWARD,
        _CONV,
        "convolution_backward",
        "2 per backward MAC (gradient of the input where needed, of the weight where it trains), but the "
        "weight gradient ignores groups: a grouped conv's weight gradient is counted groups times (a "
        "depthwise conv's: channels times); archcost counts it as the forward's MACs, groups included",
        f"{_TORCH} conv_backward_flop: the argument _groups is unused; the weight gradient is "
        "conv_flop_count(t(x_shape), t(grad_out_shape), t(grad_weight_shape)), c_in taken whole",
        _torch_conv_backward,
    ),
    Rule(
        TORCH_BACKWARD,
        _MATMUL,
        "matmul",
        "2 per backward MAC (the gradients run as aten.mm / bmm)",
        f"{_TORCH} mm_flop / bmm_flop: 2 * m * k * n",
        _two_backward_macs,
    ),
)

#: The fallback for an op no rule names: both tools count nothing for it.
FVCORE_NONE = Rule(
    FVCORE,
    ("*",),
    "",
    "no handle: counted 0 (reported unsupported unless listed in _IGNORED_OPS, e.g. relu, cat, dropout)",
    f"{_FV_FLOPS}; fvcore/nn/jit_analysis.py _IGNORED_OPS",
    _zero,
)
TORCH_NONE = Rule(
    TORCH,
    ("*",),
    "",
    "counts only convolution, matrix products and attention: counted 0",
    f"{_TORCH} flop_registry",
    _zero,
)

_BY_OP: dict[tuple[str, str], Rule] = {}
for _rule in RULES:
    for _op in _rule.ops:
        if (_rule.tool, _op) in _BY_OP:
            raise ValueError(f"two {_rule.tool} rules for op {_op!r}")
        _BY_OP[(_rule.tool, _op)] = _rule


TORCH_BACKWARD_NONE = Rule(
    TORCH_BACKWARD,
    ("*",),
    "",
    "counts only convolution, matrix products and attention in backward too: counted 0",
    f"{_TORCH} flop_registry",
    _zero,
)


def rule_for(tool: str, op: str) -> Rule:
    """The convention ``tool`` follows for archcost op ``op``."""
    fallback = {FVCORE: FVCORE_NONE, TORCH_BACKWARD: TORCH_BACKWARD_NONE}.get(tool, TORCH_NONE)
    return _BY_OP.get((tool, op), fallback)


#: fvcore ActivationCountAnalysis: output elements of these ops (activation_count.py
#: _DEFAULT_SUPPORTED_OPS: aten::_convolution, addmm, bmm, einsum, matmul, linear).
ACTIVATION_OPS = (*_CONV, "linear", "matmul", "bmm", "addmm")
ACTIVATION_SOURCE = "fvcore/nn/activation_count.py _DEFAULT_SUPPORTED_OPS -> jit_handles.generic_activation_jit"
PARAMS_SOURCE = "fvcore/nn/parameter_count.py parameter_count: numel of model.named_parameters() per name prefix"

#: Conventions that are not per op, shown in the README and the check's legend.
GENERAL = (
    ("fvcore", "one fused multiply-add is one flop: its conv/linear/matmul count equals archcost's MACs"),
    ("fvcore", "besides MACs it counts batch norm, group/layer/instance norm, adaptive average pooling and "
     "2-d nearest/bilinear upsampling by default; every other op counts 0"),
    ("torch", "FlopCounterMode counts 2 per MAC of convolution and matrix products (and attention), nothing else"),
    ("archcost", "flops counts 2 per MAC plus bias, norm, activation, pooling and elementwise work"),
)  # fmt: skip


def numel(shape) -> int:
    """Elements of a shape, or of several shapes."""
    if not shape:
        return 0
    if isinstance(shape[0], int):
        return math.prod(shape)
    return sum(numel(s) for s in shape)
