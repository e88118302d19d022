"""Writing a torch model to an ONNX file with a static input shape (the TorchScript exporter).

``torch.onnx.export`` defaults to the dynamo exporter since torch 2.9, which needs the separate
``onnxscript`` package; the TorchScript exporter (``dynamo=False``) needs nothing beyond torch and onnx,
so archcost uses it. Two of its defaults would change what the file costs, and are turned off unless
asked for:

* constant folding in eval mode fuses every batch norm into the convolution before it (the BN layer's
  weight and bias disappear, the conv gains a bias, the BN's 2 FLOPs per element vanish) and
  precomputes expressions of parameters as new initializers (LeNet-5's ``||w||^2`` becomes a second
  copy of its RBF centres). ``fold_constants=True`` exports that deployment graph.
* ``F.local_response_norm`` is a Python function, so the tracer writes it as a dozen elementary ops and
  an ``If``; an odd-sized ``nn.LocalResponseNorm`` is exported as the ONNX ``LRN`` op instead, which
  computes the same function (window ``[c - (n-1)/2, c + (n-1)/2]``, ``x / (k + alpha/n * sum x^2)^beta``).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from archcost.errors import InputError, first_line
from archcost.files import atomic_path
from archcost.onnx_graph.errors import OnnxExportError

if TYPE_CHECKING:
    from archcost.cost.workload import Workload

#: Protobuf cannot hold a file over 2 GB; larger models need ONNX external data, which is not written.
MAX_FILE_BYTES = 2**31 - 1


def exporter_opsets() -> tuple[int, int, int]:
    """(lowest, default, highest) opset the installed torch's TorchScript exporter writes."""
    from torch.onnx import _constants

    high = getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", _constants.ONNX_MAX_OPSET)
    return _constants.ONNX_MIN_OPSET, min(_constants.ONNX_DEFAULT_OPSET, high), high


