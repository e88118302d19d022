"""``profile(..., isolate=True)`` / ``archcost profile --isolate``: each model measured in a fresh Python process.

A CPU latency depends on the state of the process that measures it: what it allocated and freed before
(glibc moves its mmap threshold after a large free, so later tensors come from the heap or from fresh
pages), which libraries it imported, which models ran before. A fresh process per model is what a user's
own timing script is, so ``--isolate`` reproduces it; benchmarks/profile_check.py measures the difference.

The parent sends the model spec and settings as JSON on the child's standard input; the child
(``python -m archcost.profiling.isolated_child``) runs ``sweep.run_model`` and prints one JSON record per line
as each is measured, so a crash or Ctrl-C loses only what was not finished. This module is the parent side
and imports nothing of the sweep (no import cycle).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable, Iterator

from archcost.profiling.results import new_record, unfinished_records
from archcost.profiling.steps import RunContext


def child_request(spec: object, ctx: RunContext) -> dict:
    """What the child reads on standard input: the model spec, the config as ``dataclasses.asdict`` writes it
    (every setting under its one name, ``quantized_engine`` included; the device and batch sizes as resolved,
    ``isolate`` off), the run id and the device peaks."""
    config = dataclasses.replace(ctx.config, batch_sizes=list(ctx.batch_sizes), device=str(ctx.device), isolate=False)
    return {
        "spec": str(spec),
        "config": dataclasses.asdict(config),
        "run_id": ctx.run_id,
        "peaks": ctx.peaks.to_dict() if ctx.peaks else None,
        "peaks_note": ctx.peaks_note,
    }


def profile_model_isolated(
    spec: str, ctx: RunContext, step: Callable[[str], None] = lambda text: None
) -> Iterator[dict]:
    """The records of ``sweep.run_model(spec, ctx)``, measured in a child process."""
    request = child_request(spec, ctx)
    step(f"{spec}: starting a fresh process")
    child = subprocess.Popen(
        [sys.executable, "-m", "archcost.profiling.isolated_child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    done: set[int] = set()
    name = str(spec)
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None  # all three are PIPE
    try:
        child.stdin.write(json.dumps(request))
        child.stdin.close()
        for line in child.stdout:
            if not line.strip():
                continue
            rec = json.loads(line)
            name = rec.get("model") or name
            done.add(rec.get("batch_size"))
            step(f"{name} batch {rec.get('batch_size')} (isolated)")
            yield new_record(**{k: v for k, v in rec.items() if k != "schema"})
        code = child.wait()
    except BaseException:
        child.kill()
        child.wait()
        raise
    if code == 130:
        raise KeyboardInterrupt
    if code != 0:
        why = (child.stderr.read().strip().splitlines() or ["no message"])[-1]
        yield from unfinished_records(
            ctx.config,
            ctx.batch_sizes,
            done,
            model=name,
            device=str(ctx.device),
            run_id=ctx.run_id,
            status="error",
            error=f"the measuring process exited with code {code}: {why}",
        )
