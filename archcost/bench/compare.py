"""Comparing two bench files: thresholds (``--fail-on``), the spread rule for measured figures, and tables.

Pure functions of two parsed bench documents (``archcost.bench.record``); nothing here measures or reads files.

* Analytic figures are compared for every model the two files share.
* Measured figures are compared only between records of the same batch size, device, device name,
  dtype, threads, channels-last, compile setting and input shape; otherwise a note says what differs.
* A latency (or throughput) change is a regression only when it crosses the threshold **and** lies outside
  the measured spread of the two runs: the runs' p10-p90 ranges do not overlap (for a slow-down, the new
  run's p10 is above the old run's p90).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

from archcost.bench.amount import parse_amount
from archcost.errors import InputError
from archcost.tables import render_table


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    kind: str  # "analytic" or "measured"
    unit: str  # "count", "bytes", "pixels", "seconds", "ips"


METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        Metric("params", "params", "analytic", "count"),
        Metric("macs", "MACs", "analytic", "count"),
        Metric("flops", "FLOPs", "analytic", "count"),
        Metric("param_bytes", "param memory", "analytic", "bytes"),
        Metric("activation_bytes", "output memory (sum)", "analytic", "bytes"),
        Metric("peak_activation_bytes", "peak activations", "analytic", "bytes"),
        Metric("receptive_field", "receptive field", "analytic", "pixels"),
        Metric("unsupported", "unsupported ops", "analytic", "count"),
        Metric("latency", "latency (median)", "measured", "seconds"),
        Metric("predicted_latency", "predicted latency", "predicted", "seconds"),
        Metric("throughput", "throughput", "measured", "ips"),
        Metric("measured_memory", "measured peak memory", "measured", "bytes"),
    )
}

#: What must agree before two measured records are compared: (record field, what to call it).
MEASURED_SETTINGS = (
    ("device", "device"),
    ("env_device_name", "device name"),
    ("dtype", "dtype"),
    ("threads", "threads"),
    ("channels_last", "channels-last"),
    ("compiled", "torch.compile"),
    ("input_shape", "input shape"),
)


# -- thresholds ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Threshold:
    """``macs>0%``: an increase of more than 0%; ``throughput<-10%``: a decrease of more than 10%;
    ``|macs|>0%``: a change either way; ``params>1M``, ``latency>2ms``: absolute changes."""

    metric: str
    direction: str  # "up", "down" or "either"
    limit: float  # >= 0: a fraction when relative, else an amount in the metric's unit
    relative: bool
    text: str

    def amount(self, old: float, new: float) -> float:
        """The signed change the limit is measured against."""
        change = new - old
        if not self.relative:
            return change
        if old == 0:
            return 0.0 if change == 0 else math.copysign(math.inf, change)
        return change / abs(old)

    def crossed(self, old: float, new: float) -> bool:
        a = self.amount(old, new)
        if self.direction == "up":
            return a > self.limit
        if self.direction == "down":
            return -a > self.limit
        return abs(a) > self.limit


_THRESHOLD = re.compile(r"^(\|?)\s*([A-Za-z_]+)\s*(\|?)\s*(>|<)\s*(.+?)\s*$")


def _unknown_metric(name: str, text: str) -> InputError:
    return InputError(
        f"unknown metric {name!r} in --fail-on {text!r}",
        f'use one of {", ".join(METRICS)}; e.g. --fail-on "macs>0%,params>0%,latency>10%"',
    )


_UNIT_WORDS = {"count": "a count", "ips": "images per second", "pixels": "pixels", "bytes": "bytes"}
_TIME_SUFFIX = re.compile(r"[0-9.]\s*(s|ms|us|ns)$", re.IGNORECASE)


def _check_unit(metric: Metric, raw: str, limit: float, part: str) -> None:
    """An absolute limit must be in the metric's unit: a time for latency (``latency>10`` could be 10 s,
    10 ms or 10%), no time and no bytes for a count. ``InputError`` naming the forms that are meant."""
    timed = bool(_TIME_SUFFIX.search(raw))
    name = metric.key
    if metric.unit == "seconds" and not timed and limit != 0:
        raise InputError(
            f"--fail-on item {part!r} has no unit: {raw} what?",
            f"write {name}>{raw}% for a relative increase or {name}>{raw}ms (s, ms, us) for an absolute one",
        )
    if metric.unit != "seconds" and timed:
        raise InputError(
            f"--fail-on item {part!r} gives a time, but {name} is not a time",
            f"write {name}>N% or a plain amount ({_UNIT_WORDS.get(metric.unit, metric.unit)})",
        )
    if metric.unit not in ("bytes", "seconds") and raw.upper().endswith("B"):
        raise InputError(
            f"--fail-on item {part!r} gives bytes, but {name} is {_UNIT_WORDS.get(metric.unit, metric.unit)}",
            f"write {name}>N% or a plain amount such as {name}>1M",
        )


def parse_fail_on(text: str | None) -> list[Threshold]:
    """``"macs>0%,params>0%,latency>10%"`` -> thresholds; ``InputError`` (exit 2) for anything else."""
    if text is None or not text.strip():
        return []
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        m = _THRESHOLD.match(part)
        if not m:
            raise InputError(
                f"malformed --fail-on item {part!r}",
                "write METRIC>N% (increase), METRIC<-N% (decrease), |METRIC|>N% (either way) or METRIC>AMOUNT, "
                'comma-separated: --fail-on "macs>0%,params>0%,latency>10%"',
            )
        bar_l, name, bar_r, op, value = m.groups()
        name = name.lower()
        if name not in METRICS:
            raise _unknown_metric(name, part)
        if bool(bar_l) != bool(bar_r):
            raise InputError(f"unbalanced | in --fail-on item {part!r}", "write |METRIC|>N% for a change either way")
        relative = value.endswith("%")
        raw = value[:-1].strip() if relative else value
        negative = raw.startswith("-")
        raw = raw.lstrip("+-").strip()
        if relative:
            try:
                limit = float(raw) / 100
            except ValueError:
                raise InputError(f"malformed percentage in --fail-on item {part!r}", "write e.g. macs>5%") from None
        else:
            limit = parse_amount(raw, f"the limit in --fail-on item {part!r}")
            _check_unit(METRICS[name], raw, limit, part)
        if bar_l:
            if op != ">" or negative:
                raise InputError(f"--fail-on item {part!r}: |METRIC| takes >", "write e.g. |macs|>0%")
            direction = "either"
        elif op == ">":
            if negative:
                raise InputError(
                    f"--fail-on item {part!r} gives a negative increase",
                    f"for a decrease write {name}<-{raw}{'%' if relative else ''}",
                )
            direction = "up"
        else:
            if not negative and limit != 0:
                raise InputError(
                    f"--fail-on item {part!r}: a decrease threshold is written with a minus sign",
                    f"write {name}<-{raw}{'%' if relative else ''} (fail when it drops by more than that)",
                )
            direction = "down"
        out.append(Threshold(name, direction, limit, relative, part))
    return out


# -- comparison ---------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One figure of one model, old and new."""

    model: str
    metric: Metric
    old: float | None
    new: float | None
    batch_size: int | None = None  # measured figures: the batch they were measured at
    old_spread: tuple[float, float] | None = None  # measured: p10-p90 range in the metric's unit
    new_spread: tuple[float, float] | None = None
    old_text: str | None = None  # shown instead of the formatted number (receptive field per axis)
    new_text: str | None = None
    crossed: list[str] = field(default_factory=list)  # thresholds crossed: regressions
    within_spread: list[str] = field(default_factory=list)  # thresholds crossed by the median, inside the noise
    note: str = ""

    @property
    def change(self) -> float | None:
        return None if self.old is None or self.new is None else self.new - self.old

    @property
    def relative(self) -> float | None:
        old, change = self.old, self.change
        if old is None or change is None:
            return None
        if old == 0:
            return 0.0 if change == 0 else math.copysign(math.inf, change)
        return change / abs(old)

    @property
    def changed(self) -> bool:
        return self.old != self.new or self.old_text != self.new_text


