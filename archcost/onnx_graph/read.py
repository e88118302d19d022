"""Reading an ONNX file and inferring every tensor's shape, with a clear error for each way it can fail.

Weights are never needed, only their shapes: external data is not loaded, and large float initializers
are handed to ``onnx.shape_inference`` as typed graph inputs rather than as data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import onnx
from onnx import TensorProto

from archcost.errors import first_line
from archcost.onnx_graph.errors import OnnxFileError, OnnxShapeError

if TYPE_CHECKING:
    import numpy as np

#: Initializers up to this many elements keep their data for shape inference (Reshape targets, Resize
#: scales, Slice bounds are small); larger ones are replaced by typed inputs.
SMALL_TENSOR = 4096
_MAX_FOLD_PASSES = 6
#: Ops never evaluated ahead: random, or outputs whose size comes from data (could be huge).
_NO_FOLD = frozenset(
    {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli", "Dropout"}
)
_SIZED_BY_DATA = frozenset({"ConstantOfShape", "Expand", "Tile", "Range", "Resize", "Upsample", "Pad"})
DEFAULT_DOMAINS = ("", "ai.onnx")
_FLOAT_NAMES = (
    "FLOAT", "FLOAT16", "BFLOAT16", "DOUBLE", "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ",
)  # fmt: skip
FLOAT_TYPES = frozenset(getattr(TensorProto, n) for n in _FLOAT_NAMES if hasattr(TensorProto, n))


@dataclass(frozen=True)
class Stored:
    """An initializer (or a ``Constant`` node's tensor): its shape and type, and its value if small."""

    name: str
    shape: tuple[int, ...]
    elem_type: int
    value: np.ndarray | None = None  # numpy array for small tensors

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def is_float(self) -> bool:
        return self.elem_type in FLOAT_TYPES


@dataclass
class InferredGraph:
    """The model after shape inference: its graph, each value's shape and type, and its inputs."""

    model: onnx.ModelProto
    opset: int
    stored: dict[str, Stored]
    shapes: dict[str, tuple[int | str | None, ...]]  # value name -> dims (int, symbol, or None if unknown)
    types: dict[str, int]
    inputs: list[str]  # the real graph inputs (not initializers), in order
    input_shapes: dict[str, tuple[int, ...]]
    outputs: list[str]
    #: what a reader of the figures must know about the file (e.g. analysed at another batch than exported)
    notes: list[str] = field(default_factory=list)


def read_onnx(path: str | Path) -> tuple[onnx.ModelProto, dict[str, Stored]]:
    """The parsed and checked model in ``path``, with its large float initializers replaced by typed
    graph inputs (returned as ``Stored`` shapes, their data dropped). Raises ``OnnxFileError`` for a
    missing, non-ONNX, truncated or corrupt file, or one that needs a newer ONNX than the one installed."""
    path = Path(path)
    if not path.is_file():
        raise OnnxFileError(f"no such file {str(path)!r}", "give the path of an existing .onnx file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise OnnxFileError(
            f"{path} is not a readable ONNX file: {first_line(exc)}",
            "the file is not ONNX, or it is truncated or corrupt; export it again",
        ) from None
    if model.ir_version < 1 or not model.HasField("graph") or not model.graph.node:
        raise OnnxFileError(
            f"{path} is not an ONNX model (no IR version or no graph nodes)",
            "the file is not ONNX, or it is truncated; export it again",
        )
    known_opset = onnx.defs.onnx_opset_version()
    for imp in model.opset_import:
        if imp.domain in DEFAULT_DOMAINS and imp.version > known_opset:
            raise OnnxFileError(
                f"{path} uses ONNX opset {imp.version}, but the installed onnx {onnx.__version__} knows opsets up "
                f"to {known_opset}",
                "upgrade onnx (pip install -U onnx), or export the model with an older opset (--opset)",
            )
    if model.ir_version > onnx.IR_VERSION:
        raise OnnxFileError(
            f"{path} has ONNX IR version {model.ir_version}, newer than the installed onnx {onnx.__version__} "
            f"reads ({onnx.IR_VERSION})",
            "upgrade onnx (pip install -U onnx)",
        )
    big = _strip_weights(model.graph, path)
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise OnnxFileError(
            f"{path} is not a valid ONNX model: {first_line(exc)}",
            "the file may be truncated or corrupt; export it again",
        ) from None
    return model, big


def _strip_weights(graph: onnx.GraphProto, path: Path) -> dict[str, Stored]:
    """Move float initializers over ``SMALL_TENSOR`` elements to typed graph inputs (shape inference and
    the checker need only their shapes), checking on the way that each holds as many bytes as its shape
    says: a file cut short inside its weights is corrupt."""
    big: dict[str, Stored] = {}
    keep: list[TensorProto] = []
    for init in graph.initializer:
        st = Stored(init.name, tuple(init.dims), init.data_type)
        if not st.is_float or st.numel <= SMALL_TENSOR:
            keep.append(init)
            continue
        if init.data_location != TensorProto.EXTERNAL:
            itemsize = onnx.helper.tensor_dtype_to_np_dtype(init.data_type).itemsize
            held = _raw_bytes(init) // itemsize if init.HasField("raw_data") else _field_count(init)
            if held != st.numel:
                raise OnnxFileError(
                    f"{path} is corrupt: initializer {init.name!r} of shape {list(st.shape)} holds {held} values, "
                    f"not {st.numel}",
                    "the file is truncated or damaged; export it again",
                )
        big[init.name] = st
    if big:
        del graph.initializer[:]
        graph.initializer.extend(keep)
        present = {i.name for i in graph.input}
        for name, st in big.items():
            if name not in present:
                graph.input.append(onnx.helper.make_tensor_value_info(name, st.elem_type, st.shape))
    return big


def _raw_bytes(init: TensorProto) -> int:
    """Length of ``raw_data`` without copying it out of the message: the serialized size with and
    without the field, less the field's tag (1 byte) and its length varint. Clears ``raw_data``."""
    total = init.ByteSize()
    init.ClearField("raw_data")
    field = total - init.ByteSize() - 1
    for varint in range(1, 11):
        n = field - varint
        if n >= 0 and max(1, (n.bit_length() + 6) // 7) == varint:
            return n
    return -1


def _field_count(init: TensorProto) -> int:
    for f in ("float_data", "double_data", "int32_data"):  # float16/bfloat16 are stored in int32_data
        if len(getattr(init, f)):
            return len(getattr(init, f))
    return 0


def infer(
    model: onnx.ModelProto,
    big: dict[str, Stored],
    input_size: tuple[int, ...] | None = None,
    batch_size: int = 1,
    *,
    source: str = "the model",
) -> InferredGraph:
    """Shapes of every value of ``model`` (as ``read_onnx`` returns it, with its stripped weights ``big``)
    on an input of ``(batch_size, *input_size)``.

    ``input_size`` defaults to the graph input's own dimensions after the batch; it must be given when
    those are dynamic. ``model`` is changed in place (input shapes set, stale shapes cleared).
    """
    graph = model.graph
    opset = next((i.version for i in model.opset_import if i.domain in DEFAULT_DOMAINS), 1)
    stored: dict[str, Stored] = dict(big)
    for init in graph.initializer:
        stored[init.name] = _stored(init)
    inputs = [i.name for i in graph.input if i.name not in stored]
    if not inputs:
        raise OnnxShapeError(f"{source} has no graph input", "an ONNX model to analyse needs an input")
    declared = {i.name: _declared_batch(i) for i in graph.input if i.name in inputs}
    input_shapes = _set_input_shapes(graph, inputs, input_size, batch_size, source)
    notes = [
        f"{source} declares its input {name!r} at batch {n} (exported so); the figures are for batch {batch_size}, "
        f"as --batch-size says: give --batch-size {n} for the file's own"
        for name, n in declared.items()
        if n is not None and n != batch_size
    ]
    del graph.value_info[:]
    for out in graph.output:  # declared output shapes may belong to another input size
        if out.type.HasField("tensor_type"):
            out.type.tensor_type.ClearField("shape")
    for node in graph.node:  # Constant nodes are stored tensors too
        if node.op_type == "Constant" and node.domain in DEFAULT_DOMAINS and node.output:
            st = _constant(node)
            if st is not None:
                stored[node.output[0]] = st

    # onnx's inference cannot see through constant subgraphs that an unfolded export leaves (Unsqueeze
    # of a Constant feeding a Slice) nor through Shape of a static tensor: fold those in a copy, infer
    # again, until nothing more folds. The walk still sees the original nodes.
    work = onnx.ModelProto()
    work.CopyFrom(model)
    values = {n: st.value for n, st in stored.items() if st.value is not None}
    shapes: dict[str, tuple] = {}
    types: dict[str, int] = {}
    for attempt in range(_MAX_FOLD_PASSES):
        try:
            inferred = onnx.shape_inference.infer_shapes(work, check_type=True, strict_mode=True, data_prop=True)
        except Exception as exc:
            raise OnnxShapeError(
                f"shape inference failed for {source} on input "
                f"{', '.join(f'{n} {list(s)}' for n, s in input_shapes.items())}: {first_line(exc)}",
                "check --input-size and --batch-size: a graph exported with fixed shapes may only take its own",
            ) from None
        shapes, types = _value_shapes(inferred.graph)
        if attempt == _MAX_FOLD_PASSES - 1 or not _fold(work.graph, values, shapes):
            break
    for name, st in stored.items():
        shapes[name], types[name] = st.shape, st.elem_type
    return InferredGraph(
        model=model,
        opset=opset,
        stored=stored,
        shapes=shapes,
        types=types,
        inputs=inputs,
        input_shapes=input_shapes,
        outputs=[o.name for o in model.graph.output],
        notes=notes,
    )


def _declared_batch(value: onnx.ValueInfoProto) -> int | None:
    """The fixed first dimension the file gives an input, or None where it is dynamic or absent."""
    tt = value.type.tensor_type
    if not tt.HasField("shape") or not tt.shape.dim:
        return None
    first = tt.shape.dim[0]
    return first.dim_value if first.HasField("dim_value") and first.dim_value > 0 else None


def _value_shapes(g: onnx.GraphProto) -> tuple[dict[str, tuple], dict[str, int]]:
    shapes: dict[str, tuple] = {}
    types: dict[str, int] = {}
    for vi in [*g.input, *g.value_info, *g.output]:
        if not vi.type.HasField("tensor_type"):
            continue
        tt = vi.type.tensor_type
        types[vi.name] = tt.elem_type
        if tt.HasField("shape"):
            shapes[vi.name] = tuple(
                d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim
            )
    return shapes, types


def _static(dims) -> bool:
    return dims is not None and all(isinstance(d, int) for d in dims)


def _fold(graph: onnx.GraphProto, values: dict, shapes: dict) -> bool:
    """Replace nodes whose inputs are all known small constants (and ``Shape``/``Size`` of tensors with
    a static shape) by ``Constant`` nodes holding their value. Returns whether anything was folded."""
    import numpy as np
    from onnx.reference import ReferenceEvaluator

    folded = False
    nodes = []
    for node in graph.node:
        outs = [o for o in node.output if o]
        ins = [i for i in node.input if i]
        result: list[Any] | None = None
        foldable = (
            node.op_type != "Constant"
            and node.domain in DEFAULT_DOMAINS
            and outs
            and node.op_type not in _NO_FOLD
            and not any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)
        )
        if foldable and node.op_type in ("Shape", "Size") and ins and _static(shapes.get(ins[0])):
            dims = shapes[ins[0]]
            if node.op_type == "Size":
                result = [np.array(math.prod(dims), dtype=np.int64)]
            else:
                attrs = {a.name: a.i for a in node.attribute}
                start, end = attrs.get("start", 0), attrs.get("end", len(dims))
                result = [np.array(dims[slice(start, end)], dtype=np.int64)]
        elif foldable and node.op_type not in ("Shape", "Size") and all(i in values for i in ins):
            small_out = all(_static(shapes.get(o)) and math.prod(shapes[o]) <= SMALL_TENSOR for o in outs)
            if node.op_type not in _SIZED_BY_DATA or small_out:
                try:
                    # a list (not a dict) without intermediate=True: one value per output
                    result = cast(list[Any], ReferenceEvaluator(node).run(None, {i: values[i] for i in ins}))
                except Exception:
                    result = None
        if result is None or any(np.asarray(r).size > SMALL_TENSOR for r in result):
            nodes.append(node)
            continue
        for out, value in zip(node.output, result, strict=False):
            if out:
                value = np.asarray(value)
                values[out] = value
                nodes.append(
                    onnx.helper.make_node("Constant", [], [out], value=onnx.numpy_helper.from_array(value, out))
                )
        folded = True
    del graph.node[:]
    graph.node.extend(nodes)
    return folded


def _set_input_shapes(graph, inputs, input_size, batch_size, source) -> dict[str, tuple[int, ...]]:
    """Write the analysed input shape into the graph inputs; raise if a dimension stays unknown."""
    result: dict[str, tuple[int, ...]] = {}
    by_name = {i.name: i for i in graph.input}
    if input_size is not None and len(inputs) > 1:
        raise OnnxShapeError(
            f"{source} has {len(inputs)} inputs ({', '.join(inputs)}); --input-size sets only a single input",
            "export the model with fixed input shapes, or give it one input",
        )
    for name in inputs:
        tt = by_name[name].type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tt.shape.dim]
        if not tt.HasField("shape") or not dims:
            if input_size is None:
                raise OnnxShapeError(
                    f"the input {name!r} of {source} has no declared shape",
                    "give the input size with --input-size CxHxW",
                )
            dims = [None] * (len(input_size) + 1)
        if input_size is not None:
            if len(input_size) != len(dims) - 1:
                raise OnnxShapeError(
                    f"--input-size {'x'.join(map(str, input_size))} has {len(input_size)} dimensions, but the input "
                    f"{name!r} of {source} has {len(dims)} including the batch",
                    f"give {len(dims) - 1} sizes after the batch, e.g. {'x'.join(['N'] * (len(dims) - 1))}",
                )
            dims[1:] = input_size
        dims[0] = batch_size
        if any(d is None for d in dims):
            shown = ["?" if d is None else str(d) for d in dims]
            raise OnnxShapeError(
                f"the input {name!r} of {source} has dynamic dimensions [{', '.join(shown)}]",
                "give the input size with --input-size (e.g. 3x224x224); the batch comes from --batch-size",
            )
        fixed = [int(d) for d in dims if d is not None]  # all of them, after the check above
        shape = tt.shape
        del shape.dim[:]
        for size in fixed:
            shape.dim.add().dim_value = size
        result[name] = tuple(fixed)
    return result


def _stored(init: TensorProto) -> Stored:
    value = None
    if math.prod(init.dims) <= SMALL_TENSOR and init.data_location != TensorProto.EXTERNAL:
        try:
            value = onnx.numpy_helper.to_array(init)
        except Exception:
            value = None
    return Stored(init.name, tuple(init.dims), init.data_type, value)


def _constant(node: onnx.NodeProto) -> Stored | None:
    for attr in node.attribute:
        if attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR:
            st = _stored(attr.t)
            return Stored(node.output[0], st.shape, st.elem_type, st.value)
        if attr.name == "value_float":
            return Stored(node.output[0], (), TensorProto.FLOAT, None)
        if attr.name == "value_floats":
            return Stored(node.output[0], (len(attr.floats),), TensorProto.FLOAT, None)
    return None
