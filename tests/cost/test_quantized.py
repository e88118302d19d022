"""Quantized and low-precision models: params and MACs as the float model's, bytes as stored, integer MACs
apart, nothing uncosted; the what-if precision (bytes and BOPs at chosen bit widths); the bad input."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.ao.quantization as tq
from torch import nn

import archcost
from archcost.cli import main
from archcost.errors import InputError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


def _dynamic(model: nn.Module, kinds: set) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tq.quantize_dynamic(copy.deepcopy(model), kinds, dtype=torch.qint8)


class _LSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(10, 20, num_layers=2)
        self.head = nn.Linear(20, 4)

    def forward(self, x):
        return self.head(self.lstm(x)[0])


class _CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.quant = tq.QuantStub()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2)
        self.bn2 = nn.BatchNorm2d(16)
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)
        self.dequant = tq.DeQuantStub()

    def forward(self, x):
        x = self.quant(x)
        x = self.relu2(self.bn2(self.conv2(self.relu1(self.conv1(x)))))
        return self.dequant(self.fc(torch.flatten(self.pool(x), 1)))


def _engine() -> str:
    engines = torch.backends.quantized.supported_engines
    return next(e for e in ("x86", "fbgemm", "qnnpack") if e in engines)


def _static_cnn() -> tuple[nn.Module, nn.Module]:
    """(the fused float model, its static int8 conversion), fused and converted with torch.ao on the CPU."""
    torch.manual_seed(0)
    fused = tq.fuse_modules(_CNN().eval(), [["conv1", "relu1"], ["conv2", "bn2", "relu2"]])
    q = copy.deepcopy(fused)
    engine = _engine()
    q.qconfig = tq.get_default_qconfig(engine)
    with _keep_engine(engine):
        tq.prepare(q, inplace=True)
        q(torch.randn(4, 3, 16, 16))
        tq.convert(q, inplace=True)
    return fused, q


class _keep_engine:  # noqa: N801
    """The quantized engine set while the block runs, put back after."""

    def __init__(self, engine: str) -> None:
        self.engine = engine

    def __enter__(self):
        self.old = torch.backends.quantized.engine
        torch.backends.quantized.engine = self.engine

    def __exit__(self, *exc):
        torch.backends.quantized.engine = self.old


def _state(model: nn.Module) -> dict:
    return {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in model.state_dict().items()}


def test_dynamic_quantized_mlp_costs_as_the_float_model_with_int8_bytes():
    mlp = nn.Sequential(nn.Linear(100, 50), nn.ReLU(), nn.Linear(50, 10))
    q = _dynamic(mlp, {nn.Linear})
    before = q.state_dict()
    r = archcost.analyze(q, input_size=(100,))
    f = archcost.analyze(mlp, input_size=(100,))
    assert not r.unsupported
    assert r.totals["params"] == f.totals["params"] == 100 * 50 + 50 + 50 * 10 + 10
    assert r.totals["macs"] == f.totals["macs"] == 100 * 50 + 50 * 10
    assert r.totals["int_macs"] == r.totals["macs"] and f.totals["int_macs"] == 0
    # int8 weights (1 B each) + one float64 scale and one int64 zero point per tensor + float32 biases
    assert r.totals["param_bytes"] == (100 * 50 + 8 + 8 + 50 * 4) + (50 * 10 + 8 + 8 + 10 * 4)
    assert r.param_bytes_by_dtype == {"qint8": 100 * 50 + 16 + 50 * 10 + 16, "float32": (50 + 10) * 4}
    assert "qint8" in r.dtypes_seen
    assert r.analysed_on == "cpu" and "quantized" in r.analysed_on_because
    assert q.state_dict().keys() == before.keys()  # the caller's model is unchanged
    assert all(torch.equal(q.state_dict()[k], v) for k, v in before.items() if isinstance(v, torch.Tensor))


def test_dynamic_quantized_lstm_costs_as_the_float_lstm():
    torch.manual_seed(0)
    model = _LSTM().eval()
    q = _dynamic(model, {nn.LSTM, nn.Linear})
    r = archcost.analyze(q, input_size=(5, 10))
    f = archcost.analyze(model, input_size=(5, 10))
    assert not r.unsupported
    assert r.totals["params"] == f.totals["params"]
    assert r.totals["macs"] == f.totals["macs"]
    # the LSTM: 5 x 1 positions x (80x10 + 80x20 + 80x20 + 80x20) weight elements; the head 5 x 20 x 4
    assert r.totals["macs"] == 5 * (80 * 10 + 3 * 80 * 20) + 5 * 20 * 4
    assert r.totals["int_macs"] == r.totals["macs"]
    weights = 80 * 10 + 3 * 80 * 20 + 20 * 4
    biases = 4 * 80 + 4
    assert r.totals["param_bytes"] == weights + 5 * 16 + biases * 4


def test_static_quantized_cnn_costs_as_the_fused_float_model():
    fused, q = _static_cnn()
    r = archcost.analyze(q, input_size=(3, 16, 16))
    f = archcost.analyze(fused, input_size=(3, 16, 16))
    assert not r.unsupported
    assert r.totals["params"] == f.totals["params"] == (8 * 3 * 9 + 8) + (16 * 8 * 9 + 16) + (10 * 16 + 10)
    conv = 8 * 16 * 16 * 3 * 9 + 16 * 7 * 7 * 8 * 9
    assert r.totals["macs"] == f.totals["macs"] == conv + 16 * 10
    assert r.totals["int_macs"] == r.totals["macs"]
    by_row = {row.name: row for row in r.layers}
    assert by_row["conv1"].int_macs == 8 * 16 * 16 * 3 * 9
    # per-channel int8 weights: one float64 scale and one int64 zero point per output channel
    weights = (8 * 3 * 9 + 8 * 16) + (16 * 8 * 9 + 16 * 16) + (10 * 16 + 10 * 16)
    assert r.param_bytes_by_dtype["qint8"] == weights
    assert r.param_bytes_by_dtype["float32"] == (8 + 16 + 10) * 4
    assert sum(r.param_bytes_by_dtype.values()) == r.totals["param_bytes"]
    # activations are quint8 between quant and dequant: the conv outputs take 1 byte per element
    assert by_row["conv1"].activation_bytes == 8 * 16 * 16


def _static(float_model: nn.Module, shape: tuple[int, ...]) -> nn.Module:
    """``float_model`` (copied) between a QuantStub and a DeQuantStub, statically quantized on the CPU."""
    q = tq.QuantWrapper(copy.deepcopy(float_model)).eval()
    engine = _engine()
    q.qconfig = tq.get_default_qconfig(engine)
    with _keep_engine(engine):
        tq.prepare(q, inplace=True)
        q(torch.randn(2, *shape))
        tq.convert(q, inplace=True)
    return q


@pytest.mark.parametrize(
    ("conv", "shape", "macs"),
    [
        (lambda: nn.Conv1d(4, 8, 3), (4, 16), 8 * 14 * 4 * 3),  # out channels x out length x in channels x k
        (lambda: nn.Conv3d(2, 4, 3), (2, 6, 6, 6), 4 * 4**3 * 2 * 3**3),
    ],
)
def test_static_quantized_conv1d_and_conv3d(conv, shape, macs):
    torch.manual_seed(0)
    f = nn.Sequential(conv()).eval()
    r, fr = archcost.analyze(_static(f, shape), shape), archcost.analyze(f, shape)
    assert not r.unsupported
    assert r.totals["params"] == fr.totals["params"] and r.totals["macs"] == fr.totals["macs"] == macs
    assert r.totals["int_macs"] == macs
    weight = f[0].weight
    channels = weight.shape[0]
    # int8 weights, a float64 scale and an int64 zero point per output channel; the bias stays float32
    assert r.param_bytes_by_dtype == {"qint8": weight.numel() + channels * (8 + 8), "float32": 4 * channels}


class _Bags(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bag = nn.EmbeddingBag(100, 16, mode="sum")
        self.emb = nn.Embedding(100, 8)

    def forward(self, ids):
        return torch.cat([self.bag(ids), self.emb(ids).sum(1)], 1)


def test_quantized_embedding_and_embedding_bag_weights_as_stored():
    f = _Bags().eval()
    q = copy.deepcopy(f)
    for m in (q.bag, q.emb):  # torch.ao's weight-only embedding quantization (8-bit rows, float qparams)
        m.qconfig = tq.float_qparams_weight_only_qconfig
    tq.prepare(q, inplace=True)
    tq.convert(q, inplace=True)
    assert type(q.bag).__module__.startswith("torch.ao.nn.quantized")
    r, fr = archcost.analyze(q, "int64:5"), archcost.analyze(f, "int64:5")
    assert not r.unsupported
    assert r.totals["params"] == fr.totals["params"] == 100 * 16 + 100 * 8
    assert r.totals["macs"] == fr.totals["macs"] == 0  # a lookup and a sum: no multiply-accumulate
    # quint8 rows, with a float32 scale and a float32 zero point per row (per_channel_affine_float_qparams)
    assert r.param_bytes_by_dtype == {"quint8": 100 * 16 + 100 * 8 + 2 * 100 * (4 + 4)}
    assert fr.totals["param_bytes"] == 4 * (100 * 16 + 100 * 8)


def test_quantized_model_refused_for_training_and_meta():
    q = _dynamic(nn.Sequential(nn.Linear(4, 2)), {nn.Linear})
    with pytest.raises(InputError, match="no backward"):
        archcost.analyze(q, input_size=(4,), mode="train")
    with pytest.raises(InputError, match="only on the CPU"):
        archcost.analyze(q, input_size=(4,), device="meta")


def test_half_model_reports_its_fp16_bytes():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(100, 50), nn.ReLU(), nn.Linear(50, 8)).half()
    params = 100 * 50 + 50 + 50 * 8 + 8
    r = archcost.analyze(model, input_size=(100,))
    assert r.totals["params"] == params
    assert r.totals["param_bytes"] == 2 * params  # not 4 * params labelled float32
    assert r.param_bytes_by_dtype == {"float16": 2 * params}
    assert r.dtype == "float16" and r.dtypes_seen == ["float16"]
    assert next(model.parameters()).dtype == torch.float16


class _Mixed(nn.Module):
    """fp16 linear weights beside an fp32 layer norm, cast where they meet."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(32, 16).half()
        self.norm = nn.LayerNorm(16)

    def forward(self, x):
        return self.norm(self.fc(x).float())


