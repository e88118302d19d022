"""Kinds from the analysis's rows, and the roofline-form fit."""

import math

import numpy as np
import pytest
from torch import nn

import archcost
from archcost.cost.workload import Workload
from archcost.predict.calibrate import features, kernels
from archcost.predict.fit import Rule, errors, fit_joint, fit_rule, peak_seconds_per_flop, sum_errors
from archcost.predict.kinds import FALLBACKS, LARGE_TENSOR_BYTES, kind_of, row_dispatches, row_large_bytes, rule_chain


def _kind(module, shape, batch=1):
    (row,) = archcost.analyze(module, input_size=shape, batch_size=batch).layers
    return kind_of(row)


@pytest.mark.parametrize(
    ("module", "shape", "kind"),
    [
        (nn.Conv2d(64, 64, 3, padding=1), (64, 56, 56), "conv"),  # 64 * 9 MACs per output: a multiple of C_in
        (nn.Conv2d(3, 64, 7, 2, 3), (3, 224, 224), "conv_stem"),  # the stem: 3 * 49, 3 input channels
        (nn.Conv2d(4, 64, 3, padding=1), (4, 32, 32), "conv_stem"),  # at most STEM_CHANNELS in
        (nn.Conv2d(5, 64, 3, padding=1), (5, 32, 32), "conv"),  # more: a dense one
        (nn.Conv2d(64, 256, 1), (64, 56, 56), "conv_pointwise"),  # 64 MACs per output = C_in
        (nn.Conv2d(144, 144, 3, padding=1, groups=144), (144, 56, 56), "conv_depthwise"),  # 9 = 3 * 3
        (nn.Conv2d(32, 32, 7, padding=3, groups=32), (32, 56, 56), "conv_depthwise"),  # 49 > C_in, still 1 per group
        (nn.Conv2d(128, 128, 3, padding=1, groups=32), (128, 56, 56), "conv_grouped"),  # ResNeXt: 4 * 9 = 36
        (nn.Conv2d(240, 240, 1, groups=3), (240, 28, 28), "conv_grouped"),  # ShuffleNet v1: 80 per output
        (nn.Conv1d(64, 64, 3), (64, 100), "conv_1d"),  # dense, one spatial dimension
        (nn.Conv1d(64, 128, 1), (64, 100), "conv_1d"),  # pointwise too
        (nn.Conv1d(64, 64, 3, groups=64), (64, 100), "conv_depthwise"),  # depthwise stays depthwise
        (nn.Tanh(), (6, 28, 28), "activation_tanh"),
        (nn.Linear(512, 1000), (512,), "linear_gemv"),  # one input row: a matrix-vector product
        (nn.Linear(512, 64), (16, 512), "linear"),  # 16 rows: a matrix-matrix product
        (nn.BatchNorm2d(64), (64, 8, 8), "batch_norm"),
        (nn.LayerNorm(768), (197, 768), "layer_norm"),
        (nn.ReLU6(), (197, 768), "activation"),
        (nn.GELU(), (197, 768), "activation_transcendental"),
        (nn.MaxPool2d(2), (64, 8, 8), "max_pool"),
        (nn.AvgPool2d(2), (64, 8, 8), "avg_pool"),
        (nn.SiLU(), (64, 8, 8), "activation_transcendental"),
        (nn.Conv2d(256, 512, 1, 2), (256, 56, 56), "conv_pointwise_strided"),
        (nn.AdaptiveAvgPool2d(1), (64, 8, 8), "adaptive_pool"),
        (nn.Upsample(scale_factor=2), (64, 8, 8), "upsample"),
        (nn.Flatten(), (64, 8, 8), "noop"),
        (nn.Identity(), (64, 8, 8), "noop"),  # no op at all
        (nn.LocalResponseNorm(5), (64, 8, 8), "local_response_norm"),
    ],
)
def test_kind_of_rows(module, shape, kind):
    assert _kind(module, shape) == kind


def test_a_tanh_between_multiplies_is_a_tanh():
    # LeNet-5's a * tanh(s * x): three parts of equal FLOPs; the activation decides, not the first multiply
    rows = {r.name: r for r in archcost.analyze(Workload.of("lenet5")).layers}
    assert [p.op for p in rows["features.c1_act"].parts] == ["mul", "tanh", "mul"]
    assert kind_of(rows["features.c1_act"]) == "activation_tanh"


