"""Small int8 models for the quantized profile tests: a dynamic-quantized MLP and a static-quantized CNN, each
quantized when built, with the engine in ``torch.backends.quantized.engine`` (what --quantized-engine sets)."""

import torch
import torch.ao.quantization as tq
from torch import nn


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 128)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant = tq.QuantStub()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)
        self.dequant = tq.DeQuantStub()

    def forward(self, x):
        x = self.relu(self.conv(self.quant(x)))
        return self.dequant(self.fc(self.pool(x).flatten(1)))


def float_mlp():
    torch.manual_seed(0)
    return MLP().eval()


def dynamic_mlp():
    """``quantize_dynamic``: int8 weights, activations quantized on the fly."""
    return tq.quantize_dynamic(float_mlp(), {nn.Linear}, dtype=torch.qint8)


def float_cnn():
    torch.manual_seed(0)
    return CNN().eval()


def static_cnn():
    """Eager static quantization: fuse conv+relu, prepare, calibrate on random data, convert."""
    m = float_cnn()
    m.qconfig = tq.get_default_qconfig(torch.backends.quantized.engine)
    tq.fuse_modules(m, [["conv", "relu"]], inplace=True)
    tq.prepare(m, inplace=True)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _ in range(4):
            m(torch.randn(2, 3, 16, 16, generator=gen))
    return tq.convert(m, inplace=True)
