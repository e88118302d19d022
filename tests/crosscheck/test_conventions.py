"""The written-down conventions of fvcore and FlopCounterMode, checked against the tools on single ops."""

import pytest
import torch
from torch import nn

from archcost.crosscheck.conventions import FVCORE, RULES, TORCH, OpView, rule_for
from archcost.crosscheck.fvcore_run import run_fvcore
from archcost.crosscheck.torch_counter import run_flop_counter


def test_every_rule_names_its_source_and_a_unique_op():
    seen = set()
    for rule in RULES:
        assert rule.source.startswith(("fvcore/nn/", "torch/utils/flop_counter.py")), rule
        assert rule.text
        for op in rule.ops:
            assert (rule.tool, op) not in seen
            seen.add((rule.tool, op))


def view(op, **kw):
    base = dict(op=op, macs=0, flops=0, in_numel=0, out_numel=0, out_dims=4)
    return OpView(**{**base, **kw})


@pytest.mark.parametrize(
    "tool, v, expected",
    [
        # conv 3x3, 64 -> 64, 56x56 output: 64 * 56 * 56 * (64 * 3 * 3) MACs
        (FVCORE, view("conv2d", macs=64 * 56 * 56 * 64 * 9), 64 * 56 * 56 * 64 * 9),
        (TORCH, view("conv2d", macs=64 * 56 * 56 * 64 * 9), 2 * 64 * 56 * 56 * 64 * 9),
        (FVCORE, view("linear", macs=2048 * 1000), 2048 * 1000),
        (TORCH, view("linear", macs=2048 * 1000), 2 * 2048 * 1000),
        # batch norm of 1x64x112x112 at inference: 2 per element with affine, 1 without
        (FVCORE, view("batch_norm", in_numel=64 * 112 * 112, out_numel=64 * 112 * 112), 2 * 64 * 112 * 112),
        (FVCORE, view("batch_norm", in_numel=64 * 112 * 112, affine=False), 64 * 112 * 112),
        (FVCORE, view("batch_norm", in_numel=10, training=True), 5 * 10),
        (TORCH, view("batch_norm", in_numel=64 * 112 * 112), 0),
        (FVCORE, view("group_norm", in_numel=100), 5 * 100),
        (FVCORE, view("layer_norm", in_numel=100, affine=False), 4 * 100),
        # ResNet-50's global average pool: 1 per input element, 2048 x 7 x 7
        (FVCORE, view("adaptive_avg_pool2d", in_numel=2048 * 7 * 7, out_numel=2048), 2048 * 7 * 7),
        # nearest upsampling (archcost: 0 FLOPs) 1 per output element; bilinear (archcost: 9) 4 per output
        (FVCORE, view("interpolate", flops=0, out_numel=4 * 16 * 16), 4 * 16 * 16),
        (FVCORE, view("interpolate", flops=9 * 4 * 16 * 16, out_numel=4 * 16 * 16), 4 * 4 * 16 * 16),
        (FVCORE, view("interpolate", flops=32 * 100, out_numel=100), 0),  # bicubic: no handle
        (FVCORE, view("interpolate", flops=0, out_numel=4 * 16, out_dims=3), 0),  # 1-d nearest: no handle
        (FVCORE, view("bilinear", macs=90), 0),
        (TORCH, view("bilinear", macs=90), 0),
        (FVCORE, view("baddbmm", macs=64), 0),
        (TORCH, view("baddbmm", macs=64), 2 * 64),
        (FVCORE, view("relu", flops=100, out_numel=100), 0),
        (TORCH, view("max_pool2d", flops=100, out_numel=100), 0),
    ],
)
def test_rule_counts(tool, v, expected):
    assert rule_for(tool, v.op).count(v) == expected


@pytest.mark.parametrize(
    "layer, shape, fvcore, torch_count",
    [
        # Conv2d(3, 8, 3) on 1x3x10x10: output 8x8x8, 3*3*3 = 27 MACs per output element
        (nn.Conv2d(3, 8, 3), (1, 3, 10, 10), 8 * 8 * 8 * 27, 2 * 8 * 8 * 8 * 27),
        # ConvTranspose2d(4, 2, 2, stride=2) on 1x4x5x5: every input element meets 2 * 2 * 2 weights
        (nn.ConvTranspose2d(4, 2, 2, stride=2), (1, 4, 5, 5), 4 * 5 * 5 * 8, 2 * 4 * 5 * 5 * 8),
        (nn.Linear(10, 7), (3, 10), 3 * 10 * 7, 2 * 3 * 10 * 7),
        (nn.BatchNorm2d(4).eval(), (1, 4, 5, 5), 2 * 100, 0),
        (nn.BatchNorm2d(4, affine=False).eval(), (1, 4, 5, 5), 100, 0),
        (nn.GroupNorm(2, 4), (1, 4, 5, 5), 5 * 100, 0),
        (nn.AdaptiveAvgPool2d(1), (1, 4, 5, 5), 100, 0),
        (nn.Upsample(scale_factor=2), (1, 4, 5, 5), 4 * 10 * 10, 0),
        (nn.Upsample(scale_factor=2, mode="bilinear"), (1, 4, 5, 5), 4 * 4 * 10 * 10, 0),
        (nn.MaxPool2d(2), (1, 4, 6, 6), 0, 0),
        (nn.Bilinear(3, 4, 5), (2, 3), None, 0),  # needs two inputs: fvcore's trace of one input fails
    ],
)
def test_the_tools_count_what_the_rules_say(layer, shape, fvcore, torch_count):
    """The tools themselves, on one layer: the source the rules were read from still says this."""
    if fvcore is not None:
        assert run_fvcore(layer, shape).total_flops() == fvcore
    if isinstance(layer, nn.Bilinear):
        counted = run_flop_counter(_TwoInputs(layer), shape).total()
    else:
        counted = run_flop_counter(layer, shape).total()
    assert counted == torch_count


class _TwoInputs(nn.Module):
    def __init__(self, layer: nn.Bilinear) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x, torch.cat([x, x[:, :1]], dim=1))
