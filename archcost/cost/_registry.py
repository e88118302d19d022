"""The op catalogue: one ``OpEntry`` per torch op, holding everything archcost knows about it.

``@register_cost`` is the one way an op or a layer type gets its cost, and the one place an op's other
facts are written down, beside its formula:

* the **key**: a torch callable (``F.conv2d``, ``torch.batch_norm``, ``torch.Tensor.add_``), or its canonical
  name (``"conv2d"``, ``"add"``), or ``"library::name"`` for a custom-op library (``"torchvision::roi_align"``).
  A callable resolves to its canonical name (``op_name``: ``F.batch_norm`` and ``torch.batch_norm`` are one
  op, ``batch_norm``; ``x + y``, ``x.add_(y)`` and ``x += y`` all call ``add``). A name that no torch callable
  or aten operator carries is refused with the nearest names (``"conv_2d"``: did you mean ``conv2d``?).
  Registering a key twice raises unless ``override=True``.
* the **forward cost**: ``fn(args: tuple, kwargs: dict, out) -> Cost``. ``kwargs`` holds every argument
  *by name*, bound with the signature of the callable that ran (``bind``): ``kwargs["weight"]`` is the
  weight whether ``F.batch_norm(x, mean, var, weight)`` or ``torch.batch_norm(x, weight, ...)`` was called;
  ``args`` is the call's own positional tuple (for variadic ops such as ``einsum``).
* how the peer tools count it, for ``archcost check``: ``fvcore=`` and ``flop_counter=`` (``Counted``: a
  function of the same bound arguments, output and archcost's cost, with the rule in words and the place in
  the tool's source it was read from). An op with neither is one both tools count 0.
* ``geometry=``: its receptive-field step ``fn(args, kwargs, in_shape, out_shape, axes) -> Step`` (see
  ``cost/receptive.py``), where the op is not one receptive.py already knows;
* ``memory=``: "view" (its output shares its input's storage), "inplace", or "new" (the default);
  ``workspace=``: ``(k, why)``: temporaries of ``k`` times its output's bytes that it holds while it runs;
* ``profiler=``: the aten names ``torch.profiler`` shows it under, besides its own name.

An ``nn.Module`` subclass as key costs a whole layer from its settings, looked up along
``type(module).__mro__`` so subclasses inherit it: ``fn(module, inputs: tuple, out) -> Cost``. Use it for
layers whose forward is opaque (a custom kernel); layers built from torch ops need nothing.

``register_free`` puts ops on the explicit list of data-movement and bookkeeping ops that cost 0 (views,
copies, casts, indexing, tensor creation); an op neither free nor with a formula is listed as not costed.
``formula_overrides({key: fn})`` (what ``analyze(..., formulas=...)`` uses) replaces formulas for one call.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

import torch
from torch import nn

from archcost.errors import InternalError


@dataclass(frozen=True)
class Cost:
    """What one layer or op costs: multiply-accumulates and all floating-point operations; ``int_macs``: of
    ``macs``, those run in integer arithmetic (a quantized kernel)."""

    macs: int = 0
    flops: int = 0
    int_macs: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.macs + other.macs, self.flops + other.flops, self.int_macs + other.int_macs)


ZERO = Cost()


class NotCostable(Exception):  # noqa: N818  (a verdict, not a failure)
    """Raised by a formula when this call cannot be costed from shapes (e.g. the work depends on the data):
    the op is listed as not costed, with the message as the reason."""


OpFormula = Callable[[tuple, dict, object], Cost]
ModuleFormula = Callable[[nn.Module, tuple, object], Cost]


@dataclass(frozen=True, eq=False)
class Counted:
    """How a peer tool (fvcore, FlopCounterMode) counts an op: ``count(args, kwargs, out, cost)`` with the
    op's arguments as its formula gets them (``kwargs`` bound by name), its output and archcost's cost
    (``None``: this call cannot be predicted); ``reported_as``: the name the tool reports it under ("" when
    it counts nothing); ``text``: the rule in words; ``source``: where in the tool's source it is written."""

    count: Callable[[tuple, dict, object, Cost], int | None]
    reported_as: str
    text: str
    source: str


