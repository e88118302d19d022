"""``Workload``: this model with these inputs, the one object every command and entry point takes.

A workload holds the model (a module, or a resolved model spec not yet built), the input specs forward
receives (positional and keyword, dtypes, example tensors, tuple- and dict-valued arguments, plain keyword
values), the batch size and where the batch dimension is, the dtype, where the analysis runs, and the
range of integer inputs. It is made once, from the CLI (``archcost.commands._common.workload``) or from
Python with the same arguments ``analyze`` takes (``Workload.of``), and it knows how to

* make the inputs of a measurement on any device (``tensors``): seeded random floats, zeros or seeded
  random integers in ``int_range`` for integer inputs, ``False`` for booleans, or the user's own tensors;
* describe itself in JSON (``describe``: name, shape with the batch, dtype, path inside a tuple or dict
  argument), and as the ``--input-size`` values that give it again (``cli_args``);
* travel to a child process (``to_json`` / ``from_json``; example tensors travel as ``torch.save`` bytes)
  or, pickled, to a Ray task.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from archcost.cost.inputs import (
    InputSpec,
    assemble,
    describe_spec,
    dtype_name,
    input_specs,
    make_tensor,
    parse_spec,
)
from archcost.errors import InputError

DEFAULT_INPUT = (3, 224, 224)


@dataclass(frozen=True)
class Workload:
    """A model and the inputs its forward takes (see the module docstring). Fields:

    ``model``: an ``nn.Module``, an ``archcost.models.ModelSpec``, a spec string, or ``None``;
    ``specs``: the input specs (``()``: the model's own default input, filled in by ``load``);
    ``plain``: keyword arguments that are not tensors; ``batch_size``; ``dtype``: the analysis dtype name;
    ``batch_dim``: the batch dimension of inputs that do not mark their own; ``int_range``: ``(low, high)``
    of integer inputs when made with values (``None``: zeros); ``device``: where the analysis runs (auto,
    meta, cpu); ``max_memory``: the limit of a CPU analysis; ``options``: the model builder's options;
    ``name``: what reports call the model; ``wrapped``: what wrapper the model came in, if any.
    """

    model: object = None
    specs: tuple[InputSpec, ...] = ()
    plain: dict = field(default_factory=dict)
    batch_size: int = 1
    dtype: str = "float32"
    batch_dim: int = 0
    int_range: tuple[int, int] | None = None
    device: str = "auto"
    max_memory: int | None = None
    options: dict = field(default_factory=dict)
    name: str | None = None
    default_input: tuple[int, ...] | None = None
    source: str | None = None
    #: what a reader of the figures must know about how the model was built (a constructor that failed on
    #: the meta device, built on the CPU instead: ``archcost.models._build``); analyze copies them to its notes
    notes: tuple[str, ...] = ()

    # -- making one ----------------------------------------------------------------------------------

    @classmethod
    def of(
        cls,
        model: object = None,
        input_size: object = None,
        batch_size: int = 1,
        dtype: torch.dtype | str = "float32",
        *,
        inputs: object = None,
        kwargs: dict | None = None,
        batch_dim: int = 0,
        int_range: tuple[int, int] | None = None,
        device: str = "auto",
        max_memory: int | None = None,
        options: dict | None = None,
        name: str | None = None,
    ) -> Workload:
        """A workload from the arguments ``archcost.analyze`` takes (``input_size``, ``inputs=``, ``kwargs=``;
        see ``archcost.cost.inputs``). A model given as a string is resolved (checked, not built).
        Raises ``InputError`` for inputs it cannot read; the model errors of ``archcost.models``."""
        if isinstance(model, Workload):
            return model
        if isinstance(dtype, torch.dtype):
            dtype = dtype_name(dtype)
        if batch_size < 1:
            raise InputError(f"batch size must be >= 1, got {batch_size}", "give a batch size >= 1")
        if batch_dim < 0:
            raise InputError(f"batch dimension must be >= 0, got {batch_dim}", "give --batch-dim 0, 1, ...")
        if int_range is not None:
            low, high = (int(v) for v in int_range)
            if high <= low:
                raise InputError(
                    f"integer input range [{low}, {high}) is empty", "give LOW:HIGH with HIGH > LOW, e.g. 0:50257"
                )
            int_range = (low, high)
        given = input_size is not None or inputs is not None or bool(kwargs)
        specs, plain = input_specs(input_size, inputs, kwargs, batch_dim=batch_dim) if given else ([], {})
        if isinstance(model, str):
            from archcost.models import resolve_model

            model = resolve_model(model, options or {})
        if inputs is not None and batch_size == 1:  # example tensors carry their batch
            batch_size = next((b for s in specs if (b := s.batch_of_example()) is not None), 1)
        return cls(
            model=model,
            specs=tuple(specs),
            plain=dict(plain),
            batch_size=batch_size,
            dtype=dtype,
            batch_dim=batch_dim,
            int_range=int_range,
            device=device,
            max_memory=max_memory,
            options=dict(options or {}),
            name=name,
        )

    def load(self, device: str = "cpu") -> Workload:
        """This workload with its model built (once) as an ``nn.Module`` on ``device`` (``meta``: no weights)
        and its inputs filled in from the model's own default where none were given. A model built from a spec
        is initialised under torch's CPU generator seeded with 0 (the caller's generator state put back), so
        its random weights are the same in every command and every run."""
        model, name, default, source, notes = self.model, self.name, self.default_input, self.source, self.notes
        if model is not None and not isinstance(model, nn.Module):
            from archcost.models import ModelSpec, resolve_model

            spec = model if isinstance(model, ModelSpec) else resolve_model(str(model), self.options)
            with torch.random.fork_rng(devices=[]):  # the same random weights in every command and run
                torch.manual_seed(0)  # (a forward that branches on values takes the same branch each time)
                loaded = spec.build(device)
            model, name = loaded.module, name or loaded.name
            default, source = default or tuple(loaded.input_size), loaded.source
            notes = (*notes, loaded.note) if loaded.note and loaded.note not in notes else notes
        elif isinstance(model, nn.Module):
            name = name or type(model).__name__
            default = default or tuple(getattr(model, "input_size", None) or DEFAULT_INPUT)
            source = source or "module"
        out = replace(self, model=model, name=name, default_input=default, source=source, notes=notes)
        if not out.specs:
            specs, _ = input_specs(default or DEFAULT_INPUT, batch_dim=self.batch_dim)
            out = replace(out, specs=tuple(specs))
        return out

    def runnable(self) -> Workload:
        """This loaded workload with a module real tensors can run as the user's own code would: ``DataParallel``
        / ``DistributedDataParallel`` unwrapped, lazy modules initialised on a private copy by one CPU forward of
        these inputs (the caller's module is never changed). For fvcore's trace and the ONNX exporter."""
        from archcost.cost.untouched import has_lazy, unwrap

        module = unwrap(self.module)
        if has_lazy(module):
            import copy

            module = copy.deepcopy(module)
            args, kwargs = self.tensors("cpu")
            with torch.no_grad():
                module(*args, **kwargs)
        return self if module is self.model else replace(self, model=module)

    def with_batch(self, batch_size: int) -> Workload:
        """This workload at another batch size (example tensors repeated or cut along their batch dimension)."""
        if batch_size == self.batch_size:
            return self
        return replace(self, batch_size=batch_size, specs=tuple(s.with_batch(batch_size) for s in self.specs))

    # -- what it is ----------------------------------------------------------------------------------

    @property
    def module(self) -> nn.Module:
        if not isinstance(self.model, nn.Module):
            raise TypeError("Workload.module before load(): call workload.load() first")
        return self.model

    @property
    def torch_dtype(self) -> torch.dtype:
        from archcost.units import DTYPES

        dtype = DTYPES[self.dtype] if self.dtype in DTYPES else getattr(torch, self.dtype)
        return dtype if dtype.is_floating_point else torch.float32

    @property
    def single_shape(self) -> tuple[int, ...] | None:
        """The one float input's shape without the batch, when that is all forward takes (else ``None``)."""
        specs = self.specs or ()
        if len(specs) == 1 and not self.plain:
            s = specs[0]
            if s.example is None and s.name is None and not s.path and (s.dtype is None or s.dtype.is_floating_point):
                if s.batch_axis() == 0:
                    return tuple(s.shape)
        return None

    def label(self) -> str:
        """The inputs in one line: ``3x224x224`` for one image, else the ``--input-size`` values joined."""
        if self.single_shape is not None and self.specs[0].dtype is None:
            return "x".join(map(str, self.single_shape))
        text = " ".join(describe_spec(s) for s in self.specs)
        if self.plain:
            text += " " + " ".join(f"{k}={v!r}" for k, v in self.plain.items())
        return text

    def describe(self, batch_size: int | None = None) -> list[dict]:
        """Every tensor input as ``{"name", "shape" (with the batch), "dtype"}`` (+ ``path``, ``arg``,
        ``batch_dim`` where they apply), as reports and records write it."""
        batch = batch_size or self.batch_size
        return [s.with_batch(batch).describe(batch, self.torch_dtype) for s in self.specs]

    def cli_args(self) -> list[str]:
        """The flags that give these inputs again on the command line (example tensors by shape only)."""
        out: list[str] = []
        for s in self.specs:
            out += ["--input-size", describe_spec(s)]
        if self.int_range is not None:
            out += ["--int-range", f"{self.int_range[0]}:{self.int_range[1]}"]
        return out

    # -- the tensors ---------------------------------------------------------------------------------

    def tensors(
        self,
        device: str | torch.device = "cpu",
        *,
        batch_size: int | None = None,
        dtype: torch.dtype | None = None,
        seed: int = 0,
    ) -> tuple[list, dict]:
        """``(args, kwargs)`` for one call of forward on ``device`` at ``batch_size`` (default the workload's),
        floating inputs in ``dtype`` (default the workload's): meta tensors on ``meta``; elsewhere the values
        described in the module docstring, seeded by ``seed``. ``plain`` keyword values are included."""
        batch = batch_size or self.batch_size
        target = dtype or self.torch_dtype
        generator = torch.Generator().manual_seed(seed)
        specs = [s.with_batch(batch) for s in self.specs]
        made = [make_tensor(s, batch, target, device, generator, self.int_range) for s in specs]
        return assemble(specs, made, self.plain)

    # -- travelling ----------------------------------------------------------------------------------

    def to_json(self) -> dict:
        """The inputs and settings as JSON (the model travels as its spec string, separately)."""
        specs = []
        for s in self.specs:
            item: dict = {"spec": describe_spec(s) if s.example is None else None}
            if s.example is not None:
                buf = io.BytesIO()
                torch.save(s.example.detach().cpu(), buf)
                item |= {
                    "example": base64.b64encode(buf.getvalue()).decode(),
                    "name": s.name,
                    "path": list(s.path),
                    "arg": s.arg,
                    "batch_dim": s.batch_axis(),
                }
            specs.append(item)
        return {
            "specs": specs,
            "plain": self.plain,
            "batch_size": self.batch_size,
            "dtype": self.dtype,
            "batch_dim": self.batch_dim,
            "int_range": list(self.int_range) if self.int_range else None,
            "device": self.device,
        }

    @classmethod
    def from_json(cls, data: dict, model: object = None, options: dict | None = None) -> Workload:
        specs = []
        for item in data.get("specs") or []:
            if item.get("example") is not None:
                t = torch.load(io.BytesIO(base64.b64decode(item["example"])), weights_only=True)
                specs.append(
                    InputSpec(
                        tuple(t.shape),
                        t.dtype,
                        item.get("name"),
                        example=t,
                        path=tuple(item.get("path") or ()),
                        arg=item.get("arg"),
                        batch_dim=item.get("batch_dim"),
                    )
                )
            else:
                specs.append(parse_spec(item["spec"]))
        specs, _ = input_specs(specs, batch_dim=data.get("batch_dim", 0)) if specs else ([], {})
        return cls(
            model=model,
            specs=tuple(specs),
            plain=dict(data.get("plain") or {}),
            batch_size=int(data.get("batch_size", 1)),
            dtype=data.get("dtype", "float32"),
            batch_dim=int(data.get("batch_dim", 0)),
            int_range=tuple(data["int_range"]) if data.get("int_range") else None,
            device=data.get("device", "auto"),
            options=dict(options or {}),
        )


def explain_inputs(model: nn.Module, specs: list[InputSpec], int_range: tuple[int, int] | None) -> InputError | None:
    """For a forward that failed: an ``InputError`` when the first input's dtype cannot be what the model's
    first layer needs (a float input where the model begins with an embedding of token ids, integer ids of a
    dtype an embedding cannot take, ids outside its vocabulary, an integer input where it begins with a
    convolution or a linear layer); ``None`` when the inputs do not explain it."""
    try:
        _explain(model, specs, int_range)
    except InputError as exc:
        return exc
    return None


def _explain(model: nn.Module, specs: list[InputSpec], int_range: tuple[int, int] | None) -> None:
    first = _first_layer(model)
    if first is None or not specs:
        return
    path, layer = first
    lead = next((s for s in specs if s.name is None), specs[0])
    dtype = lead.example.dtype if lead.example is not None else lead.dtype
    where = f"{path} ({type(layer).__name__})" if path else type(layer).__name__
    if isinstance(layer, (nn.Embedding, nn.EmbeddingBag)):
        if dtype is None or dtype.is_floating_point or dtype.is_complex:
            shape = lead.shape
            if len(shape) == 3 and shape[0] == 3 and shape[1] == shape[2] and dtype is None:
                shape = (shape[1],)  # '77' was read as the square-image shorthand 3x77x77
            length = "x".join(map(str, shape)) or "LENGTH"
            raise InputError(
                f"{lead.label()} is a float input of shape {list(lead.shape)}, but the model begins with an "
                f"embedding, {where}, which takes token ids",
                f"give integer ids with a dtype prefix: --input-size int64:{length} (a bare number is the "
                f"image shorthand 3xNxN; Python: input_size=('int64', ({length.replace('x', ', ')},)))",
            )
        if dtype not in (torch.int64, torch.int32):
            raise InputError(
                f"{lead.label()} is {dtype_name(dtype)}, but {where} takes int64 or int32 token ids",
                f"give int64:{'x'.join(map(str, lead.shape))}",
            )
        n = layer.num_embeddings
        if int_range is not None and (int_range[0] < 0 or int_range[1] > n):
            raise InputError(
                f"integer inputs in [{int_range[0]}, {int_range[1]}) fall outside {where}'s {n} tokens",
                f"give --int-range 0:{n} (Python: int_range=(0, {n}))",
            )
    elif (
        isinstance(layer, (nn.modules.conv._ConvNd, nn.Linear))
        and dtype is not None
        and not (dtype.is_floating_point or dtype.is_complex)
    ):
        raise InputError(
            f"{lead.label()} is {dtype_name(dtype)}, but the model begins with {where}, which takes floating "
            "point inputs",
            f"drop the dtype prefix (--input-size {'x'.join(map(str, lead.shape))}), or give float32:SHAPE",
        )


def _first_layer(model: nn.Module) -> tuple[str, nn.Module] | None:
    """The first leaf module registered that takes the model's input, when it is an embedding, convolution or
    linear layer (registration order is the usual forward order; anything else: ``None``, nothing checked)."""
    for path, m in model.named_modules():
        if next(m.children(), None) is not None:
            continue
        if isinstance(m, (nn.Embedding, nn.EmbeddingBag, nn.modules.conv._ConvNd, nn.Linear)):
            return path, m
        if any(True for _ in m.parameters(recurse=False)):
            return None  # a norm or another layer with weights comes first: do not guess
    return None
