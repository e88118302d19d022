"""What forward receives: input specs (shape, dtype, keyword name) and the tensors made from them.

A model's inputs can be described four ways, all turned into one list of ``InputSpec``:

* one shape without the batch, ``(3, 224, 224)``;
* a list of shapes, one per positional input, ``[(3, 16, 16), (3, 32, 32)]``;
* a shape with its dtype, ``("int64", (77,))``, or a spec string ``"int64:77"``, ``"bool:1x77"``,
  ``"mask=bool:77"`` (a keyword input named ``mask``), as the CLI's ``--input-size`` takes them;
* example tensors (``inputs=``: a tensor, a tuple of them, or a dict of keyword inputs; a tuple, list or
  dict inside them is one argument made of several tensors, like an LSTM's ``(h, c)`` or a ``batch`` dict),
  of which only shape and dtype are used when forward runs on the meta device, and the values when it runs
  on the CPU.

A spec string is ``[NAME[.KEY...]=][DTYPE:]SHAPE``: ``NAME=`` makes a keyword input, ``NAME.KEY=`` a tensor
inside a dict-valued argument (``batch.image=3x32x32``), ``NAME.0=`` / ``NAME.1=`` the members of a tuple
argument (``hx.0=2xBx20``). In SHAPE a ``B`` marks where the batch goes (``int64:35xB`` for a sequence-first
model); without one the batch is prepended (or put at the workload's batch dimension). A bare number
``224`` is the square-image shorthand 3x224x224; with a dtype the shape is taken as written
(``float32:10`` is a vector of 10 features).

Floating inputs take the analysis dtype unless a spec names another; integer and boolean inputs are
filled with zeros (valid token ids and masks) where data is needed, or with seeded random integers in
``[low, high)`` when a range is given (``int_range=``, ``--int-range``); floats with seeded random normals.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeGuard

import torch
from torch import nn

from archcost.errors import InputError

Shape = tuple[int, ...]

#: dtype names an input spec may carry.
INPUT_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float": torch.float32,
    "float16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
    "double": torch.float64,
    "int64": torch.int64,
    "long": torch.int64,
    "int32": torch.int32,
    "int": torch.int32,
    "int16": torch.int16,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "bool": torch.bool,
    "complex64": torch.complex64,
}


@dataclass(frozen=True)
class InputSpec:
    """One input tensor of forward.

    ``shape``: without the batch (or with it, for an example tensor); ``dtype``: ``None`` means the analysis
    dtype; ``name``: the keyword argument it is passed as (``None``: positional); ``arg``: the index of the
    positional argument it belongs to (set by ``input_specs``); ``path``: where it sits inside that argument
    when the argument is a tuple or dict of tensors (``(0,)``, ``("image",)``; ``()`` for a plain tensor);
    ``batch_dim``: where the batch dimension goes (``None``: first, or the workload's ``batch_dim``).
    """

    shape: Shape
    dtype: torch.dtype | None = None
    name: str | None = None
    example: torch.Tensor | None = None  # the user's tensor; its shape already includes the batch
    path: tuple[str | int, ...] = ()
    arg: int | None = None
    batch_dim: int | None = None

    def batch_axis(self) -> int:
        return self.batch_dim or 0

    def full_shape(self, batch_size: int) -> Shape:
        if self.example is not None:  # the user's tensor, as it is (``with_batch`` makes one of another batch)
            return tuple(self.example.shape)
        axis = self.batch_axis()
        return (*self.shape[:axis], batch_size, *self.shape[axis:])

    def batch_of_example(self) -> int | None:
        """The batch the user's example tensor has (its size along the batch dimension)."""
        if self.example is None or self.example.dim() == 0:
            return None
        return int(self.example.shape[self.batch_axis()])

    def with_batch(self, batch_size: int) -> InputSpec:
        """This spec at ``batch_size``: an example tensor repeated (or cut) along its batch dimension."""
        have, t = self.batch_of_example(), self.example
        if have is None or have == batch_size or t is None:
            return self
        from dataclasses import replace

        axis = self.batch_axis()
        reps = -(-batch_size // have)
        t = t.repeat(*[reps if i == axis else 1 for i in range(t.dim())]).narrow(axis, 0, batch_size)
        return replace(self, example=t.contiguous(), shape=tuple(t.shape))

    def label(self) -> str:
        """Where forward receives it: ``input 1``, ``mask``, ``batch['image']``, ``hx[0]``."""
        base = self.name if self.name is not None else f"input {(self.arg or 0) + 1}"
        return base + "".join(f"[{k!r}]" if isinstance(k, str) else f"[{k}]" for k in self.path)

    def describe(self, batch_size: int, default: torch.dtype) -> dict:
        dtype = self.example.dtype if self.example is not None else self.dtype or default
        out: dict[str, object] = {
            "name": self.name,
            "shape": list(self.full_shape(batch_size)),
            "dtype": dtype_name(dtype),
        }
        if self.path:
            out["path"] = list(self.path)
            if self.name is None:
                out["arg"] = self.arg
        if self.batch_axis():
            out["batch_dim"] = self.batch_axis()
        return out


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _dtype(text: str, spec: str) -> torch.dtype:
    try:
        return INPUT_DTYPES[text.strip().lower()]
    except KeyError:
        raise InputError(
            f"unknown dtype {text!r} in input {spec!r}",
            f"use one of {', '.join(INPUT_DTYPES)}, e.g. int64:77 for 77 token ids",
        ) from None


def parse_shape(text: str, *, image: bool = True) -> Shape:
    """'3x224x224' (or '3,224,224') -> (3, 224, 224); '224' -> (3, 224, 224) for an image input
    (``image=True``), (224,) otherwise. Raises InputError for anything else."""
    shape, axis = _parse_dims(text, image=image)
    if axis is not None:
        raise InputError(f"input size {text!r} marks a batch dimension (B)", "give the shape without B here")
    return shape


def _parse_dims(text: str, *, image: bool) -> tuple[Shape, int | None]:
    """Dims of a shape text and where its ``B`` (the batch) stands, if anywhere."""
    parts = text.strip().lower().replace(",", "x").split("x")
    axis = None
    if parts.count("b") > 1:
        raise InputError(f"input size {text!r} marks the batch (B) more than once", "mark it once, e.g. 35xB")
    if "b" in parts:
        axis = parts.index("b")
        parts.remove("b")
    try:
        dims = tuple(int(p) for p in parts) if parts != [""] else ()
    except ValueError:
        raise InputError(
            f"malformed input size {text!r}",
            "write it as CxHxW (3x224x224), a dtype prefix for other inputs (int64:77, float32:10 for a vector), "
            "name=dtype:shape for a keyword input (mask=bool:77), B where the batch goes (int64:35xB)",
        ) from None
    if any(d <= 0 for d in dims):
        raise InputError(f"input size {text!r} has a zero or negative dimension", "every size must be >= 1")
    if image and axis is None and len(dims) == 1:
        return (3, dims[0], dims[0]), None
    return dims, axis


def parse_spec(text: str) -> InputSpec:
    """One ``--input-size`` value: ``[name[.key...]=][dtype:]shape``; ``224`` alone means 3x224x224, a shape
    with a dtype is taken as written (``float32:10`` = 10 features); ``B`` in the shape marks the batch."""
    head, sep, rest = text.partition("=")
    name: str | None = None
    path: tuple[str | int, ...] = ()
    if not sep:
        rest = text
    else:
        parts = head.strip().split(".")
        if not all(p.isidentifier() or p.isdigit() for p in parts[1:]) or not parts[0].isidentifier():
            raise InputError(
                f"malformed input name in {text!r}",
                "write a keyword input as name=dtype:shape (mask=bool:77), a dict member as name.key=shape "
                "(batch.image=3x32x32), a tuple member as name.0=shape (hx.0=2xBx20)",
            )
        name = parts[0]
        path = tuple(int(p) if p.isdigit() else p for p in parts[1:])
    dtype_text, sep, shape_text = rest.rpartition(":")
    dtype = _dtype(dtype_text, text) if sep else None
    shape, axis = _parse_dims(shape_text, image=dtype is None)
    return InputSpec(shape, dtype, name.strip() if name else None, path=path, batch_dim=axis)


def _is_shape(value: object) -> TypeGuard[Sequence[int]]:
    return isinstance(value, (tuple, list, torch.Size)) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    )


def _one(value: object) -> InputSpec:
    if isinstance(value, InputSpec):
        return value
    if isinstance(value, str):
        return parse_spec(value)
    if _is_shape(value):
        return InputSpec(tuple(int(v) for v in value))
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and isinstance(value[0], (str, torch.dtype))
        and _is_shape(value[1])
    ):
        dtype = value[0] if isinstance(value[0], torch.dtype) else _dtype(value[0], str(value))
        return InputSpec(tuple(int(v) for v in value[1]), dtype)
    raise InputError(
        f"cannot read the input description {value!r}",
        "give a shape (3, 224, 224), a shape with its dtype ('int64', (77,)), a spec string 'int64:77', "
        "or a list of those, one per positional input",
    )