@dataclass(frozen=True)
class OpEntry:
    """One op of the catalogue and everything archcost knows about it (see the module docstring)."""

    name: str
    formula: OpFormula
    free: bool = False
    fvcore: Counted | None = None
    flop_counter: Counted | None = None
    geometry: Callable | None = None
    memory: str = "new"
    workspace: tuple[int, str] | None = None
    profiler: tuple[str, ...] = ()
    keys: tuple[object, ...] = ()  # what it was registered under (callables, names)


_OPS: dict[str, OpEntry] = {}
_MODULES: dict[type, ModuleFormula] = {}
_OVERRIDES: ContextVar[tuple[dict[str, OpFormula], dict[type, ModuleFormula]] | None] = ContextVar(
    "archcost_formula_overrides", default=None
)
MEMORY = ("new", "view", "inplace")


def _free(args: tuple, kwargs: dict, out) -> Cost:
    """Data movement, views, casts, creation: no arithmetic."""
    return ZERO


def register_free(*keys: str | Callable, memory: str = "new") -> None:
    """Put ops on the explicit free list: they move, view, cast or create data and cost 0."""
    register_cost(*keys, memory=memory)(_free)
    for key in keys:
        name = resolve(key)
        _OPS[name] = _replace(_OPS[name], free=True)


def _replace(entry: OpEntry, **changes) -> OpEntry:
    from dataclasses import replace

    return replace(entry, **changes)


def is_free(name: str) -> bool:
    """Whether op ``name`` is on the explicit free list."""
    _load_formulas()
    entry = _OPS.get(name)
    return entry is not None and entry.free


def free_ops() -> frozenset[str]:
    """Every op on the explicit free list."""
    _load_formulas()
    return frozenset(n for n, e in _OPS.items() if e.free)


def apply_formula(name: str, formula: OpFormula, args: tuple, kwargs: dict, out: object) -> Cost:
    """``formula(args, kwargs, out)``; a formula that raises is archcost's bug: ``InternalError`` naming the op."""
    try:
        return formula(args, kwargs, out)
    except NotCostable:
        raise
    except Exception as exc:
        shapes = [list(t.shape) for t in _tensors((args, kwargs))]
        raise InternalError(
            f"the cost formula for op {name!r} failed on input shapes {shapes}: {type(exc).__name__}: {exc}"
        ) from exc


def _tensors(value: object) -> list:
    from archcost.cost.formulas._args import tensors

    return tensors(value)


# -- keys ------------------------------------------------------------------------------------------------
def resolve(key: object) -> str:
    """The canonical op name a key stands for: a callable's ``op_name``, ``"lib::name"``'s ``name``, or a
    name torch knows. Raises ``ValueError`` (with the nearest names) for a name no torch op carries, and
    ``TypeError`` for a key that is neither a name nor a callable."""
    if isinstance(key, str):
        if "::" in key:
            return _library_op(key)
        if _plainly_torchs(key):
            return key
        if key not in known_names() and not _aten_has(key):
            near = difflib.get_close_matches(key, known_names(), n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(repr(n) for n in near)}?" if near else ""
            raise ValueError(f"{key!r} names no torch function, tensor method or aten operator{hint}")
        return key
    if callable(key) and not isinstance(key, type):
        return op_name(key)
    raise TypeError(f"register_cost keys are torch callables, op names or nn.Module classes, not {key!r}")


