"""A cost report with predicted latency in it: each row's ``predicted_ms`` from a device profile, for the
``predicted_ms`` column of ``archcost table`` and ``archcost report`` and the ``predicted_latency`` figure of
``archcost bench`` (issue 28).

The prediction itself is ``archcost.predict.model.predict_report`` (nn-Meter's per-kernel sum, MobiSys 2021,
with a roofline-form rule per kind); this module only puts its figures on the rows, numbers as they are.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from archcost.cost.record import CostReport
from archcost.predict.model import predict_report
from archcost.predict.profile import DeviceProfile, check_matches, load_profile


def read_profile(path: str | Path) -> tuple[DeviceProfile, list[str]]:
    """The device profile at ``path`` (``load_profile``) and what ``check_matches`` warns of it against this
    process: another torch build than the one analysing (the profile prices the rows this torch's analysis
    gives). The device, CPU model and threads are the profile's own: a prediction is for the machine it was
    calibrated on, wherever it is made. Raises ``ProfileError`` (exit 2) for a missing, damaged or
    newer-schema file."""
    import torch

    profile = load_profile(path)
    return profile, check_matches(profile, torch=torch.__version__)


def profile_identity(profile: DeviceProfile) -> dict:
    """What names a device profile in a bench file: ``digest`` (SHA-256 of its fitted rules and the settings
    they were fitted under: equal digests predict alike), device, device name, threads, dtype, torch."""
    import hashlib
    import json

    data = profile.to_dict()
    fitted = {k: data.get(k) for k in ("kinds", "device", "threads", "dtype", "torch", "machine", "schema_version")}
    digest = hashlib.sha256(json.dumps(fitted, sort_keys=True, default=str).encode()).hexdigest()
    return {
        "digest": digest,
        "device": profile.device,
        "device_name": profile.device_name,
        "threads": profile.threads,
        "dtype": profile.dtype,
        "torch": profile.torch_version,
    }


def with_prediction(report: CostReport, profile: DeviceProfile, warnings: list[str] | None = None) -> CostReport:
    """A copy of ``report`` whose rows carry ``predicted_ms`` (one forward of the row at the report's batch
    size, milliseconds) and ``predicted_rule`` (the kind that priced the row where the profile has no data for
    its own kind), and whose ``prediction`` holds the profile's identity, ``total_ms`` (the rows' sum) and
    ``fallbacks`` (kind -> the kind that priced it). ``warnings``: what ``check_matches`` said of the profile
    (another thread count, CPU model or torch build), kept in ``prediction["warnings"]``.

    Raises ``ProfileMismatchError`` when the report's dtype is not the profile's (``predict_report``)."""
    batch = report.input_shape[0] if report.input_shape else 1
    predicted = predict_report(report, profile, batch)
    rows = [
        replace(r, predicted_ms=p.predicted_ms, predicted_rule=p.rule if p.fallback else None)
        for r, p in zip(report.layers, predicted, strict=True)
    ]
    fallbacks = {p.kind: p.rule for p in predicted if p.fallback}
    prediction = {
        "device_profile": profile.path,
        "device": profile.device,
        "device_name": profile.device_name,
        "threads": profile.threads,
        "dtype": profile.dtype,
        "torch": profile.torch_version,
        "batch_size": int(batch),
        "total_ms": sum(p.predicted_ms for p in predicted),
        "fallbacks": fallbacks,
        "warnings": list(warnings or []),
    }
    return replace(report, layers=rows, prediction=prediction)


def predict_records(records: list[dict], profile: DeviceProfile) -> list[dict]:
    """Predicted beside measured for ``archcost profile`` records (ok, inference): per record ``model``,
    ``family`` (the zoo's, else ``external``), ``batch_size``, ``measured_ms`` (its median latency) and
    ``predicted_ms`` (the model analysed at the record's input label and batch size, priced with ``profile``).
    A record whose model cannot be loaded here is left out and named in the returned rows' ``skipped``
    entries (``{"model", "skipped": reason}``). Raises ``ProfileMismatchError`` for a dtype the profile has not."""
    from archcost.cost.analysis import analyze
    from archcost.cost.workload import Workload
    from archcost.errors import ArchcostError
    from archcost.zoo import get_meta, list_models

    zoo = set(list_models())
    out: list[dict] = []
    for r in records:
        model, batch = str(r["model"]), int(r["batch_size"])
        try:
            work = Workload.of(model, input_size=r.get("input_shape") or None, dtype=r.get("dtype") or "float32")
            report = with_prediction(analyze(work.load("meta").with_batch(batch)), profile)
        except ArchcostError as exc:
            out.append({"model": model, "skipped": exc.message})
            continue
        assert report.prediction is not None
        out.append({
            "model": model, "family": get_meta(model).family if model in zoo else "external", "batch_size": batch,
            "measured_ms": float(r["latency_median_s"]) * 1e3, "predicted_ms": float(report.prediction["total_ms"]),
        })  # fmt: skip
    return out


def layer_predictions(record: dict, profile: DeviceProfile) -> dict[str, float]:
    """Layer name -> predicted ms for the model and input of one ``profile --layers`` record (the names are
    the analysis rows' names, as the record's layers are)."""
    from archcost.cost.analysis import analyze
    from archcost.cost.workload import Workload

    work = Workload.of(str(record["model"]), input_size=record.get("input_shape") or None,
                       dtype=record.get("dtype") or "float32")  # fmt: skip
    report = with_prediction(analyze(work.load("meta").with_batch(int(record["batch_size"]))), profile)
    return {r.name: r.predicted_ms for r in report.layers if r.predicted_ms is not None}
