"""The explicit free list: ops that only move, view, copy, cast, index or create data, and cost 0.

An op on this list costs 0 FLOPs by decision, not by default: any other op without a formula is listed as
not costed (``report.unsupported``), whatever the dtype of its output. Selections (``where``,
``masked_fill``) and gathers (``embedding``, ``gather``, ``index_select``) copy values without arithmetic.
"""

from __future__ import annotations

from archcost.cost._registry import register_free

#: Views and reshapes (no copy, or a copy in another layout).
VIEWS = (
    "view", "view_as", "reshape", "reshape_as", "flatten", "unflatten", "permute", "transpose", "t", "T", "mT",
    "H", "mH", "adjoint", "squeeze", "unsqueeze", "expand", "expand_as", "broadcast_to", "broadcast_tensors",
    "movedim", "moveaxis", "swapaxes", "swapdims", "as_strided", "narrow", "select", "unfold", "diagonal",
    "real", "imag", "view_as_real", "view_as_complex", "conj", "resolve_conj", "resolve_neg", "data", "detach",
    "contiguous", "atleast_1d", "atleast_2d", "atleast_3d", "ravel", "split", "split_with_sizes", "chunk",
    "tensor_split", "unbind", "hsplit", "vsplit", "dsplit",
)  # fmt: skip
#: Copies that rearrange or repeat data.
COPIES = (
    "cat", "concat", "concatenate", "stack", "hstack", "vstack", "dstack", "column_stack", "clone", "copy",
    "repeat", "repeat_interleave", "tile", "roll", "flip", "fliplr", "flipud", "rot90", "pad", "channel_shuffle",
    "native_channel_shuffle", "pixel_shuffle", "pixel_unshuffle", "im2col", "meshgrid", "tril", "triu",
)  # fmt: skip
#: Indexing, gathering and selecting by a mask or a condition (no arithmetic on the values).
INDEXING = (
    "getitem", "setitem", "index", "index_select", "gather", "take", "take_along_dim", "masked_select",
    "masked_fill", "masked_scatter", "index_put", "index_copy", "index_fill", "scatter", "where", "embedding",
    "nonzero", "one_hot",
)  # fmt: skip
#: Casts and device moves.
CASTS = (
    "to", "type", "type_as", "float", "half", "bfloat16", "double", "int", "long", "short", "bool", "byte",
    "char", "cpu", "cuda", "requires_grad", "retain_grad",
)  # fmt: skip
#: Tensor creation (no input data read).
CREATION = (
    "zeros", "ones", "empty", "full", "zeros_like", "ones_like", "empty_like", "full_like", "new_zeros",
    "new_ones", "new_empty", "new_full", "new_tensor", "tensor", "as_tensor", "arange", "linspace", "logspace",
    "eye", "fill", "zero", "rand", "randn", "randint", "rand_like", "randn_like", "randperm", "empty_strided",
)  # fmt: skip

FREE_OPS = VIEWS + COPIES + INDEXING + CASTS + CREATION
register_free(*VIEWS, memory="view")  # views where torch can make one (reshape, contiguous copy otherwise)
register_free(*COPIES, *INDEXING, *CASTS, *CREATION)
