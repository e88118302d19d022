"""What fvcore and torch's FlopCounterMode count for each op, read from the op catalogue.

The forward conventions are not a second table: every op's ``fvcore=`` and ``flop_counter=`` facets
(``archcost.cost._registry.Counted``, written beside its cost formula in ``cost/formulas/``, sources in
``cost/formulas/_tools.py``) are evaluated by the crawler on the op's own arguments, so each row carries what
each tool counts for it (``LayerCost.parts``). This module turns those facets into the ``Rule`` list
``archcost check`` cites: one rule per facet, naming the ops that share it, plus the fallback for an op with
no facet (the tool has no formula for it: counted 0). The backward conventions of ``check --mode train``
(``TORCH_BACKWARD``) stay here: they are functions of a training analysis's rows (``OpView``).

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

from archcost.cost._registry import Counted, entries, op_entry

FVCORE, TORCH = "fvcore", "torch"
#: FlopCounterMode on the backward of a training step (``archcost check --mode train``)
TORCH_BACKWARD = "torch backward"


@dataclass(frozen=True)
class OpView:
    """One row of a training analysis seen as one op: what the backward rules need."""

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

    tool: str  # FVCORE, TORCH or TORCH_BACKWARD
    ops: tuple[str, ...]  # archcost op names it covers
    tool_op: str  # the name the tool reports the count under ("" when the tool counts nothing)
    text: str  # the convention, in words
    source: str  # where in the tool's source it is written
    #: backward rules: the count from a training row (``OpView``); forward rules are evaluated per op call by
    #: the crawler (the catalogue's ``Counted``) and carry None
    count: Callable[[OpView], int] | None = None


_CONV = ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
_MATMUL = ("linear", "matmul", "mm", "bmm", "addmm", "baddbmm")
#: archcost ops whose work archcost counts as MACs and whose backward the TORCH_BACKWARD rules cover.
MAC_OPS = (*_CONV, *_MATMUL, "bilinear")

_TORCH = "torch/utils/flop_counter.py"


def _two_backward_macs(v: OpView) -> int:
    return 2 * v.backward_macs


def _torch_conv_backward(v: OpView) -> int:
    """2 per backward MAC, plus (groups - 1) x 2 x forward MACs where the weight gets a gradient: the
    weight gradient counted as a dense convolution over every pair of input and output channels."""
    return 2 * v.backward_macs + (2 * v.macs * (v.groups - 1) if v.weight_grad else 0)


BACKWARD_RULES: tuple[Rule, ...] = (
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


def _zero(v: OpView) -> int:
    return 0


#: The fallback for an op no facet names: the tool has no formula for it and counts nothing.
FVCORE_NONE = Rule(
    FVCORE,
    ("*",),
    "",
    "no handle: counted 0 (reported unsupported unless listed in _IGNORED_OPS, e.g. relu, cat, dropout)",
    "fvcore/nn/flop_count.py _DEFAULT_SUPPORTED_OPS; fvcore/nn/jit_analysis.py _IGNORED_OPS",
)
TORCH_NONE = Rule(
    TORCH,
    ("*",),
    "",
    "counts only convolution, matrix products and attention: counted 0",
    f"{_TORCH} flop_registry",
)
TORCH_BACKWARD_NONE = Rule(
    TORCH_BACKWARD,
    ("*",),
    "",
    "counts only convolution, matrix products and attention in backward too: counted 0",
    f"{_TORCH} flop_registry",
    _zero,
)


#: nn.MultiheadAttention in eval on the CPU (fvcore's trace) takes its fused fast path, one
#: aten::_native_multi_head_attention, which fvcore has no handle for; archcost, on the meta device (not a
#: fast-path device), sees F.multi_head_attention_forward run as linear/bmm/softmax. Applied where fvcore
#: itself reports that op unsupported in the module.
FVCORE_MHA_FASTPATH = Rule(
    FVCORE,
    ("multi_head_attention_forward",),
    "aten::_native_multi_head_attention",
    "nn.MultiheadAttention's fused CPU fast path (eval, no grad) is one aten::_native_multi_head_attention, "
    "which has no handle: counted 0 (flops and activations), where fvcore reports it unsupported",
    "torch/nn/modules/activation.py MultiheadAttention.forward (why_not_fast_path); "
    "fvcore/nn/flop_count.py _DEFAULT_SUPPORTED_OPS has no aten::_native_multi_head_attention",
)


def forward_rules() -> tuple[Rule, ...]:
    """One rule per ``Counted`` facet of the catalogue, naming every op that carries it (fvcore, then torch)."""
    by_facet: dict[tuple[str, int], tuple[Counted, list[str]]] = {}
    for entry in entries():
        for tool, counted in ((FVCORE, entry.fvcore), (TORCH, entry.flop_counter)):
            if counted is not None:
                by_facet.setdefault((tool, id(counted)), (counted, []))[1].append(entry.name)
    rules = [Rule(tool, tuple(ops), c.reported_as, c.text, c.source) for (tool, _), (c, ops) in by_facet.items()]
    return tuple(sorted(rules, key=lambda r: (r.tool, r.ops)))


RULES: tuple[Rule, ...] = forward_rules() + BACKWARD_RULES

_BY_OP: dict[tuple[str, str], Rule] = {}
for _rule in RULES:
    for _op in _rule.ops:
        if (_rule.tool, _op) in _BY_OP:
            raise ValueError(f"two {_rule.tool} rules for op {_op!r}")
        _BY_OP[(_rule.tool, _op)] = _rule


def rule_for(tool: str, op: str) -> Rule:
    """The convention ``tool`` follows for archcost op ``op`` (an entry registered after this module was
    imported is read from the catalogue)."""
    rule = _BY_OP.get((tool, op))
    if rule is not None:
        return rule
    entry = op_entry(op) if tool in (FVCORE, TORCH) else None
    counted = None if entry is None else entry.fvcore if tool == FVCORE else entry.flop_counter
    if counted is not None:
        return Rule(tool, (op,), counted.reported_as, counted.text, counted.source)
    return {FVCORE: FVCORE_NONE, TORCH_BACKWARD: TORCH_BACKWARD_NONE}.get(tool, TORCH_NONE)


#: fvcore ActivationCountAnalysis: output elements of these ops (activation_count.py
#: _DEFAULT_SUPPORTED_OPS: aten::_convolution, addmm, bmm, einsum, matmul, linear).
ACTIVATION_OPS = (*_CONV, "linear", "matmul", "bmm", "addmm", "einsum")
ACTIVATION_SOURCE = "fvcore/nn/activation_count.py _DEFAULT_SUPPORTED_OPS -> jit_handles.generic_activation_jit"
PARAMS_SOURCE = "fvcore/nn/parameter_count.py parameter_count: numel of model.named_parameters() per name prefix"

#: Conventions that are not per op, shown in the README and the check's legend.
GENERAL = (
    ("fvcore", "one fused multiply-add is one flop: its conv/linear/matmul count equals archcost's MACs"),
    ("fvcore", "besides MACs it counts batch norm, group/layer/instance norm, adaptive average pooling, "
     "2-d nearest/bilinear upsampling and grid_sample by default; every other op counts 0"),
    ("torch", "FlopCounterMode counts 2 per MAC of convolution and matrix products (and attention), nothing else"),
    ("archcost", "each op's convention for both tools is written beside its cost formula (the op catalogue) "
     "and evaluated on the op's own arguments"),
    ("archcost", "flops counts 2 per MAC plus bias, norm, activation, pooling and elementwise work"),
)  # fmt: skip


def numel(shape) -> int:
    """Elements of a shape, or of several shapes."""
    if not shape:
        return 0
    if isinstance(shape[0], int):
        return math.prod(shape)
    return sum(numel(s) for s in shape)