def test_mixed_fp16_fp32_model_priced_per_tensor():
    r = archcost.analyze(_Mixed(), input_size=(32,))
    assert not r.unsupported
    assert r.totals["params"] == 32 * 16 + 16 + 2 * 16
    assert r.totals["macs"] == 32 * 16
    assert r.param_bytes_by_dtype == {"float16": (32 * 16 + 16) * 2, "float32": 2 * 16 * 4}
    assert {"float16", "float32"} <= set(r.dtypes_seen)


class _Fp8Linear(nn.Module):
    """Weight-only float8: weights stored as float8_e4m3fn, cast up to the input's dtype for the product."""

    def __init__(self, i: int, o: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(o, i).to(torch.float8_e4m3fn), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(o))

    def forward(self, x):
        return nn.functional.linear(x, self.weight.to(x.dtype), self.bias)


def test_fp8_model_params_and_macs_as_float_bytes_as_stored():
    model = nn.Sequential(_Fp8Linear(64, 32), nn.ReLU(), _Fp8Linear(32, 8))
    r = archcost.analyze(model, input_size=(64,))
    assert not r.unsupported
    assert r.totals["params"] == 64 * 32 + 32 + 32 * 8 + 8
    assert r.totals["macs"] == 64 * 32 + 32 * 8
    assert r.param_bytes_by_dtype == {"float8_e4m3fn": 64 * 32 + 32 * 8, "float32": (32 + 8) * 4}
    assert r.totals["param_bytes"] == 64 * 32 + 32 * 8 + (32 + 8) * 4


