"""ONNX graphs: ``analyze_onnx`` costs an ONNX file from its graph alone (no torch model), with the same
rows and totals as ``archcost.analyze``; ``export_onnx`` writes a torch model to ONNX.

Named ``onnx_graph``, not ``onnx``, so that it never shadows the ``onnx`` package.
"""

from archcost.onnx_graph.analyze import analyze_onnx
from archcost.onnx_graph.errors import OnnxExportError, OnnxFileError, OnnxShapeError
from archcost.onnx_graph.export import export_onnx


def is_onnx_path(spec: str) -> bool:
    """Whether a MODEL argument names an ONNX file (by its ``.onnx`` suffix)."""
    return spec.lower().endswith(".onnx")


__all__ = ["OnnxExportError", "OnnxFileError", "OnnxShapeError", "analyze_onnx", "export_onnx", "is_onnx_path"]
