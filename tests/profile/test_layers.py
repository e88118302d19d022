"""Time per layer: the attribution rules (pure), the rows' arithmetic, and real profiler runs on tiny models.

The timing values themselves are never asserted (the machine is shared); what is asserted is which row gets
which time, the arithmetic that turns times into FLOP/s and shares, and that every row is measured.
"""

import json
import statistics

import pytest
import torch
from torch import nn

from archcost.cli import main
from archcost.profiling import layers_frame, profile, render
from archcost.profiling.layers import (
    LAYER_FIELDS,
    Call,
    LayerTiming,
    RowKey,
    attribute,
    canonical,
    layer_rows,
    op_matches,
    profiled_iterations,
    summary,
)
from archcost.profiling.roofline import row_traffic_bytes
from archcost.profiling.sweep import LAYER_SUM_TOLERANCE

FAST = {"device": "cpu", "warmup_s": 0.0, "min_time_s": 0.01, "repeats": 3, "roofline": False, "memory": False}


class Residual(nn.Module):
    """conv -> relu, plus an add and a flatten in its own forward (op rows), and a module called twice."""

    input_size = (3, 8, 8)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x):
        y = self.relu(self.conv(x))
        y = self.relu(y + x)
        return torch.flatten(y, 1)


# -- the attribution rules ----------------------------------------------------------------------------------


def test_canonical_names_and_aliases():
    assert canonical("aten::add_") == "add" and canonical("aten::_softmax") == "_softmax"
    assert op_matches("add", "aten::add") and op_matches("add", "aten::add_")
    assert op_matches("flatten", "aten::view") and op_matches("getitem", "aten::select")
    assert not op_matches("add", "aten::mul") and not op_matches("cat", "aten::add")


def test_module_calls_go_to_their_rows_in_call_order():
    keys = [RowKey("conv", ""), RowKey("relu", ""), RowKey("", "add"), RowKey("relu", ""), RowKey("", "flatten")]
    calls = [
        Call("conv", "", 5.0),
        Call("relu", "", 1.0),
        Call("", "aten::add", 0.5),
        Call("relu", "", 2.0),  # the second call of relu is the row `relu#2`
        Call("", "aten::flatten", 0.25),
    ]
    times, rest = attribute(calls, keys)
    assert times == [5.0, 1.0, 0.5, 2.0, 0.25] and rest == 0.0


def test_ops_match_in_order_and_the_rest_is_unattributed():
    keys = [RowKey("block", "add"), RowKey("block", "mul"), RowKey("block", "add")]
    calls = [
        Call("block", "aten::add", 1.0),
        Call("block", "aten::empty", 0.125),  # no row: unattributed
        Call("block", "aten::add_", 2.0),  # skips mul (no event for it): the second add row
        Call("other", "aten::add", 4.0),  # another module's op: no row of its own
    ]
    times, rest = attribute(calls, keys)
    assert times == [1.0, None, 2.0]  # the mul row is None (not measured), never a silent 0
    assert rest == 0.125 + 4.0


def test_device_times_are_used_on_cuda():
    keys = [RowKey("conv", "")]
    times, _ = attribute([Call("conv", "", cpu_s=0.5, device_s=0.003)], keys, device=True)
    assert times == [0.003]


def test_a_third_call_without_a_row_is_unattributed():
    times, rest = attribute([Call("m", "", 1.0), Call("m", "", 3.0)], [RowKey("m", "")])
    assert times == [1.0] and rest == 3.0


def test_profiled_iterations():
    assert profiled_iterations(0.05, repeats=10, min_time_s=0.2) == 10  # repeats is the floor
    assert profiled_iterations(0.001, repeats=10, min_time_s=0.2) == 200  # fills min_time
    assert profiled_iterations(1e-6, repeats=10, min_time_s=0.2) == 200  # capped


# -- the rows' arithmetic -----------------------------------------------------------------------------------


class _Row:
    def __init__(self, name, kind, flops, inputs, param_bytes, activation_bytes):
        self.name, self.type, self.kind, self.module = name, "Conv2d", kind, name
        self.macs, self.flops = flops // 2, flops
        self.input_shapes, self.param_bytes, self.activation_bytes = inputs, param_bytes, activation_bytes


