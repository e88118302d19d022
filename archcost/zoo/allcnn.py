"""All-CNN-C (Springenberg et al. 2015): convolutions only, strided convs instead of max pooling (CIFAR-10)."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from archcost.errors import ModelOptionError
from archcost.zoo._meta import ModelMeta, Published
from archcost.zoo._registry import register_model

_PAPER = "Striving for Simplicity: The All Convolutional Net"


@register_model(
    ModelMeta(
        family="allcnn",
        paper=_PAPER,
        year=2015,
        input_size=(3, 32, 32),
        num_classes=10,
        dataset="CIFAR-10",
        params=Published(1.3e6, "Springenberg et al. 2015, Table 3 (All-CNN-C, ~1.3 M parameters)"),
        # exact count 1,369,738: the paper's 1.3 M is truncated, not rounded
        top1=Published(92.75, "Springenberg et al. 2015, Table 3: 7.25% error, with data augmentation"),
        notes="Without augmentation Table 3 gives 9.08% error (90.92% accuracy).",
    )
)
def allcnn_c(*, num_classes: int = 10) -> nn.Module:
    """All-CNN-C, Table 2 (model C) with Sec. 3.1's pooling replacement (Table 1, "All-CNN-C").

    Body: 3x3 conv 96, 3x3 conv 96, 3x3 conv 96 stride 2, 3x3 conv 192 x2, 3x3 conv 192 stride 2,
    3x3 conv 192 (valid padding: 8x8 -> 6x6, Table 2's "global averaging over 6x6"), 1x1 conv 192,
    1x1 conv ``num_classes``, each followed by ReLU, then global average pooling and softmax (left to the
    loss). The 3x3 convs are zero-padded ("same") except the seventh, so 32 -> 16 -> 8 -> 6. Biases on
    every conv; no batch norm. Dropout as in Sec. 3.2: 20% on the input, 50% after each stride-2 conv
    ("after each pooling layer"); an identity at inference.

    1,369,738 parameters (Table 3 says "~1.3 M": truncated) and 270,798,336 MACs on a 32x32 image.
    """
    if num_classes < 1:
        raise ModelOptionError(f"num_classes must be >= 1, got {num_classes}")
    spec = [
        # (name, in, out, kernel, stride, padding)
        ("conv1", 3, 96, 3, 1, 1),
        ("conv2", 96, 96, 3, 1, 1),
        ("conv3", 96, 96, 3, 2, 1),
        ("conv4", 96, 192, 3, 1, 1),
        ("conv5", 192, 192, 3, 1, 1),
        ("conv6", 192, 192, 3, 2, 1),
        ("conv7", 192, 192, 3, 1, 0),
        ("conv8", 192, 192, 1, 1, 0),
        ("conv9", 192, num_classes, 1, 1, 0),
    ]
    layers: OrderedDict[str, nn.Module] = OrderedDict(drop_input=nn.Dropout(0.2))
    for name, cin, cout, k, s, p in spec:
        layers[name] = nn.Conv2d(cin, cout, k, s, p)
        layers[f"relu{name[4:]}"] = nn.ReLU(inplace=True)
        if s == 2:
            layers[f"drop{name[4:]}"] = nn.Dropout(0.5)
    layers["global_avg_pool"] = nn.AdaptiveAvgPool2d(1)
    layers["flatten"] = nn.Flatten(1)
    return nn.Sequential(layers)
