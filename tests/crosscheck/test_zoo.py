"""Every zoo model, in archcost, fvcore and FlopCounterMode: the counts that must agree agree exactly,
and every other difference is predicted by a written-down convention.

Each model is built once on the CPU (fvcore traces real tensors) at batch 1 and its default input.
"""

import math

import pytest

from archcost.cost import analyze
from archcost.crosscheck import reconcile, run_flop_counter, run_fvcore
from archcost.crosscheck.conventions import ACTIVATION_OPS
from archcost.zoo import get_meta, get_model, list_models

#: fvcore's names for its conv, linear and matrix-product counts (flop_count.py _DEFAULT_SUPPORTED_OPS).
FVCORE_MAC_OPS = ("conv", "linear", "matmul", "mm", "bmm", "addmm", "einsum")


#: run by default: one model per kind of graph (the rest are marked slow: real CPU weights and a
#: traced forward for 70 models take minutes)
FAST = ("lenet5", "alexnet", "resnet20_cifar", "googlenet", "mobilenet_v2", "densenet_bc_100_12_cifar",
        "squeezenet1_1", "efficientnet_b0", "shufflenet_v2_x1_0")  # fmt: skip


@pytest.mark.parametrize("name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow) for n in list_models()])
def test_zoo_model_reconciles_with_fvcore_and_flop_counter(name):
    model = get_model(name, device="cpu")
    size = get_meta(name).input_size
    report = analyze(model, size, name=name)
    fv = run_fvcore(model, (1, *size))
    assert fv.ok, fv.error
    total = fv.flops[""]
    # archcost's MACs are exactly fvcore's conv/linear/matmul count (fvcore: one flop per multiply-add)
    assert report.totals["macs"] == sum(total[op] for op in FVCORE_MAC_OPS)
    # parameters: exactly fvcore's parameter_count
    assert report.totals["params"] == fv.params[""]
    # activations: the outputs of archcost's conv/linear rows are fvcore's ActivationCountAnalysis
    outputs = sum(math.prod(r.output_shape) for r in report.layers if set(r.ops) & set(ACTIVATION_OPS))
    assert outputs == fv.total_activations()

    tc = run_flop_counter(model, (1, *size))
    rec = reconcile(report, model, fv, tc)
    assert tc.total() == 2 * report.totals["macs"]  # FlopCounterMode: 2 per MAC, conv and matmul only
    assert rec.ok, rec.mismatches  # module by module, every figure predicted by the conventions
