"""Receptive fields over the real graph of the forward pass (Araujo, Norris & Sim, Distill 2019).

Per spatial axis, every tensor carries ``(r, j, start)``: the receptive field size in input pixels, the
jump (effective stride: input pixels between neighbouring units) and the centre of the first unit's
field in input pixel coordinates (pixel centres at 0, 1, ...). A layer of kernel ``k``, stride ``s``,
padding ``p`` and dilation ``d`` maps them by the recurrences of seed 002 and of Araujo et al.::

    k_eff = d * (k - 1) + 1
    j_out = j_in * s
    r_out = r_in + (k_eff - 1) * j_in
    start_out = start_in + ((k_eff - 1) / 2 - p) * j_in

Where paths merge (concatenation, residual add, gating multiply) the field is the largest over the
merging paths; paths whose jumps or centres differ are *misaligned* and the merge is flagged. An op
that reduces over the whole map (global pooling, flatten into a linear layer) acts as a kernel the size
of the map: the field becomes *global*. An op whose geometry archcost does not know makes the field
*unknown* from there on, naming the layer that stopped it; never a made-up number.

Normalisation statistics (group/layer norm) are treated as pointwise, like every counter does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from archcost.cost.formulas._args import arg

Axes = tuple[float, ...]


@dataclass(frozen=True)
class Field:
    """The receptive field of one tensor, per spatial axis."""

    r: Axes
    j: Axes
    start: Axes
    is_global: bool = False
    misaligned: bool = False
    unknown: str | None = None  # the layer that stopped the derivation

    @staticmethod
    def input(axes: int) -> Field:
        return Field((1.0,) * axes, (1.0,) * axes, (0.0,) * axes)


@dataclass(frozen=True)
class Window:
    """A sliding window along the spatial axes: kernel, stride, padding, dilation per axis."""

    k: tuple[int, ...]
    s: tuple[int, ...]
    p: tuple[float, ...]
    d: tuple[int, ...]


class Pointwise:
    """Each output unit sees the same input position (activations, norms, dropout, views)."""


class Collapse:
    """Each output unit sees the whole map (global pooling, flatten): a kernel the size of the map."""


@dataclass(frozen=True)
class Unknown:
    op: str


POINTWISE, COLLAPSE = Pointwise(), Collapse()
Step = Window | Pointwise | Collapse | Unknown


def apply(field: Field, step: Step, in_spatial: tuple[int, ...], where: str) -> Field:
    """The field after one op. ``in_spatial`` is the op's input map size (for a collapse)."""
    if field.unknown is not None or isinstance(step, Pointwise):
        return field
    if isinstance(step, Unknown):
        return replace(field, unknown=f"{where} ({step.op})")
    if isinstance(step, Collapse):
        if field.is_global:
            return field
        n = in_spatial if len(in_spatial) == len(field.r) else (1,) * len(field.r)
        step = Window(tuple(n), tuple(n), (0.0,) * len(n), (1,) * len(n))
        return replace(_window(field, step), is_global=True)
    moved = _window(field, step)
    return replace(moved, r=field.r) if field.is_global else moved  # the whole input stays the whole input


def _window(field: Field, w: Window) -> Field:
    r, j, start = [], [], []
    for r_in, j_in, c_in, k, s, p, d in zip(field.r, field.j, field.start, w.k, w.s, w.p, w.d, strict=True):
        k_eff = d * (k - 1) + 1
        r.append(r_in + (k_eff - 1) * j_in)
        j.append(j_in * s)
        start.append(c_in + ((k_eff - 1) / 2 - p) * j_in)
    return replace(field, r=tuple(r), j=tuple(j), start=tuple(start))


def merge(fields: list[Field]) -> Field:
    """Paths meeting at a concat or elementwise op: the largest field, flagged if misaligned.

    A path that has seen the whole map (a squeeze-and-excitation gate, say) makes every output unit see
    the whole input: the result is global, with the jump and centre of the spatial paths."""
    if len(fields) == 1:
        return fields[0]
    unknown = next((f.unknown for f in fields if f.unknown is not None), None)
    if unknown is not None:
        return replace(fields[0], unknown=unknown)
    spatial = [f for f in fields if not f.is_global]
    base = max(spatial or fields, key=lambda f: f.r)
    misaligned = any(
        not all(math.isclose(a, b) for a, b in zip(f.j + f.start, base.j + base.start, strict=True)) for f in spatial
    )
    widest = tuple(max(f.r[i] for f in fields) for i in range(len(base.r)))
    return replace(
        base,
        r=widest,
        is_global=any(f.is_global for f in fields),
        misaligned=misaligned,  # flags this merge only; the paths after it start clean
    )


