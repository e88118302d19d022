"""The training step on what users bring: checkpointing, pruning, lazy and weight-normed layers, random
layer-drop, structured outputs, token ids, shared modules; the figures by hand, and the model untouched."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import pytest
import torch
import torch.nn.functional as F
import torch.nn.utils.prune as prune
from torch import nn
from torch.utils.checkpoint import checkpoint

from archcost import analyze
from archcost.cost.training import loss_tensors, simulate_step
from archcost.errors import AnalysisError


def _state(model: nn.Module) -> dict:
    """Every parameter, buffer and tensor attribute, with its device and values."""
    out = {}
    for path, m in model.named_modules():
        for key, value in vars(m).items():
            if isinstance(value, torch.Tensor):
                out[f"{path}.{key}"] = value
        for key, t in [*m._parameters.items(), *m._buffers.items()]:
            out[f"{path}.{key}"] = t
    return {k: (id(t), t.device.type, t.detach().clone()) for k, t in out.items() if t is not None}


def _unchanged(before: dict, model: nn.Module) -> bool:
    after = _state(model)
    return before.keys() == after.keys() and all(
        before[k][:2] == after[k][:2] and torch.equal(before[k][2], after[k][2]) for k in before
    )


# -- activation checkpointing ------------------------------------------------------------------------------
class Checkpointed(nn.Module):
    def __init__(self, reentrant: bool) -> None:
        super().__init__()
        self.reentrant = reentrant
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU()) for _ in range(2)
        )
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.stem(x)
        for blk in self.blocks:
            x = checkpoint(blk, x, use_reentrant=self.reentrant)
        return self.fc(x.mean((2, 3)))


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("reentrant", [False, True])
def test_checkpointing_counts_the_recompute_in_backward_and_leaves_the_batch_norm_counters(reentrant):
    model = Checkpointed(reentrant)
    before = _state(model)
    report = analyze(model, (3, 16, 16), mode="train", optimizer="sgd")
    t = report.totals
    block = 8 * 9 * 8 * 16 * 16  # 147,456 MACs: one block's 3x3 conv
    assert t["params"] == 224 + 2 * (576 + 16) + 90  # 1,498
    assert t["macs"] == 3 * 9 * 8 * 256 + 2 * block + 80  # 350,288: the same as without checkpointing
    backward = 3 * 9 * 8 * 256 + 2 * 2 * block + 2 * 80  # 645,280: stem weight only, blocks and head both
    recompute = 2 * block  # 294,912: both blocks' forward re-run inside backward
    assert t["backward_macs"] == backward + recompute  # 940,192
    rows = {r.name: r for r in report.layers}
    assert rows["blocks.0.0"].backward_macs == 2 * block + block  # input and weight gradients + its re-run
    note = next(n for n in report.notes if n.startswith("activation checkpointing"))
    assert f"{recompute:,} MACs" in note and f"{backward:,} MACs" in note  # the recompute said apart
    assert _unchanged(before, model)  # num_batches_tracked included
    assert int(model.blocks[0][1].num_batches_tracked) == 0


# -- layers whose weights forward computes -----------------------------------------------------------------
class Pruned(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 16, 3, padding=1)
        self.c2 = nn.Conv2d(16, 16, 3, padding=1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.c1(x))
        x = torch.relu(self.c2(x))
        return self.fc(x.mean((2, 3)))


def test_pruned_layers_train_with_their_masks_left_as_they_were():
    torch.manual_seed(0)
    model = Pruned()
    prune.l1_unstructured(model.c1, "weight", amount=0.5)
    prune.ln_structured(model.c2, "weight", amount=0.25, n=2, dim=0)
    before = _state(model)
    hooks = {k: len(m._forward_pre_hooks) for k, m in model.named_modules()}
    report = analyze(model, (3, 16, 16), mode="train")
    t = report.totals
    c1, c2, fc = 3 * 9 * 16 * 256, 16 * 9 * 16 * 256, 16 * 10  # 110,592; 589,824; 160
    assert (t["params"], t["macs"]) == (448 + 2320 + 170, c1 + c2 + fc)  # masks are buffers, not parameters
    assert t["backward_macs"] == c1 + 2 * c2 + 2 * fc  # the image needs no gradient
    rows = {r.name: r for r in report.layers}
    assert rows["c1"].optimizer_flops == 13 * 448  # weight_orig and bias train (Adam, 13 per parameter)
    assert _unchanged(before, model)
    assert {k: len(m._forward_pre_hooks) for k, m in model.named_modules()} == hooks


class WeightNormed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.utils.parametrizations.weight_norm(nn.Conv2d(3, 8, 3, padding=1))
        with pytest.warns(FutureWarning):
            self.b = nn.utils.weight_norm(nn.Conv2d(8, 8, 3, padding=1))  # the old style: a pre-hook

    def forward(self, x):
        return self.b(self.a(x))


def test_parametrised_and_old_style_weight_norm_train_and_stay_on_their_device():
    model = WeightNormed()
    before = _state(model)
    report = analyze(model, (3, 8, 8), mode="train")
    a, b = 3 * 9 * 8 * 64, 8 * 9 * 8 * 64  # 13,824; 36,864
    assert report.totals["macs"] == a + b
    rows = {r.name: r for r in report.layers}
    assert rows["a"].backward_macs == a and rows["b"].backward_macs == 2 * b
    # weight = g * v / ||v||: its backward (torch's _weight_norm_interface_backward) is costed, 5 per v + 3 per g
    assert not [u for u in report.unsupported if u.op == "_weight_norm_interface_backward"]
    assert model.b.weight.device.type == "cpu"  # the attribute the old-style hook sets, not left on meta
    assert _unchanged(before, model)


def test_lazy_modules_train_on_a_private_copy():
    model = nn.Sequential(nn.LazyConv2d(8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10))
    report = analyze(model, (3, 8, 8), mode="train")
    conv, fc = 3 * 9 * 8 * 64, 512 * 10  # 13,824; 5,120
    assert (report.totals["params"], report.totals["macs"]) == (224 + 5130, conv + fc)
    assert report.totals["backward_macs"] == conv + 2 * fc
    assert all(isinstance(p, nn.parameter.UninitializedParameter) for p in model.parameters())  # still lazy


# -- shared modules and token ids --------------------------------------------------------------------------
def test_a_module_used_twice_keeps_the_callers_weights():
    conv = nn.Conv2d(3, 3, 1)
    model = nn.Sequential(conv, conv)
    before = _state(model)
    report = analyze(model, (3, 8, 8), mode="train")
    one = 3 * 3 * 64  # 576 MACs a call
    assert report.totals["macs"] == 2 * one
    assert report.totals["backward_macs"] == one + 2 * one  # first call: weight only; second: both
    assert _unchanged(before, model) and conv.weight.device.type == "cpu"


class TinyGPT(nn.Module):
    def __init__(self, functional: bool) -> None:
        super().__init__()
        self.functional = functional
        self.tok_emb = nn.Embedding(100, 32)
        self.pos_emb = nn.Parameter(torch.zeros(16, 32))
        self.ln1 = nn.LayerNorm(32)
        self.fc1 = nn.Linear(32, 128)
        self.fc2 = nn.Linear(128, 32)
        self.ln_f = nn.LayerNorm(32)
        self.lm_head = nn.Linear(32, 100, bias=False)
        self.lm_head.weight = self.tok_emb.weight

    def forward(self, idx):
        x = self.tok_emb(idx) + self.pos_emb[: idx.shape[1]]
        x = x + self.fc2(F.gelu(self.fc1(self.ln1(x))))
        x = self.ln_f(x)
        return F.linear(x, self.tok_emb.weight) if self.functional else self.lm_head(x)


@pytest.mark.parametrize("functional", [False, True])
def test_tied_embedding_on_token_ids(functional):
    model = TinyGPT(functional)
    before = _state(model)
    report = analyze(model, ["int64:16"], mode="train")
    t = report.totals
    fc, head = 16 * 32 * 128, 16 * 32 * 100  # 65,536 each; 51,200
    assert (t["params"], t["macs"]) == (3200 + 512 + 64 + 4224 + 4128 + 64, 2 * fc + head)  # 12,192; 182,272
    assert t["backward_macs"] == 2 * (2 * fc + head)  # every layer: input (to the embedding) and weight
    assert not [u for u in report.unsupported if u.op == "embedding_dense_backward"]
    emb = next(r for r in report.layers if r.name == "tok_emb")
    # one add of each output gradient into its token's row, and the tied weight's two gradients summed
    assert emb.backward_flops == 16 * 32 + 100 * 32
    assert report.training_memory["gradient_bytes"] == 12_192 * 4  # the tied weight's gradient once
    assert _unchanged(before, model)


def test_keyword_and_several_inputs_train():
    class Two(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(4, 3), nn.Linear(6, 3)

        def forward(self, x, y, *, scale=1.0):
            return (self.a(x) + self.b(y)) * scale

    model = Two()
    report = analyze(model, [(4,), (6,)], mode="train", kwargs={"scale": 2.0})
    assert report.totals["macs"] == 4 * 3 + 6 * 3
    assert report.totals["backward_macs"] == 4 * 3 + 6 * 3  # weights only: the inputs need no gradient
    sim = simulate_step(model, [(4,), (6,)], 2, kwargs={"scale": 2.0})
    assert sim.input_bytes == 2 * (4 + 6) * 4


# -- random draws ------------------------------------------------------------------------------------------
class SkipBlock(nn.Module):
    """Skips its branch with probability 1/2 in training: a CPU draw inside forward."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        if self.training and torch.rand(()) < 0.5:
            return x
        return x + self.conv(x)