def test_float_model_figures_unchanged():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
    r = archcost.analyze(model, input_size=(3, 8, 8))
    assert r.totals["param_bytes"] == (8 * 3 * 9 + 8) * 4
    assert r.totals["int_macs"] == 0 and "bops" not in r.totals
    assert r.param_bytes_by_dtype == {"float32": (8 * 3 * 9 + 8) * 4}


# -- what-if precision ------------------------------------------------------------------------------------
def _three_layers() -> nn.Module:
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4))


def test_weight_and_act_bits_price_bytes_and_bops():
    model = _three_layers()
    f = archcost.analyze(model, input_size=(16,))
    r = archcost.analyze(model, input_size=(16,), weight_bits=4, act_bits=8)
    assert r.totals["params"] == f.totals["params"] and r.totals["macs"] == f.totals["macs"]
    assert r.totals["bops"] == (16 * 32 + 32 * 32 + 32 * 4) * 4 * 8
    assert r.layers[0].param_bytes == (16 * 32 + 32) * 4 // 8
    assert r.layers[0].activation_bytes == 32 * 8 // 8  # 32 outputs at 8 bits, not 4 bytes each
    assert r.precision == {"weight_bits": 4, "act_bits": 8, "first_last_bits": None}


def test_first_and_last_layers_keep_their_bits():
    r = archcost.analyze(_three_layers(), input_size=(16,), weight_bits=2, act_bits=2, first_last_bits=8)
    assert r.totals["bops"] == 16 * 32 * 8 * 8 + 32 * 32 * 2 * 2 + 32 * 4 * 8 * 8
    assert r.layers[0].param_bytes == 16 * 32 + 32  # 8 bits: 1 byte per parameter
    assert r.layers[2].param_bytes == (32 * 32 + 32) * 2 // 8


