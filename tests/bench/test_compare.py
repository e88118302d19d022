"""``compare`` on hand-written bench documents: thresholds, the spread rule, settings, tables."""

import json
import math

import pytest

from archcost.bench import SCHEMA, compare, parse_fail_on, render
from archcost.bench.compare import Threshold, outside_spread, percent
from archcost.errors import InputError

ANALYTIC = {
    "params": 1_000,
    "macs": 10_000,
    "flops": 20_000,
    "param_bytes": 4_000,
    "activation_bytes": 8_000,
    "peak_activation_bytes": 6_000,
    "receptive_field": [35, 35],
    "unsupported_ops": {},
}


def entry(measured=None, input_shape=(1, 3, 8, 8), **changes):
    e = {"spec": "m", "input_shape": list(input_shape), "dtype": "float32", "analytic": {**ANALYTIC, **changes}}
    if measured is not None:
        e["measured"] = measured
    return e


def doc(**models):
    return {"schema": SCHEMA, "environment": {}, "models": models}


def rec(median, p10=None, p90=None, batch=1, **changes):
    """A measured record as archcost.profile writes one (the fields compare reads)."""
    return {
        "batch_size": batch,
        "status": "ok",
        "device": "cpu",
        "env_device_name": "Intel Xeon",
        "dtype": "float32",
        "threads": 2,
        "channels_last": False,
        "compiled": False,
        "input_shape": [batch, 3, 8, 8],
        "latency_median_s": median,
        "latency_p10_s": p10,
        "latency_p90_s": p90,
        "throughput_ips": batch / median if median else None,
        "memory_peak_bytes": 5_000_000,
        **changes,
    }


def row(result, model, metric, batch=None):
    return next(r for r in result.rows if r.model == model and r.metric.key == metric and r.batch_size == batch)


# -- --fail-on ----------------------------------------------------------------------------------------------


def test_parse_the_issue_example():
    ts = parse_fail_on("macs>0%,params>0%,latency>10%")
    assert [(t.metric, t.direction, t.limit, t.relative) for t in ts] == [
        ("macs", "up", 0.0, True),
        ("params", "up", 0.0, True),
        ("latency", "up", 0.10, True),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("throughput<-10%", ("throughput", "down", 0.10, True)),
        ("|macs|>0%", ("macs", "either", 0.0, True)),
        ("params>1M", ("params", "up", 1e6, False)),
        ("peak_activation_bytes>5MB", ("peak_activation_bytes", "up", 5e6, False)),
        ("latency>2ms", ("latency", "up", 0.002, False)),
        (" MACS > 2.5% ", ("macs", "up", 0.025, True)),
        ("unsupported>0", ("unsupported", "up", 0.0, False)),
    ],
)
def test_parse_forms(text, expected):
    (t,) = parse_fail_on(text)
    assert (t.metric, t.direction, t.limit, t.relative) == pytest.approx(expected)


def test_empty_fail_on_is_no_threshold():
    assert parse_fail_on(None) == [] and parse_fail_on(" ") == []


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("bogus>1%", "unknown metric 'bogus'"),
        ("macs>0%,speed>1%", "unknown metric 'speed'"),
        ("macs=0%", "malformed --fail-on item"),
        ("macs>-5%", "negative increase"),
        ("throughput<10%", "minus sign"),
        ("|macs>0%", "unbalanced |"),
        ("macs>lots", "not an amount"),
        ("macs>x%", "malformed percentage"),
        ("latency>10", "has no unit"),  # 10 s, 10 ms or 10%? (issue 26)
        ("params>2ms", "is not a time"),
        ("params>5MB", "gives bytes"),
    ],
)
def test_bad_fail_on(text, says):
    with pytest.raises(InputError, match=says) as exc:
        parse_fail_on(text)
    assert exc.value.hint  # says what to do


def test_unknown_metric_lists_the_known_ones():
    with pytest.raises(InputError) as exc:
        parse_fail_on("bogus>1%")
    assert "macs" in exc.value.hint and "latency" in exc.value.hint


