"""Accuracy against weight bytes for float and int8 models (the seed's "weight precision" trade-off): the
published top-1 of torchvision's float weights and of the quantized weights made from them, each with its
source, against the bytes of their weights (archcost's parameter count x bytes per weight), blob area = MACs."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from archcost.report.chart import Chart
from archcost.report.figures import _blob_areas, _log_axis, _new, _place_labels, bytes_tick_text, pareto_front, size_key

#: torchvision's model documentation: every weight enum's page lists its ImageNet-1K acc@1 (the same figure as
#: ``<Weights>.meta["_metrics"]["ImageNet-1K"]["acc@1"]``); read from torchvision 0.29.1's metadata.
_TV_DOCS = "https://docs.pytorch.org/vision/stable/models/generated/torchvision.models.{page}.html"

#: bytes per weight at each precision: the convention of this chart (int8 = 1 byte per weight, float32 = 4).
#: torch's int8 models keep their biases in float32 and add a scale (and zero point) per tensor or channel,
#: a few kB that this convention leaves out.
BYTES_PER_WEIGHT = {"float32": 4, "int8": 1}


@dataclass(frozen=True)
class PublishedTop1:
    """One published ImageNet-1K top-1 accuracy of a model at a weight precision, with where it comes from.

    ``arch``: the architecture (float and int8 of one arch share it); ``spec``: what archcost analyses for the
    parameter and MAC counts (a zoo name whose architecture is torchvision's: same parameter count as
    torchvision's ``num_params``); ``weights``: torchvision's weight enum; ``method``: how the int8 weights were
    made; ``source``: the page that publishes ``top1``."""

    arch: str
    spec: str
    precision: str
    top1: float
    weights: str
    method: str
    source: str

    @property
    def label(self) -> str:
        return f"{self.arch} {self.precision}"


def _pair(arch: str, spec: str, float_weights: str, float_top1: float, q_weights: str, q_top1: float,
          method: str) -> tuple[PublishedTop1, PublishedTop1]:  # fmt: skip
    page = arch
    return (
        PublishedTop1(
            arch,
            spec,
            "float32",
            float_top1,
            float_weights,
            "float32 training",
            _TV_DOCS.format(page=page) + f" ({float_weights})",
        ),  # fmt: skip
        PublishedTop1(
            arch,
            spec,
            "int8",
            q_top1,
            q_weights,
            method,
            _TV_DOCS.format(page=f"quantization.{page}") + f" ({q_weights})",
        ),  # fmt: skip
    )


_PTQ = "post-training quantization, fbgemm"
_QAT = "quantization-aware training, qnnpack"

#: torchvision's quantized ImageNet-1K weights and the float weights each was made from (the quantized
#: weights' ``meta["unquantized"]``), acc@1 in percent as torchvision 0.29.1's metadata and docs publish them.
#: googlenet, inception_v3 and mobilenet_v3_large are torchvision's architectures, not the zoo's (whose
#: googlenet has the paper's 5x5 branches and whose inception_v3 has no auxiliary head), so they are counted as
#: ``torchvision:NAME`` and need torchvision installed.
PUBLISHED: tuple[PublishedTop1, ...] = (
    *_pair("resnet18", "resnet18", "ResNet18_Weights.IMAGENET1K_V1", 69.758,
           "ResNet18_QuantizedWeights.IMAGENET1K_FBGEMM_V1", 69.494, _PTQ),
    *_pair("resnet50", "resnet50", "ResNet50_Weights.IMAGENET1K_V1", 76.130,
           "ResNet50_QuantizedWeights.IMAGENET1K_FBGEMM_V1", 75.920, _PTQ),
    *_pair("mobilenet_v2", "mobilenet_v2", "MobileNet_V2_Weights.IMAGENET1K_V1", 71.878,
           "MobileNet_V2_QuantizedWeights.IMAGENET1K_QNNPACK_V1", 71.658, _QAT),
    *_pair("shufflenet_v2_x1_0", "shufflenet_v2_x1_0", "ShuffleNet_V2_X1_0_Weights.IMAGENET1K_V1", 69.362,
           "ShuffleNet_V2_X1_0_QuantizedWeights.IMAGENET1K_FBGEMM_V1", 68.360, _PTQ),
    *_pair("googlenet", "torchvision:googlenet", "GoogLeNet_Weights.IMAGENET1K_V1", 69.778,
           "GoogLeNet_QuantizedWeights.IMAGENET1K_FBGEMM_V1", 69.826, _PTQ),
    *_pair("inception_v3", "torchvision:inception_v3", "Inception_V3_Weights.IMAGENET1K_V1", 77.294,
           "Inception_V3_QuantizedWeights.IMAGENET1K_FBGEMM_V1", 77.176, _PTQ),
    *_pair("mobilenet_v3_large", "torchvision:mobilenet_v3_large", "MobileNet_V3_Large_Weights.IMAGENET1K_V1",
           74.042, "MobileNet_V3_Large_QuantizedWeights.IMAGENET1K_QNNPACK_V1", 73.004, _QAT),
)  # fmt: skip

#: the input each architecture's published accuracy was measured at, where it is not 3x224x224
INPUT_SIZES = {"inception_v3": (3, 299, 299)}

PRECISION_COLOURS = {"float32": "tab:blue", "int8": "tab:orange"}


def precision_points(counts: dict[str, tuple[int, int]], entries=PUBLISHED) -> pd.DataFrame:
    """One row per published entry whose ``spec`` has counts: model (``arch precision``), arch, precision, top1,
    params, macs, weight_bytes (= params x ``BYTES_PER_WEIGHT[precision]``), weights, method, source.

    ``counts``: ``{spec: (params, macs)}`` from archcost's analysis (``archcost.cost.collect.analyse_models``);
    entries without counts are left out (the caller says which)."""
    rows = []
    for e in entries:
        if e.spec not in counts:
            continue
        params, macs = counts[e.spec]
        rows.append({"model": e.label, "arch": e.arch, "precision": e.precision, "top1": e.top1, "params": params,
                     "macs": macs, "weight_bytes": params * BYTES_PER_WEIGHT[e.precision], "weights": e.weights,
                     "method": e.method, "source": e.source})  # fmt: skip
    return pd.DataFrame(rows)


def accuracy_vs_weight_bytes(df: pd.DataFrame) -> Chart:
    """Published top-1 (%) against weight bytes (log x), blob area proportional to MACs (with a size key),
    float32 and int8 in two colours, each float model joined to its int8 version by a thin line, the Pareto
    frontier marked (no model more accurate for fewer weight bytes). The seed lectures' efficiency slide:
    "number of weights, weight precision, and number of operations can be balanced".

    ``df``: ``precision_points``'s columns. The chart's ``frontier`` lists the frontier's models;
    ``data["sources"]`` maps every model to the source of its top-1, ``data["weight_bytes"]`` to its bytes."""
    chart, ax = _new("Accuracy against weight bytes (blob area proportional to MACs)",
                     "weight bytes (parameters x bytes per weight: float32 4, int8 1; log scale)",
                     "top-1 accuracy (%)", size=(9, 6),
                     subtitle="published ImageNet-1K top-1 (torchvision's weights metadata); counts: archcost",
                     )  # fmt: skip
    if df.empty:
        chart.warn("no model to draw")
        return chart
    sizes = _blob_areas(df["macs"])
    for _arch, group in df.groupby("arch", sort=False):
        if len(group) > 1:
            g = group.sort_values("weight_bytes")
            ax.plot(g["weight_bytes"], g["top1"], color="gray", linewidth=0.7, gid="pair", zorder=2)
    for precision, colour in PRECISION_COLOURS.items():
        idx = [i for i, p in enumerate(df["precision"]) if p == precision]
        if idx:
            ax.scatter(df["weight_bytes"].iloc[idx], df["top1"].iloc[idx], s=sizes[idx], c=colour, alpha=0.6,
                       edgecolors="black", linewidths=0.5, label=precision, gid="models", zorder=3)  # fmt: skip
    ax.set_xscale("log")
    _log_axis(ax.xaxis, df["weight_bytes"], formatter=bytes_tick_text)
    front = pareto_front(df["weight_bytes"].tolist(), df["top1"].tolist())
    ax.step(df["weight_bytes"].iloc[front], df["top1"].iloc[front], where="post", color="black", linewidth=1,
            linestyle="--", gid="frontier")  # fmt: skip
    legend = ax.legend(title="weights", fontsize=8, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    legend.set_gid("precisions")
    for handle in legend.legend_handles:  # one marker size in the key: blob size is MACs, told by the size key
        set_sizes = getattr(handle, "set_sizes", None)
        if set_sizes is not None:
            set_sizes([40])
    ax.add_artist(legend)
    size_key(ax, df["macs"], "MACs")
    ax.text(0.01, 0.01, "- - - and *: the Pareto frontier (no model is more accurate for fewer weight bytes)",
            transform=ax.transAxes, fontsize=7)  # fmt: skip
    texts = [m + (" *" if i in front else "") for i, m in enumerate(df["model"])]
    _place_labels(chart.figure, ax, df["weight_bytes"], df["top1"], texts, sizes)
    chart.frontier = list(df["model"].iloc[front])
    chart.data["sources"] = dict(zip(df["model"], df["source"], strict=True))
    chart.data["weight_bytes"] = dict(zip(df["model"], df["weight_bytes"], strict=True))
    lone = [a for a, g in df.groupby("arch", sort=False) if len(g) < 2]
    if lone:
        chart.warn(f"only one precision of {', '.join(lone)}: nothing to compare it with")
    return chart
