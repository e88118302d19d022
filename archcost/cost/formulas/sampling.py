"""Sampling and patch ops: ``grid_sample``, ``affine_grid``, ``embedding_bag``, ``fold`` (``col2im``)."""

from __future__ import annotations

import math

from archcost.cost._registry import Cost, register_cost
from archcost.cost.formulas._args import arg, tensor_arg
from archcost.cost.formulas._tools import FV_GRID_SAMPLE
from archcost.cost.formulas.elementwise import INTERPOLATE_FLOPS
from archcost.units import per_element

#: grid_sample's modes -> the interpolation they do per output element, in 2-D and 3-D.
_GRID_MODES = {("bilinear", 2): "bilinear", ("bilinear", 3): "trilinear", ("bicubic", 2): "bicubic"}


def grid_sample_flops(out_elements: int, grid_elements: int, mode: str, dims: int) -> int:
    """Per output element the interpolation of ``mode`` (bilinear: 3 lerps, 9 FLOPs; trilinear 21;
    bicubic 32; nearest 0, as ``interpolate``), plus 2 per grid coordinate to map it from [-1, 1] to pixels."""
    interp = INTERPOLATE_FLOPS[_GRID_MODES.get((mode, dims), "nearest")]
    return out_elements * interp + grid_elements * per_element("grid_coordinate")


@register_cost("grid_sample", "grid_sampler", fvcore=FV_GRID_SAMPLE)
def _grid_sample(args: tuple, kwargs: dict, out) -> Cost:
    grid = tensor_arg(args, kwargs, 1, "grid")
    mode = arg(args, kwargs, 2, "mode", "bilinear")
    if isinstance(mode, int):  # torch.grid_sampler(input, grid, interpolation_mode: 0 bilinear 1 nearest 2 bicubic)
        mode = ("bilinear", "nearest", "bicubic")[mode]
    if not isinstance(mode, str):
        raise TypeError(f"grid_sample's mode is {type(mode).__name__}, not a name or an int")
    return Cost(flops=grid_sample_flops(out.numel(), grid.numel(), mode, grid.dim() - 2))


@register_cost("affine_grid_generator")
def _affine_grid(args: tuple, kwargs: dict, out) -> Cost:
    """Every output coordinate is a dot product of a row of ``theta`` (``dims + 1`` long) with the
    homogeneous base grid point: ``out.numel() * (dims + 1)`` MACs (torch runs a ``bmm``)."""
    dims = out.shape[-1]
    macs = out.numel() * (dims + 1)
    return Cost(macs=macs, flops=2 * macs)


@register_cost("embedding_bag")
def _embedding_bag(args: tuple, kwargs: dict, out) -> Cost:
    """Bags of looked-up rows reduced by sum, mean or max: ``(rows - bags) * D`` adds (or comparisons),
    a divide per output for mean, a multiply per looked-up element for ``per_sample_weights``."""
    # F.embedding_bag(input, weight, offsets, max_norm, norm_type, scale_grad_by_freq, mode="mean", sparse,
    #                 per_sample_weights, ...); torch.embedding_bag(weight, indices, offsets, scale_grad_by_freq,
    #                 mode=0, sparse, per_sample_weights, ...) with mode 0 sum, 1 mean, 2 max
    functional = not tensor_arg(args, kwargs, 0, "input").is_floating_point()
    weight = tensor_arg(args, kwargs, 1, "weight") if functional else tensor_arg(args, kwargs, 0, "weight")
    indices = tensor_arg(args, kwargs, 0, "input") if functional else tensor_arg(args, kwargs, 1, "indices")
    mode = arg(args, kwargs, 6, "mode", "mean") if functional else arg(args, kwargs, 4, "mode", 0)
    per_sample = arg(args, kwargs, 8 if functional else 6, "per_sample_weights")
    result = out[0] if isinstance(out, tuple) else out
    d = weight.shape[-1]
    bags = result.numel() // d
    flops = max(indices.numel() - bags, 0) * d
    if mode in (1, "mean"):
        flops += result.numel()
    if per_sample is not None:
        flops += indices.numel() * d
    return Cost(flops=flops)


@register_cost("fold", "col2im")
def _fold(args: tuple, kwargs: dict, out) -> Cost:
    """Summing sliding blocks back into an image: each output element adds the block values that land on
    it, ``in - out`` adds in all (exact without padding; with padding the padded values are dropped)."""
    x = tensor_arg(args, kwargs, 0, "input")
    return Cost(flops=max(x.numel() - math.prod(out.shape), 0))