def test_op_rows_take_their_own_op():
    report = archcost.analyze(Workload.of("resnet18"))
    kinds = {r.name: kind_of(r) for r in report.layers}
    assert (
        kinds["conv2_x.0/add"] == "elementwise" and kinds["fc"] == "linear_gemv" and kinds["avgpool"] == "adaptive_pool"
    )
    assert kinds["conv1"] == "conv_stem" and kinds["conv2_x.0.conv1"] == "conv"
    at_8 = archcost.analyze(Workload.of("resnet18").with_batch(8))
    assert {r.name: kind_of(r) for r in at_8.layers}["fc"] == "linear"


def test_every_full_kernel_is_the_kind_it_was_designed_for():
    found = kernels("full")
    assert len(found) > 200 and len({k.key for k in found}) == len(found)
    wrong = [(k.key, k.kind, kind) for k in found if (kind := features(k)[0]) != k.kind]
    assert wrong == []
    designed = {k.kind for k in found if not k.block}
    assert designed >= {"conv", "conv_depthwise", "conv_pointwise", "linear", "attention", "batch_norm", "cat"}
    assert "attention_small_head" in designed  # sdpa 2x64x8 is small-headed, 4x1024x16 is not: both classified
    assert designed <= set(FALLBACKS) and "local_response_norm" in designed


def test_designed_blocks_are_several_known_layers_at_batch_1_and_8():
    blocks = [k for k in kernels("full") if k.block]
    assert len(blocks) == 128 and {k.batch for k in blocks} == {1, 8} and {k.kind for k in blocks} == {"block"}
    seen = set()
    for k in blocks[::9]:  # a sample: analysing all 126 takes a while
        kind, flops, nbytes, rows = features(k)
        assert kind == "block" and len(rows) >= 3, k.key
        assert math.isclose(flops, sum(r[1] for r in rows)) and math.isclose(nbytes, sum(r[2] for r in rows))
        seen |= {r[0] for r in rows}
    assert "other" not in seen and seen <= set(FALLBACKS)
    assert {"conv", "batch_norm", "activation"} <= seen


def test_every_fallback_names_a_kind():
    for kind, chain in FALLBACKS.items():
        assert kind not in chain and set(chain) <= set(FALLBACKS), kind
    assert rule_chain("attention")[:3] == ("attention", "matmul", "linear")
    assert rule_chain("other", macs=10, flops=20)[1] == "matmul"  # a contraction nothing classifies
    assert rule_chain("other", flops=20)[1] == "elementwise"


def test_fit_recovers_a_roofline():
    rng = np.random.default_rng(0)
    flops, nbytes = rng.uniform(1e6, 1e9, 50), rng.uniform(1e5, 1e8, 50)
    truth = Rule("max", 1 / 50e9, 1 / 10e9, 5e-6)
    times = [truth.seconds(f, b) for f, b in zip(flops, nbytes, strict=True)]
    rule = fit_rule(flops, nbytes, times)
    assert rule.form == "max"
    assert math.isclose(rule.seconds_per_flop, truth.seconds_per_flop, rel_tol=1e-3)
    assert math.isclose(rule.seconds_per_byte, truth.seconds_per_byte, rel_tol=1e-3)
    assert errors(rule, flops, nbytes, times).max_abs_pct < 0.1


def test_fit_picks_the_additive_form_when_it_fits():
    flops, nbytes = [1e6, 5e7, 2e8, 1e9, 3e6], [4e7, 1e6, 3e7, 2e6, 5e5]
    truth = Rule("sum", 1e-11, 2e-10, 1e-5)
    rule = fit_rule(flops, nbytes, [truth.seconds(f, b) for f, b in zip(flops, nbytes, strict=True)])
    assert rule.form == "sum" and math.isclose(rule.overhead_s, 1e-5, rel_tol=1e-6)


@pytest.mark.parametrize("times", [[], [1.0, 0.0], [1.0, -1.0]])
def test_fit_refuses_bad_points(times):
    with pytest.raises(ValueError):
        fit_rule([1.0] * len(times), [1.0] * len(times), times)
    with pytest.raises(ValueError):
        fit_joint([[("conv", 1.0, 1.0)]] * len(times), times)