@dataclass
class Comparison:
    base_label: str
    new_label: str
    rows: list[Row]
    added: list[str]
    removed: list[str]
    notes: list[str]
    thresholds: list[Threshold]

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if r.crossed]

    @property
    def failed(self) -> bool:
        return bool(self.failures)

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(r.model for r in self.rows))


def _rf(analytic: dict) -> tuple[float | None, str | None]:
    rf = analytic.get("receptive_field")
    if not rf:
        return None, None
    whole = [int(v) if float(v).is_integer() else v for v in rf]
    return max(whole), "x".join(str(v) for v in whole) if len(set(whole)) > 1 else str(whole[0])


def _analytic_value(metric: str, analytic: dict) -> tuple[float | None, str | None]:
    if metric == "receptive_field":
        return _rf(analytic)
    if metric == "unsupported":
        return sum((analytic.get("unsupported_ops") or {}).values()), None
    return analytic.get(metric), None


def _spread(rec: dict, metric: str) -> tuple[float, float] | None:
    """The p10-p90 range of ``metric`` in its own unit, from the latency percentiles."""
    p10, p90 = rec.get("latency_p10_s"), rec.get("latency_p90_s")
    if p10 is None or p90 is None:
        return None
    if metric == "latency":
        return (p10, p90)
    if metric == "throughput" and p10 > 0 and p90 > 0 and rec.get("batch_size"):
        return (rec["batch_size"] / p90, rec["batch_size"] / p10)
    return None


