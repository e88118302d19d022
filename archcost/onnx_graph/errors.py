"""Errors for ONNX files: each says what is wrong with the file or the export, and what to do."""

from __future__ import annotations

from archcost.errors import ArchcostError


class OnnxFileError(ArchcostError):
    """A file that is not ONNX, is truncated or corrupt, or needs an opset the installed onnx lacks."""


class OnnxShapeError(ArchcostError):
    """Shapes that cannot be inferred: dynamic dimensions without ``--input-size``, or a failed inference."""


class OnnxExportError(ArchcostError):
    """``torch.onnx.export`` failed on the model."""
