"""Receptive fields over the real graph of the forward pass (Araujo, Norris & Sim, Distill 2019).

Per spatial axis of the model input, every tensor carries the field of each of its units exactly: unit
``u`` sees input pixels ``lo(u) .. hi(u)`` (pixel centres at 0, 1, ...; the input taken as unbounded, so
padding counts as pixels, as in the published tables). The fields follow a pattern of ``P`` units that
repeats ``Q`` input pixels further on: ``lo(u) = lo[u mod P] + (u div P) * Q``. A convolution or pooling
of kernel ``k``, stride ``s``, padding ``p`` and dilation ``d`` (output unit ``o`` reads input units
``o * s - p + t * d``, ``t`` in ``[0, k)``) keeps ``P = 1`` and gives the recurrences of Araujo et al.::

    k_eff = d * (k - 1) + 1
    j_out = j_in * s
    r_out = r_in + (k_eff - 1) * j_in
    start_out = start_in + ((k_eff - 1) / 2 - p) * j_in

A transposed convolution is that convolution's adjoint (Dumoulin & Visin, "A guide to convolution
arithmetic for deep learning", 2016, section 4): input unit ``i`` writes output units ``i * s - p + t * d``,
so output unit ``o`` is written by the input units ``i = (o + p - t * d) / s`` that are whole numbers. With
``d = 1`` those are ``ceil((o + p - k + 1) / s) .. floor((o + p) / s)``: ``ceil(k / s)`` or ``floor(k / s)``
units, depending on ``(o + p) mod s``, so the pattern has ``P = s`` units and the mean jump is ``j_in / s``.
Upsampling by an integer factor is the same kind of map (nearest: unit ``o`` reads ``floor(o / s)``;
(bi)linear: the two units around ``(o + 0.5) / s - 0.5``).

The report gives per axis ``rf``, the largest field any unit sees; ``rf_stride``, the mean jump ``Q / P``;
``rf_start``, the centre of unit 0's field on the mean lattice (the mean over one pattern of
``centre(u) - u * jump``: unit 0's centre itself when ``P = 1``); and ``rf_pattern`` where ``P > 1``.

Axes follow the tensor's dimensions through squeeze, unsqueeze, permute, transpose, movedim, select,
indexing and reshapes that keep a spatial dimension whole; an axis indexed or squeezed away stays with the
field of the one unit kept. Where paths merge (concatenation, residual add, gating multiply) each unit sees
the union of its fields over the paths; paths whose centres or jumps differ are *misaligned* and the merge
is flagged. An op that reduces over the whole map (global pooling, flatten into a linear layer) acts as a
kernel the size of the map: the field becomes *global*. An op whose geometry archcost does not know (or a
reshape that mixes spatial axes) makes the field *unknown* from there on, naming the layer that stopped it;
never a made-up number.

Normalisation statistics (group/layer norm) are treated as pointwise, like every counter does.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from fractions import Fraction

import torch

from archcost.cost.formulas._args import arg, int_arg, tensor_arg

Axes = tuple[float, ...]
#: where a dimension goes (``Relayout``): an output dimension, ``("at", unit)`` or ``"mixed"``
Move = int | tuple[str, int] | str
#: the input units output unit ``v`` of one pattern reads: ``taps[v % period] + (v // period) * shift``
Taps = tuple[int, int, tuple[tuple[int, ...], ...]]  # (period, shift, taps)


@dataclass(frozen=True)
class Axis:
    """The fields of the units along one axis: unit ``u`` sees input pixels ``lo(u) .. hi(u)``, with
    ``lo(u) = lo[u % P] + (u // P) * q`` (``hi`` likewise); ``None``: the unit sees no input pixel."""

    lo: tuple[int | None, ...]
    hi: tuple[int | None, ...]
    q: int

    @property
    def period(self) -> int:
        return len(self.lo)

    def at(self, u: int) -> tuple[int, int] | None:
        cycle, phase = divmod(u, self.period)
        lo, hi = self.lo[phase], self.hi[phase]
        return None if lo is None or hi is None else (lo + cycle * self.q, hi + cycle * self.q)

    @property
    def size(self) -> int:
        spans = zip(self.lo, self.hi, strict=True)
        return max((h - lo + 1 for lo, h in spans if lo is not None and h is not None), default=0)

    @property
    def jump(self) -> float:
        return self.q / self.period

    @property
    def start(self) -> float:
        centres = [(lo + h) / 2 - u * self.jump for u, (lo, h) in enumerate(zip(self.lo, self.hi, strict=True))
                   if lo is not None and h is not None]  # fmt: skip
        return sum(centres) / len(centres) if centres else 0.0

    def over(self, period: int) -> Axis:
        """The same fields written as a pattern of ``period`` units (a multiple of ``self.period``)."""
        fields = [self.at(u) for u in range(period)]
        lo = tuple(None if f is None else f[0] for f in fields)
        hi = tuple(None if f is None else f[1] for f in fields)
        return Axis(lo, hi, self.q * (period // self.period))

    def reduced(self) -> Axis:
        """The same fields as the shortest pattern that repeats."""
        p = self.period
        for d in range(1, p):
            if p % d or (self.q * d) % p:
                continue
            shift = self.q * d // p
            if all(_shifted(self.at(u), shift) == self.at(u + d) for u in range(p)):
                return Axis(self.lo[:d], self.hi[:d], shift)
        return self

    def pinned(self, u: int) -> Axis:
        """The field of unit ``u`` alone: the axis is no longer a dimension of the tensor."""
        f = self.at(u)
        return Axis((None,), (None,), 0) if f is None else Axis((f[0],), (f[1],), 0)


def _shifted(f: tuple[int, int] | None, by: int) -> tuple[int, int] | None:
    return None if f is None else (f[0] + by, f[1] + by)


def _read(axis: Axis, taps: Taps) -> Axis:
    """The fields after an op whose output unit ``v`` reads the input units ``taps`` gives."""
    period_in, (period, shift, table) = axis.period, taps
    cycles = period_in // math.gcd(shift, period_in)  # patterns of the op before the input's pattern repeats
    lo, hi = [], []
    for v in range(period * cycles):
        base = (v // period) * shift
        seen = [f for f in (axis.at(t + base) for t in table[v % period]) if f is not None]
        lo.append(min(f[0] for f in seen) if seen else None)
        hi.append(max(f[1] for f in seen) if seen else None)
    return Axis(tuple(lo), tuple(hi), cycles * shift // period_in * axis.q).reduced()


@dataclass(frozen=True)
class Field:
    """The receptive field of one tensor, per spatial axis of the model input."""

    axes: tuple[Axis, ...]
    #: the tensor dimension (counted from the end, -1 last) that holds each input axis; None: indexed away
    dims: tuple[int | None, ...]
    is_global: bool = False
    held: Axes | None = None  # the size per axis once global (the whole input stays the whole input)
    misaligned: bool = False
    unknown: str | None = None  # the layer that stopped the derivation

    @staticmethod
    def input(axes: int) -> Field:
        return Field(tuple(Axis((0,), (0,), 1) for _ in range(axes)), tuple(range(-axes, 0)))

    @property
    def r(self) -> Axes:
        return self.held if self.held is not None else tuple(float(a.size) for a in self.axes)

    @property
    def j(self) -> Axes:
        return tuple(a.jump for a in self.axes)

    @property
    def start(self) -> Axes:
        return tuple(a.start for a in self.axes)

    @property
    def pattern(self) -> tuple | None:
        """Per axis ``(period, ((lo, hi) of units 0 .. period - 1))`` where some axis repeats over more than
        one unit (after a transposed convolution or an upsampling); None where every period is 1."""
        if all(a.period == 1 for a in self.axes):
            return None
        return tuple((a.period, tuple(zip(a.lo, a.hi, strict=True))) for a in self.axes)


@dataclass(frozen=True)
class Window:
    """A sliding window along the last ``len(k)`` dimensions: kernel, stride, padding (before the first
    unit), dilation per dimension; ``transposed``: the adjoint map (a transposed convolution)."""

    k: tuple[int, ...]
    s: tuple[int, ...]
    p: tuple[float, ...]
    d: tuple[int, ...]
    transposed: bool = False

    def taps(self) -> tuple[Taps, ...] | None:
        out = []
        for k, s, p, d in zip(self.k, self.s, self.p, self.d, strict=True):
            if not float(p).is_integer():
                return None
            p = int(p)
            if self.transposed:
                table = tuple(
                    tuple((v + p - t * d) // s for t in range(k) if (v + p - t * d) % s == 0) for v in range(s)
                )
                out.append((s, 1, table))
            else:
                out.append((1, s, (tuple(-p + t * d for t in range(k)),)))
        return tuple(out)


@dataclass(frozen=True)
class Gather:
    """Output unit ``v`` of each of the last ``len(taps)`` dimensions reads the input units ``taps`` gives
    (an upsampling, an adaptive pooling with windows of unequal size)."""

    taps: tuple[Taps, ...]


class Pointwise:
    """Each output unit sees the same input position (activations, norms, dropout, views)."""


@dataclass(frozen=True)
class Collapse:
    """Each output unit sees the whole map (global pooling, flatten): a kernel the size of the map.
    ``shape``: the op's input shape (None: the map is the ``in_spatial`` given to ``apply``)."""

    shape: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Unknown:
    op: str


@dataclass(frozen=True)
class Relayout:
    """Tensor dimensions move: ``moves`` holds ``(dim, new_dim)`` per input dimension (both counted from
    the end); ``new_dim`` is ``("at", i)`` where the dimension is indexed away at unit ``i`` and ``"mixed"``
    where a reshape merges or splits it."""

    moves: tuple[tuple[int, Move], ...]
    shape: tuple[int, ...]  # the op's input shape
    out_ndim: int
    op: str


@dataclass(frozen=True)
class Touch:
    """Pointwise, unless a spatial axis lives on one of ``dims`` (from the end): then unknown (``why``)."""

    dims: tuple[int, ...]
    why: str


@dataclass(frozen=True)
class Reduce:
    """A reduction over ``dims`` (from the end): the whole map where a spatial axis is among them."""

    dims: tuple[int, ...]
    keepdim: bool
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Chain:
    steps: tuple


POINTWISE, COLLAPSE = Pointwise(), Collapse()
Step = Window | Gather | Pointwise | Collapse | Unknown | Relayout | Touch | Reduce | Chain


def apply(field: Field, step: Step, in_spatial: tuple[int, ...], where: str) -> Field:
    """The field after one op. ``in_spatial`` is the op's input map size (for a ``COLLAPSE`` without shape)."""
    if field.unknown is not None or isinstance(step, Pointwise):
        return field
    if isinstance(step, Chain):
        for s in step.steps:
            field = apply(field, s, in_spatial, where)
        return field
    if isinstance(step, Unknown):
        return replace(field, unknown=f"{where} ({step.op})")
    if isinstance(step, Collapse):
        return _collapse(field, step.shape, in_spatial)
    if isinstance(step, Touch):
        return replace(field, unknown=f"{where} ({step.why})") if set(field.dims) & set(step.dims) else field
    if isinstance(step, Reduce):
        if set(field.dims) & set(step.dims):
            field = _collapse(field, step.shape, ())
        if step.keepdim:
            return field
        nd = len(step.shape)
        kept = [d for d in range(-nd, 0) if d not in step.dims]
        moves = [(d, ("at", 0)) for d in step.dims] + [(d, i - len(kept)) for i, d in enumerate(kept)]
        return apply(field, Relayout(tuple(moves), step.shape, len(kept), "reduction"), in_spatial, where)
    if isinstance(step, Relayout):
        return _relayout(field, step, where)
    taps = step.taps() if isinstance(step, Window) else step.taps
    if taps is None:
        return replace(field, unknown=f"{where} (a window with half-pixel padding)")
    m = len(taps)
    axes = list(field.axes)
    for a, dim in enumerate(field.dims):
        if dim is not None and -m <= dim <= -1:
            axes[a] = _read(axes[a], taps[m + dim])
    return replace(field, axes=tuple(axes))


def _collapse(field: Field, shape: tuple[int, ...] | None, in_spatial: tuple[int, ...]) -> Field:
    if field.is_global:
        return field
    axes = list(field.axes)
    for a, dim in enumerate(field.dims):
        if dim is None:
            continue
        if shape is not None:
            n = shape[dim] if -dim <= len(shape) else 1
        else:  # the map given by the caller (ONNX graphs), one size per axis
            n = in_spatial[a] if len(in_spatial) == len(axes) else 1
        axes[a] = _read(axes[a], (1, n, (tuple(range(n)),)))
    moved = replace(field, axes=tuple(axes))
    return replace(moved, is_global=True, held=moved.r)


def _relayout(field: Field, step: Relayout, where: str) -> Field:
    moves = dict(step.moves)
    axes, dims = list(field.axes), list(field.dims)
    mapped = [dim for dim in dims if dim is not None]
    whole = [
        moves.get(dim) == "mixed" or (isinstance(moves.get(dim), tuple) and step.shape[dim] == 1) for dim in mapped
    ]
    if mapped and all(whole) and step.out_ndim <= 2:
        return _collapse(field, step.shape, ())  # the map (or its one unit) flattened into features: global
    if any(dim is not None and moves.get(dim) == "mixed" for dim in dims):
        if step.out_ndim <= 2:  # flattened into features: the next layer sees the whole map
            return _collapse(field, step.shape, ())
        return replace(field, unknown=f"{where} ({step.op} that mixes spatial axes)")
    for a, dim in enumerate(dims):
        if dim is None:
            continue
        if dim not in moves:
            return replace(field, unknown=f"{where} ({step.op} whose axes archcost cannot follow)")
        new = moves[dim]
        if isinstance(new, tuple):  # indexed away: the field of the one unit kept
            axes[a], dims[a] = axes[a].pinned(new[1]), None
        elif isinstance(new, int):
            dims[a] = new
        else:  # "mixed", which returned above
            return replace(field, unknown=f"{where} ({step.op} that mixes spatial axes)")
    return replace(field, axes=tuple(axes), dims=tuple(dims))


def merge(fields: list[Field]) -> Field:
    """Paths meeting at a concat or elementwise op: each unit sees the union of its fields over the paths;
    flagged as misaligned where the paths' centres or jumps differ.

    A path that has seen the whole map (a squeeze-and-excitation gate, say) makes every output unit see
    the whole input: the result is global, with the jump and centre of the spatial paths."""
    if len(fields) == 1:
        return fields[0]
    unknown = next((f.unknown for f in fields if f.unknown is not None), None)
    if unknown is not None:
        return replace(fields[0], unknown=unknown)
    spatial = [f for f in fields if not f.is_global]
    base = max(spatial or fields, key=lambda f: f.r)
    axes, misaligned = list(base.axes), False
    for f in spatial:
        if f is base:
            continue
        for a, (mine, theirs) in enumerate(zip(axes, f.axes, strict=True)):
            union, aligned = _union(mine, theirs)
            misaligned |= not aligned
            axes[a] = union if union is not None else mine  # jumps differ: the widest path's
    merged = replace(base, axes=tuple(axes), misaligned=misaligned)  # flags this merge only
    if any(f.is_global for f in fields):
        widest = tuple(max(f.r[i] for f in [*fields, merged]) for i in range(len(base.axes)))
        return replace(merged, is_global=True, held=widest)
    return merged


def _union(a: Axis, b: Axis) -> tuple[Axis | None, bool]:
    """Unit by unit, the union of two axes' fields (None where their jumps differ) and whether the
    fields of every unit share a centre."""
    if a.q * b.period != b.q * a.period:
        return None, False
    period = a.period * b.period // math.gcd(a.period, b.period)
    a, b = a.over(period), b.over(period)
    lo, hi, aligned = [], [], True
    for la, ha, lb, hb in zip(a.lo, a.hi, b.lo, b.hi, strict=True):
        if la is None or lb is None or ha is None or hb is None:  # lo and hi are None together
            lo.append(la if lb is None else lb)
            hi.append(ha if hb is None else hb)
            continue
        aligned &= la + ha == lb + hb
        lo.append(min(la, lb))
        hi.append(max(ha, hb))
    return Axis(tuple(lo), tuple(hi), a.q).reduced(), aligned


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
    dropout2d dropout3d alpha_dropout feature_alpha_dropout contiguous clone to float half bfloat16 double type
    type_as detach identity channel_shuffle expand expand_as broadcast_to masked_fill""".split()
)
_RESHAPES = frozenset("view view_as reshape reshape_as flatten unflatten".split())
_REDUCTIONS = frozenset("mean sum amax amin max min logsumexp".split())
_SPLITS = frozenset("chunk split tensor_split unbind".split())


def _elementwise(name: str) -> bool:
    """An op costed per output element (transcendental, comparison, rounding, logical, addcmul, ...): each
    output unit sees the same position of its inputs."""
    from archcost.cost.formulas.elementwise import _ALIASES

    return name in _ALIASES


def _rank(name: str, default: int) -> int:
    """The spatial rank in an op's name: ``max_pool2d`` -> 2."""
    found = re.search(r"([123])d", name)
    return int(found.group(1)) if found else default


def step_of(name: str, args: tuple, kwargs: dict, in_shape: tuple[int, ...], out_shape: tuple[int, ...], axes: int):
    """The geometry of op ``name`` on an input of ``in_shape`` giving ``out_shape``, in the tensor's own
    dimensions (windows on its last dimensions; moves of dimensions counted from the end). ``axes``: the
    spatial axes of the model input, for ops whose rank their arguments do not say. A call whose arguments
    the rules below cannot read (an unusual signature) is unknown geometry, named with the reason: the
    field stops there rather than the analysis."""
    try:
        return _step_of(name, args, kwargs, tuple(in_shape), tuple(out_shape), axes)
    except (TypeError, ValueError, IndexError, KeyError, ZeroDivisionError) as exc:
        return Unknown(f"{name}: its arguments could not be read ({type(exc).__name__}: {exc})")


def _step_of(name: str, args: tuple, kwargs: dict, in_shape: tuple[int, ...], out_shape: tuple[int, ...], axes: int):
    nd = len(in_shape)
    if name.startswith("conv"):
        return _conv(name, args, kwargs)
    if name.startswith(("max_pool", "avg_pool", "lp_pool")):
        return _pool(name, args, kwargs, in_shape, out_shape)
    if name.startswith(("adaptive_avg_pool", "adaptive_max_pool")):
        m = _rank(name, axes)
        return _adaptive(tuple(in_shape[-m:]), tuple(out_shape[-m:]), in_shape)
    if name in ("interpolate", "upsample", "upsample_nearest", "upsample_bilinear"):
        return _interpolate(name, args, kwargs, in_shape, out_shape)
    if name in ("cat", "concat", "concatenate"):
        return Touch((_dim(args, kwargs, 1, len(out_shape)) - len(out_shape),), f"{name} along a spatial axis")
    if name == "stack":
        at = _dim(args, kwargs, 1, len(out_shape))
        return _moves([i if i < at else i + 1 for i in range(nd)], in_shape, len(out_shape), name)
    if name in _SPLITS:
        dim = _dim(args, kwargs, 2 if name != "unbind" else 1, nd)
        return Touch((dim - nd,), f"{name} along a spatial axis")
    if name in _POINTWISE or _elementwise(name):
        return POINTWISE
    if name in ("squeeze", "unsqueeze", "permute", "transpose", "swapaxes", "swapdims", "t", "movedim",
                "moveaxis", "select"):  # fmt: skip
        return _layout(name, args, kwargs, in_shape, out_shape)
    if name in _RESHAPES:
        return _reshape(name, in_shape, out_shape)
    if name == "narrow":
        dim, start = _dim(args, kwargs, 1, nd), int_arg(args, kwargs, 2, "start")
        start = start % in_shape[dim] if start < 0 else start
        return Window((1,) * (nd - dim), (1,) * (nd - dim), (-float(start),) + (0.0,) * (nd - dim - 1),
                      (1,) * (nd - dim))  # fmt: skip
    if name in _REDUCTIONS:
        dims = arg(args, kwargs, 1, "dim", None)
        if dims is None or dims == () or dims == []:
            return Collapse(tuple(in_shape))
        keepdim = bool(arg(args, kwargs, 2, "keepdim", False))
        return Reduce(tuple(sorted({d % nd - nd for d in _dims(dims, "dim")})), keepdim, tuple(in_shape))
    if name in ("linear", "matmul", "bilinear", "mm", "bmm", "addmm"):
        if nd <= 2:
            return Collapse(tuple(in_shape))
        # linear contracts the last dimension; a matmul's activation may be either factor: both of its dims
        return Touch((-1,) if name in ("linear", "bilinear") else (-1, -2), f"{name} over a spatial axis")
    if name == "getitem":
        return _getitem(arg(args, kwargs, 1, "idx"), in_shape, out_shape)
    if name == "pad":
        pad = _sequence(arg(args, kwargs, 1, "pad"), "pad")
        m = len(pad) // 2
        left = [float(pad[2 * i]) for i in range(m)][::-1]  # pad lists the last dimension first
        return Window((1,) * m, (1,) * m, tuple(left), (1,) * m)
    return Unknown(name)


def _conv(name: str, args: tuple, kwargs: dict):
    """``conv{1,2,3}d`` and ``conv_transpose{1,2,3}d``: a window on the last ``weight.dim() - 2`` dims."""
    weight = tensor_arg(args, kwargs, 1, "weight")
    k = tuple(weight.shape[2:])
    m = len(k)
    s = _tuple(arg(args, kwargs, 3, "stride", 1), m, 1)
    if name.startswith("conv_transpose"):
        d = _tuple(arg(args, kwargs, 7, "dilation", 1), m, 1)
        return Window(k, s, _tuple(arg(args, kwargs, 4, "padding", 0), m), d, transposed=True)
    d = _tuple(arg(args, kwargs, 5, "dilation", 1), m, 1)
    padding = arg(args, kwargs, 4, "padding", 0)
    if padding == "valid":
        padding = 0
    elif padding == "same":  # torch pads d * (k - 1) in all, the smaller half first (left = total // 2)
        padding = tuple((di * (ki - 1)) // 2 for ki, di in zip(k, d, strict=True))
    return Window(k, s, _tuple(padding, m), d)


def _pool(name: str, args: tuple, kwargs: dict, in_shape: tuple, out_shape: tuple):
    m = _rank(name, 2)
    first = 2 if name.startswith("lp_pool") else 1  # lp_pool takes norm_type first
    k = _tuple(arg(args, kwargs, first, "kernel_size"), m)
    stride = arg(args, kwargs, first + 1, "stride", None)
    s = k if stride is None or stride == [] or stride == () else _tuple(stride, m)
    pad = (0,) * m if name.startswith("lp_pool") else _tuple(arg(args, kwargs, 3, "padding", 0), m)
    dil = arg(args, kwargs, 4, "dilation", 1) if name.startswith("max") else 1
    spatial_in, spatial_out = in_shape[-m:], out_shape[-m:]
    if all(o == 1 for o in spatial_out) and all(ki + 2 * pi >= i for ki, pi, i in zip(k, pad, spatial_in, strict=True)):
        return Collapse(tuple(in_shape))  # one window over the whole map (GoogLeNet's 7x7 average pool)
    return Window(k, s, pad, _tuple(dil, m, 1))


def _adaptive(spatial_in: tuple, spatial_out: tuple, in_shape: tuple):
    """Output unit ``o`` of ``n -> out`` pools units ``floor(o n / out) .. ceil((o + 1) n / out) - 1``; the
    windows repeat every ``out / gcd`` units."""
    if all(o == 1 for o in spatial_out):
        return Collapse(tuple(in_shape))
    taps = []
    for n, out in zip(spatial_in, spatial_out, strict=True):
        g = math.gcd(n, out)
        period, shift = out // g, n // g
        taps.append((period, shift, tuple(tuple(range(o * n // out, -(-(o + 1) * n // out))) for o in range(period))))
    return Gather(tuple(taps))


def _interpolate(name: str, args: tuple, kwargs: dict, in_shape: tuple, out_shape: tuple):
    """Upsampling by a whole factor ``s`` per axis, from torch's source-index rules
    (``aten/src/ATen/native/UpSample.h``: nearest reads ``floor(o / s)``, nearest-exact
    ``floor((o + 0.5) / s)``, (bi/tri)linear without align_corners the units around ``(o + 0.5) / s - 0.5``)."""
    mode = arg(args, kwargs, 3, "mode", "nearest") if name == "interpolate" else "nearest"
    if name == "upsample_bilinear":
        mode = "bilinear-corners"
    corners = arg(args, kwargs, 4, "align_corners", None) if name == "interpolate" else None
    m = len(in_shape) - 2
    taps = []
    for n, out in zip(in_shape[-m:], out_shape[-m:], strict=True):
        if out % n:
            return Unknown(f"{name} by a factor that is not a whole number ({n} -> {out})")
        s = out // n
        table: tuple[tuple[int, ...], ...]
        if mode == "nearest":
            table = tuple((v // s,) for v in range(s))
        elif mode == "nearest-exact":
            table = tuple((math.floor(Fraction(2 * v + 1, 2 * s)),) for v in range(s))
        elif mode in ("linear", "bilinear", "trilinear") and not corners:
            reads = []
            for v in range(s):
                x = Fraction(2 * v + 1 - s, 2 * s)  # (v + 0.5) / s - 0.5
                left = math.floor(x)
                reads.append((left, left + 1) if x != left else (left,))
            table = tuple(reads)
        else:
            return Unknown(f"{name} ({mode}{', align_corners' if corners else ''})")
        taps.append((s, 1, table))
    return Gather(tuple(taps))


def _dim(args: tuple, kwargs: dict, index: int, ndim: int) -> int:
    dim = arg(args, kwargs, index, "dim", 0)
    return dim % ndim if isinstance(dim, int) else 0


def _sequence(value: object, what: str) -> tuple:
    """A list or tuple argument as a tuple; ``TypeError`` (unknown geometry) for anything else."""
    if isinstance(value, (list, tuple)):
        return tuple(value)
    raise TypeError(f"{what} is {type(value).__name__}, not a sequence")


def _dims(value: object, what: str) -> tuple[int, ...]:
    """A dimension argument that is one int or a sequence of them, as a tuple."""
    return (value,) if isinstance(value, int) else _sequence(value, what)


def _moves(targets: list[Move], in_shape: tuple, out_ndim: int, op: str) -> Relayout:
    """``targets[i]``: where input dimension ``i`` goes (an output index, ``("at", unit)`` or ``"mixed"``)."""
    nd = len(in_shape)
    moves = tuple((i - nd, t - out_ndim if isinstance(t, int) else t) for i, t in enumerate(targets))
    return Relayout(moves, tuple(in_shape), out_ndim, op)


def _layout(name: str, args: tuple, kwargs: dict, in_shape: tuple, out_shape: tuple):
    nd, out_nd = len(in_shape), len(out_shape)
    if name == "squeeze":
        dim = arg(args, kwargs, 1, "dim", None)
        gone = {d % nd for d in (range(nd) if dim is None else _dims(dim, "dim")) if in_shape[d % nd] == 1}
        kept = [i for i in range(nd) if i not in gone]
        return _moves([("at", 0) if i in gone else kept.index(i) for i in range(nd)], in_shape, out_nd, name)
    if name == "unsqueeze":
        at = int_arg(args, kwargs, 1, "dim") % out_nd
        return _moves([i if i < at else i + 1 for i in range(nd)], in_shape, out_nd, name)
    if name == "select":
        dim, index = _dim(args, kwargs, 1, nd), int_arg(args, kwargs, 2, "index")
        index = index % in_shape[dim] if index < 0 else index
        return _moves([("at", index) if i == dim else i - (i > dim) for i in range(nd)], in_shape, out_nd, name)
    if name == "permute":
        rest = args[1:]
        perm = rest[0] if len(rest) == 1 and not isinstance(rest[0], int) else rest or kwargs.get("dims")
        order = [d % nd for d in _sequence(perm, "dims")]
    elif name == "t":
        order = list(range(nd))[::-1] if nd == 2 else list(range(nd))
    elif name in ("transpose", "swapaxes", "swapdims"):
        a, b = int_arg(args, kwargs, 1, "dim0") % nd, int_arg(args, kwargs, 2, "dim1") % nd
        order = list(range(nd))
        order[a], order[b] = order[b], order[a]
    else:  # movedim / moveaxis
        src = [s % nd for s in _dims(arg(args, kwargs, 1, "source"), "source")]
        dst = [d % nd for d in _dims(arg(args, kwargs, 2, "destination"), "destination")]
        slots: list[int | None] = [None] * nd
        for s, d in zip(src, dst, strict=True):
            slots[d] = s
        free = iter([i for i in range(nd) if i not in src])
        order = [next(free) if o is None else o for o in slots]
    return _moves([order.index(i) for i in range(nd)], in_shape, out_nd, name)  # output j holds input order[j]


def _reshape(name: str, in_shape: tuple, out_shape: tuple) -> Relayout:
    """A view or reshape, read from the shapes: a dimension kept whole (the same size, at the same place
    in the sequence of sizes) moves; one merged with others or split is mixed; a size-1 dimension may go."""
    n_in, n_out = len(in_shape), len(out_shape)
    targets: list[Move] = ["mixed"] * n_in
    i = j = 0
    while i < n_in:
        if j < n_out and in_shape[i] == out_shape[j]:
            targets[i] = j
            i, j = i + 1, j + 1
        elif in_shape[i] == 1:
            targets[i] = ("at", 0)
            i += 1
        elif j < n_out and out_shape[j] == 1:
            j += 1
        elif j >= n_out:
            break  # sizes that do not multiply out: the rest stays mixed
        else:  # a block of dimensions whose sizes multiply to the same number: merged or split
            a, b = in_shape[i], out_shape[j]
            i, j = i + 1, j + 1
            while a != b and (i < n_in if a < b else j < n_out):
                if a < b:
                    a *= in_shape[i]
                    i += 1
                else:
                    b *= out_shape[j]
                    j += 1
    return _moves(targets, in_shape, n_out, name)


def _getitem(index, in_shape: tuple[int, ...], out_shape: tuple[int, ...]):
    """Indexing: a slice is a 1-unit window (stride = its step, its start shifts the centre); an integer
    keeps one unit; ``None`` adds a dimension; a tensor index picks along one dimension."""
    index = index if isinstance(index, tuple) else (index,)
    nd = len(in_shape)
    if sum(i is Ellipsis for i in index) > 1:
        return Unknown("getitem")
    used = sum(1 for i in index if i is not None and i is not Ellipsis and not isinstance(i, bool))
    if Ellipsis in [i for i in index if not isinstance(i, torch.Tensor)]:
        at = next(n for n, i in enumerate(index) if i is Ellipsis)
        index = index[:at] + (slice(None),) * (nd - used) + index[at + 1 :]
    else:
        index = index + (slice(None),) * (nd - used)
    advanced = [i for i in index if isinstance(i, torch.Tensor | list | bool)]
    if len(advanced) > 1 or any(isinstance(i, torch.Tensor | list) and _ndim(i) != 1 for i in advanced):
        return Unknown("getitem with advanced indexing")
    targets: list[Move] = []
    strides, offsets, touched = [], [], []
    out = 0
    for item in index:
        if item is None:
            out += 1
            continue
        dim = len(targets)
        if dim >= nd:
            return Unknown("getitem")
        size = in_shape[dim]
        if isinstance(item, slice):
            step = item.step or 1
            start = item.start or 0
            start = max(start + size, 0) if start < 0 else start
            strides.append(step)
            offsets.append(-float(start))
            targets.append(out)
            out += 1
        elif isinstance(item, int):
            targets.append(("at", item % size if item < 0 else item))
            strides.append(1)
            offsets.append(0.0)
        else:  # one 1-d tensor index: each output unit along it reads a unit chosen at run time
            touched.append(dim - nd)
            targets.append(out)
            strides.append(1)
            offsets.append(0.0)
            out += 1
    if out != len(out_shape):
        return Unknown("getitem")
    steps = [Window((1,) * nd, tuple(strides), tuple(offsets), (1,) * nd), _moves(targets, in_shape, out, "getitem")]
    if touched:
        steps.insert(0, Touch(tuple(touched), "getitem with a tensor index on a spatial axis"))
    return Chain(tuple(steps))


def _ndim(index) -> int:
    return index.dim() if isinstance(index, torch.Tensor) else 1 if not any(isinstance(i, list) for i in index) else 2


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
        ins = [f for f in (start if s == -1 else fields[s] for s in live) if f is not None]
        if len(ins) < len(live):
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
        rf_misaligned=field.misaligned, rf_pattern=None if field.is_global else field.pattern,
    )  # fmt: skip
