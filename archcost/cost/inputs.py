"""What forward receives: input specs (shape, dtype, keyword name) and the tensors made from them.

A model's inputs can be described four ways, all turned into one list of ``InputSpec``:

* one shape without the batch, ``(3, 224, 224)``;
* a list of shapes, one per positional input, ``[(3, 16, 16), (3, 32, 32)]``;
* a shape with its dtype, ``("int64", (77,))``, or a spec string ``"int64:77"``, ``"bool:1x77"``,
  ``"mask=bool:77"`` (a keyword input named ``mask``), as the CLI's ``--input-size`` takes them;
* example tensors (``inputs=``: a tensor, a tuple of them, or a dict of keyword inputs), of which only
  shape and dtype are used when forward runs on the meta device, and the values when it runs on the CPU.

Floating inputs take the analysis dtype unless a spec names another; integer and boolean inputs are
filled with zeros (valid token ids and masks) where data is needed, floats with seeded random normals.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

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
    """One input of forward: its shape without the batch (or with it, for an example tensor), its dtype
    (``None``: the analysis dtype) and its keyword name (``None``: positional)."""

    shape: Shape
    dtype: torch.dtype | None = None
    name: str | None = None
    example: torch.Tensor | None = None  # the user's tensor; its shape already includes the batch

    def full_shape(self, batch_size: int) -> Shape:
        return tuple(self.example.shape) if self.example is not None else (batch_size, *self.shape)

    def describe(self, batch_size: int, default: torch.dtype) -> dict:
        dtype = self.example.dtype if self.example is not None else self.dtype or default
        return {"name": self.name, "shape": list(self.full_shape(batch_size)), "dtype": dtype_name(dtype)}


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
    parts = text.strip().lower().replace(",", "x").split("x")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise InputError(
            f"malformed input size {text!r}",
            "write it as CxHxW (3x224x224), a dtype prefix for other inputs (int64:77), "
            "or name=dtype:shape for a keyword input (mask=bool:77)",
        ) from None
    if any(d <= 0 for d in dims):
        raise InputError(f"input size {text!r} has a zero or negative dimension", "every size must be >= 1")
    return (3, dims[0], dims[0]) if image and len(dims) == 1 else dims


def parse_spec(text: str) -> InputSpec:
    """One ``--input-size`` value: ``[name=][dtype:]shape``; ``224`` alone means 3x224x224."""
    name, sep, rest = text.partition("=")
    if not sep:
        name, rest = None, text
    elif not name.strip().isidentifier():
        raise InputError(
            f"malformed input name in {text!r}", "write a keyword input as name=dtype:shape, e.g. mask=bool:77"
        )
    dtype_text, sep, shape_text = rest.rpartition(":")
    dtype = _dtype(dtype_text, text) if sep else None
    image = dtype is None or dtype.is_floating_point
    return InputSpec(parse_shape(shape_text, image=image), dtype, name.strip() if name else None)


def _is_shape(value: object) -> bool:
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


def input_specs(
    input_size: object = None, inputs: object = None, kwargs: dict | None = None, default: Shape = (3, 224, 224)
) -> tuple[list[InputSpec], dict]:
    """The forward's inputs as specs, and the keyword arguments that are not tensors (passed as they are).

    ``input_size``: a shape, a ``(dtype, shape)`` pair, a spec string, or a list of those (one per
    positional input; spec strings may name a keyword input). ``inputs``: example tensors (a tensor, a
    tuple, or a dict of keyword inputs). ``kwargs``: keyword inputs, tensors or plain values.
    """
    specs: list[InputSpec] = []
    if inputs is not None:
        if isinstance(inputs, torch.Tensor):
            inputs = (inputs,)
        items = inputs.items() if isinstance(inputs, dict) else ((None, v) for v in inputs)
        for key, value in items:
            if not isinstance(value, torch.Tensor):
                raise InputError(
                    f"inputs= holds a {type(value).__name__}, not a tensor", "pass plain values through kwargs="
                )
            specs.append(InputSpec(tuple(value.shape), value.dtype, key, example=value))
    elif input_size is not None:
        pair = isinstance(input_size, (tuple, list)) and len(input_size) == 2 and _is_shape(input_size[1])
        one = (
            _is_shape(input_size)
            or isinstance(input_size, str)
            or (pair and isinstance(input_size[0], torch.dtype))
            or (pair and isinstance(input_size[0], str) and input_size[0].strip().lower() in INPUT_DTYPES)
        )
        specs = [_one(input_size)] if one else [_one(v) for v in input_size]
    else:
        specs = [InputSpec(tuple(default))]
    plain: dict = {}
    for key, value in (kwargs or {}).items():
        if isinstance(value, torch.Tensor):
            specs.append(InputSpec(tuple(value.shape), value.dtype, key, example=value))
        else:
            plain[key] = value
    if not specs:
        raise InputError("no input was given", "give input_size=, inputs= or kwargs=")
    for s in specs:
        if s.example is None and any(int(d) < 1 for d in s.shape):
            raise InputError(f"input size {tuple(s.shape)} has a zero or negative dimension", "every size must be >= 1")
    return specs, plain


def check_signature(model: nn.Module, specs: list[InputSpec], plain: dict) -> None:
    """Raise InputError when the positional inputs given cannot bind to ``model.forward``'s parameters,
    naming the parameters it expects."""
    try:
        sig = inspect.signature(model.forward)
    except (TypeError, ValueError):
        return  # a builtin or C++ forward: let the call tell
    args = [None] * sum(1 for s in specs if s.name is None)
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
        given = ", ".join(describe_spec(s) for s in specs)
        raise InputError(
            f"{type(model).__name__}.forward({', '.join(params)}) cannot take the inputs given ({given}): {exc}",
            f"give one input per parameter it needs ({', '.join(required) or 'none'}): repeat --input-size, "
            "e.g. --input-size 3x16x16 --input-size 3x32x32, name keyword inputs as name=dtype:shape; "
            "in Python input_size=[(3, 16, 16), (3, 32, 32)]",
        ) from None


def describe_spec(spec: InputSpec) -> str:
    dtype = f"{dtype_name(spec.dtype)}:" if spec.dtype is not None else ""
    name = f"{spec.name}=" if spec.name else ""
    return f"{name}{dtype}{'x'.join(str(d) for d in spec.shape)}"


def make_tensor(spec: InputSpec, batch_size: int, dtype: torch.dtype, device: str, generator=None) -> torch.Tensor:
    """The tensor forward receives for ``spec``: empty on meta; on the CPU the user's example values, else
    seeded random normals for floating inputs and zeros for integer and boolean ones."""
    target = spec.example.dtype if spec.example is not None else spec.dtype or dtype
    shape = spec.full_shape(batch_size)
    if device == "meta":
        return torch.empty(shape, dtype=target, device="meta")
    if spec.example is not None and spec.example.device.type != "meta":
        return spec.example.detach().to("cpu", copy=True)
    if target.is_floating_point or target.is_complex:
        return torch.randn(shape, generator=generator, dtype=target)
    return torch.zeros(shape, dtype=target)
