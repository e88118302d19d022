"""Architecture costs in CI: ``bench`` records each model's figures in a versioned JSON file, ``compare``
sets two such files side by side and says which thresholds (``--fail-on``) a change crosses.

    doc = bench(["resnet50", "vgg16"])          # analytic figures; profile={...} adds measured ones
    write_bench(doc, "bench.json")
    result = compare(read_bench("base.json"), read_bench("bench.json"), parse_fail_on("macs>0%"))
    print(render(result, "markdown")); result.failed
"""

from archcost.bench.collect import bench
from archcost.bench.compare import Comparison, Threshold, compare, parse_fail_on, render
from archcost.bench.record import (
    JSON_SCHEMA,
    SCHEMA,
    SCHEMA_VERSION,
    BenchFileError,
    dumps,
    loads,
    read_bench,
    validate,
    write_bench,
)

__all__ = [
    "JSON_SCHEMA",
    "SCHEMA",
    "SCHEMA_VERSION",
    "BenchFileError",
    "Comparison",
    "Threshold",
    "bench",
    "compare",
    "dumps",
    "loads",
    "parse_fail_on",
    "read_bench",
    "render",
    "validate",
    "write_bench",
]