def test_layer_rows_arithmetic():
    rows = [_Row("a", "module", 1000, ((1, 10),), 40, 40), _Row("b", "module", 0, ((1, 10),), 0, 40)]
    timing = LayerTiming([[1e-3, 3e-3, 2e-3], [1e-3, 1e-3, 1e-3]], [0.0] * 3, [4e-3] * 3, 3, "cpu wall time")
    got = layer_rows(rows, timing, element_bytes=4, peak_flops_per_s=1e6, peak_bytes_per_s=1e5)
    a, b = got
    assert list(a) == list(LAYER_FIELDS)
    assert a["bytes"] == 10 * 4 + 40 + 40 == row_traffic_bytes(rows[0], 4)  # inputs + params + output
    assert a["time_s"] == 2e-3 and b["time_s"] == 1e-3  # medians
    assert a["time_share"] == pytest.approx(2 / 3) and b["time_share"] == pytest.approx(1 / 3)
    assert a["flops_per_s"] == pytest.approx(1000 / 2e-3)
    assert a["arithmetic_intensity"] == pytest.approx(1000 / 120)
    assert a["percent_of_peak"] == pytest.approx(100 * 5e5 / 1e6)
    assert a["bound"] == "memory"  # 8.3 FLOP/B under the ridge point 1e6 / 1e5 = 10
    assert b["flops_per_s"] is None and b["arithmetic_intensity"] is None and b["bound"] is None
    s = summary(timing, got, latency_median_s=3e-3)
    assert s["layer_time_sum_s"] == pytest.approx(3e-3) and s["layer_time_sum_ratio"] == pytest.approx(1.0)
    assert s["profiler_overhead"] == pytest.approx(4e-3 / 3e-3 - 1)


# -- real profiler runs --------------------------------------------------------------------------------------


def test_every_row_of_the_cost_table_is_timed():
    df = profile(Residual(), layers=True, **FAST)
    r = df.iloc[0]
    assert r["status"] == "ok"
    names = [x["name"] for x in r["layers"]]
    assert names == ["conv", "relu", "add", "relu#2", "flatten"]
    assert all(x["time_s"] is not None and x["time_s"] > 0 for x in r["layers"]), r["layers"]
    assert r["layers_unmatched"] == []
    assert sum(x["time_share"] for x in r["layers"]) == pytest.approx(1.0)
    assert r["layer_time_sum_s"] == pytest.approx(sum(x["time_s"] for x in r["layers"]))
    assert r["layer_time_sum_ratio"] == pytest.approx(r["layer_time_sum_s"] / r["latency_median_s"])
    assert r["layer_iterations"] >= 3 and r["layer_clock"] == "cpu wall time"
    assert r["profiler_overhead"] == pytest.approx(r["profiled_latency_median_s"] / r["latency_median_s"] - 1)
    conv = r["layers"][0]
    assert conv["macs"] == 3 * 3 * 3 * 8 * 8 * 3 and conv["flops_per_s"] == pytest.approx(
        conv["flops"] / conv["time_s"]
    )


def test_layer_outputs_text_csv_json_and_frame():
    df = profile(Residual(), layers=True, batch_sizes=[1, 2], **FAST)
    flat = layers_frame(df)
    assert len(flat) == 10 and list(flat["batch_size"]) == [1] * 5 + [2] * 5
    assert {"model", "input_shape", "threads", "time_s", "bound"} <= set(flat.columns)
    text = render(df, "text")
    assert "time per layer" in text and "relu#2" in text and "% of the median latency" in text
    assert "profiler overhead" in text and "input 1x3x8x8" in text
    csv = render(df, "csv")
    assert csv.splitlines()[0].startswith("model,batch_size,input_shape") and len(csv.splitlines()) == 11
    data = json.loads(render(df, "json"))
    assert [x["name"] for x in data[1]["layers"]] == ["conv", "relu", "add", "relu#2", "flatten"]


def test_layers_from_the_command_line(capsys):
    code = main(
        ["profile", "tests.profile.test_layers:Residual", "--layers", "--format", "json", "--device", "cpu"]
        + ["--warmup", "0", "--min-time", "0.01", "--repeats", "3", "--no-roofline", "--quiet"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert len(json.loads(out)[0]["layers"]) == 5


def test_layers_and_compile_are_refused_before_anything_runs(capsys):
    code = main(["profile", "tests.profile.test_layers:Residual", "--layers", "--compile", "--device", "cpu"])
    out, err = capsys.readouterr()
    assert code == 2 and "--compile" in err and "Traceback" not in err


def test_the_hooks_are_gone_after_the_layer_run():
    model = Residual()
    profile(model, layers=True, **FAST)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


@pytest.mark.slow
def test_layer_times_add_up_to_the_median_latency():
    """The issue's target: the layers of resnet18 (batch 1, one thread) add up to its median latency within 15%.

    A timing test, so slow and run on a quiet machine; benchmarks/profile_check.py runs the same check.
    """
    ratios = []
    for _ in range(3):
        r = profile("resnet18", device="cpu", threads=1, warmup_s=0.5, min_time_s=0.2, repeats=10, layers=True).iloc[0]
        ratios.append(r["layer_time_sum_ratio"])
    assert abs(statistics.median(ratios) - 1) <= LAYER_SUM_TOLERANCE, ratios