def outside_spread(direction: str, old: tuple[float, float], new: tuple[float, float]) -> bool:
    """Whether a change in ``direction`` ("up", "down", "either") is more than the runs' spread: their
    p10-p90 ranges do not overlap on that side (up: new low end above old high end)."""
    up = new[0] > old[1]
    down = new[1] < old[0]
    return up if direction == "up" else down if direction == "down" else (up or down)


def _apply(row: Row, thresholds: list[Threshold]) -> None:
    """Mark the thresholds ``row`` crosses; measured figures with a spread also need to leave it."""
    if row.old is None or row.new is None:
        return
    old_spread, new_spread = row.old_spread, row.new_spread
    for t in thresholds:
        if t.metric != row.metric.key or not t.crossed(row.old, row.new):
            continue
        if old_spread and new_spread:
            # the threshold's direction is about the figure; a throughput drop is a latency rise, and the
            # spreads are in the figure's own unit, so the same rule applies to both
            if outside_spread(t.direction, old_spread, new_spread):
                row.crossed.append(t.text)
            else:
                row.within_spread.append(t.text)
        else:
            row.crossed.append(t.text)
    if row.within_spread and not row.crossed and old_spread and new_spread:  # within_spread: both spreads
        row.note = (
            f"within the runs' spread (p10-p90 {_fmt(row.metric, old_spread[0])}-"
            f"{_fmt(row.metric, old_spread[1])} vs {_fmt(row.metric, new_spread[0])}-"
            f"{_fmt(row.metric, new_spread[1])}): not a regression"
        )
    elif row.metric.kind == "measured" and row.crossed and not (old_spread and new_spread):
        row.note = "no p10/p90 recorded: the threshold alone decides"


def _settings_diff(a: dict, b: dict) -> list[str]:
    diffs = []
    for key, label in MEASURED_SETTINGS:
        if a.get(key) != b.get(key):
            diffs.append(f"{label} {a.get(key)} vs {b.get(key)}")
    return diffs


def _measured_rows(
    model: str, base: list[dict], new: list[dict], notes: list[str], labels=("BASE", "NEW")
) -> list[Row]:
    rows: list[Row] = []
    by_batch_new = {r["batch_size"]: r for r in new}
    by_batch_base = {r["batch_size"]: r for r in base}
    for batch in sorted(set(by_batch_base) | set(by_batch_new)):
        a, b = by_batch_base.get(batch), by_batch_new.get(batch)
        where = f"{model} at batch {batch}"
        if a is None or b is None:
            notes.append(f"{where}: measured only in {labels[1] if a is None else labels[0]}; nothing to compare")
            continue
        diffs = _settings_diff(a, b)
        if diffs:
            notes.append(
                f"{where}: measured figures not compared, the runs differ in {'; '.join(diffs)} "
                f"({labels[0]} vs {labels[1]}); compare runs from the same device and settings"
            )
            continue
        sa, sb = a.get("status", "ok"), b.get("status", "ok")
        if sa != "ok":
            notes.append(f"{where}: {labels[0]} was not measured (status {sa}); nothing to compare")
            continue
        for key, field_name in (
            ("latency", "latency_median_s"),
            ("throughput", "throughput_ips"),
            ("measured_memory", "memory_peak_bytes"),
        ):
            old = a.get(field_name)
            if old is None:
                continue
            new_value = b.get(field_name) if sb == "ok" else None
            row = Row(model, METRICS[key], old, new_value, batch_size=batch)
            if sb != "ok":
                row.note = f"{labels[1]} status {sb}" + (f": {b['error']}" if b.get("error") else "")
                row.new_text = sb
            else:
                row.old_spread, row.new_spread = _spread(a, key), _spread(b, key)
            rows.append(row)
    return rows


