"""What a measurement ran on: device, driver, CUDA/cuDNN, torch, threads, archcost, model file commit."""

from __future__ import annotations

import contextlib
import inspect
import platform
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import torch


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask: a container's or taskset's limit), else
    ``os.cpu_count()``."""
    import os

    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # macOS and Windows have no affinity mask
        return os.cpu_count() or 1


def check_threads(threads: int | None, cpus: int | None = None) -> None:
    """``InputError`` for more torch threads than the CPUs this process has (``available_cpus``): the
    threads would take turns on the cores and the timing would measure the scheduler, not the model, while the
    record says ``threads`` of them ran. ``None`` (torch's default) is always fine."""
    from archcost.errors import InputError

    if threads is None:
        return
    cpus = cpus if cpus is not None else available_cpus()
    if threads > cpus:
        raise InputError(
            f"--threads {threads}: this process has {cpus} CPU{'s' if cpus != 1 else ''}, so {threads} threads would "
            "take turns on them and the record would claim a parallelism that never ran",
            f"use --threads {cpus} or fewer (on a machine others share, fewer than the {cpus} it has)",
        )


#: The torch threads (and Ray CPUs) of one CPU task of ``--ray`` when ``--threads`` is not given.
RAY_CPU_THREADS = 1


def ray_cpu_threads(threads: int | None) -> int:
    """The threads one Ray CPU task uses and the CPUs it holds: ``threads`` where given, else
    ``RAY_CPU_THREADS`` (one CPU per task, so that tasks sharing a node never share a core)."""
    return RAY_CPU_THREADS if threads is None else threads


def quantized_engines() -> list[str]:
    """The quantized CPU backends this torch build has (``torch.backends.quantized.supported_engines``: ``x86``,
    ``fbgemm``, ``qnnpack``, ``onednn``; ``none`` is not one)."""
    return [e for e in torch.backends.quantized.supported_engines if e != "none"]


def check_quantized_engine(name: str | None) -> None:
    """``InputError`` for a quantized engine this torch build lacks, naming the ones it has. ``None`` keeps
    torch's current ``torch.backends.quantized.engine``."""
    from archcost.errors import InputError

    if name is None:
        return
    have = quantized_engines()
    if name not in have:
        raise InputError(
            f"--quantized-engine {name}: torch {torch.__version__} has no such quantized backend on this machine "
            f"(it has {', '.join(have) or 'none'})",
            f"use one of {', '.join(have)}" if have else "install a torch build with quantized CPU kernels",
        )


@contextlib.contextmanager
def quantized_engine(name: str | None) -> Iterator[str]:
    """Run the block with ``torch.backends.quantized.engine`` set to ``name`` (``None``: as it is) and restore
    it after; yields the engine in force. Set before a model is built and copied, so that a builder that
    quantizes with ``torch.backends.quantized.engine`` packs its weights for this engine."""
    check_quantized_engine(name)
    old = torch.backends.quantized.engine
    try:
        if name is not None:
            torch.backends.quantized.engine = name
        yield torch.backends.quantized.engine
    finally:
        torch.backends.quantized.engine = old


#: Where torch keeps the modules whose forward runs integer kernels (static, dynamic, fused-and-quantized,
#: reference-quantized and sparse-quantized modules); ``torch.ao.nn.quantizable`` is float and trains.
QUANTIZED_MODULE_PREFIXES = (
    "torch.ao.nn.quantized",
    "torch.ao.nn.intrinsic.quantized",
    "torch.nn.quantized",
    "torch.ao.nn.sparse.quantized",
)


def quantized_parts(model: torch.nn.Module) -> list[str]:
    """``"name (Type)"`` of each outermost submodule of ``model`` that is a torch.ao quantized module
    (``QUANTIZED_MODULE_PREFIXES``) or holds a quantized tensor (``Tensor.is_quantized``); empty for a float
    model. (A module with no name is the model itself.)"""
    parts: list[str] = []
    inside: list[str] = []  # the quantized modules found: their own parts (packed parameters) are not listed again
    for name, m in model.named_modules():
        if any(name.startswith(f"{outer}.") for outer in inside):
            continue
        tensors = [*m.parameters(recurse=False), *m.buffers(recurse=False)]
        if type(m).__module__.startswith(QUANTIZED_MODULE_PREFIXES) or any(t.is_quantized for t in tensors):
            parts.append(f"{name or '(the model)'} ({type(m).__name__})")
            inside.append(name)
    return parts


def refuse_quantized_training(model: torch.nn.Module) -> None:
    """``InputError`` when ``model`` is quantized (``quantized_parts``): its integer kernels have no backward, so
    a training step cannot run."""
    from archcost.errors import InputError

    parts = quantized_parts(model)
    if parts:
        shown = ", ".join(parts[:3]) + (f" and {len(parts) - 3} more" if len(parts) > 3 else "")
        raise InputError(
            f"{type(model).__name__} is quantized ({shown}): quantized kernels have no backward, so a training "
            "step cannot be timed",
            "profile its inference (drop --mode train), or time the training of its float original",
        )


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name()


def _archcost_version() -> str:
    try:
        import archcost

        return getattr(archcost, "__version__", "unknown")
    except Exception:
        return "unknown"


def model_file(module: torch.nn.Module) -> str | None:
    """The source file that defines the model's class, if it has one."""
    try:
        path = inspect.getsourcefile(type(module))
    except (TypeError, OSError):
        return None
    return str(Path(path).resolve()) if path else None


def git_commit(path: str | None) -> str | None:
    """The last commit that touched ``path`` (with ``-dirty`` when it has uncommitted changes), or None."""
    if not path:
        return None
    folder = str(Path(path).parent)
    try:
        commit = subprocess.run(
            ["git", "-C", folder, "log", "-1", "--format=%H", "--", path],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if commit.returncode != 0 or not commit.stdout.strip():
            return None
        dirty = subprocess.run(
            ["git", "-C", folder, "status", "--porcelain", "--", path], capture_output=True, text=True, timeout=10
        )
        return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


#: the kernel's transparent-huge-page mode, as Linux shows it (``[madvise]`` marks the one in force)
THP_MODE_FILE = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def huge_pages(mode_file: Path = THP_MODE_FILE) -> tuple[str | None, bool]:
    """(the kernel's transparent-huge-page mode: ``always``, ``madvise``, ``never``, or None where it is not
    Linux or cannot be read; whether torch's CPU allocator asks for huge pages: the environment variable
    ``THP_MEM_ALLOC_ENABLE=1``, read by torch at its first large allocation, so only a fresh process changes it).

    Why it is recorded: a CPU forward allocates every large output afresh, and each 4 KiB page is faulted in on
    first touch. On this project's CI machine (a virtual machine, mode ``madvise``) a ReLU over a 98 MiB batch-8
    feature map took 49-68 ms per call in three fresh processes and 9-10 ms in three with
    ``THP_MEM_ALLOC_ENABLE=1``; a 64-channel 3x3 convolution on 112x112 maps at batch 8, 72-83 ms and 44-47 ms
    (session 10's notes on issue 28). Latencies measured under the two settings are not comparable. Without huge
    pages a process's own history also decides it: a 98 MiB output that glibc maps afresh costs 25,091 minor
    faults per call (45-80 ms for that ReLU), one carved from a heap that earlier work left large and resident
    costs 1 (6 ms); of three fresh processes that had each timed the same 30 calibration kernels first, two were
    in the second state (session 11)."""
    import os

    mode = None
    try:
        text = mode_file.read_text()
        if "[" in text:
            mode = text.split("[", 1)[1].split("]", 1)[0]
    except OSError:
        pass
    return mode, os.environ.get("THP_MEM_ALLOC_ENABLE", "").strip().lower() in ("1", "true", "yes", "on")


#: glibc's mallopt(3) parameters (malloc.h): M_TRIM_THRESHOLD and M_MMAP_THRESHOLD
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: the largest mmap threshold glibc accepts on 64-bit (``DEFAULT_MMAP_THRESHOLD_MAX``, mallopt(3)): allocations of
#: at least this size are mapped afresh whatever the setting (``archcost.predict.kinds.LARGE_TENSOR_BYTES``)
STEADY_MMAP_THRESHOLD = 32 * 2**20
#: never give the heap's free top back to the kernel (the most an ``int`` parameter holds)
STEADY_TRIM_THRESHOLD = 2**31 - 1
_heap_state: list[str] = []  # "steady" once steady_heap succeeded in this process


def steady_heap() -> bool:
    """Keep this process's freed memory in its heap: glibc's mmap threshold fixed at 32 MiB and its trim
    threshold at 2 GiB (``mallopt(3)``, through ctypes), so that a freed output under 32 MiB is reused by the next
    call instead of being returned to the kernel and faulted in again, page by page. True where it took (glibc),
    False elsewhere (another C library: nothing changed). Kept for the rest of the process: glibc cannot read the
    settings back, and setting them ends its dynamic thresholds.

    Why: glibc raises its mmap threshold to the size of the last mapped block freed, and trims a heap top more
    than twice that size; which blocks a process happened to free before decides whether a model's mid-size
    outputs fault on every call. On this project's CPU (an AMD EPYC VM, 1 thread, batch 1; session 15), fresh
    processes running the same forward 30 times: efficientnet_b0 27-44 ms with 2,300-5,400 minor faults per call,
    19-28 ms with 0-20 once steady; mobilenet_v2 20-31 ms (2,300-2,600) against 15-20 ms (0). A server that has
    run a model for a while is in the steady state; so are calibration loops, which free and allocate one size.
    The same can be had without archcost: ``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=2147483647``
    in the environment, or jemalloc/tcmalloc preloaded."""
    if _heap_state:
        return True
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only: another libc's mallopt takes other parameters
        ok = libc.mallopt(_M_MMAP_THRESHOLD, STEADY_MMAP_THRESHOLD) == 1
        ok = libc.mallopt(_M_TRIM_THRESHOLD, STEADY_TRIM_THRESHOLD) == 1 and ok
    except (OSError, AttributeError):
        return False
    if ok:
        _heap_state.append("steady")
    return ok


def heap_state() -> str:
    """``"steady"`` after ``steady_heap`` took in this process, else ``"as-is"`` (the C library's own policy)."""
    return "steady" if _heap_state else "as-is"


def environment(device: torch.device, *, threads: int, dtype: str, cudnn_benchmark: bool | None) -> dict:
    """The ``env_*`` fields recorded with every result."""
    cuda = device.type == "cuda"
    driver = None
    if cuda:
        from archcost.profiling.nvml import driver_version

        driver = driver_version()
    cudnn = torch.backends.cudnn.version() if cuda and torch.backends.cudnn.is_available() else None
    return {
        "env_device_name": device_name(device),
        "env_driver": driver,
        "env_cuda": torch.version.cuda if cuda else None,
        "env_cudnn": cudnn,
        "env_cudnn_benchmark": cudnn_benchmark,
        "env_torch": torch.__version__,
        "env_threads": threads,
        "env_quantized_engine": torch.backends.quantized.engine,
        "env_dtype": dtype,
        "env_archcost": _archcost_version(),
        "env_python": platform.python_version(),
        "env_platform": platform.platform(),
        "env_host": socket.gethostname(),
        "env_thp": (thp := huge_pages())[0],
        "env_torch_thp": thp[1],
        "env_heap": heap_state(),
    }