def test_joint_fit_recovers_rules_from_kernels_and_blocks():
    truth = {"conv": Rule("sum", 1 / 100e9, 1 / 20e9, 30e-6), "relu": Rule("sum", 0.0, 1 / 40e9, 4e-6)}
    rng = np.random.default_rng(1)

    def row(kind):
        return (kind, float(rng.uniform(1e7, 1e9)) if kind == "conv" else 0.0, float(rng.uniform(1e5, 1e7)))

    parts = [[row("conv")] for _ in range(6)] + [[row("relu")] for _ in range(4)]
    parts += [[row("conv"), row("relu"), row("conv")] for _ in range(5)]
    times = [sum(truth[k].seconds(f, b) for k, f, b in rows) for rows in parts]
    fitted = fit_joint(parts, times, [0.2] * 10 + [1.0] * 5)
    assert set(fitted) == {"conv", "relu"}
    for kind, rule in truth.items():
        got = fitted[kind]
        assert got.form == "sum" and math.isclose(got.overhead_s, rule.overhead_s, rel_tol=1e-4), kind
        assert math.isclose(got.seconds_per_byte, rule.seconds_per_byte, rel_tol=1e-4), kind
    assert math.isclose(fitted["conv"].seconds_per_flop, truth["conv"].seconds_per_flop, rel_tol=1e-4)
    assert sum_errors(fitted, parts, times).max_abs_pct < 0.01
    assert sum_errors({"conv": fitted["conv"]}, parts[-5:], times[-5:]).max_abs_pct > 1  # relu's share left out


def test_dispatches_count_the_ops_that_run_a_kernel():
    report = archcost.analyze(Workload.of("lenet5"))
    by_name = {r.name: r for r in report.layers}
    assert row_dispatches(by_name["features.c1"]) == 1  # a Conv2d
    assert row_dispatches(by_name["features.c1_act"]) == 3  # a * tanh(s * x): mul, tanh, mul
    assert row_dispatches(by_name["classifier.flatten"]) == 1  # a view: none run, counted as the row's one
    assert row_dispatches(by_name["features.s2"]) == 1  # view and expand are free, the conv2d runs


def test_joint_fit_pays_the_overhead_per_dispatch():
    truth = {"conv": Rule("sum", 1 / 100e9, 1 / 20e9, 30e-6), "elementwise": Rule("sum", 0.0, 1 / 40e9, 5e-6)}
    rng = np.random.default_rng(2)

    def row(kind, dispatches=1.0):
        flops = float(rng.uniform(1e7, 1e9)) if kind == "conv" else 0.0
        return (kind, flops, float(rng.uniform(1e5, 1e7)), dispatches)

    parts = [[row("conv")] for _ in range(6)] + [[row("elementwise", float(1 + i % 3))] for i in range(6)]
    parts += [[row("conv"), row("elementwise", 3.0), row("conv")] for _ in range(5)]
    times = [sum(truth[r[0]].seconds(*r[1:]) for r in rows) for rows in parts]
    fitted = fit_joint(parts, times)
    assert math.isclose(fitted["elementwise"].overhead_s, 5e-6, rel_tol=1e-4)
    assert math.isclose(fitted["conv"].overhead_s, 30e-6, rel_tol=1e-4)
    assert truth["elementwise"].seconds(0, 0, 3) == pytest.approx(15e-6)
    assert sum_errors(fitted, parts, times).max_abs_pct < 1e-3


def test_joint_fit_is_not_biased_low_by_noise_that_multiplies():
    """Times off by x2 and x0.5 in turn: the log-ratio loss lands on the rule between them (each point off by the
    same factor either way); the relative error's optimum would sit at 0.59 of it ((1 / 0.5 + 1 / 2) /
    (1 / 0.5 ** 2 + 1 / 2 ** 2)), under-predicting."""
    truth = Rule("sum", 1 / 100e9, 0.0, 0.0)
    flops = [1e7 * (i + 1) for i in range(8)]
    parts = [[("conv", f, 0.0)] for f in flops]
    times = [truth.seconds(f, 0.0) * (2.0 if i % 2 else 0.5) for i, f in enumerate(flops)]
    fitted = fit_joint(parts, times)
    assert math.isclose(fitted["conv"].seconds_per_flop, truth.seconds_per_flop, rel_tol=1e-3)
    assert fitted["conv"].seconds_per_byte == 0.0 and fitted["conv"].overhead_s < 1e-12  # columns unused or zero


def test_large_bytes_are_the_rows_tensors_of_the_threshold_or_more():
    report = archcost.analyze(Workload.of("vgg16", batch_size=8))
    by_name = {r.name: r for r in report.layers}
    # conv1_1: 8x3x224x224 in (4.8 MB, small), 8x64x224x224 out (103 MB, large)
    assert row_large_bytes(by_name["features.conv1_1"], 4) == 8 * 64 * 224 * 224 * 4
    assert row_large_bytes(by_name["features.conv1_2"], 4) == 2 * 8 * 64 * 224 * 224 * 4
    assert row_large_bytes(by_name["features.conv5_3"], 4) == 0  # 8x512x14x14: 3.2 MB
    assert 8 * 512 * 14 * 14 * 4 < LARGE_TENSOR_BYTES <= 8 * 64 * 224 * 224 * 4
    small = archcost.analyze(Workload.of("vgg16", batch_size=1))
    assert all(row_large_bytes(r, 4) == 0 for r in small.layers)  # 64x224x224 at batch 1: 12.8 MB


