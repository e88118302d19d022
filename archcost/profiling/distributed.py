"""``profile(..., executor="ray")`` / ``archcost profile --ray [ADDRESS]``: a sweep spread over a Ray cluster.

Each model of a sweep (one device configuration: device, dtype, threads, ...) is one Ray task that asks for
what its device needs (``num_gpus=1`` for CUDA, ``num_cpus=threads`` for the CPU) and runs
``sweep.iter_profile`` on the worker Ray gives it, in a fresh worker process (``max_calls=1``: the process
state of one model never shapes the next one's latency, as ``--isolate``). The task is a streaming
generator (Ray's ``num_returns="streaming"``): each record reaches the driver as soon as its batch size is
measured, and the driver, the only writer, appends it to the results file. Failures are records, never the
end of the sweep: a worker without the device the record asks for gives ``unsupported`` records with the
reason; a worker that crashes, is killed for memory (``ray.exceptions.OutOfMemoryError`` -> ``oom``) or
raises gives records for the batch sizes it did not finish.

Ray is an optional dependency (``pip install "archcost[ray]"``); nothing here imports it at module level.
Address forms, as ``ray.init`` resolves them (https://docs.ray.io/en/latest/ray-core/starting-ray.html):
``None`` (``RAY_ADDRESS``, else the cluster ``ray start`` last started on this machine, else a new local
one), ``"local"`` (always a new local one), ``"auto"`` (an existing one or an error), ``"HOST:PORT"`` (the
head's GCS port, 6379 by default) and ``"ray://HOST:PORT"`` (Ray Client, 10001 by default).
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from archcost.errors import ArchcostError, InputError, first_line
from archcost.profiling.results import FIELDS, new_record, unfinished_records

#: Seconds to wait for a TCP connection to a given cluster address before calling it unreachable.
CONNECT_TIMEOUT_S = 5.0
#: Seconds between checks for Ctrl-C while waiting for the next record.
WAIT_S = 1.0

INSTALL_HINT = 'install the extra: pip install "archcost[ray]" (Ray >= 2.9), on the driver and on every worker'


def import_ray():
    """The ``ray`` module, or ``InputError`` naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise InputError("--ray / executor='ray' needs Ray, which is not installed here", INSTALL_HINT) from None
    return ray


_ADDRESS = re.compile(r"(?P<scheme>ray://)?(?P<host>\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+)(?::(?P<port>\d{1,5}))?")


def parse_address(address: str) -> tuple[str, int] | None:
    """``(host, port)`` to check before connecting, or None for ``auto`` / ``local`` (nothing to reach).

    ``ray://HOST[:PORT]`` defaults to Ray Client's port 10001, ``HOST[:PORT]`` to the GCS port 6379.
    Anything else is ``InputError``."""
    text = address.strip()
    if text in ("auto", "local"):
        return None
    m = _ADDRESS.fullmatch(text)
    if not m:
        raise InputError(
            f"--ray {address!r} is not a Ray address",
            "give ray://HEAD:10001 (Ray Client), HEAD:6379 (the head's GCS), auto or local; "
            "with no address, put --ray after the model names",
        )
    port = int(m.group("port") or (10001 if m.group("scheme") else 6379))
    if not 0 < port < 65536:
        raise InputError(f"--ray {address!r}: port {port} is out of range", "give a port from 1 to 65535")
    return m.group("host").strip("[]"), port