def _library_op(key: str) -> str:
    """``"torchvision::roi_align"`` -> ``roi_align``, checked against the library when it is loaded."""
    import torch

    lib, _, name = key.partition("::")
    if not lib or not name:
        raise ValueError(f"a library op key is 'library::name', not {key!r}")
    namespace = torch.ops.__dict__.get(lib)
    if namespace is not None and lib != "aten":
        try:
            getattr(namespace, name)
        except (AttributeError, RuntimeError):
            loaded = sorted(n for n in dir(namespace) if not n.startswith("_"))
            near = difflib.get_close_matches(name, loaded, n=3)
            hint = f"; did you mean {' or '.join(repr(f'{lib}::{n}') for n in near)}?" if near else ""
            raise ValueError(f"library {lib!r} has no op {name!r}{hint}") from None
    elif lib == "aten" and not _aten_has(name):
        raise ValueError(f"aten has no operator {name!r}")
    return name


_KNOWN: frozenset[str] | None = None


def _plainly_torchs(name: str) -> bool:
    """A name torch carries as an attribute of ``torch``, ``torch.nn.functional`` or ``torch.Tensor`` (or its
    in-place or dunder form), or as an aten operator: the cheap checks, tried before ``known_names`` (whose first
    call walks torch's override lists, about 0.25 s of every command's start)."""
    global _CHEAP
    if _CHEAP is None:
        import torch
        import torch.nn.functional as F

        names = {*torch.__dict__, *F.__dict__, *dir(torch.Tensor)}
        plain = {n.rstrip("_") for n in names if not n.startswith("__")} | names
        operators = {n[2:-2] for n in dir(torch.Tensor) if n.startswith("__") and n[2:-2] in _OPERATOR_DUNDERS}
        _CHEAP = frozenset(plain | operators | set(_DUNDER_ARITH.values()) | {"getitem", "setitem"})
    return name in _CHEAP or _aten_has(name)


_CHEAP: frozenset[str] | None = None
#: Tensor's operator dunders whose name without underscores is the op (``x % y`` is ``mod``)
_OPERATOR_DUNDERS = frozenset(
    "mod xor invert and or lshift rshift floordiv neg pos abs lt le gt ge eq ne pow matmul truediv div add sub "
    "mul".split()
)


def known_names() -> frozenset[str]:
    """Canonical names of every torch function, ``torch.nn.functional`` function and tensor method or
    property (``torch.overrides``' lists, ``torch.linalg``/``fft``/``special`` under their ``__name__``)."""
    global _KNOWN
    if _KNOWN is None:
        import torch
        import torch.nn.functional as F
        from torch.overrides import get_ignored_functions, get_overridable_functions, get_testing_overrides

        names: set[str] = set()
        for funcs in get_overridable_functions().values():
            names.update(op_name(f) for f in funcs)
        names.update(op_name(f) for f in get_testing_overrides())
        names.update(op_name(f) for f in get_ignored_functions() if callable(f))
        for space in (torch, F, torch.Tensor):
            names.update(n.rstrip("_") or n for n in dir(space) if not n.startswith("__"))
        names.update(_DUNDER_ARITH.values())
        names.update({"getitem", "setitem"})
        _KNOWN = frozenset(n for n in names if n)
    return _KNOWN


def _aten_has(name: str) -> bool:
    import torch

    try:
        return bool(torch._C._jit_get_schemas_for_operator(f"aten::{name}"))
    except RuntimeError:
        return False


# -- registration ----------------------------------------------------------------------------------------
#: module class -> the function listing the weights it holds outside ``nn.Parameter`` (packed quantized weights)
_WEIGHTS: dict[type, Callable[[nn.Module], list]] = {}


def register_weights(*classes: type[nn.Module]) -> Callable:
    """Register ``fn(module) -> [tensor, ...]``: the weights and biases a layer type keeps outside its
    ``nn.Parameter``s (torch.ao's packed quantized weights), so that they count as its parameters, priced
    at their own dtype. Looked up along ``type(module).__mro__``; a class registered twice raises."""

    def wrap(fn: Callable[[nn.Module], list]) -> Callable[[nn.Module], list]:
        for cls in classes:
            if cls in _WEIGHTS:
                raise ValueError(f"weights of {cls.__name__} are already registered")
            _WEIGHTS[cls] = fn
        return fn

    return wrap


