"""``analyze_onnx``: one ``LayerCost`` row per ONNX node that works on activations, from the graph alone.

Shapes come from ``onnx.shape_inference``; costs from ``archcost.onnx_graph.ops``, which reuses the
torch analysis's formulas, so a zoo model and its exported file give the same totals.

What is a row, and what is a parameter:

* Values derived from the graph input are activations. A node that reads an activation is a row,
  named by the node's name; its ``sources`` are the rows that produced those activations (-1: a graph
  input). ``Shape``/``Size`` read only metadata (torch's ``x.size()``), so they are not rows and their
  outputs are constants, like every value computed from constants and weights alone.
* A parameter is a stored float tensor (initializer or ``Constant``) that reaches a row through a
  parameter input (``ops.is_param_slot``), directly or through nodes on weights only (a reshape, a
  transpose, a weight-norm expression): counted once, at the first row that reads it. Batch norm's
  running mean and variance are buffers, not parameters, as in torch.
* The TorchScript exporter stores identical initializers once and gives each other user an ``Identity``
  of it (its de-duplication pass: every batch norm of an untrained model has weight 1 and bias 0). Each
  such ``Identity`` output is counted as a parameter of its own, as it was in the model; a weight the
  model really shares is one tensor read by several nodes and counts once.
* A float initializer that no node reads is listed as one ``unused parameters`` row.
"""

from __future__ import annotations

import math
from pathlib import Path

import onnx

from archcost.cost._registry import Cost
from archcost.cost.memory import liveness_peak
from archcost.cost.receptive import propagate, spatial, with_field
from archcost.cost.record import CostReport, LayerCost, Unsupported
from archcost.errors import InputError
from archcost.onnx_graph.errors import OnnxShapeError
from archcost.onnx_graph.ops import ONNX_COSTS, OnnxNode, is_param_slot
from archcost.onnx_graph.read import DEFAULT_DOMAINS, FLOAT_TYPES, InferredGraph, infer, read_onnx
from archcost.onnx_graph.receptive import node_step

#: Ops that read only a tensor's metadata, not its values.
METADATA_OPS = frozenset({"Shape", "Size"})


def analyze_onnx(
    path: str | Path,
    input_size: tuple[int, ...] | None = None,
    batch_size: int = 1,
    dtype: str = "float32",
    name: str | None = None,
) -> CostReport:
    """Per-node params, MACs, FLOPs and bytes of the ONNX model in ``path`` on an input of
    ``(batch_size, *input_size)`` (``input_size`` defaults to the graph input's own, and must be given
    when it is dynamic). Bytes are at ``dtype`` for floating-point tensors, as in ``archcost.analyze``.
    """
    from archcost.units import DTYPES, dtype_bytes

    key = str(dtype).removeprefix("torch.")
    if key not in DTYPES:
        raise InputError(f"unknown dtype {dtype!r}", f"use one of {', '.join(DTYPES)}")
    if batch_size < 1 or (input_size is not None and any(int(s) < 1 for s in input_size)):
        raise InputError(
            f"sizes must be positive, got batch {batch_size} and input {input_size}",
            "give a batch size >= 1 and an input size like 3x224x224",
        )
    path = Path(path)
    model, big = read_onnx(path)
    graph = infer(model, big, tuple(input_size) if input_size is not None else None, batch_size, source=str(path))
    first = graph.input_shapes[graph.inputs[0]]
    walk = _Walk(graph, dtype_bytes(DTYPES[key]))
    walk.axes = len(first) - 2
    walk.run()
    fields = propagate([r.sources for r in walk.rows], walk.steps, [r.name for r in walk.rows], walk.axes)
    walk.rows = [with_field(r, f) for r, f in zip(walk.rows, fields, strict=True)]
    outs = [walk.shape(o) for o in graph.outputs]
    report = CostReport(
        model=name or path.stem,
        input_shape=first,
        dtype=key,
        layers=walk.rows,
        output_shape=outs[0] if len(outs) == 1 else tuple(outs),
        unsupported=walk.unsupported,
        notes=graph.notes + folded_batch_norm_note(graph.model),
    )
    # A graph runtime frees a tensor after its last consumer: the rows' liveness is the graph's peak.
    report.peak_activation_bytes, report.peak_at = liveness_peak(report)
    return report


