"""The workload (issue 24): spec strings, tuple and dict arguments, the batch dimension, integer ranges,
travelling as JSON, torch.compile'd modules, and the library entry points that take it."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import archcost
from archcost.cost.inputs import InputSpec, assemble, describe_spec, input_specs, parse_spec
from archcost.cost.workload import Workload
from archcost.errors import InputError
from tests.fixtures.workloads import MLP, DictIn, Masked, SeqFirst, TextCNN, Two


def test_spec_strings():
    assert parse_spec("224") == InputSpec((3, 224, 224))  # the image shorthand, without a dtype only
    assert parse_spec("float32:10") == InputSpec((10,), torch.float32)  # a feature vector
    assert parse_spec("int64:35xB") == InputSpec((35,), torch.int64, batch_dim=1)
    assert parse_spec("hx.0=2xBx20") == InputSpec((2, 20), None, "hx", path=(0,), batch_dim=1)
    assert parse_spec("batch.image=3x32x32") == InputSpec((3, 32, 32), None, "batch", path=("image",))
    with pytest.raises(InputError, match="more than once"):
        parse_spec("BxBx3")
    with pytest.raises(InputError, match="malformed input name"):
        parse_spec("a-b=3x3")


def test_describe_spec_gives_the_spec_again():
    for text in ("int64:35xB", "hx.0=2xBx20", "batch.image=3x32x32", "mask=bool:77", "float32:10"):
        assert describe_spec(parse_spec(text)) == text


def test_tuple_and_dict_arguments_are_put_together():
    h, c, x = torch.zeros(1, 2, 4), torch.ones(1, 2, 4), torch.zeros(3, 2)
    specs, plain = input_specs(inputs=(x, (h, c)), kwargs={"scale": 2.0})
    assert [(s.arg, s.path) for s in specs] == [(0, ()), (1, (0,)), (1, (1,))]
    args, kwargs = assemble(specs, [s.example for s in specs], plain)
    assert args[0] is x and isinstance(args[1], tuple) and args[1][0] is h and args[1][1] is c
    assert kwargs == {"scale": 2.0}
    specs, _ = input_specs(kwargs={"batch": {"image": x, "label": h}})
    _, kwargs = assemble(specs, [s.example for s in specs])
    assert set(kwargs["batch"]) == {"image", "label"}


def test_only_plain_keyword_values_is_a_clear_error():
    with pytest.raises(InputError, match="only plain keyword values"):
        input_specs(kwargs={"scale": 2.0})


def test_a_dict_argument_and_a_state_tuple_analysed_from_example_tensors():
    batch = {"image": torch.randn(2, 3, 8, 8), "label": torch.zeros(2, 3, dtype=torch.int64)}
    r = archcost.analyze(DictIn(), inputs=(batch,))
    assert r.totals["macs"] == 2 * 3 * 9 * 4 * 36  # batch 2 from the examples
    src = torch.zeros(12, 2, dtype=torch.int64)  # (seq, batch)
    hx = (torch.zeros(1, 2, 16), torch.zeros(1, 2, 16))
    r = archcost.analyze(SeqFirst(), inputs=(src, hx), batch_dim=1)
    assert r.totals["macs"] == 12 * 2 * (4 * 16 * (8 + 16) + 16 * 50)


def test_sequence_first_shapes_put_the_batch_where_b_says():
    r = archcost.analyze(SeqFirst(), ["int64:12xB", "hx.0=1xBx16", "hx.1=1xBx16"], batch_size=3)
    assert [i["shape"] for i in r.input_shapes] == [[12, 3], [1, 3, 16], [1, 3, 16]]
    assert r.totals["macs"] == 12 * 3 * (4 * 16 * (8 + 16) + 16 * 50)
    same = archcost.analyze(SeqFirst(), ["int64:12", "hx.0=1x16", "hx.1=1x16"], batch_size=3, batch_dim=1)
    assert same.totals == r.totals


def test_a_batch_dimension_the_input_does_not_have():
    with pytest.raises(InputError, match="no dimension 3 to be the batch"):
        archcost.analyze(MLP(), "float32:10", batch_dim=3)


def test_example_tensors_repeat_along_their_batch_dimension():
    w = Workload.of(MLP(), inputs=torch.arange(20.0).reshape(2, 10)).load()
    assert w.batch_size == 2
    (x,), _ = w.tensors("cpu", batch_size=5)
    assert x.shape == (5, 10) and torch.equal(x[2], x[0]) and torch.equal(x[4], x[0])


def test_integer_range_and_its_vocabulary_check():
    w = Workload.of(TextCNN(), "int64:16", int_range=(5, 9)).load()
    (ids,), _ = w.tensors("cpu")
    assert ids.dtype == torch.int64 and int(ids.min()) >= 5 and int(ids.max()) < 9
    with pytest.raises(InputError, match="outside emb"):  # a CPU run with ids past the vocabulary
        archcost.analyze(TextCNN(), "int64:16", device="cpu", int_range=(0, 1000))


def test_travels_as_json_with_its_example_tensors():
    x = torch.randn(2, 3, 8, 8)
    w = Workload.of(None, ["3x8x8", "int64:4xB"], kwargs={"y": x, "scale": 0.5}, int_range=(0, 3))
    back = Workload.from_json(w.to_json())
    assert [describe_spec(s) for s in back.specs] == [describe_spec(s) for s in w.specs]
    assert torch.equal(back.specs[-1].example, x) and back.plain == {"scale": 0.5} and back.int_range == (0, 3)
    assert w.cli_args()[:4] == ["--input-size", "3x8x8", "--input-size", "int64:4xB"]


def test_torch_compile_is_analysed_through_its_original_module():
    model = Two()
    compiled = torch.compile(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no recompile warnings: archcost's hooks are never compiled
        r = archcost.analyze(compiled, [(3, 8, 8), (3, 9, 9)])
    assert r.totals == archcost.analyze(model, [(3, 8, 8), (3, 9, 9)]).totals
    assert any("torch.compile" in n for n in r.notes)


def test_assert_cost_takes_token_ids_and_keyword_inputs():
    from archcost.testing import assert_cost

    r = assert_cost(Masked(), input_size=("int64", (7,)), kwargs={"mask": torch.ones(1, 7, dtype=torch.bool)},
                    max_macs=24)  # fmt: skip
    assert r.totals["macs"] == 24
    with pytest.raises(AssertionError, match="does not meet"):
        assert_cost(TextCNN(), input_size="int64:16", max_macs=100)


def test_profile_from_python_with_example_tensors_at_two_batch_sizes():
    df = archcost.profile(
        MLP(), inputs=torch.randn(1, 10), batch_sizes=[1, 4], device="cpu", threads=1, warmup=0, min_time=0.001,
        repeats=2, power=False, roofline=False,
    )  # fmt: skip
    assert list(df["status"]) == ["ok", "ok"]
    assert list(df["macs"]) == [50, 200]


def test_workload_for_nn_module_of_an_unknown_kind_is_a_clear_error():
    with pytest.raises(InputError, match="not a tensor"):
        archcost.analyze(nn.Linear(2, 2), inputs=(torch.zeros(1, 2), "text"))


def test_a_spec_is_built_with_the_same_random_weights_every_time():
    """A forward that branches on values must take the same branch in every command and run (check and profile
    flipped between branches from run to run); the caller's generator is left as it was."""
    state = torch.random.get_rng_state()
    a = Workload.of("lenet5").load("cpu").module.state_dict()
    b = Workload.of("lenet5").load("cpu").module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(torch.random.get_rng_state(), state)
