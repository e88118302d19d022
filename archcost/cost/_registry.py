"""``@register_cost``: the one way a layer type or an op gets its cost formula.

Two kinds of key:

* an op name (``"conv2d"``, ``"add"``, ``"batch_norm"``): the canonical name of a torch function or
  tensor method as it is called inside ``forward`` (``F.conv2d``, ``torch.add``, ``x + y``,
  ``x.add_(y)`` and ``x += y`` all call ``add``). Formula signature:
  ``fn(args: tuple, kwargs: dict, out) -> Cost``.
* an ``nn.Module`` subclass: a whole layer costed from its settings, looked up along
  ``type(module).__mro__`` so subclasses inherit it. Formula signature:
  ``fn(module, inputs: tuple, out) -> Cost``. Use it for layers whose forward is opaque (a custom
  kernel); layers built from torch ops need nothing, their ops are costed one by one.

Registering a key twice raises. ``register_free`` puts op names on the explicit list of data-movement and
bookkeeping ops that cost 0 (views, copies, casts, indexing, tensor creation); an op that is neither on
that list nor has a formula is listed as not costed, whatever its output dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from archcost.errors import InternalError


@dataclass(frozen=True)
class Cost:
    """What one layer or op costs: multiply-accumulates and all floating-point operations."""

    macs: int = 0
    flops: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.macs + other.macs, self.flops + other.flops)


ZERO = Cost()


class NotCostable(Exception):  # noqa: N818  (a verdict, not a failure)
    """Raised by a formula when this call cannot be costed from shapes (e.g. the work depends on the data):
    the op is listed as not costed, with the message as the reason."""


OpFormula = Callable[[tuple, dict, object], Cost]
ModuleFormula = Callable[[nn.Module, tuple, object], Cost]

_OPS: dict[str, OpFormula] = {}
_MODULES: dict[type, ModuleFormula] = {}
_FREE: set[str] = set()


def _free(args: tuple, kwargs: dict, out) -> Cost:
    """Data movement, views, casts, creation: no arithmetic."""
    return ZERO


def register_free(*names: str) -> None:
    """Put op ``names`` on the explicit free list: they move, view, cast or create data and cost 0."""
    register_cost(*names)(_free)
    _FREE.update(names)


def is_free(name: str) -> bool:
    """Whether op ``name`` is on the explicit free list."""
    _load_formulas()
    return name in _FREE


def free_ops() -> frozenset[str]:
    """Every op on the explicit free list."""
    _load_formulas()
    return frozenset(_FREE)


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


def register_cost(*keys: str | type[nn.Module]) -> Callable:
    """Register the decorated formula for each op name or module class in ``keys``."""
    if not keys:
        raise TypeError("register_cost needs at least one op name or nn.Module class")
    for key in keys:
        if not isinstance(key, str) and not (isinstance(key, type) and issubclass(key, nn.Module)):
            raise TypeError(f"register_cost keys are op names or nn.Module classes, not {key!r}")

    def wrap(fn: Callable) -> Callable:
        for key in keys:
            if isinstance(key, str):
                if key in _OPS:
                    raise ValueError(f"a cost for op {key!r} is already registered")
                _OPS[key] = fn
            else:
                if key in _MODULES:
                    raise ValueError(f"a cost for {key.__name__} is already registered")
                _MODULES[key] = fn
        return fn

    return wrap


def op_name(func: Callable) -> str:
    """Canonical op name: ``__add__``/``__iadd__``/``add_`` -> ``add``; ``__getitem__`` -> ``getitem``;
    a property read (``x.T``, ``x.mT``, ``x.real``, which torch reports as the descriptor's ``__get__``) -> the
    property's name (``T``, ``mT``, ``real``)."""
    name = getattr(func, "__name__", repr(func))
    if name == "__get__":
        owner = getattr(func, "__self__", None)
        name = getattr(owner, "__name__", None) or getattr(getattr(owner, "fget", None), "__name__", "get")
        return name
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


def op_formula(name: str) -> OpFormula | None:
    _load_formulas()
    return _OPS.get(name)


def module_formula(module: nn.Module) -> ModuleFormula | None:
    _load_formulas()
    for cls in type(module).__mro__:
        fn = _MODULES.get(cls)
        if fn is not None:
            return fn
    return None


def registered_ops() -> list[str]:
    _load_formulas()
    return sorted(_OPS)


def _load_formulas() -> None:
    import archcost.cost.formulas  # noqa: F401  (registers every formula on import)