def folded_batch_norm_note(model: onnx.ModelProto) -> list[str]:
    """A note when batch norm was most likely folded into the convolutions at export: Conv weights that
    are not the model's parameters but constants the exporter computed (torch's exporter names those
    ``onnx::Conv_N``; parameters keep their state-dict names) in a graph without BatchNormalization."""
    nodes = model.graph.node
    if any(n.op_type == "BatchNormalization" for n in nodes):
        return []
    computed = [n for n in nodes if n.op_type == "Conv" and len(n.input) > 1 and n.input[1].startswith("onnx::")]
    if not computed:
        return []
    return [
        f"{len(computed)} convolution(s) have weights computed at export ({computed[0].input[1]}, ...) and the "
        "graph has no BatchNormalization: batch norm was most likely folded into them (an export with constant "
        "folding), so params and FLOPs are the deployment graph's, fewer than the torch model's"
    ]


class _Walk:
    """Turns the nodes of one inferred graph into rows, in graph (topological) order."""

    def __init__(self, graph: InferredGraph, float_bytes: int) -> None:
        self.steps: list[list] = []  # per row: receptive-field geometry
        self.axes = 2
        self.g = graph
        self.float_bytes = float_bytes
        self.rows: list[LayerCost] = []
        self.unsupported: list[Unsupported] = []
        self.producer: dict[str, int] = {name: -1 for name in graph.inputs}
        # value name -> the parameters it derives from (parameter key -> element count)
        self.origins: dict[str, dict[str, int]] = {}
        self.counted: set[str] = set()
        self.names: dict[str, int] = {}
        for name, st in graph.stored.items():
            self.origins[name] = {name: st.numel} if st.is_float else {}

    # -- shapes and bytes -----------------------------------------------------------------------
    def shape(self, name: str, node: onnx.NodeProto | None = None) -> tuple[int, ...]:
        dims = self.g.shapes.get(name)
        static = _static_dims(dims)
        if dims is None or static is None:
            where = f" (output of node {node.name or node.op_type!r}, {node.op_type})" if node is not None else ""
            shown = "unknown rank" if dims is None else str([d if isinstance(d, int) else "?" for d in dims])
            raise OnnxShapeError(
                f"the shape of {name!r}{where} could not be inferred: {shown}",
                "shape inference stops at ops it does not know (custom domains) and at data-dependent "
                "shapes; give a static --input-size, or export the model with fixed shapes",
            )
        return static

    def nbytes(self, name: str, shape: tuple[int, ...]) -> int:
        elem = self.g.types.get(name, onnx.TensorProto.FLOAT)
        if elem in FLOAT_TYPES:
            size = self.float_bytes
        else:
            try:
                size = onnx.helper.tensor_dtype_to_np_dtype(elem).itemsize
            except Exception:
                size = 0
        return math.prod(shape) * size

    # -- the walk -------------------------------------------------------------------------------
    def run(self) -> None:
        referenced: set[str] = set(self.g.outputs)
        for node in self.g.model.graph.node:
            explicit = list(node.input)
            implicit = [n for n in _outer_names(node) if n not in explicit]
            referenced.update(explicit, implicit)
            acts = [n for n in [*explicit, *implicit] if n in self.producer]
            if node.op_type in METADATA_OPS and node.domain in DEFAULT_DOMAINS:
                self._follow_weights(node)
            elif acts:
                self._row(node, explicit, acts, *self._cost(node, explicit))
            elif any(self.origins.get(n) for n in explicit) and node.op_type != "Identity":
                # Work on parameters only (LeNet's ||w||^2 at every forward): a row if it costs, as in torch.
                try:
                    out_shapes, cost, formula = self._cost(node, explicit)
                except OnnxShapeError:
                    cost = None
                if cost is not None and (cost.macs or cost.flops):
                    self._row(node, explicit, [], out_shapes, cost, formula)
                else:
                    self._follow_weights(node)
            else:
                self._follow_weights(node)
        unused = {n: st for n, st in self.g.stored.items() if st.is_float and n not in referenced}
        if unused:
            params = sum(st.numel for st in unused.values())
            self.steps.append([])
            self.rows.append(
                LayerCost(
                    name="(unused initializers)",
                    type="unused parameters",
                    module="",
                    kind="module",
                    depth=0,
                    input_shapes=(),
                    output_shape=(),
                    params=params,
                    macs=0,
                    flops=0,
                    param_bytes=params * self.float_bytes,
                    activation_bytes=0,
                )
            )

    def _follow_weights(self, node: onnx.NodeProto) -> None:
        """A node on constants and weights only: no row; its outputs carry the parameters they derive
        from. An ``Identity`` of a stored float tensor is an exporter alias: a parameter of its own."""
        inputs = [n for n in node.input if n]
        if node.op_type == "Identity" and len(inputs) == 1 and inputs[0] in self.g.stored:
            st = self.g.stored[inputs[0]]
            for out in node.output:
                self.origins[out] = {out: st.numel} if st.is_float else {}
            return
        if node.op_type in METADATA_OPS:
            merged: dict[str, int] = {}
        else:
            merged = {k: v for n in inputs for k, v in self.origins.get(n, {}).items()}
        for out in node.output:
            if out and out not in self.g.stored:  # a Constant's output is already a stored tensor
                self.origins[out] = merged

    def _cost(self, node: onnx.NodeProto, explicit: list[str]):
        """(output shapes, cost or None if unsupported, formula) of one node."""
        op = _op_key(node)
        outputs = [o for o in node.output if o]
        formula = ONNX_COSTS.get(op)
        float_out = any(self.g.types.get(o, onnx.TensorProto.FLOAT) in FLOAT_TYPES for o in outputs)
        if formula is None and float_out:
            try:  # unsupported: shown with whatever shape is known, costing 0
                return tuple(self.shape(o, node) for o in outputs), None, None
            except OnnxShapeError:
                return tuple(() for _ in outputs), None, None
        out_shapes = tuple(self.shape(o, node) for o in outputs)
        if not float_out or formula is None:  # no formula here means no float output (returned above)
            return out_shapes, Cost(), formula  # integer bookkeeping (indices, masks): not floating-point work
        info = OnnxNode(
            name=node.name or node.op_type,
            op=op,
            attrs={a.name: onnx.helper.get_attribute_value(a) for a in node.attribute},
            inputs=tuple(self.shape(n) if n else None for n in explicit),
            outputs=out_shapes,
            values=tuple(self.g.stored[n].value if n in self.g.stored else None for n in explicit),
            opset=self.g.opset,
        )
        return out_shapes, formula(info), formula

    def _row(self, node: onnx.NodeProto, explicit: list[str], acts: list[str], out_shapes, cost, formula) -> None:
        op = _op_key(node)
        base = node.name or f"{node.op_type}_{len(self.rows)}"
        self.names[base] = self.names.get(base, 0) + 1
        name = base if self.names[base] == 1 else f"{base}#{self.names[base]}"
        outputs = [o for o in node.output if o]
        params = self._params(node.op_type, explicit)
        index = len(self.rows)
        module = _module_path(node.name)
        self.steps.append(self._step(node, explicit, acts, out_shapes))
        self.rows.append(
            LayerCost(
                name=name,
                type=node.op_type,
                module=module,
                kind="op",
                depth=(module.count(".") + 1 if module else 0) + 1,
                input_shapes=tuple(self.shape(n) for n in acts),
                output_shape=out_shapes[0] if len(out_shapes) == 1 else out_shapes,
                params=sum(params.values()),
                macs=cost.macs if cost else 0,
                flops=cost.flops if cost else 0,
                param_bytes=sum(params.values()) * self.float_bytes,
                activation_bytes=sum(self.nbytes(o, s) for o, s in zip(outputs, out_shapes, strict=True)),
                supported=cost is not None,
                ops=(op,),
                sources=tuple(dict.fromkeys(self.producer[n] for n in acts)),
            )
        )
        if cost is None:
            reason = f"no cost formula for ONNX op {op!r}" if formula is None else f"{op} with these settings"
            self.unsupported.append(Unsupported(name, op, reason))
        for o in outputs:
            self.producer[o] = index

    def _step(self, node: onnx.NodeProto, explicit: list[str], acts: list[str], out_shapes) -> list:
        """The node's receptive-field geometry, as ``(step, input map size)``."""
        if not acts or not out_shapes or not out_shapes[0]:
            return []
        shape = self.shape(acts[0])
        values = [self._constant(n) for n in explicit]
        step = node_step(node, shape, tuple(out_shapes[0]), self.axes, values)
        return [(step, spatial(shape, self.axes))]

    def _constant(self, name: str, depth: int = 0):
        """The value of a small constant input: stored, or a Constant seen through Unsqueeze/Squeeze/
        Cast/Identity/Reshape (how the TorchScript exporter writes slice bounds); None otherwise."""
        import numpy as np

        if name in self.g.stored:
            return self.g.stored[name].value
        if not hasattr(self, "_made_by"):
            self._made_by = {o: n for n in self.g.model.graph.node for o in n.output}
        node = self._made_by.get(name)
        if node is None or depth > 4:
            return None
        if node.op_type == "Constant":
            attr = next((a for a in node.attribute if a.name == "value"), None)
            return onnx.numpy_helper.to_array(attr.t) if attr is not None else None
        if node.op_type in ("Unsqueeze", "Squeeze", "Cast", "Identity", "Reshape"):
            value = self._constant(node.input[0], depth + 1)
            return None if value is None else np.asarray(value).reshape(-1)
        return None

    def _params(self, op: str, explicit: list[str]) -> dict[str, int]:
        """Parameters this row reads for the first time: key -> element count."""
        found: dict[str, int] = {}
        for slot, value in enumerate(explicit):
            if not value or value in self.producer:
                continue
            dims = _static_dims(self.g.shapes.get(value))
            elements = math.prod(dims) if dims is not None else -1
            if not is_param_slot(op, slot, elements):
                continue
            for k, n in self.origins.get(value, {}).items():
                if k not in self.counted:
                    found[k] = n
        self.counted.update(found)
        return found


