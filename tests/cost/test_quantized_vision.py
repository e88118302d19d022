"""torchvision's quantizable builders (``models.quantization``, ``quantize=False``, no weights), fused and
converted offline with torch.ao: params and MACs equal the fused float model's, nothing uncosted, every MAC
an integer MAC where a quantized kernel runs it. Needs torchvision (the vision venv): marked slow."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

import archcost

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")]
qmodels = pytest.importorskip("torchvision.models.quantization")


def _convert(fused: torch.nn.Module, size: int) -> torch.nn.Module:
    engines = torch.backends.quantized.supported_engines
    engine = next(e for e in ("x86", "fbgemm", "qnnpack") if e in engines)
    old = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine
    try:
        q = copy.deepcopy(fused)
        q.qconfig = torch.ao.quantization.get_default_qconfig(engine)
        torch.ao.quantization.prepare(q, inplace=True)
        q(torch.randn(2, 3, size, size))
        torch.ao.quantization.convert(q, inplace=True)
        return q
    finally:
        torch.backends.quantized.engine = old


@pytest.mark.parametrize("builder", ["resnet18", "mobilenet_v2", "shufflenet_v2_x0_5"])
def test_torchvision_quantized_builders(builder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = getattr(qmodels, builder)(weights=None, quantize=False).eval()
        model.fuse_model()
        q = _convert(model, 64)
    f = archcost.analyze(model, input_size=(3, 64, 64))
    r = archcost.analyze(q, input_size=(3, 64, 64))
    assert not r.unsupported, r.unsupported
    assert r.totals["params"] == f.totals["params"]
    assert r.totals["macs"] == f.totals["macs"]
    assert r.totals["int_macs"] == r.totals["macs"]
    assert r.totals["param_bytes"] < f.totals["param_bytes"] / 3  # int8 weights: about a quarter of float32