def held_weights(module: nn.Module) -> list | None:
    """The tensors ``module`` holds outside its parameters (``register_weights``), or None."""
    _load_formulas()
    for cls in type(module).__mro__:
        fn = _WEIGHTS.get(cls)
        if fn is not None:
            return fn(module)
    return None


def register_cost(
    *keys: str | Callable | type[nn.Module],
    override: bool = False,
    fvcore: Counted | None = None,
    flop_counter: Counted | None = None,
    geometry: Callable | None = None,
    memory: str = "new",
    workspace: tuple[int, str] | None = None,
    profiler: tuple[str, ...] = (),
) -> Callable:
    """Register the decorated formula, and the op's other facets, for each op or module class in ``keys``.

    Raises ``TypeError`` for no key or a key of the wrong kind, ``ValueError`` for a name no torch op
    carries (with the nearest names) and for a key already registered (unless ``override=True``)."""
    if not keys:
        raise TypeError("register_cost needs at least one op (a torch callable or its name) or nn.Module class")
    if memory not in MEMORY:
        raise ValueError(f"memory is one of {', '.join(MEMORY)}, not {memory!r}")
    resolved = [key if isinstance(key, type) and issubclass(key, nn.Module) else resolve(key) for key in keys]

    def wrap(fn: Callable) -> Callable:
        for key, name in zip(keys, resolved, strict=True):
            if isinstance(name, str):
                if name in _OPS and not override:
                    raise ValueError(f"a cost for op {name!r} is already registered (override=True replaces it)")
                _OPS[name] = OpEntry(
                    name, fn, fvcore=fvcore, flop_counter=flop_counter, geometry=geometry, memory=memory,
                    workspace=workspace, profiler=tuple(profiler), keys=(key,),
                )  # fmt: skip
            else:
                if name in _MODULES and not override:
                    raise ValueError(f"a cost for {name.__name__} is already registered (override=True replaces it)")
                _MODULES[name] = fn
        return fn

    return wrap


@contextlib.contextmanager
def formula_overrides(formulas: dict | None) -> Iterator[None]:
    """Use ``formulas`` (``{op key or nn.Module class: formula}``, keys as ``register_cost`` takes them)
    instead of the registered ones while the block runs, in this thread or task only."""
    ops: dict[str, OpFormula] = {}
    modules: dict[type, ModuleFormula] = {}
    for key, fn in (formulas or {}).items():
        if not callable(fn):
            raise TypeError(f"the formula for {key!r} is not callable: {fn!r}")
        if isinstance(key, type) and issubclass(key, nn.Module):
            modules[key] = fn
        else:
            ops[resolve(key)] = fn
    outer = _OVERRIDES.get()
    if outer is not None:
        ops, modules = {**outer[0], **ops}, {**outer[1], **modules}
    token = _OVERRIDES.set((ops, modules) if ops or modules else outer)
    try:
        yield
    finally:
        _OVERRIDES.reset(token)


# -- names -----------------------------------------------------------------------------------------------
def op_name(func: Callable) -> str:
    """Canonical op name: ``__add__``/``__iadd__``/``add_`` -> ``add``; ``__getitem__`` -> ``getitem``;
    a property read (``x.T``, ``x.mT``, ``x.real``, which torch reports as the descriptor's ``__get__``) -> the
    property's name (``T``, ``mT``, ``real``)."""
    name = getattr(func, "__name__", repr(func))
    if name == "__get__":
        owner = getattr(func, "__self__", None)
        name = getattr(owner, "__name__", None) or getattr(getattr(owner, "fget", None), "__name__", "get")
        return str(name)
    qualified = getattr(func, "_qualified_op_name", None) if isinstance(func, torch._ops.OpOverloadPacket) else None
    if isinstance(qualified, str) and qualified.startswith("quantized::"):
        return f"quantized_{name}"  # quantized::conv2d takes packed weights: not aten's conv2d
    if name.startswith("__") and name.endswith("__"):
        name = name[2:-2]
        if name.startswith(("i", "r")) and name[1:] in _DUNDER_ARITH:
            name = name[1:]
        return _DUNDER_ARITH.get(name, name)
    return name.rstrip("_") or name


