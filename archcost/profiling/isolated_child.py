"""The ``--isolate`` child process (``python -m archcost.profiling.isolated_child``): one model's records as JSON lines.

Reads the request ``isolated.profile_model_isolated`` writes on standard input (the model spec, the
``ProfileConfig`` as ``dataclasses.asdict`` writes it, the run id, the device peaks), sets up as every executor does
(``sweep.measurement_setup``), runs ``sweep.run_model`` and writes one record per line to standard
output; what the model prints goes to standard error. Exit 0, 2 (an ``ArchcostError``: its message on
standard error) or 130 (Ctrl-C).
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    import torch

    from archcost.errors import ArchcostError
    from archcost.profiling.config import from_json
    from archcost.profiling.results import record_json
    from archcost.profiling.roofline import DevicePeaks
    from archcost.profiling.steps import RunContext
    from archcost.profiling.sweep import measurement_setup, run_model
    from archcost.units import DTYPES

    request = json.loads(sys.stdin.read())
    records, sys.stdout = sys.stdout, sys.stderr  # what the model prints must not mix with the records
    config = from_json(request["config"])
    device = torch.device(config.device)
    peaks = DevicePeaks(**request["peaks"]) if request["peaks"] else None
    with measurement_setup(device, config.threads, config.dtype, config.quantized_engine, config.heap) as env:
        ctx = RunContext(
            config,
            device,
            tuple(config.batch_sizes),
            DTYPES[config.dtype],
            env,
            peaks,
            request["peaks_note"],
            request["run_id"],
        )
        try:
            for rec in run_model(request["spec"], ctx):
                records.write(record_json(rec) + "\n")
                records.flush()
        except KeyboardInterrupt:
            return 130
        except ArchcostError as exc:
            print(f"{exc.message}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