def test_a_random_layer_drop_is_one_seeded_draw_for_forward_and_backward():
    model = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), SkipBlock(), SkipBlock(), SkipBlock())
    rng = torch.get_rng_state()
    reports = [analyze(model, (8, 16, 16), mode="train") for _ in range(3)]
    assert torch.equal(torch.get_rng_state(), rng)  # the caller's generator as it was
    conv = 8 * 9 * 8 * 256  # 147,456
    totals = {(r.totals["macs"], r.totals["backward_macs"]) for r in reports}
    assert len(totals) == 1  # the same draw on every run
    macs, backward = totals.pop()
    ran = macs // conv - 1  # branches taken in this draw
    assert macs == (1 + ran) * conv and backward == conv + 2 * ran * conv  # backward of those branches only
    assert any("seeds torch's CPU generator with 0" in n for n in reports[0].notes)
    infer = analyze(model, (8, 16, 16), training=True)
    assert infer.totals["macs"] == macs  # the inference analysis of training mode: the same draw
    assert not analyze(model, (8, 16, 16)).notes  # eval: nothing drawn, nothing said


# -- structured outputs ------------------------------------------------------------------------------------
class Out(NamedTuple):
    logits: torch.Tensor
    features: torch.Tensor


@dataclass
class Output:
    logits: torch.Tensor
    features: torch.Tensor
    aux: torch.Tensor | None = None


