"""The report in Python and notebooks (str, HTML, summary) and the columns a table can show: trainable and
frozen parameters, share of the MACs, the k costliest layers."""

import json
import sys
import types

import pytest
from torch import nn

import archcost
from archcost.cli import main
from archcost.cost.record import LayerCost
from archcost.errors import InputError
from archcost.report.table import COLUMNS, layer_frame, render


class Frozen(nn.Module):
    """A frozen stem (a pretrained backbone) and a trainable head: the fine-tuning case."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8 * 8 * 8, 10))
        for p in self.stem.parameters():
            p.requires_grad_(False)
        self.stem[0].bias.requires_grad_(True)  # one trainable tensor inside the frozen block

    def forward(self, x):
        return self.head(self.stem(x))


CONV_W, CONV_B = 8 * 3 * 3 * 3, 8  # 216 frozen, 8 trainable
BN = 8 + 8  # frozen weight and bias
FC = 8 * 8 * 8 * 10 + 10  # 5130 trainable
CONV_MACS = (3 * 3 * 3) * 8 * 8 * 8  # 13,824
FC_MACS = 8 * 8 * 8 * 10  # 5,120


@pytest.fixture(scope="module")
def report():
    return archcost.analyze(Frozen(), input_size=(3, 8, 8))


def rows(report):
    return {r.name: r for r in report.layers}


def test_each_row_counts_its_trainable_and_frozen_parameters(report):
    r = rows(report)
    assert (r["stem.0"].params, r["stem.0"].trainable_params, r["stem.0"].frozen_params) == (
        CONV_W + CONV_B,
        CONV_B,
        CONV_W,
    )
    assert (r["stem.1"].trainable_params, r["stem.1"].frozen_params) == (0, BN)
    assert (r["head.1"].trainable_params, r["head.1"].frozen_params) == (FC, 0)
    assert (r["stem.2"].trainable_params, r["stem.2"].frozen_params) == (0, 0)


def test_the_cpu_analysis_counts_them_the_same(report):
    on_cpu = archcost.analyze(Frozen(), input_size=(3, 8, 8), device="cpu")
    assert [r.trainable_params for r in on_cpu.layers] == [r.trainable_params for r in report.layers]


def test_the_model_keeps_its_flags():
    model = Frozen()
    before = [p.requires_grad for p in model.parameters()]
    archcost.analyze(model, input_size=(3, 8, 8))
    assert [p.requires_grad for p in model.parameters()] == before


def test_json_has_the_per_row_count_and_an_unknown_count_is_left_out(report):
    doc = json.loads(render(report, "json"))
    assert sum(row["trainable_params"] for row in doc["layers"]) == CONV_B + FC
    graph_row = LayerCost("n", "Conv", "", "module", 1, (), (1,), 5, 0, 0, 20, 4)  # an ONNX node: no requires_grad
    assert graph_row.trainable_params is None and graph_row.frozen_params is None
    assert "trainable_params" not in graph_row.to_dict()


def test_trainable_frozen_and_share_columns_with_totals(report):
    df = layer_frame(report, columns=["params", "trainable_params", "frozen_params", "macs", "share"])
    assert list(df.columns) == ["name", "params", "trainable_params", "frozen_params", "macs", "share"]
    total = df.iloc[-1]
    assert (total["name"], total["trainable_params"], total["frozen_params"]) == ("Total", CONV_B + FC, CONV_W + BN)
    conv = df[df["name"] == "stem.0"].iloc[0]
    assert conv["share"] == pytest.approx(CONV_MACS / (CONV_MACS + FC_MACS))
    assert df["share"].iloc[:-1].sum() == pytest.approx(1.0) and total["share"] == 1.0
    text = render(report, columns="trainable_params,frozen_params,share")
    header = text.splitlines()[1].split()
    assert header == ["Layer", "Trainable", "Frozen", "Share"]
    assert "73.0%" in text  # 13,824 / 18,944 of the MACs in the conv
    assert "Trainable / Frozen: parameters with requires_grad True / False." in text


def test_rolled_up_rows_add_their_trainable_parameters(report):
    df = layer_frame(report, depth=1, columns=["trainable_params", "frozen_params"])
    by_name = df.set_index("name")
    assert by_name.loc["stem", "trainable_params"] == CONV_B and by_name.loc["stem", "frozen_params"] == CONV_W + BN
    assert by_name.loc["head", "trainable_params"] == FC


def test_top_shows_the_costliest_rows_first_with_the_whole_models_totals(report):
    df = layer_frame(report, top=2)
    assert list(df["name"]) == ["stem.0", "head.1", "Total"]
    assert df.iloc[-1]["macs"] == report.totals["macs"] == CONV_MACS + FC_MACS
    assert df.iloc[-1]["params"] == CONV_W + CONV_B + BN + FC
    text = render(report, top=1)
    assert "head.1" not in text.split("Total")[0]
    n = len(report.layers)
    assert f"Shown: the 1 of {n} layers with the most MACs, costliest first (73.0% of the MACs)" in text
    with pytest.raises(InputError, match=">= 1"):
        render(report, top=0)


def test_an_unknown_column_names_the_valid_ones(report):
    with pytest.raises(InputError) as info:
        render(report, columns=["macs", "gflops"])
    assert "'gflops'" in str(info.value) and all(c in info.value.hint for c in COLUMNS)


def test_str_is_the_text_table_and_repr_is_one_line(report):
    text = str(report)
    assert text == render(report, "text")
    assert "Total" in text and "Memory: peak activations" in text and text.startswith("Frozen\nLayer")
    assert "\n" not in repr(report) and len(repr(report)) < 200
    assert repr(report).startswith("<CostReport Frozen:") and f"{report.totals['macs']:,} MACs" in repr(report)


def test_html_is_a_table_with_the_footer(report):
    html = report._repr_html_()
    assert html.count("<table>") == 1 and "<th>Layer" in html and "<td>Total" in html
    assert "<p>Input 1x3x8x8 float32, inference:" in html
    assert "papers&#x27; mult-adds" in html  # footer text is escaped
    top = render(report, "html", columns=["share"], top=1)
    assert top.count("<tr>") == 3  # header, the costliest layer, the totals


def test_summary_prints_outside_ipython_and_returns_the_report(capsys, monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    got = archcost.summary(Frozen(), input_size=(3, 8, 8), columns=["macs", "share"], top=1)
    out = capsys.readouterr().out
    assert got.totals["macs"] == CONV_MACS + FC_MACS
    assert out == render(got, "text", columns=["macs", "share"], top=1)


def test_summary_displays_through_ipython_when_it_runs(capsys, monkeypatch):
    shown = []
    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: object()
    fake_display = types.ModuleType("IPython.display")
    fake_display.display = shown.append
    monkeypatch.setitem(sys.modules, "IPython", fake)
    monkeypatch.setitem(sys.modules, "IPython.display", fake_display)
    got = archcost.summary(Frozen(), input_size=(3, 8, 8), depth=1)
    assert capsys.readouterr().out == ""
    (obj,) = shown
    assert obj._repr_html_() == render(got, "html", depth=1)
    assert repr(obj) == render(got, "text", depth=1).rstrip("\n")


def test_summary_checks_the_columns_before_analysing(monkeypatch):
    import archcost.cost.analysis as analysis

    monkeypatch.setattr(analysis, "analyze", lambda *a, **k: pytest.fail("analysed before checking the columns"))
    with pytest.raises(InputError, match="unknown column"):
        archcost.summary(Frozen(), input_size=(3, 8, 8), columns=["nope"])


USER = "tests.fixtures.usermodels:tiny_resnet"


def test_cli_columns_and_top(capsys):
    code = main(["table", USER, "--input-size", "3x16x16", "--columns", "macs,share", "--top", "2", "--format", "csv"])
    out = capsys.readouterr().out.splitlines()
    from tests.fixtures.usermodels import tiny_resnet

    whole = archcost.analyze(tiny_resnet(), input_size=(3, 16, 16)).totals["macs"]
    assert code == 0 and out[0] == "name,macs,share" and len(out) == 1 + 2 + 1
    assert out[-1] == f"Total,{whole},1.0"  # the whole model's, not the two rows'
    assert int(out[1].split(",")[1]) >= int(out[2].split(",")[1])  # costliest first


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--columns", "macs,bogus"], "unknown column 'bogus'"),
        (["--columns", "macs", "--format", "json"], "JSON holds every field"),
        (["--top", "3", "--fvcore"], "--fvcore has a table of its own"),
    ],
)
def test_cli_bad_columns_exit_2(capsys, argv, message):
    code = main(["table", USER, "--input-size", "3x16x16", *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_readme_names_every_column():
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    paragraph = readme.split("Columns (`columns=`, `--columns`):")[1].split("\n\n")[0]
    assert all(name in paragraph for name in COLUMNS)


# -- the one renderer ------------------------------------------------------------------------------------------
def test_the_renderer_aligns_words_left_numbers_right_and_rules_the_totals():
    from archcost.tables import render_table

    text = render_table([["conv1", "1.20 K"], ["fc", "3"], ["Total", "1.20 K"]], headers=["Layer", "MACs"], totals=True)
    assert text.splitlines() == [
        "Layer    MACs",
        "-----  ------",
        "conv1  1.20 K",
        "fc          3",
        "-----  ------",
        "Total  1.20 K",
    ]
    md = render_table([["a|b", "77.0"], ["c", "76.4"]], "markdown", headers=["name", "top1"])
    rule = md.splitlines()[1]
    assert "77.0" in md and rule.startswith("|:") and rule.endswith(":|")  # no re-parsing; words left, numbers right
    html = render_table([["<b>", None]], "html", headers=["x", "y"])
    assert "&lt;b&gt;" in html and "None" not in html


def test_list_reads_the_published_figures_without_analysing(monkeypatch, capsys):
    import archcost.cost
    import archcost.cost.analysis as analysis

    def fail(*args, **kwargs):
        pytest.fail("archcost list analysed a model")

    for where in (analysis, archcost.cost, archcost):
        monkeypatch.setattr(where, "analyze", fail)
    assert main(["list", "--format", "json"]) == 0
    models = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    meta = archcost.get_meta("vgg16")
    assert models["vgg16"]["macs"] == meta.macs.value and models["vgg16"]["macs_source"] == meta.macs.source
    assert "archcost_macs" not in models["vgg16"]


def test_list_computed_adds_archcosts_own_counts(capsys):
    assert main(["list", "--family", "lenet", "--computed", "--format", "json"]) == 0
    (lenet,) = json.loads(capsys.readouterr().out)
    from archcost.zoo import get_model

    totals = archcost.analyze(get_model("lenet5"), input_size=(1, 32, 32)).totals
    assert (lenet["archcost_params"], lenet["archcost_macs"]) == (totals["params"], totals["macs"])