@pytest.mark.parametrize("bits", [0, 33, -1])
def test_bit_widths_outside_1_to_32_are_refused(bits):
    with pytest.raises(InputError, match="1 to 32"):
        archcost.analyze(_three_layers(), input_size=(16,), weight_bits=bits)


def test_cli_bits_flags_and_bad_width(capsys, tmp_path):
    path = tmp_path / "nets.py"
    path.write_text(
        "from torch import nn\ndef build():\n    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))\n"
    )
    assert main(["table", f"{path}:build", "--input-size", "float32:16", "--weight-bits", "8", "--act-bits", "8",
                 "--format", "json"]) == 0  # fmt: skip
    import json

    doc = json.loads(capsys.readouterr().out)
    assert doc["totals"]["bops"] == (16 * 32 + 32 * 4) * 8 * 8
    assert main(["table", f"{path}:build", "--input-size", "float32:16", "--act-bits", "64"]) == 2
    assert "1 to 32" in capsys.readouterr().err


def test_cli_quantized_train_is_exit_2(capsys, tmp_path):
    path = tmp_path / "qnets.py"
    path.write_text(
        "import torch\nfrom torch import nn\n"
        "def build():\n"
        "    return torch.ao.quantization.quantize_dynamic(nn.Sequential(nn.Linear(8, 4)), {nn.Linear})\n"
    )
    assert main(["table", f"{path}:build", "--input-size", "float32:8"]) == 0
    out = capsys.readouterr().out
    assert "Int MACs" in out and "32" in out
    assert main(["table", f"{path}:build", "--input-size", "float32:8", "--mode", "train"]) == 2
    assert "no backward" in capsys.readouterr().err