def _flatten(value: object, name: str | None, arg: int | None, path: tuple, where: str) -> list[InputSpec]:
    """Example tensors of one argument (a tensor, or a tuple/list/dict of them, nested) as specs."""
    if isinstance(value, torch.Tensor):
        return [InputSpec(tuple(value.shape), value.dtype, name, example=value, path=path, arg=arg)]
    if isinstance(value, (tuple, list)) and value:
        return [s for i, v in enumerate(value) for s in _flatten(v, name, arg, (*path, i), where)]
    if isinstance(value, dict) and value and all(isinstance(k, str) for k in value):
        return [s for k, v in value.items() for s in _flatten(v, name, arg, (*path, k), where)]
    label = (name or f"input {(arg or 0) + 1}") + "".join(f"[{k!r}]" for k in path)
    raise InputError(
        f"{where} holds a {type(value).__name__} at {label}, not a tensor (or a tuple or dict of tensors)",
        "pass plain values (numbers, strings, flags) as keyword arguments through kwargs=",
    )


def input_specs(
    input_size: object = None,
    inputs: object = None,
    kwargs: dict | None = None,
    default: Shape = (3, 224, 224),
    *,
    batch_dim: int = 0,
) -> tuple[list[InputSpec], dict]:
    """The forward's inputs as specs, and the keyword arguments that are not tensors (passed as they are).

    ``input_size``: a shape, a ``(dtype, shape)`` pair, a spec string, or a list of those (one per
    positional input; spec strings may name a keyword input or a member of a tuple/dict argument).
    ``inputs``: example tensors (a tensor, a tuple with one item per positional argument, or a dict of
    keyword inputs; an item may itself be a tuple or dict of tensors). ``kwargs``: keyword inputs: tensors,
    tuples/dicts of tensors, or plain values (passed as they are). ``batch_dim``: where the batch dimension
    is in every input that does not mark its own (``B`` in a spec string).
    Every spec comes back with ``arg`` set (its positional argument's index) and ``batch_dim`` resolved.
    Raises ``InputError`` for anything it cannot read, naming the input.
    """
    specs: list[InputSpec] = []
    if inputs is not None:
        if isinstance(inputs, torch.Tensor):
            inputs = (inputs,)
        if isinstance(inputs, dict):
            for key, value in inputs.items():
                specs += _flatten(value, key, None, (), "inputs=")
        elif isinstance(inputs, (tuple, list)):
            for i, value in enumerate(inputs):
                specs += _flatten(value, None, i, (), "inputs=")
        else:
            raise InputError(
                f"inputs= is a {type(inputs).__name__}",
                "give a tensor, a tuple of tensors, or a dict of keyword inputs",
            )
    elif input_size is not None:
        pair = isinstance(input_size, (tuple, list)) and len(input_size) == 2 and _is_shape(input_size[1])
        first = input_size[0] if pair and isinstance(input_size, (tuple, list)) else None
        one = (
            _is_shape(input_size)
            or isinstance(input_size, (str, InputSpec))
            or isinstance(first, torch.dtype)
            or (isinstance(first, str) and first.strip().lower() in INPUT_DTYPES)
        )
        # one description, a list of them, or neither (_one says what it cannot read)
        specs = [_one(v) for v in input_size] if isinstance(input_size, Iterable) and not one else [_one(input_size)]
    plain: dict = {}
    for key, value in (kwargs or {}).items():
        if isinstance(value, torch.Tensor) or (
            isinstance(value, (tuple, list, dict)) and value and _all_tensors(value)
        ):
            specs += _flatten(value, key, None, (), "kwargs=")
        else:
            plain[key] = value
    if not specs:
        if inputs is not None or input_size is not None or not plain:
            specs = [InputSpec(tuple(default))]
        else:
            raise InputError(
                f"only plain keyword values were given ({', '.join(plain)}): no tensor input",
                "give the tensor inputs too: input_size= (shapes), inputs= (example tensors) or tensors in kwargs=",
            )
    for s in specs:
        if s.example is None and any(int(d) < 1 for d in s.shape):
            raise InputError(f"input size {tuple(s.shape)} has a zero or negative dimension", "every size must be >= 1")
    return _numbered(specs, batch_dim), plain