def check_reachable(host: str, port: int, address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Open and close one TCP connection to ``host:port`` within ``timeout_s`` seconds, or ``InputError``.

    ``ray.init`` itself retries an unreachable address for a long time; this answers in seconds."""
    hint = (
        "check the address and that the cluster is up (`ray status` on the head; `ray start --head` starts "
        "one; Ray Client listens on port 10001); nothing was measured"
    )
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except socket.gaierror as exc:
        raise InputError(f"cannot reach the Ray cluster at {address}: unknown host {host!r} ({exc})", hint) from None
    except TimeoutError:
        raise InputError(
            f"cannot reach the Ray cluster at {address}: no answer from {host}:{port} within {timeout_s:g} s", hint
        ) from None
    except OSError as exc:
        raise InputError(
            f"cannot reach the Ray cluster at {address}: {host}:{port}: {exc.strerror or exc}", hint
        ) from None


@dataclass
class RaySession:
    """A connection to a Ray cluster; ``close()`` disconnects (and stops a local cluster) only if it connected."""

    ray: Any  # the ray module
    address: str | None
    owned: bool  # True: this session called ray.init, so close() calls ray.shutdown()
    nodes: list[dict] = field(default_factory=list)

    def close(self) -> None:
        if self.owned:
            self.ray.shutdown()
            self.owned = False

    def node_resources(self) -> list[dict]:
        """The resources of each live node (``{"CPU": 16.0, "GPU": 2.0, ...}``)."""
        return [n.get("Resources", {}) for n in self.nodes if n.get("Alive", n.get("alive", True))]


def connect(address: str | None = None, *, timeout_s: float = CONNECT_TIMEOUT_S) -> RaySession:
    """Connect to the Ray cluster at ``address`` (see the module docstring), before any work.

    A process that already called ``ray.init`` (a notebook, a test) is used as it is, with ``address=None``.
    Raises ``InputError`` when Ray is not installed, the address is malformed or unreachable within
    ``timeout_s`` seconds, or ``ray.init`` refuses (another Ray version on the cluster, authentication)."""
    ray = import_ray()
    if ray.is_initialized():
        if address:
            raise InputError(
                f"Ray is already initialised in this process, so --ray {address} cannot connect elsewhere",
                "call profile(executor='ray') without an address to use that cluster, or ray.shutdown() first",
            )
        return RaySession(ray, None, owned=False, nodes=ray.nodes())
    target = parse_address(address) if address else None
    if target is not None:
        check_reachable(*target, str(address), timeout_s)
    kwargs: dict = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address == "local":
        kwargs["include_dashboard"] = False
    try:
        ray.init(address=address or None, **kwargs)
    except Exception as exc:
        text = first_line(exc)
        raise InputError(
            f"cannot connect to the Ray cluster at {address or 'the default address'}: {text}",
            "check that the cluster runs the same Ray and Python versions as this machine "
            "(`ray status` on the head); nothing was measured",
        ) from None
    try:
        nodes = ray.nodes()
    except Exception:
        ray.shutdown()
        raise
    return RaySession(ray, address, owned=True, nodes=nodes)


def task_device(
    device: str, threads: int | None, node_resources: Sequence[dict], accelerator: str | None = None
) -> tuple[str, dict]:
    """The device every task measures on and the Ray resources one task asks for.

    ``auto`` is ``cuda`` when some node has a GPU, else ``cpu``. CUDA: ``num_gpus=1`` (Ray sets the
    worker's ``CUDA_VISIBLE_DEVICES``, so its GPU is ``cuda:0``; ``cuda:N`` with N > 0 is refused).
    CPU: ``num_cpus=threads`` (default ``environment.RAY_CPU_THREADS``, one: a task must not use more cores than
    it holds, or tasks sharing a node slow each other down). ``accelerator``: only GPUs of this kind (Ray's
    ``accelerator_type``, detected on each node: ``A100``, ``H100``, ``T4``, ...), so that a cluster of several
    GPU kinds gives one kind per results file. ``InputError`` when no node could ever run the task."""
    spec = (device or "auto").strip().lower()
    gpus = max((r.get("GPU", 0) for r in node_resources), default=0)
    cpus = max((r.get("CPU", 0) for r in node_resources), default=0)
    if spec == "auto":
        spec = "cuda" if gpus > 0 else "cpu"
    if re.fullmatch(r"cuda(:\d+)?", spec):
        if spec not in ("cuda", "cuda:0"):
            raise InputError(
                f"--device {spec} with --ray: Ray gives each task its GPU (it is the task's cuda:0)",
                "use --device cuda",
            )
        if gpus < 1:
            raise InputError(
                "--device cuda with --ray: no node of the Ray cluster has a GPU",
                "start GPU workers (`ray start --address HEAD:6379` on a GPU machine), or use --device cpu --threads N",
            )
        if accelerator:
            kinds = sorted({k.split(":", 1)[1] for r in node_resources for k in r if k.startswith("accelerator_type:")})
            if accelerator not in kinds:
                raise InputError(
                    f"--accelerator {accelerator}: no node of the Ray cluster has that GPU kind "
                    f"(it has: {', '.join(kinds) or 'none Ray could name'})",
                    "give one of those, as Ray names it",
                )
            return "cuda", {"num_gpus": 1, "num_cpus": 1, "accelerator_type": accelerator}
        return "cuda", {"num_gpus": 1, "num_cpus": 1}
    if accelerator:
        raise InputError(f"--accelerator {accelerator} is a GPU kind, and --device is {spec}", "add --device cuda")
    if spec != "cpu":
        raise InputError(f"unknown device {spec!r}", "use auto, cpu or cuda")
    from archcost.profiling.environment import ray_cpu_threads

    threads = ray_cpu_threads(threads)  # one CPU per task by default: tasks on one node never share a core
    if threads > cpus:
        raise InputError(
            f"--threads {threads} with --ray: no node of the Ray cluster has {threads} CPUs (the largest has {cpus:g})",
            f"use --threads {int(cpus) or 1} or fewer",
        )
    return "cpu", {"num_cpus": threads}


def _node_id(ray) -> str | None:
    if not ray.is_initialized():  # not inside a task (the function called directly): start nothing
        return None
    try:
        return ray.get_runtime_context().get_node_id()
    except Exception:
        return None


def profile_task(spec, name: str, config, run_id: str) -> Iterator[dict]:
    """The work of one Ray task: the records of ``spec`` at ``config.batch_sizes``, as measured on this worker.

    Runs ``sweep.iter_profile`` (device, threads, environment, device peaks cached per machine, the batch
    sweep). A device this worker lacks (``--device cuda`` on a worker whose torch finds no GPU) gives
    ``unsupported`` records with the reason; a model that cannot be built here (a ``file.py`` spec missing on
    this machine) gives ``error`` records. Every record carries ``env_host`` and ``env_ray_node``."""
    import torch

    from archcost.profiling.environment import environment
    from archcost.profiling.sweep import DeviceError, iter_profile

    try:
        import ray

        node = _node_id(ray)
    except ImportError:
        node = None
    done: set[int] = set()
    try:
        for rec in iter_profile([spec], config):
            done.add(rec["batch_size"])
            yield {**rec, "run_id": run_id, "env_ray_node": node}
        return
    except DeviceError as exc:
        status, why = "unsupported", exc.message
    except ArchcostError as exc:
        status, why = "error", exc.message
    env = environment(torch.device("cpu"), threads=torch.get_num_threads(), dtype=config.dtype, cudnn_benchmark=None)
    if config.device != "cpu":
        env["env_device_name"] = None  # the device asked for is not here: the CPU's name would mislabel it
    message = f"worker {env.get('env_host') or socket.gethostname()}: {why}"
    device = "cuda:0" if config.device == "cuda" else config.device
    yield from unfinished_records(
        config,
        config.batch_sizes,
        done,
        model=name,
        device=device,
        run_id=run_id,
        status=status,
        error=message,
        **env,
        env_ray_node=node,
    )


def _failure_of(exc: BaseException, ray) -> tuple[str, str]:
    """``(status, message)`` for a task that ended with ``exc`` instead of a record."""
    errors = ray.exceptions

    def why(e: BaseException) -> str:
        return first_line(e, with_type=True)

    ip = getattr(exc, "ip", None)
    where = f"the Ray worker at {ip}" if ip else "its Ray worker"
    if isinstance(exc, errors.OutOfMemoryError):
        return "oom", f"{where} was killed by Ray's memory monitor: {why(exc)}"
    if isinstance(exc, errors.RayTaskError):
        cause = getattr(exc, "cause", None) or exc
        return "error", f"archcost failed on {where} (archcost's bug: please report it): {why(cause)}"
    if isinstance(exc, errors.WorkerCrashedError):
        return "error", f"{where} died while measuring (a crash in the model's code or a kernel): {why(exc)}"
    return "error", f"the task did not finish on {where}: {why(exc)}"


@dataclass
class _Task:
    index: int
    name: str
    device: str
    batch_sizes: tuple[int, ...]
    done: set[int] = field(default_factory=set)
    worker: dict = field(default_factory=dict)  # env_host / env_ray_node, once a record named them


def ray_records(
    session: RaySession,
    models: Sequence,
    names: Sequence[str],
    config,
    batch_sizes: Sequence[Sequence[int]],
    run_id: str,
    accelerator: str | None = None,
) -> Generator[dict, None, None]:
    """Submit one task per model (``batch_sizes[i]`` for ``models[i]``; none for an empty tuple) and yield
    each record as it arrives, in the order they finish. Closing the generator (Ctrl-C in the caller)
    cancels the tasks that have not finished."""
    ray = session.ray
    device, resources = task_device(config.device, config.threads, session.node_resources(), accelerator)
    threads = resources["num_cpus"] if device == "cpu" else config.threads  # the torch threads a CPU task uses
    remote = ray.remote(max_calls=1)(profile_task).options(num_returns="streaming", max_retries=0, **resources)
    pending: dict = {}
    try:
        for i, (spec, name, sizes) in enumerate(zip(models, names, batch_sizes, strict=True)):
            if not sizes:
                continue
            task_config = replace(config, device=device, batch_sizes=tuple(sizes), isolate=False, threads=threads)
            gen = remote.remote(spec, name, task_config, run_id)
            pending[gen] = _Task(i, name, "cuda:0" if device == "cuda" else device, tuple(sizes))
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_S)
            for gen in ready:
                task = pending[gen]
                try:
                    ref = next(gen)
                except StopIteration:
                    del pending[gen]
                    continue
                try:
                    rec = ray.get(ref)
                except Exception as exc:
                    del pending[gen]
                    status, message = _failure_of(exc, ray)
                    yield from unfinished_records(
                        config,
                        task.batch_sizes,
                        task.done,
                        model=task.name,
                        device=task.device,
                        run_id=run_id,
                        status=status,
                        error=message,
                        **task.worker,
                    )
                    continue
                task.done.add(rec.get("batch_size"))
                task.worker = {k: rec.get(k) for k in ("env_host", "env_ray_node")}
                yield new_record(**{k: v for k, v in rec.items() if k in FIELDS and k != "schema"})
    finally:
        for gen in pending:
            try:
                ray.cancel(gen, force=True)
            except Exception:  # already finished, or the connection is gone: nothing left to stop
                pass