class Structured(nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        f = self.conv(x).relu()
        logits = self.fc(f.mean((2, 3)))
        if self.kind == "namedtuple":
            return Out(logits, f)
        if self.kind == "dataclass":
            return Output(logits=logits, features=f)
        return torch.distributions.Categorical(logits=logits)


@pytest.mark.parametrize("kind", ["namedtuple", "dataclass", "categorical"])
def test_structured_outputs_are_followed_to_their_tensors(kind):
    report = analyze(Structured(kind), (3, 16, 16), mode="train")
    conv, fc = 3 * 9 * 8 * 256, 8 * 5  # 55,296; 40
    assert (report.totals["params"], report.totals["macs"]) == (224 + 45, conv + fc)
    assert report.totals["backward_macs"] == conv + 2 * fc  # the conv's weight only: the image needs none


def test_loss_tensors_walks_objects_once_each():
    w = torch.ones(3, requires_grad=True)
    y = w * 2
    got = loss_tensors({"a": Output(y, y), "b": [y, torch.zeros(2)], "c": torch.distributions.Normal(y, 1.0)})
    assert [t is y for t in got] == [True]
    assert loss_tensors((torch.zeros(2), None, "text")) == []


# -- where the step runs -----------------------------------------------------------------------------------
class NeedsData(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        y = self.fc(x)
        return y * 2 if bool(y.sum() > 0) else y


def test_a_model_that_needs_data_trains_on_the_cpu_under_auto():
    model = NeedsData()
    before = _state(model)
    report = analyze(model, (4,), mode="train")
    assert report.analysed_on == "cpu" and report.totals["backward_macs"] == 16
    with pytest.raises(AnalysisError, match="needs real data") as err:
        analyze(model, (4,), mode="train", device="meta")
    assert "device='cpu'" in err.value.hint
    assert _unchanged(before, model)


def test_first_training_step_of_a_process_reads_as_every_later_one():
    """The first torch.optim optimizer a process built kept forward's activations referenced: the first step
    read 136,184 bytes for this net, every later one 80,504 (saved activations 74,496 then 55,680)."""
    import subprocess
    import sys

    code = (
        "import archcost\nfrom torch import nn\n"
        "m = nn.Sequential(nn.Conv2d(1, 6, 5), nn.Tanh(), nn.Conv2d(6, 16, 5))\n"
        "print([archcost.analyze(m, (1, 32, 32), mode='train', optimizer='sgd').training_peak_bytes "
        "for _ in range(2)])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    first, second = eval(out)
    # tanh's output (6*28*28*4 = 18,816 B, saved for its backward) and the output (16*24*24*4 = 36,864 B) alive
    # at the end of forward; the first conv's output is not needed by any backward
    assert first == second