@pytest.mark.parametrize(
    ("text", "old", "new", "crossed"),
    [
        ("macs>0%", 100, 100, False),
        ("macs>0%", 100, 101, True),
        ("macs>0%", 100, 99, False),  # a decrease never fails an increase threshold
        ("|macs|>0%", 100, 99, True),
        ("macs>5%", 100, 105, False),  # exactly 5% is not more than 5%
        ("macs>5%", 100, 106, True),
        ("macs>0%", 0, 1, True),  # from nothing: an infinite relative change
        ("params>10", 100, 110, False),
        ("params>10", 100, 111, True),
        ("throughput<-10%", 100, 90, False),
        ("throughput<-10%", 100, 89, True),
    ],
)
def test_threshold_arithmetic(text, old, new, crossed):
    (t,) = parse_fail_on(text)
    assert t.crossed(old, new) is crossed


def test_spread_rule():
    # a rise counts when the new run's fast end (p10) is slower than the old run's slow end (p90)
    assert outside_spread("up", (9.5, 10.5), (11.5, 12.5))
    assert not outside_spread("up", (8.0, 13.0), (10.0, 14.0))
    assert outside_spread("down", (9.5, 10.5), (8.0, 9.0))
    assert outside_spread("either", (9.5, 10.5), (8.0, 9.0))
    assert not outside_spread("down", (9.5, 10.5), (11.5, 12.5))


# -- analytic figures ---------------------------------------------------------------------------------------


def test_a_cost_increase_crosses_its_threshold():
    result = compare(doc(net=entry()), doc(net=entry(macs=11_000)), parse_fail_on("macs>5%,params>0%"))
    macs = row(result, "net", "macs")
    assert (macs.old, macs.new, macs.change) == (10_000, 11_000, 1_000)
    assert macs.relative == pytest.approx(1_000 / 10_000)
    assert macs.crossed == ["macs>5%"]
    assert row(result, "net", "params").crossed == []
    assert result.failed and result.failures == [macs]


def test_no_change_passes():
    result = compare(doc(net=entry()), doc(net=entry()), parse_fail_on("|macs|>0%,|params|>0%"))
    assert not result.failed
    assert all(r.change == 0 for r in result.rows)


def test_every_analytic_figure_is_a_row():
    result = compare(doc(net=entry()), doc(net=entry()))
    assert [r.metric.key for r in result.rows] == [
        "params",
        "macs",
        "flops",
        "param_bytes",
        "activation_bytes",
        "peak_activation_bytes",
        "receptive_field",
        "unsupported",
    ]


def test_added_and_removed_models_are_listed():
    result = compare(doc(a=entry(), b=entry()), doc(a=entry(), c=entry()))
    assert result.added == ["c"] and result.removed == ["b"]
    text = render(result, "text")
    assert "Models added in NEW: c" in text and "Models removed in NEW: b" in text


def test_no_model_in_common_is_an_error():
    with pytest.raises(InputError, match="no model in common") as exc:
        compare(doc(a=entry()), doc(b=entry()), base_label="base.json", new_label="new.json")
    assert "base.json: a" in str(exc.value) and "new.json: b" in str(exc.value)


def test_receptive_field_per_axis_and_gone():
    result = compare(doc(net=entry(receptive_field=[35, 27])), doc(net=entry(receptive_field=None)))
    rf = row(result, "net", "receptive_field")
    assert (rf.old, rf.old_text, rf.new) == (35, "35x27", None)
    assert "no spatial receptive field in NEW" in rf.note


def test_new_unsupported_ops_are_a_note_and_a_metric():
    result = compare(doc(net=entry()), doc(net=entry(unsupported_ops={"cumsum": 2})), parse_fail_on("unsupported>0"))
    assert row(result, "net", "unsupported").new == 2
    assert result.failed
    assert any("cumsum" in n and "too low" in n for n in result.notes)


