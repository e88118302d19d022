"""The result of an analysis: one ``LayerCost`` row per executed layer or op, and the ``CostReport``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import pandas as pd

Shape = tuple[int, ...]

#: The numeric columns that add up over rows.
TOTAL_FIELDS = ("params", "macs", "flops", "param_bytes", "activation_bytes", "int_macs")
#: Per-row training figures, totalled in training mode only.
TRAINING_FIELDS = ("backward_macs", "backward_flops", "optimizer_flops")


class OpCost(NamedTuple):
    """One op summed into a row: its name, archcost's cost of it, and what fvcore and torch's
    FlopCounterMode count for it by their conventions (the op's catalogue entry; None: not predictable).
    A named tuple: one is made per op call, and the crawler's time matters."""

    op: str
    macs: int
    flops: int
    fvcore: int | None = 0
    flop_counter: int | None = 0
    outputs: int = 0  # elements of the op's (first) output


@dataclass(frozen=True)
class LayerCost:
    """One executed leaf-module call, or one op run directly inside a non-leaf module's ``forward``.

    ``name`` is the module path (``layer1.0.conv1``); an op row is ``<module path>/<op>``
    (``layer1.0/add``). A module called again gets ``#2``, ``#3`` after its name. ``sources`` are the
    indices of the rows whose outputs this row consumed (-1: the model input), in execution order.
    ``activation_bytes`` ("Output mem") is the new storage the row's outputs occupy; a view or an in-place
    result allocates none and counts 0 there, its bytes in ``view_bytes``.
    """

    name: str
    type: str
    module: str
    kind: str  # "module" or "op"
    depth: int
    input_shapes: tuple[Shape, ...]
    output_shape: Shape | tuple[Shape, ...]
    params: int
    macs: int
    flops: int
    param_bytes: int
    activation_bytes: int
    supported: bool = True
    ops: tuple[str, ...] = ()
    sources: tuple[int, ...] = ()
    alias_of: int | None = None  # the output shares memory with this row's output (-1: the input)
    #: bytes of outputs on memory that existed before the row ran (views, in-place results): not new memory,
    #: so not in ``activation_bytes`` (which counts the storage the row allocated)
    view_bytes: int = 0
    rf: tuple[float, ...] | None = None  # receptive field size per spatial axis, in input pixels
    rf_stride: tuple[float, ...] | None = None  # jump: input pixels between neighbouring units
    rf_start: tuple[float, ...] | None = None  # centre of the first unit's field, input pixel coordinates
    rf_global: bool = False  # every unit sees the whole input map
    rf_misaligned: bool = False  # merged paths whose fields are not aligned
    rf_unknown: str | None = None  # the layer whose geometry stopped the derivation
    #: where the fields repeat over more than one unit (after a transposed conv or an upsampling): per axis
    #: ``(period, ((lo, hi) input pixels seen by units 0 .. period - 1))``, unit ``u + period`` seeing
    #: ``period * rf_stride`` pixels further; None where every unit's field is ``rf`` wide around
    #: ``rf_start + u * rf_stride`` (left out of the JSON then)
    rf_pattern: tuple | None = None
    # training mode only (archcost.cost.training); None in an inference analysis and left out of its JSON
    backward_macs: int | None = None  # gradient of the input where needed + gradient of the weights
    backward_flops: int | None = None
    optimizer_flops: int | None = None  # one optimizer step on the parameters this row counted
    #: of ``macs``, those a quantized kernel runs in integer arithmetic (int8 x int8 into int32); the float
    #: MACs are ``macs - int_macs``
    int_macs: int = 0
    #: bit operations, MACs x weight bits x activation bits (``analyze(weight_bits=, act_bits=)``); None when
    #: no bit widths were asked for (left out of the row's JSON then)
    bops: int | None = None
    #: predicted milliseconds of this row with a device profile (``archcost.predict.annotate.with_prediction``);
    #: None when no profile was given (left out of the row's JSON then)
    predicted_ms: float | None = None
    #: the kind whose rule priced the row where the profile has no data for the row's own kind (the nearest
    #: rule); None where the row's own kind priced it, or nothing was predicted
    predicted_rule: str | None = None
    #: of ``params``, those with ``requires_grad=True`` (the rest are frozen); None where unknown (an ONNX graph)
    trainable_params: int | None = None
    #: the ops summed into the row, one ``OpCost`` per call (empty where a module formula costs the layer
    #: whole, or for an ONNX graph); not in the row's JSON
    parts: tuple[OpCost, ...] = field(default=(), repr=False)

    @property
    def frozen_params(self) -> int | None:
        """Parameters of this row with ``requires_grad=False``; None where unknown."""
        return None if self.trainable_params is None else self.params - self.trainable_params

    def to_dict(self) -> dict:
        d = asdict(self)
        del d["parts"]
        for key in (*TRAINING_FIELDS, "trainable_params", "rf_pattern", "bops", "predicted_ms", "predicted_rule"):
            if d[key] is None:
                del d[key]
        d["input_shapes"] = [list(s) for s in self.input_shapes]
        d["output_shape"] = listify(self.output_shape)
        d["ops"] = list(self.ops)
        d["sources"] = list(self.sources)
        for key in ("rf", "rf_stride", "rf_start"):
            d[key] = _per_axis(getattr(self, key))
        return d


def _per_axis(values: tuple[float, ...] | None):
    """One number where every axis agrees, else a list per axis; whole numbers as ints."""
    if values is None:
        return None
    clean = [int(v) if float(v).is_integer() else v for v in values]
    return clean[0] if len(set(clean)) == 1 else clean


def listify(value):
    """Tuples (shapes, nested) as lists, as JSON writes them."""
    return [listify(v) for v in value] if isinstance(value, tuple) else value


@dataclass(frozen=True)
class Unsupported:
    """An op or layer archcost could not cost: it counts as 0 in the totals and is shown to the user."""

    layer: str
    op: str
    reason: str


#: format -> the function that presents a whole report in it ("text": ``str(report)``, "html": notebooks).
#: Presentation lives downstream in report/ (``archcost.report.table`` registers both when imported, and
#: ``import archcost``'s public API imports it), so this module imports nothing of it.
PRESENTERS: dict[str, Callable[[CostReport], str]] = {}


def presents(fmt: str) -> Callable[[Callable[[CostReport], str]], Callable[[CostReport], str]]:
    """Register the decorated function as the presenter of ``fmt``; a second one for the same format
    raises (the same function again, as a module reload registers it, replaces it)."""

    def register(fn: Callable[[CostReport], str]) -> Callable[[CostReport], str]:
        known = PRESENTERS.get(fmt)
        if known is not None and (known.__module__, known.__qualname__) != (fn.__module__, fn.__qualname__):
            raise ValueError(f"a presenter for {fmt!r} is already registered ({PRESENTERS[fmt].__qualname__})")
        PRESENTERS[fmt] = fn
        return fn

    return register


@dataclass(repr=False)
class CostReport:
    """Per-layer costs of one model on one input, with totals and roll-ups.

    ``str(report)`` is the text table with totals and footer (what ``archcost table`` prints); in a notebook
    the report shows as an HTML table (``_repr_html_``); ``repr`` is one line. Other columns, depths and
    formats: ``archcost.report.table.render`` (which registers the text and HTML presenters, ``presents``).
    """

    model: str
    input_shape: Shape
    dtype: str
    layers: list[LayerCost]
    output_shape: Shape | tuple[Shape, ...] = ()
    unsupported: list[Unsupported] = field(default_factory=list)
    training: bool = False
    #: peak bytes of activations alive at once in the forward pass (input included), from the tensors'
    #: real lifetimes in the forward code; None where unknown (e.g. a graph file)
    peak_activation_bytes: int | None = None
    peak_at: str = ""
    #: every input forward received: ``{"name": keyword or None, "shape": [batch, ...], "dtype": "float32"}``
    input_shapes: list[dict] = field(default_factory=list)
    #: "meta" (shapes only) or "cpu" (real tensors: the forward needed values), and why it ran on the CPU
    analysed_on: str = "meta"
    analysed_on_because: str | None = None
    #: training mode only (archcost.cost.training): the optimizer costed, the peak bytes of one training
    #: step and its parts; None in an inference analysis and left out of its JSON
    optimizer: str | None = None
    training_peak_bytes: int | None = None
    training_memory: dict | None = None
    #: what a reader of the figures must know (e.g. an ONNX file's folded batch norm); in JSON when any
    notes: list[str] = field(default_factory=list)
    #: bytes of the parameters, buffers and packed quantized weights (with their scales and zero points) by
    #: the dtype each is stored in (``{"float32": 400, "qint8": 5000}``); empty where unknown (a graph file)
    param_bytes_by_dtype: dict[str, int] = field(default_factory=dict)
    #: every dtype the analysis saw: parameters, buffers, packed weights, inputs, outputs of rows
    dtypes_seen: list[str] = field(default_factory=list)
    #: the what-if precision of ``analyze(weight_bits=, act_bits=)``: ``{"weight_bits", "act_bits",
    #: "first_last_bits"}``; None when not asked for
    precision: dict | None = None
    #: with a device profile (``archcost.predict.annotate.with_prediction``): the profile's identity, the
    #: predicted total in milliseconds (``total_ms``) and the kinds priced by a nearer rule (``fallbacks``)
    prediction: dict | None = None

    def __str__(self) -> str:
        present = PRESENTERS.get("text")
        return present(self) if present else repr(self)

    def _repr_html_(self) -> str | None:
        """The table as HTML, for Jupyter and IPython's rich display (None: IPython shows ``repr``)."""
        present = PRESENTERS.get("html")
        return present(self) if present else None

    def __repr__(self) -> str:
        t = self.totals
        shape = "x".join(map(str, self.input_shape))
        return (
            f"<CostReport {self.model}: {len(self.layers)} rows, {t['params']:,} params, {t['macs']:,} MACs, "
            f"{t['flops']:,} FLOPs, input {shape} {self.dtype}{', training' if self.training else ''}"
            f"{f', {len(self.unsupported)} ops not costed' if self.unsupported else ''}>"
        )

    @property
    def memory(self):
        """Parameter, inference and rough training memory at the report's batch and dtype
        (``archcost.cost.memory.estimate``, Adam); ``--mode train`` follows a training step itself."""
        from archcost.cost.memory import estimate

        return estimate(self, "adam")

    @property
    def totals(self) -> dict[str, int]:
        totals = {f: sum(getattr(r, f) for r in self.layers) for f in TOTAL_FIELDS}
        if any(r.bops is not None for r in self.layers):
            totals["bops"] = sum(r.bops or 0 for r in self.layers)
        if self.optimizer is not None:
            totals.update({f: sum(getattr(r, f) or 0 for r in self.layers) for f in TRAINING_FIELDS})
        return totals

    def to_dict(self) -> dict:
        """The JSON document of ``archcost table --format json`` (keys sorted when dumped)."""
        return {
            "model": self.model,
            **({"input_shape": list(self.input_shape)} if len(self.input_shapes) <= 1 else {}),
            "input_shapes": self.input_shapes or [{"name": None, "shape": list(self.input_shape), "dtype": self.dtype}],
            "analysed_on": self.analysed_on,
            "analysed_on_because": self.analysed_on_because,
            "dtype": self.dtype,
            "training": self.training,
            "output_shape": listify(self.output_shape),
            "layers": [r.to_dict() for r in self.layers],
            "totals": self.totals,
            "unsupported": [asdict(u) for u in self.unsupported],
            "peak_activation_bytes": self.peak_activation_bytes,
            **({"notes": self.notes} if self.notes else {}),
            **({"param_bytes_by_dtype": self.param_bytes_by_dtype} if self.param_bytes_by_dtype else {}),
            **({"dtypes_seen": self.dtypes_seen} if self.dtypes_seen else {}),
            **({"precision": self.precision} if self.precision is not None else {}),
            **({"prediction": self.prediction} if self.prediction is not None else {}),
        } | (
            {
                "mode": "train",
                "optimizer": self.optimizer,
                "training_peak_bytes": self.training_peak_bytes,
                "training_memory": self.training_memory,
            }
            if self.optimizer is not None
            else {}
        )

    def to_dataframe(self) -> pd.DataFrame:
        """One row per layer; numeric columns stay numeric."""
        import pandas as pd

        return pd.DataFrame([r.to_dict() for r in self.layers])

    def rollup(self, depth: int) -> pd.DataFrame:
        """Totals per module at ``depth`` levels of the module tree (depth 1: the model's children), as a
        DataFrame of ``rollup_rows``."""
        import pandas as pd

        return pd.DataFrame(self.rollup_rows(depth))

    def rollup_rows(self, depth: int) -> list[dict]:
        """Totals per module at ``depth`` levels of the module tree (depth 1: the model's children).

        Rows deeper than ``depth`` are added into their ancestor at that depth; ops run in the model's
        own ``forward`` stay under their own name. Keys: name, layers, the ``TOTAL_FIELDS``,
        trainable_params (None where a row's is unknown) and last_row (the index of the group's last row).
        Raises ``ValueError`` for a depth below 1.
        """
        if depth < 1:
            raise ValueError("depth must be at least 1")
        groups: dict[str, dict] = {}
        for index, r in enumerate(self.layers):
            parts = r.module.split(".") if r.module else []
            if len(parts) >= depth:
                key = ".".join(parts[:depth])
            else:  # an op run in a shallower module's forward keeps its own row
                key = r.name.split("#")[0]
            empty = {"name": key, "layers": 0, **dict.fromkeys(TOTAL_FIELDS, 0), "trainable_params": 0}
            g = groups.setdefault(key, empty)
            g["layers"] += 1
            g["last_row"] = index  # the group's output is its last row's
            for f in TOTAL_FIELDS:
                g[f] += getattr(r, f)
            if r.bops is not None:
                g["bops"] = g.get("bops", 0) + r.bops
            if r.predicted_ms is not None:
                g["predicted_ms"] = g.get("predicted_ms", 0.0) + r.predicted_ms
            known = g["trainable_params"] is not None and r.trainable_params is not None
            g["trainable_params"] = g["trainable_params"] + r.trainable_params if known else None  # None: unknown
        return list(groups.values())

    def by_operator(self) -> dict[str, OperatorTotal]:
        """Calls, MACs and FLOPs per op over the whole model (fvcore's ``by_operator``, torch's
        ``get_flop_counts()["Global"]``), costliest first: each row's ops (``LayerCost.parts``), or the row
        itself under its type where a module formula costs it whole. Ops archcost could not cost are
        listed with ``supported=False``."""
        totals: dict[str, list] = {}
        unsupported = {u.op for u in self.unsupported}
        for r in self.layers:
            parts = r.parts or (OpCost(r.type, r.macs, r.flops),)
            for p in parts:
                t = totals.setdefault(p.op, [0, 0, 0])
                t[0] += 1
                t[1] += p.macs
                t[2] += p.flops
        ordered = sorted(totals.items(), key=lambda kv: (-kv[1][2], -kv[1][1], kv[0]))
        return {op: OperatorTotal(op, c, m, f, op not in unsupported) for op, (c, m, f) in ordered}


@dataclass(frozen=True)
class OperatorTotal:
    """One op over a whole model (``CostReport.by_operator``)."""

    op: str
    calls: int
    macs: int
    flops: int
    supported: bool = True
