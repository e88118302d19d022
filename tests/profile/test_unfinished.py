"""The one writer of records for batch sizes not finished (results.unfinished_records)."""

from __future__ import annotations

from archcost.profiling.results import FIELDS, SCHEMA, unfinished_records
from archcost.profiling.sweep import ProfileConfig


def test_records_for_the_batch_sizes_not_done_carry_the_settings_and_the_reason():
    config = ProfileConfig(dtype="bfloat16", threads=2, channels_last=True, mode="train", min_time_s=0.5)
    recs = unfinished_records(
        config, (1, 2, 4, 8), {1, 4}, model="m", device="cpu", run_id="r", status="oom", error="why",
        env_host="h", not_a_field="dropped",
    )  # fmt: skip
    assert [r["batch_size"] for r in recs] == [2, 8]
    for r in recs:
        assert set(r) == set(FIELDS) and r["schema"] == SCHEMA
        settings = (r["dtype"], r["threads"], r["channels_last"], r["mode"], r["min_time_s"])
        assert settings == ("bfloat16", 2, True, "train", 0.5)
        assert (r["model"], r["device"], r["status"], r["error"], r["env_host"]) == ("m", "cpu", "oom", "why", "h")
        assert r["latency_median_s"] is None
