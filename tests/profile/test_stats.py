"""Statistics of timing samples, warm-up settling and iteration calibration: pure, exact."""

import statistics

import pytest

from archcost.profiling.stats import (
    calibrate,
    coefficient_of_variation,
    iterations_for,
    percentile,
    settled,
    spread,
    summarize,
)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([1, 2, 3, 4, 5], 50, 3),
        ([1, 2, 3, 4, 5], 0, 1),
        ([1, 2, 3, 4, 5], 100, 5),
        ([1, 2, 3, 4, 5], 10, 1 + 0.4 * (2 - 1)),  # position (5 - 1) * 0.10 = 0.4
        ([1, 2, 3, 4, 5], 90, 4 + 0.6 * (5 - 4)),  # position (5 - 1) * 0.90 = 3.6
        ([10, 0], 25, 0 + 0.25 * 10),  # unsorted input: position 0.25 between 0 and 10
        ([7], 90, 7),
    ],
)
def test_percentile_interpolates_linearly_like_numpy(values, q, expected):
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_matches_numpy_on_an_irregular_sample():
    np = pytest.importorskip("numpy")
    xs = [0.013, 0.011, 0.019, 0.012, 0.0125, 0.0111, 0.03]
    for q in (10, 50, 90):
        assert percentile(xs, q) == pytest.approx(float(np.percentile(xs, q)))


def test_percentile_rejects_nonsense():
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summary_of_samples():
    xs = [0.010, 0.012, 0.011, 0.013, 0.014]
    s = summarize(xs)
    assert s.median_s == 0.012
    assert s.p10_s == pytest.approx(0.010 + 0.4 * 0.001)  # sorted 10,11,12,13,14 ms; position 0.4
    assert s.p90_s == pytest.approx(0.013 + 0.6 * 0.001)  # position 3.6
    assert s.mean_s == pytest.approx(0.012)
    assert (s.min_s, s.max_s, s.samples) == (0.010, 0.014, 5)
    assert s.cv == pytest.approx(statistics.stdev(xs) / 0.012)
    assert s.throughput(8) == pytest.approx(8 / 0.012)  # images per second = batch / median


def test_coefficient_of_variation_of_one_or_constant_samples_is_zero():
    assert coefficient_of_variation([0.5]) == 0
    assert coefficient_of_variation([0.5, 0.5, 0.5]) == 0
    assert coefficient_of_variation([1.0, 3.0]) == pytest.approx(statistics.stdev([1.0, 3.0]) / 2.0)


def test_warm_up_settles_when_two_windows_agree():
    slow_then_steady = [0.5, 0.2, 0.1] + [0.010] * 10
    assert settled(slow_then_steady, window=5, tolerance=0.05)
    still_falling = [0.020, 0.019, 0.018, 0.017, 0.016, 0.015, 0.014, 0.013, 0.012, 0.011]
    assert not settled(still_falling, window=5)  # median 0.018 then 0.013: 28% apart
    assert not settled([0.01] * 9, window=5)  # not two windows yet


@pytest.mark.parametrize(
    ("per_iter", "min_time", "expected"),
    [
        (0.001, 0.2, 200),  # 0.2 / 0.001
        (0.003, 0.2, 67),  # ceil(66.67)
        (0.5, 0.2, 1),  # one call already lasts longer than min-time
        (0.0, 0.2, 1_000_000),  # an unmeasurably fast call: the cap
        (0.001, 0.0, 1),
    ],
)
def test_iterations_for(per_iter, min_time, expected):
    assert iterations_for(per_iter, min_time) == expected


def test_calibrate_reaches_min_time_with_a_fake_clock():
    calls = []

    def block(n):  # 1.5 ms per call, plus 0.1 ms fixed overhead per block
        calls.append(n)
        return 0.0015 * n + 0.0001

    n, elapsed = calibrate(block, 0.2, first_guess=1)
    assert elapsed >= 0.2
    assert 0.0015 * n + 0.0001 == elapsed
    assert n <= 1.1 * 0.2 / 0.0015 + 2  # does not overshoot by more than the 10% margin
    assert calls[0] == 1 and len(calls) <= 4


def test_calibrate_escapes_a_clock_that_reads_zero():
    def block(n):  # a coarse clock: anything under 100 calls reads as 0 s
        return 0.0 if n < 100 else n * 1e-4

    n, elapsed = calibrate(block, 0.05)
    assert elapsed >= 0.05 and n >= 500


def test_calibrate_keeps_a_good_first_guess():
    seen = []
    n, _ = calibrate(lambda k: seen.append(k) or 0.01 * k, 0.2, first_guess=25)
    assert (n, seen) == (25, [25])


def test_spread_is_max_over_min():
    assert spread([0.100, 0.105, 0.102]) == pytest.approx(0.105 / 0.100)