def _all_tensors(value: object) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (tuple, list)):
        return all(_all_tensors(v) for v in value)
    if isinstance(value, dict):
        return all(_all_tensors(v) for v in value.values())
    return False


def _numbered(specs: list[InputSpec], batch_dim: int) -> list[InputSpec]:
    """Give each positional spec its argument index (specs with a path share the argument they name) and
    each spec its batch dimension; check that every batch dimension exists."""
    from dataclasses import replace

    out: list[InputSpec] = []
    next_arg = 0
    open_arg: int | None = None  # the positional argument the last path-spec belongs to
    for s in specs:
        arg = s.arg
        if s.name is None and arg is None:
            if s.path and s.path[0] != 0 and open_arg is not None:
                arg = open_arg  # the next member of the tuple argument just begun
            else:
                arg = next_arg
            open_arg = arg if s.path else None
        if arg is not None and s.name is None:
            next_arg = max(next_arg, arg + 1)
        axis = s.batch_dim if s.batch_dim is not None else batch_dim
        rank = s.example.dim() if s.example is not None else len(s.shape) + 1
        if not 0 <= axis < max(rank, 1):
            raise InputError(
                f"{s.label()} has no dimension {axis} to be the batch (its shape {list(s.full_shape(1))})",
                "give a batch dimension that the input has (--batch-dim, or B in the shape: int64:35xB)",
            )
        out.append(replace(s, arg=arg, batch_dim=axis))
    return out