# -- the geometry of each op ---------------------------------------------------------------------------
def _tuple(value, n: int, default: int = 0) -> tuple:
    if value is None:
        return (default,) * n
    if isinstance(value, int | float):
        return (value,) * n
    value = tuple(value)
    return value * n if len(value) == 1 else value


_POINTWISE = frozenset(
    """relu relu6 hardtanh leaky_relu prelu elu selu threshold tanh sigmoid hardsigmoid hardswish silu mish gelu
    softplus softmax log_softmax add sub mul div pow sqrt rsqrt exp log abs neg clamp clip maximum minimum
    true_divide square batch_norm group_norm layer_norm instance_norm local_response_norm dropout dropout1d
    dropout2d dropout3d alpha_dropout feature_alpha_dropout cat concat concatenate stack chunk split
    tensor_split unbind contiguous clone to float half bfloat16 double type type_as detach identity
    channel_shuffle expand expand_as squeeze unsqueeze narrow masked_fill""".split()
)
_RESHAPES = frozenset("view view_as reshape flatten unflatten permute transpose movedim swapaxes t".split())
_REDUCTIONS = frozenset("mean sum amax amin max min logsumexp".split())


def _elementwise(name: str) -> bool:
    """An op costed per output element (transcendental, comparison, rounding, logical, addcmul, ...): each
    output unit sees the same position of its inputs."""
    from archcost.cost.formulas.elementwise import _ALIASES

    return name in _ALIASES