def _predicted_rows(model: str, a: dict | None, b: dict | None, notes: list[str], labels=("BASE", "NEW")) -> list[Row]:
    """The predicted-latency row of ``model`` where both files predicted it with the same device profile (the
    same ``digest``) at the same batch size; otherwise a note says why nothing is compared."""
    if a is None and b is None:
        return []
    if a is None or b is None:
        notes.append(f"{model}: predicted latency only in {labels[1] if a is None else labels[0]}; nothing to compare")
        return []
    pa, pb = a["device_profile"], b["device_profile"]
    if pa.get("digest") != pb.get("digest"):
        notes.append(
            f"{model}: predicted latency not compared, predicted with different device profiles "
            f"({labels[0]}: {pa.get('device_name')}, {pa.get('threads')} thread(s); {labels[1]}: "
            f"{pb.get('device_name')}, {pb.get('threads')} thread(s)); give both the same --device-profile"
        )
        return []
    if a["batch_size"] != b["batch_size"]:
        notes.append(f"{model}: predicted at batch {a['batch_size']} and {b['batch_size']}; nothing to compare")
        return []
    return [Row(model, METRICS["predicted_latency"], a["latency_s"], b["latency_s"], batch_size=a["batch_size"])]


def compare(
    base: dict,
    new: dict,
    thresholds: list[Threshold] | None = None,
    *,
    base_label: str = "BASE",
    new_label: str = "NEW",
) -> Comparison:
    """Compare two parsed bench documents; ``InputError`` when they share no model."""
    thresholds = list(thresholds or [])
    base_models, new_models = base.get("models", {}), new.get("models", {})
    common = [m for m in base_models if m in new_models]
    added = [m for m in new_models if m not in base_models]
    removed = [m for m in base_models if m not in new_models]
    if not common:
        raise InputError(
            f"{base_label} and {new_label} have no model in common "
            f"({base_label}: {', '.join(base_models) or 'none'}; {new_label}: {', '.join(new_models) or 'none'})",
            "bench the same models (the same MODEL arguments) for both files",
        )
    rows: list[Row] = []
    notes: list[str] = []
    env_a, env_b = base.get("environment") or {}, new.get("environment") or {}
    for key in ("archcost", "torch"):
        if env_a.get(key) and env_b.get(key) and env_a[key] != env_b[key]:
            notes.append(
                f"{base_label} was written with {key} {env_a[key]} and {new_label} with {key} {env_b[key]}: a change "
                f"in how {key} counts or runs shows here as a change of the models"
            )
    for model in common:
        a, b = base_models[model], new_models[model]
        if a.get("input_shape") != b.get("input_shape") or a.get("dtype") != b.get("dtype"):
            notes.append(
                f"{model}: analysed at input {a.get('input_shape')} {a.get('dtype')} in {base_label} and "
                f"{b.get('input_shape')} {b.get('dtype')} in {new_label}; its changes include that"
            )
        if (a.get("options") or {}) != (b.get("options") or {}):
            notes.append(
                f"{model}: built with options {a.get('options')} in {base_label}, {b.get('options')} in {new_label}"
            )
        new_ops = set(b["analytic"].get("unsupported_ops") or {}) - set(a["analytic"].get("unsupported_ops") or {})
        if new_ops:
            notes.append(
                f"{model}: {new_label} has ops archcost cannot cost ({', '.join(sorted(new_ops))}); they add 0 to its "
                "totals, so its figures may be too low"
            )
        for key, metric in METRICS.items():
            if metric.kind != "analytic":
                continue
            old, old_text = _analytic_value(key, a["analytic"])
            new_value, new_text = _analytic_value(key, b["analytic"])
            if old is None and new_value is None:
                continue
            row = Row(model, metric, old, new_value, old_text=old_text, new_text=new_text)
            if key == "receptive_field" and (old is None) != (new_value is None):
                row.note = f"no spatial receptive field in {base_label if old is None else new_label}"
            rows.append(row)
        rows.extend(
            _measured_rows(model, a.get("measured") or [], b.get("measured") or [], notes, (base_label, new_label))
        )
        rows.extend(_predicted_rows(model, a.get("predicted"), b.get("predicted"), notes, (base_label, new_label)))
    for row in rows:
        if row.metric.kind == "measured" and row.old is not None and row.new is None:
            # the base run measured it and the new run failed (oom, error): a measured threshold on it fails
            row.crossed.extend(t.text for t in thresholds if t.metric == row.metric.key)
        else:
            _apply(row, thresholds)
    predicted_keys = {t.metric for t in thresholds if METRICS[t.metric].kind == "predicted"}
    for key in sorted(predicted_keys - {r.metric.key for r in rows}):
        t = ", ".join(x.text for x in thresholds if x.metric == key)
        notes.append(
            f"{t} not checked: no predicted latency from the same device profile in both files "
            "(run archcost bench with --device-profile FILE for both)"
        )
    measured_keys = {t.metric for t in thresholds if METRICS[t.metric].kind == "measured"}
    have = {r.metric.key for r in rows}
    any_measured = any(m.get("measured") for doc in (base_models, new_models) for m in doc.values())
    for key in sorted(measured_keys - have):
        t = ", ".join(x.text for x in thresholds if x.metric == key)
        if not any_measured:
            notes.append(f"{t} not checked: neither file has measured figures (run archcost bench with --profile)")
        else:
            notes.append(f"{t} not checked: no measured {key} from the same device and settings in both files")
    return Comparison(base_label, new_label, rows, added, removed, notes, thresholds)