def assemble(specs: list[InputSpec], made: list[torch.Tensor], plain: dict | None = None) -> tuple[list, dict]:
    """``(args, kwargs)`` for forward from the specs and their tensors (``made[i]`` for ``specs[i]``):
    tensors with a path are put together into the tuple or dict argument they belong to; ``plain``
    keyword values are added as they are."""
    args: dict[int, object] = {}
    kwargs: dict[str, object] = {}
    for spec, t in zip(specs, made, strict=True):
        if spec.name is None:
            key = spec.arg if spec.arg is not None else len(args)
            args[key] = _place(args.get(key), spec.path, t)
        else:
            kwargs[spec.name] = _place(kwargs.get(spec.name), spec.path, t)
    ordered = [_frozen(args[k]) for k in sorted(args)]
    return ordered, {k: _frozen(v) for k, v in kwargs.items()} | dict(plain or {})


class _Tuple(list):
    """A tuple argument while it is being put together (becomes a tuple)."""


def _place(holder: object, path: tuple, t: torch.Tensor) -> object:
    if not path:
        return t
    key, rest = path[0], path[1:]
    if isinstance(key, int):
        holder = holder if isinstance(holder, _Tuple) else _Tuple()
        while len(holder) <= key:
            holder.append(None)
        holder[key] = _place(holder[key], rest, t)
        return holder
    holder = holder if isinstance(holder, dict) else {}
    holder[key] = _place(holder.get(key), rest, t)
    return holder


def _frozen(value: object) -> object:
    if isinstance(value, _Tuple):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}
    return value