def step_of(name: str, args: tuple, kwargs: dict, in_shape: tuple[int, ...], out_shape: tuple[int, ...], axes: int):
    """The geometry of op ``name`` on an input of ``in_shape`` with ``axes`` spatial (trailing) dims."""
    n = axes
    spatial_in, spatial_out = in_shape[-n:], out_shape[-n:] if len(out_shape) >= n else ()
    if name.startswith("conv") and not name.startswith("conv_transpose"):
        weight = arg(args, kwargs, 1, "weight")
        padding = arg(args, kwargs, 4, "padding", 0)
        k = tuple(weight.shape[2:])
        d = _tuple(arg(args, kwargs, 5, "dilation", 1), n, 1)
        if isinstance(padding, str):  # "valid" or "same"
            padding = 0 if padding == "valid" else tuple((di * (ki - 1)) / 2 for ki, di in zip(k, d, strict=True))
        return Window(k, _tuple(arg(args, kwargs, 3, "stride", 1), n, 1), _tuple(padding, n), d)
    if name.startswith(("max_pool", "avg_pool")):
        k = _tuple(arg(args, kwargs, 1, "kernel_size"), n)
        stride = arg(args, kwargs, 2, "stride", None)
        s = k if stride is None or stride == [] or stride == () else _tuple(stride, n)
        dil = arg(args, kwargs, 4, "dilation", 1) if name.startswith("max") else 1
        pad = _tuple(arg(args, kwargs, 3, "padding", 0), n)
        if all(o == 1 for o in spatial_out) and all(
            ki + 2 * pi >= i for ki, pi, i in zip(k, pad, spatial_in, strict=True)
        ):
            return COLLAPSE  # one window over the whole map (GoogLeNet's 7x7 average pool): global pooling
        return Window(k, s, pad, _tuple(dil, n, 1))
    if name.startswith(("adaptive_avg_pool", "adaptive_max_pool")):
        if all(o == 1 for o in spatial_out):
            return COLLAPSE
        if all(i % o == 0 for i, o in zip(spatial_in, spatial_out, strict=True)):
            k = tuple(i // o for i, o in zip(spatial_in, spatial_out, strict=True))
            return Window(k, k, (0.0,) * n, (1,) * n)
        return Unknown(f"{name} with windows of unequal size ({spatial_in} -> {spatial_out})")
    if name in _POINTWISE or _elementwise(name):
        if (
            name in ("cat", "concat", "concatenate", "stack")
            and _dim(args, kwargs, 1, len(out_shape)) >= len(out_shape) - n
        ):
            return Unknown(f"{name} along a spatial axis")
        return POINTWISE
    if name in _RESHAPES:
        if len(out_shape) >= n + 2 and tuple(out_shape[-n:]) == tuple(spatial_in):
            return POINTWISE
        return COLLAPSE if len(out_shape) <= 2 else Unknown(f"{name} that mixes spatial axes")
    if name in _REDUCTIONS:
        dims = arg(args, kwargs, 1, "dim", None)
        if dims is None:
            return COLLAPSE
        dims = {d % len(in_shape) for d in ((dims,) if isinstance(dims, int) else dims)}
        return COLLAPSE if dims & set(range(len(in_shape) - n, len(in_shape))) else POINTWISE
    if name in ("linear", "matmul", "bilinear", "mm", "bmm", "addmm"):
        return COLLAPSE if len(in_shape) <= 2 else Unknown(f"{name} over a spatial axis")
    if name == "getitem":
        return _getitem(arg(args, kwargs, 1, "idx"), in_shape, n)
    if name == "pad":
        pad = tuple(arg(args, kwargs, 1, "pad"))
        left = [pad[2 * i] if 2 * i < len(pad) else 0 for i in range(n)][::-1]  # pad lists the last axis first
        return Window((1,) * n, (1,) * n, tuple(float(p) for p in left), (1,) * n)
    return Unknown(name)


def _dim(args: tuple, kwargs: dict, index: int, ndim: int) -> int:
    dim = arg(args, kwargs, index, "dim", 0)
    return dim % ndim if isinstance(dim, int) else 0


def _getitem(index, in_shape: tuple[int, ...], n: int):
    """Slicing: ``x[:, :, ::2, ::2]`` is a 1x1 window of stride 2; a start offset shifts the centre."""
    index = index if isinstance(index, tuple) else (index,)
    if any(i is Ellipsis or i is None or isinstance(i, torch.Tensor) for i in index):
        return Unknown("getitem with advanced indexing")
    full = list(index) + [slice(None)] * (len(in_shape) - len(index))
    strides, offsets = [], []
    for axis in full[len(in_shape) - n :]:
        if not isinstance(axis, slice):
            return Unknown("getitem that selects one spatial position")
        start, step = axis.start or 0, axis.step or 1
        if start < 0:
            return Unknown("getitem with a negative spatial start")
        strides.append(step)
        offsets.append(-float(start))
    return Window((1,) * n, tuple(strides), tuple(offsets), (1,) * n)


def spatial(shape: tuple[int, ...], axes: int) -> tuple[int, ...]:
    return tuple(shape[-axes:]) if len(shape) >= axes + 2 else ()


def propagate(
    rows_sources: list[tuple[int, ...]], steps: list[list], names: list[str], axes: int
) -> list[Field | None]:
    """The field of every row's output, in execution order. ``steps[i]`` lists ``(step, in_spatial)`` of the
    ops row ``i`` ran on its activation path; ``-1`` in sources is the model input."""
    fields: list[Field | None] = []
    constant: set[int] = set()  # rows computed from parameters only: they have no receptive field
    start = Field.input(axes)
    for index, (sources, row_steps, name) in enumerate(zip(rows_sources, steps, names, strict=True)):
        live = [s for s in sources if s not in constant]
        if not live:
            constant.add(index)
            fields.append(None)
            continue
        ins = [start if s == -1 else fields[s] for s in live]
        if any(f is None for f in ins):
            fields.append(None)
            continue
        field = merge(ins) if len(ins) > 1 else replace(ins[0], misaligned=False)
        for step, in_spatial in row_steps:
            field = apply(field, step, in_spatial, name)
        fields.append(field)
    return fields


def with_field(row, field: Field | None):
    """``row`` (a LayerCost) with its receptive-field columns filled from ``field`` (None: a row on
    parameters only, which has no receptive field)."""
    if field is None:
        return row
    if field.unknown is not None:
        return replace(row, rf_unknown=field.unknown)
    return replace(
        row, rf=field.r, rf_stride=field.j, rf_start=field.start, rf_global=field.is_global,
        rf_misaligned=field.misaligned,
    )  # fmt: skip