# -- formatting ---------------------------------------------------------------------------------------------


def _fmt(metric: Metric, value: float | None) -> str:
    from archcost.units import format_bytes, format_count

    if value is None:
        return "-"
    if metric.unit == "bytes":
        return format_bytes(value)
    if metric.unit == "seconds":
        return f"{value * 1e3:.3f} ms"
    if metric.unit == "ips":
        return f"{value:.1f} img/s"
    if metric.unit == "pixels":
        return f"{value:g}"
    return format_count(value)


def _signed(metric: Metric, change: float | None) -> str:
    if change is None:
        return "-"
    if change == 0:
        return "0"
    text = _fmt(metric, abs(change))
    return ("+" if change > 0 else "-") + text


def percent(rel: float | None) -> str:
    if rel is None:
        return "-"
    if rel == 0:
        return "0%"
    if math.isinf(rel):
        return "new" if rel > 0 else "gone"
    if abs(rel) < 5e-5:
        return f"{'+' if rel > 0 else '-'}<0.01%"
    return f"{rel * 100:+.2f}%"


def _value_text(row: Row, old: bool) -> str:
    text = row.old_text if old else row.new_text
    value = row.old if old else row.new
    if text is not None:
        return text
    shown = _fmt(row.metric, value)
    spread = row.old_spread if old else row.new_spread
    if spread and row.metric.unit == "seconds":
        shown += f" ({spread[0] * 1e3:.3f}-{spread[1] * 1e3:.3f})"
    return shown


def _result(row: Row) -> str:
    if row.crossed:
        return "FAIL " + ", ".join(row.crossed)
    if row.within_spread:
        return "within spread"
    return ""


def table_rows(comparison: Comparison, only_changed: bool = False) -> list[list[str]]:
    out = []
    for r in comparison.rows:
        if only_changed and not (r.changed or r.crossed or r.within_spread or r.note):
            continue
        label = r.metric.label + (f" @ batch {r.batch_size}" if r.batch_size is not None else "")
        out.append(
            [
                r.model,
                label,
                _value_text(r, True),
                _value_text(r, False),
                _signed(r.metric, r.change),
                percent(r.relative),
                _result(r),
            ]
        )
    return out


HEADER = ["model", "figure", "base", "new", "change", "change %", "result"]


def _summary(c: Comparison) -> str:
    given = ", ".join(t.text for t in c.thresholds) or "none given"
    if c.failed:
        items = [
            f"{r.model} {r.metric.label}{f' @ batch {r.batch_size}' if r.batch_size else ''} "
            f"{percent(r.relative)} ({', '.join(r.crossed)})"
            for r in c.failures
        ]
        return f"FAIL: {len(items)} threshold(s) crossed: " + "; ".join(items) + f" (--fail-on {given})"
    return f"OK: no threshold crossed (--fail-on {given}); {len(c.models)} model(s) compared"


