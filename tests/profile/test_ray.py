"""``profile --ray``: a sweep on a local Ray cluster on the CPU, and the bad input around it.

The tests without a cluster (address forms, what a task asks for, Ray missing, an unreachable address, a
worker without CUDA) run everywhere and need no Ray. The cluster tests start one local cluster for the module
(2 CPUs, and 1 GPU declared to Ray that the CPU-only torch here cannot see: a CUDA task lands on a worker
without CUDA) and are ``slow``: each task runs in a fresh worker process, which imports torch. They need
``pip install "archcost[ray]"``; without it they are skipped, and the skip is reported (-ra).
"""

import json
import socket
import sys
import time
import types

import pytest
import torch

from archcost.cli import main
from archcost.errors import InputError
from archcost.profiling import distributed as dist
from archcost.profiling import profile
from archcost.profiling.results import read_results
from archcost.profiling.sweep import ProfileConfig

FAST = {"warmup_s": 0.0, "min_time_s": 0.001, "repeats": 2, "roofline": False, "power": False}
TWO = "tests.profile.models:TwoLayer"
CRASHES = "tests.profile.models:Crashes"  # os._exit in forward: the worker process dies mid-task


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


# -- without a cluster --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address, target",
    [
        ("ray://head:10001", ("head", 10001)),
        ("ray://head", ("head", 10001)),  # Ray Client's port
        ("10.0.0.5:6379", ("10.0.0.5", 6379)),
        ("head", ("head", 6379)),  # the GCS port
        ("ray://[::1]:10001", ("::1", 10001)),
        ("auto", None),
        ("local", None),
    ],
)
def test_address_forms(address, target):
    assert dist.parse_address(address) == target


@pytest.mark.parametrize("address", ["resnet18,vgg16", "ray://head:99999", "http://head:8265"])
def test_a_malformed_address_is_bad_input(address):
    with pytest.raises(InputError, match="Ray address|out of range"):
        dist.parse_address(address)


