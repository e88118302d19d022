"""``archcost profile`` on int8 models (torch.ao dynamic and static quantization) on the CPU: ok records beside
the float originals, the quantized engine in every record, a missing engine and training refused (exit 2)."""

import json

import pytest
import torch

from archcost.cli import main
from archcost.profiling import profile
from archcost.profiling.environment import quantized_engines, quantized_parts
from tests.profile import quantized_models as qm

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # torch's deprecation notes on quantized tensors

M = "tests.profile.quantized_models"
FAST = ["--device", "cpu", "--warmup", "0", "--min-time", "0.01", "--repeats", "3", "--no-roofline", "--quiet"]
ENGINES = quantized_engines()
needs_engine = pytest.mark.skipif(not ENGINES, reason="this torch build has no quantized CPU engine")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def other_engine() -> str:
    """An engine other than torch's current one where there is one, so that the test sees the option act."""
    current = torch.backends.quantized.engine
    return next((e for e in ENGINES if e != current), current)


@needs_engine
@pytest.mark.parametrize(
    ("quantized", "original", "size"),
    [("dynamic_mlp", "float_mlp", "float32:64"), ("static_cnn", "float_cnn", "3x16x16")],
)
def test_int8_beside_float_with_the_engine_named(capsys, quantized, original, size):
    engine = other_engine()
    before = torch.backends.quantized.engine
    code, out, err = run(
        capsys, "profile", f"{M}:{quantized}", f"{M}:{original}", "--input-size", size,
        "--quantized-engine", engine, "--format", "json", *FAST,
    )  # fmt: skip
    assert code == 0, err
    records = json.loads(out)
    assert [r["model"] for r in records] == [quantized, original]
    for r in records:
        assert r["status"] == "ok", r["error"]
        assert r["env_quantized_engine"] == engine
        assert r["latency_median_s"] > 0 and r["throughput_ips"] == pytest.approx(1 / r["latency_median_s"])
        assert r["memory_peak_bytes"] > 0
    assert torch.backends.quantized.engine == before  # restored after the run


@needs_engine
def test_default_engine_is_torchs_own_and_recorded():
    df = profile(qm.dynamic_mlp(), device="cpu", input_size="float32:64", warmup_s=0, min_time_s=0.01, repeats=3,
                 roofline=False)  # fmt: skip
    assert df["status"].tolist() == ["ok"]
    assert df["env_quantized_engine"].tolist() == [torch.backends.quantized.engine]


@needs_engine
def test_the_callers_quantized_module_is_unchanged():
    model = qm.static_cnn()
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before, keys = model(x), list(model.state_dict())
    df = profile(model, device="cpu", input_size=(3, 16, 16), warmup_s=0, min_time_s=0.01, repeats=3, roofline=False,
                 quantized_engine=other_engine())  # fmt: skip
    assert df["status"].tolist() == ["ok"]
    with torch.no_grad():
        assert torch.equal(model(x), before)  # the same int8 weights, scales and zero points
    assert list(model.state_dict()) == keys
    assert not model.training


def test_an_engine_this_torch_lacks_is_exit_2_naming_the_ones_it_has(capsys):
    code, out, err = run(capsys, "profile", f"{M}:dynamic_mlp", "--input-size", "float32:64",
                         "--quantized-engine", "no-such-engine", *FAST)  # fmt: skip
    assert code == 2 and out == ""
    assert "--quantized-engine no-such-engine" in err and "Traceback" not in err
    assert all(engine in err for engine in ENGINES)


@needs_engine
@pytest.mark.parametrize("builder", ["dynamic_mlp", "static_cnn"])
def test_training_a_quantized_model_is_exit_2(capsys, builder):
    size = "float32:64" if builder == "dynamic_mlp" else "3x16x16"
    code, out, err = run(capsys, "profile", f"{M}:{builder}", "--input-size", size, "--mode", "train", *FAST)
    assert code == 2 and "Traceback" not in err
    assert "is quantized" in err and "no backward" in err and "drop --mode train" in err


@needs_engine
def test_training_a_quantized_module_object_is_refused_before_measuring():
    from archcost.errors import InputError

    with pytest.raises(InputError, match="no backward"):
        profile(qm.dynamic_mlp(), device="cpu", input_size="float32:64", mode="train", roofline=False)


@needs_engine
def test_quantized_parts_finds_the_int8_modules_and_none_in_a_float_model():
    assert quantized_parts(qm.float_cnn()) == []
    assert quantized_parts(qm.float_mlp()) == []
    dynamic = quantized_parts(qm.dynamic_mlp())
    assert [p.split(" ")[0] for p in dynamic] == ["fc1", "fc2"]
    static = [p.split(" ")[0] for p in quantized_parts(qm.static_cnn())]
    assert {"quant", "conv", "fc", "dequant"} <= set(static)