def check_signature(model: nn.Module, specs: list[InputSpec], plain: dict) -> None:
    """Raise InputError when the positional inputs given cannot bind to ``model.forward``'s parameters,
    naming the parameters it expects."""
    try:
        sig = inspect.signature(model.forward)
    except (TypeError, ValueError):
        return  # a builtin or C++ forward: let the call tell
    args = [None] * len({s.arg if s.arg is not None else -1 - i for i, s in enumerate(specs) if s.name is None})
    kwargs = {s.name: None for s in specs if s.name is not None} | dict(plain)
    try:
        sig.bind(*args, **kwargs)
    except TypeError as exc:
        params = [
            p.name
            for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        required = [
            p.name
            for p in sig.parameters.values()
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        given = ", ".join(describe_spec(s) for s in specs) + "".join(f", {k}={v!r}" for k, v in plain.items())
        raise InputError(
            f"{type(model).__name__}.forward({', '.join(params)}) cannot take the inputs given ({given}): {exc}",
            _binding_hint(sig, specs, plain, required),
        ) from None


def _binding_hint(sig: inspect.Signature, specs: list[InputSpec], plain: dict, required: list[str]) -> str:
    """What to give instead, from what is missing or extra (never the thing the user just did)."""
    names = {s.name for s in specs if s.name} | set(plain)
    accepts_any = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    unknown = sorted(n for n in names if n not in sig.parameters and not accepts_any)
    if unknown:
        return (
            f"forward has no parameter {', '.join(unknown)}: name one of its parameters "
            f"({', '.join(p for p in sig.parameters if p not in ('self',))}) or drop it"
        )
    positional = sum(1 for s in specs if s.name is None and not s.path) + len(
        {s.arg for s in specs if s.name is None and s.path}
    )
    bound = required[:positional]
    missing = [r for r in required if r not in bound and r not in names]
    if missing:
        return (
            f"give {', '.join(missing)} too: another --input-size for each (a keyword one as "
            f"{missing[0]}=SHAPE, int64:SHAPE for ids), or --kwarg {missing[0]}=VALUE for a plain value; "
            f"in Python input_size=[...] with one entry per input, or kwargs={{'{missing[0]}': ...}}"
        )
    return (
        f"forward takes {len(required)} required input(s) ({', '.join(required) or 'none'}) and was given "
        f"{positional} positional one(s): give one --input-size per parameter, naming keyword ones as NAME=SHAPE"
    )


def describe_spec(spec: InputSpec) -> str:
    """The ``--input-size`` value that gives ``spec`` again (its example's shape for an example tensor)."""
    dtype = spec.example.dtype if spec.example is not None else spec.dtype
    prefix = f"{dtype_name(dtype)}:" if dtype is not None else ""
    name = spec.name if spec.name is not None else ("" if not spec.path else f"arg{spec.arg}")
    name += "".join(f".{k}" for k in spec.path)
    dims = [str(d) for d in spec.shape]
    if spec.example is None and spec.batch_axis():
        dims.insert(spec.batch_axis(), "B")
    return f"{name + '=' if name else ''}{prefix}{'x'.join(dims)}"


def make_tensor(
    spec: InputSpec,
    batch_size: int,
    dtype: torch.dtype,
    device: str | torch.device,
    generator=None,
    int_range: tuple[int, int] | None = None,
) -> torch.Tensor:
    """The tensor forward receives for ``spec``: empty on meta; elsewhere a copy of the user's example values,
    else seeded random normals for floating inputs, zeros for integer and boolean ones, or seeded random
    integers in ``[low, high)`` with ``int_range``. Made on the CPU (seeded alike everywhere), then moved to
    ``device``."""
    target = spec.example.dtype if spec.example is not None else spec.dtype or dtype
    shape = spec.full_shape(batch_size)
    if str(device) == "meta":
        return torch.empty(shape, dtype=target, device="meta")
    if spec.example is not None and spec.example.device.type != "meta":
        return spec.example.detach().to("cpu", copy=True).to(device)
    if target.is_floating_point or target.is_complex:
        t = torch.randn(shape, generator=generator, dtype=target)
    elif int_range is not None and target != torch.bool:
        t = torch.randint(int_range[0], int_range[1], shape, generator=generator, dtype=target)
    else:
        t = torch.zeros(shape, dtype=target)
    return t.to(device)