def test_joint_fit_recovers_a_price_per_large_byte():
    """Points whose time has a term in large tensors' bytes: the fit finds it beside the traffic term, and the
    rule prices a row without large tensors as before."""
    truth = Rule("sum", 1 / 100e9, 1 / 20e9, 30e-6, 1 / 2e9)
    rng = np.random.default_rng(3)
    parts = []
    for i in range(12):
        nbytes = float(rng.uniform(1e6, 3e8))
        parts.append([("conv", float(rng.uniform(1e8, 3e10)), nbytes, 1.0, nbytes if i % 2 else 0.0)])
    times = [truth.seconds(*r[0][1:]) for r in parts]
    got = fit_joint(parts, times)["conv"]
    assert math.isclose(got.seconds_per_large_byte, truth.seconds_per_large_byte, rel_tol=1e-3)
    assert math.isclose(got.seconds_per_byte, truth.seconds_per_byte, rel_tol=1e-3)
    assert got.seconds(1e9, 1e6) == pytest.approx(truth.seconds(1e9, 1e6), rel=1e-3)


def test_no_rule_is_faster_per_flop_than_the_fastest_point():
    """Points where FLOPs and bytes move together let the fit trade one for the other: bounded by the fastest FLOP
    rate any point showed, it cannot price a FLOP below that."""
    flops = [1e8 * (i + 1) for i in range(6)]
    parts = [[("conv", f, f / 4, 1.0)] for f in flops]  # bytes tied to FLOPs
    times = [f / 100e9 + 1e-5 for f in flops]  # 100 GFLOP/s and an overhead
    peak = peak_seconds_per_flop(flops, times)
    assert 1 / peak < 100e9 and peak == pytest.approx(min(t / f for f, t in zip(flops, times, strict=True)))
    free = fit_joint(parts, times, min_seconds_per_flop=0.0)["conv"]
    bound = fit_joint(parts, times, min_seconds_per_flop=peak)["conv"]
    assert bound.seconds_per_flop >= peak * (1 - 1e-9)
    assert sum_errors({"conv": bound}, parts, times).max_abs_pct < 5
    assert free.seconds(1e8, 2.5e7) == pytest.approx(times[0], rel=0.05)
    assert peak_seconds_per_flop([0.0], [1.0]) == 0.0
    with pytest.raises(ValueError, match="min_seconds_per_flop"):
        fit_joint(parts, times, min_seconds_per_flop=-1.0)


@pytest.mark.parametrize(("need_weights", "kind"), [(True, "attention_weights"), (False, "attention")])
def test_multihead_attention_is_its_own_kind_when_it_returns_its_weights(need_weights, kind):
    from archcost.predict.calibrate import SelfAttention

    rows = archcost.analyze(SelfAttention(32, 4, need_weights), input_size=(64, 32), device="meta").layers
    assert [kind_of(r) for r in rows if r.type == "multi_head_attention_forward"] == [kind]
    assert rule_chain("attention_weights")[:2] == ("attention_weights", "attention")


def test_explicit_attention_scores_are_traffic_of_their_row():
    from archcost.predict.calibrate import SelfAttention
    from archcost.predict.kinds import SCORE_PASSES, row_features, score_bytes
    from archcost.profiling.roofline import row_traffic_bytes

    rows = archcost.analyze(SelfAttention(32, 4, True), input_size=(16, 32), batch_size=2).layers
    (mha,) = [r for r in rows if kind_of(r) == "attention_weights"]
    scores = 2 * 4 * 16 * 16  # N h L_q L_k
    assert score_bytes(mha, 4) == SCORE_PASSES * scores * 4
    assert row_features(mha, 4)[1] == row_traffic_bytes(mha, 4) + SCORE_PASSES * scores * 4
    fused = archcost.analyze(SelfAttention(32, 4, False), input_size=(16, 32), batch_size=2).layers
    assert all(score_bytes(r, 4) == 0 for r in fused)  # the fused path keeps no score matrix
    assert score_bytes(archcost.analyze(nn.Linear(8, 8), input_size=(8,)).layers[0], 4) == 0