def _static_dims(dims: tuple[int | str | None, ...] | None) -> tuple[int, ...] | None:
    """``dims`` when every dimension is a known integer, else None."""
    if dims is None:
        return None
    known = tuple(d for d in dims if isinstance(d, int))
    return known if len(known) == len(dims) else None


def _op_key(node: onnx.NodeProto) -> str:
    return node.op_type if node.domain in DEFAULT_DOMAINS else f"{node.domain}.{node.op_type}"


def _module_path(node_name: str) -> str:
    """The module path in a node name: the TorchScript exporter's scoped name ``/layer1/layer1.0/conv1/Conv``
    gives ``layer1.0.conv1`` (the torch module path); any ``a/b/op`` name gives ``a.b``."""
    parts = [p for p in node_name.split("/") if p][:-1]
    path = ""
    for p in parts:
        path = p if not path or p.startswith(path + ".") else f"{path}.{p}"
    return path


def _outer_names(node: onnx.NodeProto) -> list[str]:
    """Values of the enclosing graph that the subgraphs of ``If``/``Loop``/``Scan`` read."""
    names: list[str] = []
    for attr in node.attribute:
        graphs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
        for sub in graphs:
            local = {i.name for i in sub.input} | {i.name for i in sub.initializer}
            for inner in sub.node:
                for n in [*inner.input, *_outer_names(inner)]:
                    if n and n not in local and n not in names:
                        names.append(n)
                local.update(inner.output)
    return names