def test_warm_up_excludes_the_first_call_and_stops_when_settled():
    from archcost.profiling.timing import warm_up

    class FakeTimer:  # a first call of 10 s (compilation), then 0.2 s, 0.15 s, then a steady 0.1 s
        def __init__(self):
            self.now = 0.0
            self.times = iter([10.0, 0.2, 0.15] + [0.1] * 1000)

        def block(self, fn, n):
            t = next(self.times)
            self.now += t
            return t

    timer = FakeTimer()
    times, ok = warm_up(lambda: None, timer, warmup_s=1.0, clock=lambda: timer.now)
    assert ok and times[0] == 10.0  # the compilation did not use up the 1 s warm-up (nor its 5 s cap)
    # 1 s after the first call needs 0.2 + 0.15 + 0.1 * k >= 1.0: k >= 7 steady calls (10 calls in all).
    # Settled needs the medians of the last two windows of 5 to agree: at 10 calls the earlier window
    # [10, 0.2, 0.15, 0.1, 0.1] has median 0.15 against 0.1; at 11 it is [0.2, 0.15, 0.1, 0.1, 0.1] -> 0.1.
    assert len(times) == 11


def test_warm_up_gives_up_on_settling_at_five_times_the_warm_up():
    from archcost.profiling.timing import warm_up

    class Drifting:  # every call 10% slower than the last: never settles
        def __init__(self):
            self.now, self.t = 0.0, 0.01

        def block(self, fn, n):
            self.t *= 1.1
            self.now += self.t
            return self.t

    timer = Drifting()
    times, ok = warm_up(lambda: None, timer, warmup_s=0.5, clock=lambda: timer.now)
    assert not ok and timer.now - times[0] >= 0.5 * 5


def test_measure_with_fixed_iterations_skips_calibration_and_warm_up():
    import torch

    from archcost.profiling.timing import measure

    calls = []
    t = measure(lambda: calls.append(1), torch.device("cpu"), warmup_s=0.0, warmup_window=1, iterations=7, repeats=2)
    assert t.iterations == 7 and t.warmup_iterations == 1
    assert len(calls) == 1 + 2 * 7  # one warm-up call, two samples of seven
    with pytest.raises(ValueError, match="iterations"):
        measure(lambda: None, torch.device("cpu"), iterations=0)


def test_steal_is_the_stolen_share_of_the_ticks_between_two_readings(tmp_path, monkeypatch):
    import builtins

    from archcost.profiling import timing

    stat = tmp_path / "stat"
    real_open = builtins.open

    def fake_open(path, *a, **kw):
        return real_open(stat if path == "/proc/stat" else path, *a, **kw)

    monkeypatch.setattr(builtins, "open", fake_open)
    stat.write_text("cpu  100 0 50 800 10 0 5 35 0 0\ncpu0 50 0 25 400 5 0 2 18 0 0\n")
    first = timing.cpu_ticks()
    assert first == (35, 1000)  # steal is the eighth number; all ticks the first eight (guest is inside user)
    stat.write_text("cpu  150 0 60 860 10 0 5 55 0 0\n")
    assert timing.steal_between(first, timing.cpu_ticks()) == pytest.approx(20 / 140)
    assert timing.steal_between(first, first) is None  # no tick passed
    assert timing.steal_between(None, first) is None
    stat.write_text("intr 1 2 3\n")
    assert timing.cpu_ticks() is None


def test_faults_per_call_count_the_pages_a_fresh_map_takes():
    import subprocess
    import sys

    from archcost.profiling.environment import huge_pages

    mode, torch_asks = huge_pages()
    if mode == "always" or (mode == "madvise" and torch_asks):
        pytest.skip("2 MiB pages: a fresh map takes 32 faults, not 16,384")
    # 64 MiB is over glibc's largest mmap threshold: in a fresh process (whose heap has no 64 MiB free to carve it
    # from) it is mapped afresh and faulted in, 16,384 pages of 4 KiB, on every call
    script = (
        "import torch\nfrom archcost.profiling.timing import measure\n"
        "t = measure(lambda: torch.empty(2**24).fill_(1.0), torch.device('cpu'), warmup_s=0.0, min_time_s=0.01, "
        "repeats=2)\nprint(t.minor_faults_per_call)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert 16_384 * 0.95 < float(out.stdout.split()[-1]) < 16_384 * 1.1


def test_a_cpu_measurement_records_what_the_machine_took():
    import torch

    from archcost.profiling.timing import cpu_ticks, measure, timing_fields

    t = measure(lambda: sum(range(2000)), torch.device("cpu"), warmup_s=0.01, min_time_s=0.02, repeats=3)
    fields = timing_fields(t, 1)
    assert 0.3 < fields["process_cpu_per_wall"] < 1.5  # a Python loop on one thread: about one CPU second per second
    assert 0 <= fields["minor_faults_per_call"] < 1  # it allocates nothing the heap does not have
    if cpu_ticks() is not None:  # Linux
        assert 0.0 <= fields["cpu_steal_fraction"] <= 1.0
