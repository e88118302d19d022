"""``plot`` and ``report`` with several ``--results`` files (a sweep written on several machines): one table,
and devices never mixed, a GPU kind counting as part of the device (every Ray worker's GPU is its cuda:0)."""

import json

import pandas as pd

from archcost.cli import main
from archcost.profiling.results import SCHEMA
from archcost.report.data import measured_frame


def results_file(path, model, device="cpu", name="test cpu"):
    """Hand-set ok records of one model at batch 1, 2, 4, as `archcost profile --append` writes them."""
    lines = []
    for batch in (1, 2, 4):
        latency = 0.01 * batch
        record = {
            "schema": SCHEMA, "model": model, "device": device, "env_device_name": name, "status": "ok",
            "dtype": "float32", "batch_size": batch, "latency_median_s": latency, "throughput_ips": batch / latency,
            "memory_peak_bytes": 1e8 + batch * 1e7, "macs": 1e9 * batch, "params": 5e6, "flops": 2e9 * batch,
        }  # fmt: skip
        lines.append(json.dumps(record))
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_several_files_of_one_device_are_one_table(tmp_path):
    a = results_file(tmp_path / "a.jsonl", "resnet50")
    b = results_file(tmp_path / "b.jsonl", "mobilenet_v2")
    df = measured_frame([a, b], None, None)
    assert sorted(set(df["model"])) == ["mobilenet_v2", "resnet50"] and len(df) == 6
    out = tmp_path / "l.png"
    assert main(["plot", "latency-vs-batch", "--results", a, "--results", b, "--output", str(out)]) == 0
    assert out.stat().st_size > 5000
    argv = ["report", "--models", "resnet50,mobilenet_v2", "--results", a, "--results", b]
    assert main([*argv, "--output", str(tmp_path / "r")]) == 0
    measured = pd.read_csv(tmp_path / "r" / "measured.csv")  # the report's measured table: rows of both files
    assert sorted(zip(measured["model"], measured["batch_size"], strict=True)) == [
        (m, b) for m in ("mobilenet_v2", "resnet50") for b in (1, 2, 4)
    ]


def test_two_gpu_kinds_at_cuda0_are_two_devices(tmp_path, capsys):
    a = results_file(tmp_path / "a.jsonl", "resnet50", "cuda:0", "NVIDIA A100-SXM4-80GB")
    b = results_file(tmp_path / "b.jsonl", "resnet50", "cuda:0", "NVIDIA H100 80GB HBM3")
    args = ["plot", "latency-vs-batch", "--results", a, "--results", b, "--output", str(tmp_path / "l.png")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "several devices (cuda:0 (NVIDIA A100-SXM4-80GB); cuda:0 (NVIDIA H100 80GB HBM3))" in err
    assert main([*args, "--device", "cuda:0"]) == 2  # the index alone does not pick one
    assert main([*args, "--device", "NVIDIA H100 80GB HBM3"]) == 0
    assert set(measured_frame([a, b], "cuda:0 (NVIDIA A100-SXM4-80GB)", None)["env_device_name"]) == {
        "NVIDIA A100-SXM4-80GB"
    }


def test_report_with_results_of_other_models_is_a_clear_error(tmp_path, capsys):
    from archcost.cli import main
    from archcost.profiling.results import append_records, new_record

    path = tmp_path / "r.jsonl"
    append_records(path, [new_record(model="vgg16", batch_size=1, device="cpu", dtype="float32", status="ok",
                                     latency_median_s=0.1, throughput_ips=10.0, mode="infer")])  # fmt: skip
    code = main(["report", "--models", "lenet5", "--results", str(path), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "no inference measurement of lenet5" in err and "vgg16" in err and "Traceback" not in err
