"""Predicted latency: each cost-table row priced by its kind's rule in a device profile, summed per batch size.

The idea is nn-Meter's (Zhang et al., "nn-Meter: towards accurate latency prediction of deep-learning model
inference on diverse edge devices", MobiSys 2021): predict per kernel, from the kernel's kind and
configuration, and add the kernels up. Here a kernel is one row of ``archcost.analyze``: its kind
(``kinds.kind_of``), FLOPs and bytes (``kinds.row_features``) go into the kind's fitted roofline-form rule
(``fit.Rule``, Williams et al. 2009). A kind the profile has no data for is priced by the nearest kind that it
has (``kinds.rule_chain``) and the row says so (``PredictedLayer.fallback``).

What the sum leaves out: the Python between layers and whatever the cost table has no row for; kernels
that a real run fuses or overlaps. ``benchmarks/predict_check.py`` (issue 28) is where the error against
measured latency is to be stated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from archcost.errors import InputError
from archcost.predict.kinds import kind_of, row_chain_for, row_dispatches, row_features, row_large_bytes
from archcost.predict.profile import DeviceProfile, KindRule, ProfileError, check_matches


@dataclass(frozen=True)
class PredictedLayer:
    """One row's predicted latency at one batch size.

    ``kind``: what the row is (``kinds.KINDS``); ``rule``: the kind whose rule priced it (the same unless the
    profile has no data for ``kind``: then ``fallback`` is True); ``flops``, ``bytes``: the features the rule
    read; ``predicted_ms``: milliseconds of one forward of this row; ``bound``: the rule's dominant term
    (``compute``, ``memory`` or ``overhead``); ``dispatches``: the row's kernel-running ops, each paying the
    rule's overhead (``kinds.row_dispatches``); ``large_bytes``: the bytes of its tensors of
    ``kinds.LARGE_TENSOR_BYTES`` or more (``kinds.row_large_bytes``).
    """

    name: str
    type: str
    kind: str
    rule: str
    fallback: bool
    batch_size: int
    flops: float
    bytes: float
    predicted_ms: float
    bound: str
    dispatches: int = 1
    large_bytes: float = 0.0

    def to_dict(self) -> dict:
        return dict(vars(self))


@dataclass(frozen=True)
class Prediction:
    """A model's predicted latency at each batch size: the rows of every batch size (``layers``, in batch order
    then row order), the per-batch totals in milliseconds (the sum of that batch's rows) and what the profile
    checks warned about."""

    model: str
    dtype: str
    batch_sizes: tuple[int, ...]
    layers: tuple[PredictedLayer, ...]
    totals_ms: dict[int, float]
    warnings: tuple[str, ...] = ()
    profile: DeviceProfile | None = field(default=None, compare=False, repr=False)

    def rows(self, batch_size: int) -> list[PredictedLayer]:
        """The rows at ``batch_size``."""
        return [r for r in self.layers if r.batch_size == batch_size]

    @property
    def fallbacks(self) -> dict[str, str]:
        """Kind -> the kind that priced it, for every kind the profile had no data for."""
        return {r.kind: r.rule for r in self.layers if r.fallback}

    def to_dict(self) -> dict:
        """The JSON document of ``archcost predict --format json``."""
        p = self.profile
        return {
            "model": self.model,
            "dtype": self.dtype,
            "batch_sizes": list(self.batch_sizes),
            "totals_ms": {str(b): ms for b, ms in self.totals_ms.items()},
            "layers": [r.to_dict() for r in self.layers],
            "fallbacks": self.fallbacks,
            "warnings": list(self.warnings),
            "device_profile": None
            if p is None
            else {
                "path": p.path,
                "device": p.device,
                "device_name": p.device_name,
                "threads": p.threads,
                "dtype": p.dtype,
                "torch": p.torch_version,
                "created": p.created,
                "mode": p.mode,
                "schema_version": p.schema_version,
            },
        }


def _rule_for(profile: DeviceProfile, chain: Sequence[str]) -> tuple[str, KindRule]:
    for kind in chain:
        if kind in profile.kinds:
            return kind, profile.kinds[kind]
    # nothing near: the kind with the least overhead per call (the profile prices something, and says so)
    kind = min(profile.kinds, key=lambda k: (profile.kinds[k].rule.overhead_s, k))
    return kind, profile.kinds[kind]


def predict_report(report: Any, profile: DeviceProfile, batch_size: int | None = None) -> list[PredictedLayer]:
    """Predicted rows of one ``CostReport`` with ``profile``. ``batch_size``: what the rows record (default the
    first input's leading dimension). Raises ``ProfileMismatchError`` when the report's dtype is not the
    profile's, ``ProfileError`` for a profile with no kinds."""
    from archcost.units import DTYPES, dtype_bytes

    if not profile.kinds:
        raise ProfileError(
            f"device profile {profile.path or ''} has no fitted kinds".replace("  ", " "), "calibrate again"
        )
    check_matches(profile, dtype=report.dtype)
    if report.dtype not in DTYPES:
        raise InputError(f"no element size known for dtype {report.dtype!r}", f"use one of {', '.join(DTYPES)}")
    element = dtype_bytes(DTYPES[report.dtype])
    batch = batch_size if batch_size is not None else (report.input_shape[0] if report.input_shape else 1)
    out = []
    for row in report.layers:
        kind = kind_of(row)
        rule_kind, entry = _rule_for(profile, row_chain_for(kind, row))
        flops, nbytes = row_features(row, element)
        dispatches = row_dispatches(row)
        large = row_large_bytes(row, element)
        seconds = entry.rule.seconds(flops, nbytes, dispatches, large)
        out.append(
            PredictedLayer(
                name=row.name,
                type=row.type,
                kind=kind,
                rule=rule_kind,
                fallback=rule_kind != kind,
                batch_size=int(batch),
                flops=flops,
                bytes=nbytes,
                predicted_ms=seconds * 1e3,
                bound=entry.rule.bound(flops, nbytes, dispatches, large),
                dispatches=dispatches,
                large_bytes=large,
            )
        )
    return out


def predict(
    subject: Any,
    profile: DeviceProfile,
    batch_sizes: Sequence[int] | None = None,
    *,
    device: str = "auto",
) -> Prediction:
    """Predicted per-layer and total latency of ``subject`` with a device ``profile``.

    ``subject``: a ``CostReport`` (predicted at its own batch size; ``batch_sizes`` must be None or that one),
    or anything ``archcost.analyze`` takes as a model (a ``Workload``, an ``nn.Module``, a zoo name), analysed
    once per batch size in ``batch_sizes`` (default the workload's) on ``device`` (the analysis's: auto, meta
    or cpu). Returns a ``Prediction`` (milliseconds per row and per batch size).

    Raises ``ProfileMismatchError`` (an ``InputError``) when the analysis dtype is not the profile's, and what
    ``analyze`` raises for the model.
    """
    from archcost.cost.record import CostReport

    if isinstance(subject, CostReport):
        own = subject.input_shape[0] if subject.input_shape else 1
        if batch_sizes is not None and list(batch_sizes) != [own]:
            raise InputError(
                f"a cost report is analysed at one batch size ({own}); batch sizes {list(batch_sizes)} were asked",
                "pass the model or its Workload to predict at other batch sizes",
            )
        reports = [(own, subject)]
        name, dtype = subject.model, subject.dtype
    else:
        from archcost.cost import analyze
        from archcost.cost.workload import Workload

        work = Workload.of(subject)
        work = work.load("meta") if not hasattr(work.model, "named_modules") else work.load()
        sizes = list(batch_sizes) if batch_sizes is not None else [work.batch_size]
        if any(b < 1 for b in sizes):
            raise InputError(f"batch sizes must be >= 1, got {sizes}", "give batch sizes of 1 or more")
        reports = [(b, analyze(work.with_batch(b), device=device)) for b in sizes]
        name, dtype = reports[0][1].model, reports[0][1].dtype
    rows: list[PredictedLayer] = []
    totals: dict[int, float] = {}
    for b, report in reports:
        got = predict_report(report, profile, b)
        rows += got
        totals[b] = sum(r.predicted_ms for r in got)
    return Prediction(
        model=name,
        dtype=dtype,
        batch_sizes=tuple(b for b, _ in reports),
        layers=tuple(rows),
        totals_ms=totals,
        profile=profile,
    )
