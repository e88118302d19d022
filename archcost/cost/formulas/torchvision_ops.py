"""torchvision's detection ops, as ``torch.ops.torchvision.*`` receives them (``torchvision.ops.roi_align``
and ``deform_conv2d`` call these): RoIAlign, deformable convolution; RoI max pooling and NMS depend on the
data (box sizes, scores) and are listed as not costed with that reason. Needs no torchvision to import."""

from __future__ import annotations

import math

from archcost.cost._registry import Cost, NotCostable, register_cost
from archcost.cost.formulas.elementwise import INTERPOLATE_FLOPS


def roi_align_flops(out_elements: int, sampling_ratio: int) -> int:
    """Every output bin averages ``s x s`` bilinear samples: per sample 9 FLOPs of interpolation and an add,
    then a divide per bin (the first add replaced by it): ``10 * s^2`` per output element."""
    return out_elements * sampling_ratio**2 * (INTERPOLATE_FLOPS["bilinear"] + 1)


@register_cost("torchvision::roi_align", "torchvision::ps_roi_align")
def _roi_align(args: tuple, kwargs: dict, out) -> Cost:
    # roi_align(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned)
    result = out[0] if isinstance(out, tuple) else out
    sampling_ratio = int(args[5])
    if sampling_ratio <= 0:
        raise NotCostable("sampling_ratio <= 0 samples ceil(box size / bin) points: the count depends on the boxes")
    return Cost(flops=roi_align_flops(result.numel(), sampling_ratio))


def deform_conv2d_cost(
    out_shape: tuple[int, ...], weight_shape: tuple[int, ...], in_channels: int, *, bias: bool, mask: bool
) -> Cost:
    """A convolution's MACs (``C_in/groups * kh * kw`` per output element) on bilinearly sampled inputs:
    each of the ``N * C_in * H_out * W_out * kh * kw`` samples costs 9 FLOPs of interpolation (and one
    multiply by the modulation mask of v2)."""
    n, _, h, w = out_shape
    kernel = math.prod(weight_shape[2:])
    macs = math.prod(out_shape) * weight_shape[1] * kernel
    samples = n * in_channels * h * w * kernel
    flops = 2 * macs + (math.prod(out_shape) if bias else 0) + samples * (INTERPOLATE_FLOPS["bilinear"] + int(mask))
    return Cost(macs=macs, flops=flops)


@register_cost("torchvision::deform_conv2d")
def _deform_conv2d(args: tuple, kwargs: dict, out) -> Cost:
    # deform_conv2d(input, weight, offset, mask, bias, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w,
    #               n_weight_grps, n_offset_grps, use_mask)
    x, weight, bias, use_mask = args[0], args[1], args[4], bool(args[13])
    has_bias = bias is not None and bias.numel() > 0
    return deform_conv2d_cost(tuple(out.shape), tuple(weight.shape), x.shape[1], bias=has_bias, mask=use_mask)


@register_cost("torchvision::roi_pool", "torchvision::ps_roi_pool")
def _roi_pool(args: tuple, kwargs: dict, out) -> Cost:
    raise NotCostable("RoI max pooling compares the values in each bin, whose size depends on the boxes")


@register_cost("torchvision::nms")  # torchvision.ops.batched_nms calls it
def _nms(args: tuple, kwargs: dict, out) -> Cost:
    raise NotCostable("non-maximum suppression's comparisons depend on the scores and boxes")