_DUNDER_ARITH = {
    "add": "add",
    "sub": "sub",
    "mul": "mul",
    "truediv": "div",
    "div": "div",
    "matmul": "matmul",
    "pow": "pow",
    "and": "logical_and",
    "or": "logical_or",
}


# -- lookups ---------------------------------------------------------------------------------------------
def op_entry(name: str) -> OpEntry | None:
    """The catalogue's entry for op ``name`` (registered; a per-call override of its formula does not
    change its other facets)."""
    _load_formulas()
    return _OPS.get(name)


def lookup(name: str) -> tuple[OpFormula | None, OpEntry | None]:
    """``(op_formula(name), op_entry(name))`` in one look-up (the crawler's, once per op call)."""
    _load_formulas()
    entry = _OPS.get(name)
    over = _OVERRIDES.get()
    if over is not None and name in over[0]:
        return over[0][name], entry
    return (entry.formula if entry is not None else None), entry


def op_formula(name: str) -> OpFormula | None:
    """The formula op ``name`` is costed by in this call: a ``formula_overrides`` one, else the catalogue's."""
    _load_formulas()
    over = _OVERRIDES.get()
    if over is not None and name in over[0]:
        return over[0][name]
    entry = _OPS.get(name)
    return entry.formula if entry is not None else None


def module_formula(module: nn.Module) -> ModuleFormula | None:
    _load_formulas()
    over = _OVERRIDES.get()
    for cls in type(module).__mro__:
        if over is not None and cls in over[1]:
            return over[1][cls]
        fn = _MODULES.get(cls)
        if fn is not None:
            return fn
    return None


def registered_ops() -> list[str]:
    _load_formulas()
    return sorted(_OPS)


def entries() -> list[OpEntry]:
    """Every entry of the catalogue, by name."""
    _load_formulas()
    return [_OPS[n] for n in sorted(_OPS)]