def test_different_versions_are_noted():
    base, new = doc(net=entry()), doc(net=entry())
    base["environment"], new["environment"] = {"archcost": "0.1.0"}, {"archcost": "0.2.0"}
    result = compare(base, new)
    assert any("archcost 0.1.0" in n and "archcost 0.2.0" in n for n in result.notes)


def test_different_input_is_noted():
    result = compare(doc(net=entry()), doc(net=entry(input_shape=(32, 3, 8, 8))))
    assert any("[1, 3, 8, 8]" in n and "[32, 3, 8, 8]" in n for n in result.notes)


# -- measured figures ---------------------------------------------------------------------------------------


def test_latency_beyond_threshold_and_spread_fails():
    base = doc(net=entry([rec(0.010, 0.0095, 0.0105)]))
    new = doc(net=entry([rec(0.012, 0.0115, 0.0125)]))  # +20%, and 11.5 ms > 10.5 ms
    result = compare(base, new, parse_fail_on("latency>10%"))
    lat = row(result, "net", "latency", batch=1)
    assert lat.relative == pytest.approx(0.2)
    assert lat.crossed == ["latency>10%"] and result.failed


def test_latency_inside_the_spread_is_not_a_regression():
    base = doc(net=entry([rec(0.010, 0.008, 0.013)]))
    new = doc(net=entry([rec(0.012, 0.010, 0.014)]))  # +20% median, but 10 ms p10 < 13 ms p90
    result = compare(base, new, parse_fail_on("latency>10%"))
    lat = row(result, "net", "latency", batch=1)
    assert lat.crossed == [] and lat.within_spread == ["latency>10%"]
    assert not result.failed
    assert "within the runs' spread" in lat.note
    assert "within spread" in render(result, "text")


def test_latency_outside_the_spread_but_under_threshold_passes():
    base = doc(net=entry([rec(0.0100, 0.0099, 0.0101)]))
    new = doc(net=entry([rec(0.0105, 0.0104, 0.0106)]))  # +5%: outside the tight spread, under 10%
    assert not compare(base, new, parse_fail_on("latency>10%")).failed


def test_throughput_drop_uses_the_same_spread():
    base = doc(net=entry([rec(0.010, 0.0095, 0.0105)]))  # 100 img/s
    new = doc(net=entry([rec(0.0125, 0.012, 0.013)]))  # 80 img/s
    result = compare(base, new, parse_fail_on("throughput<-10%"))
    tp = row(result, "net", "throughput", batch=1)
    assert tp.relative == pytest.approx(80 / 100 - 1)
    assert tp.old_spread == pytest.approx((1 / 0.0105, 1 / 0.0095))
    assert tp.crossed == ["throughput<-10%"]


def test_without_percentiles_the_threshold_alone_decides():
    result = compare(doc(net=entry([rec(0.010)])), doc(net=entry([rec(0.012)])), parse_fail_on("latency>10%"))
    lat = row(result, "net", "latency", batch=1)
    assert lat.crossed == ["latency>10%"] and "threshold alone" in lat.note


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"device": "cuda:0", "env_device_name": "A100"}, "device cpu vs cuda:0; device name Intel Xeon vs A100"),
        ({"threads": 8}, "threads 2 vs 8"),
        ({"dtype": "float16"}, "dtype float32 vs float16"),
        ({"channels_last": True}, "channels-last False vs True"),
    ],
)
def test_measured_figures_from_other_settings_are_not_compared(change, says):
    base = doc(net=entry([rec(0.010, 0.009, 0.011)]))
    new = doc(net=entry([rec(0.100, 0.09, 0.11, **change)]))
    result = compare(base, new, parse_fail_on("latency>10%"))
    assert not result.failed
    assert not [r for r in result.rows if r.metric.kind == "measured"]
    assert any(says in n and "not compared" in n for n in result.notes)
    assert any(n.startswith("latency>10% not checked") for n in result.notes)