def _lists(c: Comparison) -> list[str]:
    lines = []
    if c.added:
        lines.append(f"Models added in {c.new_label}: {', '.join(c.added)}")
    if c.removed:
        lines.append(f"Models removed in {c.new_label}: {', '.join(c.removed)}")
    return lines


def _row_notes(c: Comparison) -> list[str]:
    return [
        f"{r.model} {r.metric.label}{f' @ batch {r.batch_size}' if r.batch_size else ''}: {r.note}"
        for r in c.rows
        if r.note
    ]


def _hidden(c: Comparison, shown: int, only_changed: bool) -> list[str]:
    hidden = len(c.rows) - shown
    return [f"({hidden} unchanged figure(s) of {len(c.models)} model(s) not shown)"] if only_changed and hidden else []


def render_text(c: Comparison, only_changed: bool = False) -> str:
    body = table_rows(c, only_changed)
    lines = [f"archcost compare: {c.base_label} -> {c.new_label}"]
    if body:  # model, figure and result flush left, the figures flush right
        lines.append(render_table(body, headers=HEADER, left={HEADER[0], HEADER[1], HEADER[6]}))
    else:
        lines.append(f"No figure changed in the {len(c.models)} model(s) compared.")
    if body:
        lines += _hidden(c, len(body), only_changed)
    extra = _lists(c) + [f"note: {n}" for n in c.notes + _row_notes(c)]
    if extra:
        lines += ["", *extra]
    lines += ["", _summary(c)]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(c: Comparison, only_changed: bool = False) -> str:
    body = table_rows(c, only_changed)
    status = "❌" if c.failed else "✅"
    lines = [f"### {status} archcost: architecture cost, `{_md(c.base_label)}` → `{_md(c.new_label)}`", ""]
    lines += [f"**{_md(_summary(c))}**", ""]
    if body:
        lines.append("| " + " | ".join(HEADER) + " |")
        lines.append("| --- | --- | ---: | ---: | ---: | ---: | --- |")
        for row in body:
            cells = [_md(v) for v in row]
            if row[6].startswith("FAIL"):
                cells[6] = f"**{cells[6]}**"
            lines.append("| " + " | ".join(cells) + " |")
        hidden = _hidden(c, len(body), only_changed)
        if hidden:
            lines += ["", *hidden]
    else:
        lines.append(f"No figure changed in the {len(c.models)} model(s) compared.")
    extra = _lists(c)
    notes = c.notes + _row_notes(c)
    if extra or notes:
        lines.append("")
        lines += [f"- {_md(x)}" for x in extra]
        lines += [f"- note: {_md(n)}" for n in notes]
    lines += [
        "",
        "<sub>MACs: multiply-accumulates; FLOPs: all floating-point operations (2 per MAC plus the rest); "
        "bytes are decimal (1 MB = 10^6 B). Latency: median (p10-p90) per batch.</sub>",
    ]
    return "\n".join(lines) + "\n"


def render_json(c: Comparison) -> str:
    doc = {
        "base": c.base_label,
        "new": c.new_label,
        "failed": c.failed,
        "fail_on": [t.text for t in c.thresholds],
        "added": c.added,
        "removed": c.removed,
        "notes": c.notes,
        "rows": [
            {
                "model": r.model,
                "metric": r.metric.key,
                "batch_size": r.batch_size,
                "old": r.old,
                "new": r.new,
                "change": r.change,
                "relative": None if r.relative is None or math.isinf(r.relative) else r.relative,
                "old_spread": list(r.old_spread) if r.old_spread else None,
                "new_spread": list(r.new_spread) if r.new_spread else None,
                "crossed": r.crossed,
                "within_spread": r.within_spread,
                "note": r.note,
            }
            for r in c.rows
        ],
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def render(c: Comparison, fmt: str = "text", only_changed: bool = False) -> str:
    if fmt == "markdown":
        return render_markdown(c, only_changed)
    if fmt == "json":
        return render_json(c)
    if fmt == "text":
        return render_text(c, only_changed)
    raise ValueError(f"unknown format {fmt!r}")