def tool_counts(entry: OpEntry | None, args: tuple, kwargs: dict, out: object, cost: Cost) -> tuple:
    """What fvcore and FlopCounterMode count for one call of the op of ``entry`` (0 where the entry says
    nothing: neither tool has a formula for it; None where the call cannot be predicted). A convention
    that raises is archcost's bug (``InternalError``)."""
    if entry is None or (entry.fvcore is None and entry.flop_counter is None):
        return 0, 0
    counts: list[int | None] = []
    for counted in (entry.fvcore, entry.flop_counter):
        if counted is None:
            counts.append(0)
            continue
        try:
            n = counted.count(args, kwargs, out, cost)
        except Exception as exc:
            raise InternalError(
                f"the {counted.reported_as or 'peer-tool'} convention of op {entry.name!r} failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        counts.append(None if n is None else int(n))
    return tuple(counts)


# -- binding arguments by name -----------------------------------------------------------------------------
#: one overload's positional parameter names, defaults by name, and aten types of the positional ones (None:
#: a Python function's, not checked)
_Overload = tuple[tuple[str, ...], dict[str, object], tuple[str, ...] | None]
_PARAMS: dict[object, list[_Overload] | None] = {}  # callable -> its overloads, or None: not bindable
#: (callable, argument types, keyword names) -> the parameter names and defaults it binds to (None: none fits)
_CHOSEN: dict[tuple, tuple[tuple[str, ...], dict[str, object]] | None] = {}


def bind(func: Callable, name: str, args: tuple, kwargs: dict) -> dict:
    """Every argument of the call ``func(*args, **kwargs)`` by name, defaults included, under the signature
    of ``func`` itself (a Python function's, else the matching overload of aten's schema for ``name``, where
    ``self`` is called ``input`` as torch's Python API does). Where no signature fits, ``kwargs`` alone."""
    key = (func, tuple(map(type, args)), tuple(kwargs))
    try:
        chosen = _CHOSEN[key]
    except KeyError:
        chosen = _CHOSEN[key] = _choose(func, name, args, kwargs)
    if chosen is None:
        return kwargs
    names, defaults = chosen
    bound = dict(defaults)
    bound.update(zip(names, args, strict=False))  # trailing parameters keep their defaults
    bound.update(kwargs)
    return bound


def _choose(func: Callable, name: str, args: tuple, kwargs: dict) -> tuple[tuple[str, ...], dict[str, object]] | None:
    """The parameter names and defaults of the overload of ``func`` this call binds to, or None."""
    try:
        overloads = _PARAMS[func]
    except KeyError:
        overloads = _PARAMS[func] = _signatures(func, name)
    for names, defaults, types in overloads or ():
        if len(args) > len(names) or not all(k in defaults or k in names for k in kwargs):
            continue
        if types is not None and not all(_fits(a, t) for a, t in zip(args, types, strict=False)):
            continue
        return names, defaults
    return None


def _signatures(func: Callable, name: str) -> list[_Overload] | None:
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        sig = None
    if sig is not None and inspect.isfunction(inspect.unwrap(func)):
        names: list[str] = []
        defaults: dict[str, object] = {}
        for p in sig.parameters.values():
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                names.append(p.name)
            elif p.kind is p.VAR_POSITIONAL:
                return None  # variadic (einsum, cat): the formula reads its own args
            if p.kind is not p.VAR_POSITIONAL and p.default is not p.empty:
                defaults[p.name] = p.default
        return [(tuple(names), defaults, None)]
    return _aten_signatures(name)


def _aten_signatures(name: str) -> list[_Overload] | None:
    import torch

    try:
        schemas = torch._C._jit_get_schemas_for_operator(f"aten::{name}")
    except RuntimeError:
        return None
    out: list[_Overload] = []
    for s in schemas:
        if s.overload_name == "out" or s.overload_name.endswith("_out"):
            continue
        names: list[str] = []
        types: list[str] = []
        defaults: dict[str, object] = {}
        for a in s.arguments:
            key = "input" if a.name == "self" else a.name
            if a.kwarg_only:
                if a.default_value is not None or a.type.kind() == "OptionalType":
                    defaults[key] = a.default_value
                continue
            names.append(key)
            types.append(str(a.type))
            if a.has_default_value():
                defaults[key] = a.default_value
        out.append((tuple(names), defaults, tuple(types)))
    return out or None


def _fits(value: object, schema_type: str) -> bool:
    """Whether ``value`` can stand for an argument of aten type ``schema_type`` (``Tensor``,
    ``Optional[Tensor]``, ``List[int]``, ...): enough to pick the overload torch's own argument parser picks."""
    import torch

    optional = schema_type.startswith("Optional[")
    base = schema_type[9:-1] if optional else schema_type
    if value is None:
        return optional
    if base == "Tensor":
        return isinstance(value, torch.Tensor)
    if base.startswith("List[") and "Tensor" in base:
        return isinstance(value, (list, tuple)) and all(isinstance(v, torch.Tensor) or v is None for v in value)
    if isinstance(value, torch.Tensor):
        return base in ("number", "Scalar") and value.dim() == 0
    if base == "str":
        return isinstance(value, str)
    if base.startswith("List["):
        return isinstance(value, (list, tuple, int, torch.Size))
    return not isinstance(value, (list, tuple, str))


_LOADED = False


def _load_formulas() -> None:
    global _LOADED
    if not _LOADED:
        import archcost.cost.formulas  # noqa: F401  (registers every formula on import)

        _LOADED = True