def export_onnx(
    model,
    input_size: Sequence[int] | Workload,
    path: str | os.PathLike,
    opset: int | None = None,
    *,
    batch_size: int = 1,
    fold_constants: bool = False,
) -> Path:
    """Write ``model`` (an ``nn.Module`` with real weights on the CPU) to ``path`` as ONNX, traced in eval
    mode on an input of shape ``(batch_size, *input_size)``, or on a ``Workload``'s inputs
    (``archcost.cost.workload``; ``batch_size`` then unused): one graph input per tensor input, with its
    dtype, named after the argument (``input``, ``input_2``, ``mask``, ``batch_image``, ``hx_0``). Returns
    the path.

    The file is written to a temporary name in the same folder and renamed, so ``path`` is either the
    old file or the complete new one. The model is left as it was (``training`` flags, forwards).
    """
    import torch

    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"cannot write {path}: the folder {folder} does not exist", "create it first")
    low, default, high = exporter_opsets()
    opset = default if opset is None else opset
    if not low <= opset <= high:
        raise InputError(
            f"opset {opset} is outside what torch {torch.__version__}'s ONNX exporter writes ({low} to {high})",
            f"choose --opset between {low} and {high} (default {default})",
        )
    from archcost.cost.workload import Workload

    work = input_size if isinstance(input_size, Workload) else None
    sizes = () if isinstance(input_size, Workload) else tuple(input_size)
    if work is None and (batch_size < 1 or any(int(s) < 1 for s in sizes)):
        raise InputError(f"sizes must be positive, got batch {batch_size} and input {sizes}")
    tensors = [*model.parameters(), *model.buffers()]
    if any(t.device.type == "meta" for t in tensors):
        raise InputError("the model is on the meta device: it has no weights to export", "build it on the CPU")
    size = sum(t.numel() * t.element_size() for t in tensors)
    if size > MAX_FILE_BYTES:
        raise InputError(
            f"the model's weights take {size / 1e9:.2f} GB, over the 2 GB an ONNX file can hold",
            "export it with torch.onnx.export(..., external_data=True) yourself",
        )
    dtype = next((t.dtype for t in tensors if t.is_floating_point()), torch.float32)
    kwargs: dict[str, object]
    if work is None:
        x = torch.zeros((batch_size, *sizes), dtype=dtype)
        args, kwargs, names, shapes = [x], {}, ["input"], [list(x.shape)]
    else:
        args, given = work.tensors("cpu", dtype=dtype)
        kwargs = {k: v for k, v in given.items() if k not in work.plain}  # plain values: constants of the graph
        names = [_graph_name(s) for s in work.specs]
        shapes = [list(s["shape"]) for s in work.describe()]
        if work.plain:
            model = _Bound(model, work.plain)
    flags = {m: m.training for m in model.modules()}
    try:
        model.eval()
        # the exporter writes a temp file beside `path` (mode from the umask), moved into place only when whole
        # not under no_grad: nn.MultiheadAttention takes its fused fast path there (aten::_native_multi_head_attention),
        # which has no ONNX form; the exporter traces without computing gradients anyway
        with atomic_path(path, suffix=".onnx") as tmp, _onnx_lrn(model), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation notices; errors still raise
            torch.onnx.export(
                model,
                (*args, kwargs) if kwargs else tuple(args),
                str(tmp),
                dynamo=False,
                opset_version=opset,
                do_constant_folding=fold_constants,
                training=torch.onnx.TrainingMode.EVAL,
                input_names=names,
                output_names=["output"],
            )
    except InputError:
        raise
    except Exception as exc:
        detail = first_line(exc)
        raise OnnxExportError(
            f"torch.onnx.export failed on input {shapes[0] if len(shapes) == 1 else shapes}: {detail}",
            "the message is torch.onnx.export's: an op without an ONNX form at this opset (try another --opset), "
            "an output the exporter cannot trace (a dataclass or a distribution: return tensors), or an input the "
            "model cannot take (`archcost table` with the same flags checks that)",
        ) from exc
    finally:
        for m, flag in flags.items():
            m.training = flag
    return path


def _bound_class():
    from torch import nn

    class Bound(nn.Module):
        """``model`` with its plain keyword values bound, so the exporter sees tensors only."""

        def __init__(self, model, plain: dict) -> None:
            super().__init__()
            self.model, self.plain = model, dict(plain)

        def forward(self, *args, **kwargs):
            return self.model(*args, **kwargs, **self.plain)

    return Bound


def _Bound(model, plain: dict):  # noqa: N802  (builds an nn.Module without importing torch at module import)
    return _bound_class()(model, plain)


def _graph_name(spec) -> str:
    """A graph input's name: ``input`` (``input_2``, ...) for positional inputs, else the keyword, with the
    path inside a tuple or dict argument joined by ``_``."""
    base = spec.name or ("input" if not spec.arg else f"input_{spec.arg + 1}")
    return "_".join([base, *map(str, spec.path)])


@contextlib.contextmanager
def _onnx_lrn(model) -> Iterator[None]:
    """Export every odd-sized ``nn.LocalResponseNorm`` of ``model`` as one ONNX ``LRN`` node."""
    from torch import nn

    patched = [m for m in model.modules() if isinstance(m, nn.LocalResponseNorm) and m.size % 2 == 1]
    try:
        for m in patched:
            m.__dict__["forward"] = _lrn_forward(m)  # an instance attribute, as the pop below undoes
        yield
    finally:
        for m in patched:
            m.__dict__.pop("forward", None)


def _lrn_forward(module):
    import torch
    import torch.nn.functional as F

    class _LRN(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return F.local_response_norm(x, module.size, module.alpha, module.beta, module.k)

        @staticmethod
        def symbolic(g, x):
            return g.op("LRN", x, size_i=module.size, alpha_f=module.alpha, beta_f=module.beta, bias_f=float(module.k))

    return _LRN.apply