def test_an_unreachable_address_is_a_clear_error_at_once(monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    with pytest.raises(InputError, match=rf"cannot reach the Ray cluster at ray://127.0.0.1:{port}") as info:
        dist.check_reachable("127.0.0.1", port, f"ray://127.0.0.1:{port}", timeout_s=2)
    assert time.perf_counter() - start < 2 and "ray start --head" in info.value.hint

    def silent(address, timeout):
        raise TimeoutError

    monkeypatch.setattr(dist.socket, "create_connection", silent)
    with pytest.raises(InputError, match=r"no answer from head:10001 within 0.5 s"):
        dist.check_reachable("head", 10001, "ray://head:10001", timeout_s=0.5)


GPU_NODE, CPU_NODE = {"CPU": 8.0, "GPU": 2.0, "accelerator_type:A100": 1.0}, {"CPU": 4.0}


def test_what_each_task_asks_for():
    assert dist.task_device("cuda", None, [GPU_NODE]) == ("cuda", {"num_gpus": 1, "num_cpus": 1})
    assert dist.task_device("auto", None, [CPU_NODE, GPU_NODE]) == ("cuda", {"num_gpus": 1, "num_cpus": 1})
    assert dist.task_device("auto", 2, [CPU_NODE]) == ("cpu", {"num_cpus": 2})
    assert dist.task_device("cpu", 8, [CPU_NODE, GPU_NODE]) == ("cpu", {"num_cpus": 8})
    assert dist.task_device("cpu", None, [CPU_NODE]) == ("cpu", {"num_cpus": 1})  # one CPU per task by default
    a100 = {"num_gpus": 1, "num_cpus": 1, "accelerator_type": "A100"}  # one GPU kind per results file
    assert dist.task_device("cuda", None, [CPU_NODE, GPU_NODE], "A100") == ("cuda", a100)


@pytest.mark.parametrize(
    "device, threads, nodes, match",
    [
        ("cuda", None, [CPU_NODE], "no node of the Ray cluster has a GPU"),
        ("cuda:1", None, [GPU_NODE], "Ray gives each task its GPU"),
        ("cpu", 16, [CPU_NODE, GPU_NODE], "no node of the Ray cluster has 16 CPUs"),
        ("tpu", None, [CPU_NODE], "unknown device"),
        ("cuda", None, [GPU_NODE], r"--accelerator H100: no node .* has that GPU kind \(it has: A100\)"),
        ("cpu", 2, [CPU_NODE], "--accelerator H100 is a GPU kind, and --device is cpu"),
    ],
)
def test_a_task_no_node_could_run_is_bad_input(device, threads, nodes, match):
    with pytest.raises(InputError, match=match):
        dist.task_device(device, threads, nodes, "H100" if "accelerator" in match else None)


def profile_args(tmp_path, *extra):
    return ["profile", TWO, "--device", "cpu", "--threads", "1", "--append", str(tmp_path / "r.jsonl"), *extra]


def test_ray_missing_names_the_extra_and_measures_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as when it is not installed
    assert main(profile_args(tmp_path, "--ray")) == 2
    err = capsys.readouterr().err
    assert 'pip install "archcost[ray]"' in err and "Traceback" not in err
    assert not (tmp_path / "r.jsonl").exists()
    with pytest.raises(InputError, match="needs Ray"):
        profile(TWO, device="cpu", threads=1, executor="ray", **FAST)


def test_an_unreachable_cluster_fails_before_any_work(tmp_path, monkeypatch, capsys):
    calls = []
    fake = types.SimpleNamespace(is_initialized=lambda: False, init=lambda *a, **k: calls.append((a, k)))
    monkeypatch.setitem(sys.modules, "ray", fake)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(profile_args(tmp_path, "--ray", f"ray://127.0.0.1:{port}")) == 2
    err = capsys.readouterr().err
    assert f"cannot reach the Ray cluster at ray://127.0.0.1:{port}" in err and "Traceback" not in err
    assert calls == [] and not (tmp_path / "r.jsonl").exists()
    assert main(profile_args(tmp_path, "--ray", "vgg16,resnet18")) == 2  # a model list where the address goes
    assert "is not a Ray address" in capsys.readouterr().err


def test_a_worker_without_cuda_records_unsupported_with_the_reason():
    """The body of a task, run here (no CUDA): what a CUDA task does on a worker whose torch finds no GPU."""
    config = ProfileConfig(device="cuda", batch_sizes=(1, 2), **{"warmup_s": 0.0, "min_time_s": 0.001})
    recs = list(dist.profile_task(TWO, "TwoLayer", config, "run1"))
    assert [(r["batch_size"], r["status"], r["device"]) for r in recs] == [
        (1, "unsupported", "cuda:0"),
        (2, "unsupported", "cuda:0"),
    ]
    host = socket.gethostname()
    for r in recs:
        assert r["error"].startswith(f"worker {host}: --device cuda asks for CUDA, but CUDA is not available here")
        assert r["env_host"] == host and r["env_torch"] and r["env_device_name"] is None
        assert r["run_id"] == "run1" and r["model"] == "TwoLayer"


# -- on a local cluster ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    ray = pytest.importorskip("ray", reason='the Ray tests need pip install "archcost[ray]"')
    if ray.is_initialized():
        ray.shutdown()
    ray.init(
        num_cpus=2,
        num_gpus=1,  # declared, not there: the CPU-only torch finds no CUDA on the worker
        include_dashboard=False,
        log_to_driver=False,
        logging_level="WARNING",
        object_store_memory=100 * 2**20,
    )
    yield ray
    ray.shutdown()


def wait_for_idle_cpus(ray, n, timeout_s=60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ray.available_resources().get("CPU", 0) >= n:
            return True
        time.sleep(0.5)
    return False


def sweep(models, results, batch_sizes="1,2", **more):
    return profile(
        models, device="cpu", threads=1, batch_sizes=batch_sizes, executor="ray", results_file=results, **FAST, **more
    )


@pytest.mark.slow
def test_a_sweep_on_a_local_cluster_resumes_and_survives_a_failing_model(cluster, tmp_path):
    results = tmp_path / "r.jsonl"
    models = [TWO, CRASHES, "lenet5"]
    df = sweep(models, results)
    written = lines(results)
    keys = [(r["model"], r["batch_size"]) for r in written]
    assert len(keys) == len(set(keys)) == 6 == len(df)  # every record written once
    assert sorted(keys) == [
        ("Crashes", 1),
        ("Crashes", 2),
        ("TwoLayer", 1),
        ("TwoLayer", 2),
        ("lenet5", 1),
        ("lenet5", 2),
    ]
    assert list(df["model"]) == ["TwoLayer", "TwoLayer", "Crashes", "Crashes", "lenet5", "lenet5"]  # asked order
    by = {(r["model"], r["batch_size"]): r for r in written}
    host, node = socket.gethostname(), cluster.get_runtime_context().get_node_id()
    for key in [("TwoLayer", 1), ("TwoLayer", 2), ("lenet5", 1), ("lenet5", 2)]:  # the models that work: measured
        r = by[key]
        assert r["status"] == "ok" and r["latency_median_s"] > 0 and r["threads"] == 1, key
        assert r["env_host"] == host and r["env_ray_node"] == node and r["env_torch"], key
    for b in (1, 2):  # the model whose worker died is a record with the reason, and did not stop the others
        r = by[("Crashes", b)]
        assert r["status"] == "error" and "died while measuring" in r["error"] and "WorkerCrashedError" in r["error"]
    assert len({r["run_id"] for r in written}) == 1
    assert not df.attrs["interrupted"]

    again = sweep(models, results, resume=True)
    assert len(again) == 0 and again.attrs["skipped"] == 6
    assert lines(results) == written  # --resume added nothing

    kept = [r for r in written if (r["model"], r["batch_size"]) != ("TwoLayer", 2)]
    results.write_text("".join(json.dumps(r) + "\n" for r in kept))
    from tests.profile.models import TwoLayer

    more = sweep([TwoLayer(), CRASHES, "lenet5"], results, resume=True)  # a module object: pickled to the worker
    assert list(zip(more["model"], more["batch_size"], more["status"], strict=True)) == [("TwoLayer", 2, "ok")]
    assert more.attrs["skipped"] == 5
    assert len(read_results(results)) == 6


class Sleepy(torch.nn.Module):
    """Sleeps SLEEP_S in every real forward (not on the meta device, where archcost analyses it)."""

    input_size = (3, 8, 8)

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        if x.device.type != "meta":
            time.sleep(SLEEP_S)
        return self.conv(x)


SLEEP_S = 600


@pytest.mark.slow
def test_ctrl_c_in_the_driver_keeps_what_was_written_and_cancels_the_rest(cluster, tmp_path, monkeypatch):
    import archcost.profiling as profile_module

    results = tmp_path / "r.jsonl"
    real = profile_module.append_records

    def write_then_ctrl_c(path, records):
        real(path, records)
        raise KeyboardInterrupt  # as Ctrl-C right after the first record was written

    monkeypatch.setattr(profile_module, "append_records", write_then_ctrl_c)
    df = sweep([TWO, "tests.profile.test_ray:Sleepy"], results)  # Sleepy holds the other CPU for 10 minutes
    assert df.attrs["interrupted"]
    written = lines(results)
    assert len(written) == 1 == len(df) and written[0]["status"] == "ok" and written[0]["model"] == "TwoLayer"
    assert written[0]["batch_size"] == df["batch_size"].iloc[0]
    assert wait_for_idle_cpus(cluster, 2, timeout_s=30), "the task still running was not cancelled"

    monkeypatch.setattr(profile_module, "append_records", real)
    rest = sweep([TWO], results, resume=True)
    assert rest.attrs["skipped"] == 1 and len(rest) == 1
    assert sorted(r["batch_size"] for r in lines(results)) == [1, 2]


@pytest.mark.slow
def test_a_cuda_task_on_a_worker_without_cuda_is_unsupported(cluster):
    df = profile(TWO, device="cuda", batch_sizes="1,2", executor="ray", **FAST)
    assert list(df["status"]) == ["unsupported", "unsupported"] and set(df["device"]) == {"cuda:0"}
    assert all("CUDA is not available here" in e and e.startswith("worker ") for e in df["error"])
    assert set(df["env_host"]) == {socket.gethostname()}


@pytest.mark.slow
def test_an_address_while_ray_is_running_here_is_bad_input(cluster):
    with pytest.raises(InputError, match="already initialised"):
        profile(TWO, device="cpu", threads=1, executor="ray", address="ray://head:10001", **FAST)