def test_only_matching_batch_sizes_are_compared():
    base = doc(net=entry([rec(0.010, 0.009, 0.011), rec(0.1, 0.09, 0.11, batch=32)]))
    new = doc(net=entry([rec(0.010, 0.009, 0.011)]))
    result = compare(base, new)
    assert row(result, "net", "latency", batch=1).change == 0
    assert any("batch 32: measured only in BASE" in n for n in result.notes)


def test_a_new_run_that_fails_is_a_measured_regression():
    base = doc(net=entry([rec(0.010, 0.009, 0.011)]))
    new = doc(net=entry([rec(None, status="oom", throughput_ips=None, memory_peak_bytes=None)]))
    result = compare(base, new, parse_fail_on("latency>10%"))
    lat = row(result, "net", "latency", batch=1)
    assert lat.new is None and lat.crossed == ["latency>10%"]
    assert "NEW status oom" in lat.note


def test_latency_threshold_without_measurements_is_noted():
    result = compare(doc(net=entry()), doc(net=entry()), parse_fail_on("macs>0%,latency>10%"))
    assert not result.failed
    assert any("neither file has measured figures" in n and "--profile" in n for n in result.notes)


# -- tables -------------------------------------------------------------------------------------------------


@pytest.fixture
def regressed():
    base = doc(resnet=entry([rec(0.010, 0.0095, 0.0105)]), gone=entry())
    new = doc(resnet=entry([rec(0.012, 0.0115, 0.0125)], macs=12_500), fresh=entry())
    return compare(base, new, parse_fail_on("macs>0%,latency>10%"), base_label="base.json", new_label="head.json")


def test_text_table(regressed):
    text = render(regressed, "text")
    lines = text.splitlines()
    assert lines[0] == "archcost compare: base.json -> head.json"
    assert lines[1].split() == ["model", "figure", "base", "new", "change", "change", "%", "result"]
    macs = next(line for line in lines if line.startswith("resnet") and " MACs " in line)
    assert macs.split() == ["resnet", "MACs", "10.00", "K", "12.50", "K", "+2.50", "K", "+25.00%", "FAIL", "macs>0%"]
    lat = next(line for line in lines if "latency (median) @ batch 1" in line)
    assert "10.000 ms (9.500-10.500)" in lat and "12.000 ms (11.500-12.500)" in lat and "+20.00%" in lat
    assert lines[-1].startswith("FAIL: 2 threshold(s) crossed: resnet MACs +25.00% (macs>0%)")


def test_markdown_table(regressed):
    md = render(regressed, "markdown")
    assert md.startswith("### ❌ archcost")
    assert "| model | figure | base | new | change | change % | result |" in md
    assert "| resnet | MACs | 10.00 K | 12.50 K | +2.50 K | +25.00% | **FAIL macs>0%** |" in md
    assert "- Models added in head.json: fresh" in md and "- Models removed in head.json: gone" in md


def test_only_changed(regressed):
    text = render(regressed, "text", only_changed=True)
    assert " MACs " in text and " params " not in text


def test_json_output(regressed):
    out = json.loads(render(regressed, "json"))
    assert out["failed"] is True and out["fail_on"] == ["macs>0%", "latency>10%"]
    macs = next(r for r in out["rows"] if r["metric"] == "macs")
    assert (macs["old"], macs["new"], macs["crossed"]) == (10_000, 12_500, ["macs>0%"])


def test_markdown_escapes_pipes():
    result = compare(doc(**{"a|b": entry()}), doc(**{"a|b": entry()}))
    assert "| a\\|b | params |" in render(result, "markdown")


def test_percent_text():
    assert percent(0) == "0%"
    assert percent(0.1234) == "+12.34%"
    assert percent(-0.00001) == "-<0.01%"
    assert percent(math.inf) == "new"
    assert percent(None) == "-"


def test_threshold_is_frozen_and_hashable():
    t = Threshold("macs", "up", 0.0, True, "macs>0%")
    assert {t: 1}[t] == 1
