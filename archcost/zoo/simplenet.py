"""SimpleNet (Hasanpour et al. 2016) and SimpNet (Hasanpour et al. 2018): plain 13-layer CNNs for CIFAR-10.

Both papers show their networks as figures only; the layer settings here are the authors' Caffe
definitions, cited per model. Dropout is kept where those definitions have it (identity at inference).
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from archcost.errors import ModelOptionError
from archcost.zoo._meta import ModelMeta, Published
from archcost.zoo._registry import register_model

_PAPER_SIMPLENET = "Lets keep it simple, Using simple architectures to outperform deeper and more complex architectures"
_PAPER_SIMPNET = "Towards Principled Design of Deep Convolutional Networks: Introducing SimpNet"
_SIMPLENET_REF = (
    "github.com/Coderx7/SimpleNet, SimpNet_V1/Benchmarks Results/CIFAR10/"
    "95.32_Normal_Arch_alldrp_Zeropad/train_val.prototxt"
)
_SIMPNET_REF = "github.com/Coderx7/SimpNet, SimpNetV2"


def _check(num_classes: int) -> None:
    if num_classes < 1:
        raise ModelOptionError(f"num_classes must be >= 1, got {num_classes}")


# SimpleNet CIFAR-10 (the authors' Caffe prototxt), in order. Each entry is one layer:
# ("conv", name, out, kernel, bn) | ("pool", name) | ("drop", name, p). BN is Caffe BatchNorm+Scale
# (= nn.BatchNorm2d with affine), always followed by ReLU; convs without BN go straight to ReLU.
_SIMPLENET = (
    ("conv", "conv1", 64, 3, True), ("drop", "drop1", 0.2),
    ("conv", "conv1_0", 128, 3, True), ("drop", "drop1_0", 0.2),
    ("conv", "conv2", 128, 3, True), ("drop", "drop2", 0.2),
    ("conv", "conv2_1", 128, 3, True),
    ("pool", "pool2_1"), ("drop", "drop2_1", 0.2),
    ("conv", "conv2_2", 128, 3, True), ("drop", "drop2_2", 0.2),
    ("conv", "conv3", 128, 3, True), ("drop", "drop3", 0.2),
    ("conv", "conv4", 256, 3, "pool4"),  # the prototxt pools conv4 *before* its BN and ReLU
    ("drop", "drop4", 0.2),
    ("conv", "conv4_1", 256, 3, True), ("drop", "drop4_1", 0.2),
    ("conv", "conv4_2", 256, 3, True), ("drop", "drop4_2", 0.2),
    ("pool", "pool4_2"),
    ("conv", "conv4_0", 512, 3, True), ("drop", "drop4_0", 0.2),
    ("conv", "cccp4", 2048, 1, False), ("drop", "drop4_3", 0.2),
    ("conv", "cccp5", 256, 1, False),
    ("pool", "poolcp5"), ("drop", "drop4_5", 0.2),
    ("conv", "cccp6", 256, 3, False),
    ("pool", "poolcp6"),
)  # fmt: skip


def _build(spec: tuple, num_classes: int, global_pool: bool) -> nn.Sequential:
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    cin = 3
    for entry in spec:
        kind, name = entry[0], entry[1]
        if kind == "pool":
            layers[name] = nn.MaxPool2d(2, 2)
        elif kind == "drop":
            layers[name] = nn.Dropout(entry[2])
        else:
            _, _, cout, k, bn = entry
            suffix = name[4:] if name.startswith("conv") else f"_{name}"
            layers[name] = nn.Conv2d(cin, cout, k, 1, k // 2)
            if bn == "pool4":
                layers[bn] = nn.MaxPool2d(2, 2)
            if bn:
                layers[f"bn{suffix}"] = nn.BatchNorm2d(cout)
            layers[f"relu{suffix}"] = nn.ReLU(inplace=True)
            cin = cout
    if global_pool:
        layers["global_max_pool"] = nn.AdaptiveMaxPool2d(1)
    layers["flatten"] = nn.Flatten(1)
    layers["ip1"] = nn.Linear(cin, num_classes)
    return nn.Sequential(layers)


@register_model(
    ModelMeta(
        family="simplenet",
        paper=_PAPER_SIMPLENET,
        year=2016,
        input_size=(3, 32, 32),
        num_classes=10,
        dataset="CIFAR-10",
        params=Published(5.48e6, "Hasanpour et al. 2016, CIFAR-10 results table (5.48 m); repository README"),
        top1=Published(95.32, f"Hasanpour et al. 2016, CIFAR-10, zero-pad augmentation; {_SIMPLENET_REF}"),
        notes="5.48 M matches the conv+FC weights (5,484,736); with biases and BN affine parameters the "
        "module holds 5,493,258.",
    )
)
def simplenet_cifar(*, num_classes: int = 10) -> nn.Module:
    """SimpleNet, the 13-layer CIFAR-10 network, as in the authors' Caffe definition
    (github.com/Coderx7/SimpleNet, SimpNet_V1/Benchmarks Results/CIFAR10/95.32_Normal_Arch_alldrp_Zeropad).

    Ten 3x3 convs (64, 128, 128, 128, 128, 128, 256, 256, 256, 512) with BN and ReLU, two 1x1 convs
    (2048, 256, "cccp4/5") and a 3x3 conv (256, "cccp6") with ReLU but no BN, 2x2/2 max pools after
    conv2_1, conv4 (before its BN, as in the prototxt), conv4_2, cccp5 and cccp6 (32 -> 1), then the FC
    classifier. Dropout 0.2 after most layers.

    The authors' later PyTorch port (github.com/Coderx7/SimpleNet_Pytorch, Cifar/models/simplenet.py,
    "simplenet_cifar_5m") differs: BN on every conv, padding 1 on the 1x1 convs (which grows 4x4 maps to
    8x8) and global max pooling; we follow the Caffe definition the paper's results come from.
    Parameters: 5,484,736 weights (the paper's 5.48 M), 5,493,258 with biases and BN.
    """
    _check(num_classes)
    return _build(_SIMPLENET, num_classes, global_pool=False)


def _simpnet_spec(widths: tuple[int, ...], drops: tuple[float, ...] | None) -> tuple:
    """SimpNet's 13 conv layers (authors' prototxt names), 2x2/2 max pools after conv2_2 and conv4_2.

    ``drops`` gives (conv dropout, after-pool-2 and later dropout, final dropout) or None for none.
    Every conv is conv -> BN -> ReLU (Caffe BatchNorm + Scale); after the last conv comes global max
    pooling, then the FC layer.
    """
    names = (
        "conv1", "conv1_0", "conv2", "conv2_1", "conv2_2", "conv3", "conv3_1",
        "conv4", "conv4_1", "conv4_2", "conv4_0", "conv11", "conv12",
    )  # fmt: skip
    spec: list[tuple] = []
    for i, (name, w) in enumerate(zip(names, widths, strict=True)):
        spec.append(("conv", name, w, 3, True))
        if name == "conv2_2":
            spec.append(("pool", "pool2_1"))
        if name == "conv4_2":
            spec.append(("pool", "pool4_2"))
        if drops is not None and name != "conv12":
            spec.append(("drop", f"drop{i + 1}", drops[0] if i < 9 else drops[1]))
    return tuple(spec)


# The authors' prototxts, conv widths in the order of ``_simpnet_spec``'s names.
_SIMPNET_5M = (66, 128, 128, 128, 192, 192, 192, 192, 192, 288, 288, 355, 432)
_SIMPNET_SLIM_300K = (30, 40, 40, 40, 50, 50, 50, 50, 50, 58, 58, 70, 90)
_SIMPNET_SLIM_600K = (40, 60, 60, 60, 72, 73, 73, 73, 75, 81, 82, 90, 120)


def _simpnet(widths: tuple[int, ...], drops: tuple[float, ...] | None, num_classes: int) -> nn.Module:
    _check(num_classes)
    body = _build(_simpnet_spec(widths, drops), num_classes, global_pool=True)
    if drops is not None:
        # The prototxts put the last dropout between the global pool and the FC layer.
        items = list(body.named_children())
        at = [n for n, _ in items].index("flatten")
        items.insert(at, ("drop_final", nn.Dropout(drops[2])))
        body = nn.Sequential(OrderedDict(items))
    return body


@register_model(
    ModelMeta(
        family="simplenet",
        paper=_PAPER_SIMPNET,
        year=2018,
        input_size=(3, 32, 32),
        num_classes=10,
        dataset="CIFAR-10",
        params=Published(5.4e6, "Hasanpour et al. 2018, top CIFAR-10/100 results (5.4 M); SimpNet README"),
        top1=Published(95.49, f"Hasanpour et al. 2018, CIFAR-10 (SimpNet, 5.4 M); {_SIMPNET_REF} README"),
        notes="Built from SimpNetV2/Architectures/CIFAR10/5Mil/test.prototxt: 5,478,223 parameters with BN.",
    )
)
def simpnet_cifar(*, num_classes: int = 10) -> nn.Module:
    """SimpNet (the 5 M CIFAR-10 model), from the authors' SimpNetV2/Architectures/CIFAR10/5Mil prototxt.

    Thirteen 3x3 convs with BN and ReLU, widths 66, 128, 128, 128, 192 | 192, 192, 192, 192, 288 |
    288, 355, 432 with 2x2/2 max pools at the bars (32 -> 16 -> 8), global max pooling and one FC layer
    (Fig. 6). Dropout 0.2 after the first nine convs, 0.3 after the later ones and before the FC layer
    (the paper's SAF-pooling is max pooling followed by dropout; at inference it is the max pool).
    5,472,677 conv/FC parameters, 5,478,223 with BN.
    """
    return _simpnet(_SIMPNET_5M, (0.2, 0.3, 0.3), num_classes)


@register_model(
    ModelMeta(
        family="simplenet",
        paper=_PAPER_SIMPNET,
        year=2018,
        input_size=(3, 32, 32),
        num_classes=10,
        dataset="CIFAR-10",
        params=Published(300e3, "Hasanpour et al. 2018, Table XV (slim SimpNet 300K) and Table S3"),
        top1=Published(93.25, "Hasanpour et al. 2018, Table XV (slim SimpNet, 300K params, CIFAR-10)"),
        notes="Built from SimpNetV2/Experiments/Slim Test/CIFAR10/300K_93.25 prototxt (no dropout).",
    )
)
def simpnet_slim_cifar(*, num_classes: int = 10, size: str = "300k") -> nn.Module:
    """Slim SimpNet, the 300K / 600K CIFAR-10 models of Table XV ("300K - 600K").

    ``size="300k"`` (default, 93.25%): widths 30, 40, 40, 40, 50 | 50, 50, 50, 50, 58 | 58, 70, 90, no
    dropout (SimpNetV2/Experiments/Slim Test/CIFAR10/300K_93.25). ``size="600k"`` (94.03%): widths
    40, 60, 60, 60, 72 | 73, 73, 73, 75, 81 | 82, 90, 120 with dropout 0.1 / 0.2
    (.../600K_94.03). Same 13-layer layout as ``simpnet_cifar``. 299,612 and 599,103 conv/FC
    parameters; 300,964 and 601,021 with BN.
    """
    if size == "300k":
        return _simpnet(_SIMPNET_SLIM_300K, None, num_classes)
    if size == "600k":
        return _simpnet(_SIMPNET_SLIM_600K, (0.1, 0.2, 0.2), num_classes)
    raise ModelOptionError(f"size must be '300k' or '600k', got {size!r}")
