"""ONNX graphs: ``analyze_onnx`` costs an ONNX file from its graph alone (no torch model), with the same
rows and totals as ``archcost.analyze``; ``export_onnx`` writes a torch model to ONNX.

Named ``onnx_graph``, not ``onnx``, so that it never shadows the ``onnx`` package.
"""

from archcost.errors import InputError
from archcost.onnx_graph.errors import OnnxExportError, OnnxFileError, OnnxShapeError
from archcost.onnx_graph.export import export_onnx


def is_onnx_path(spec: str) -> bool:
    """Whether a MODEL argument names an ONNX file (by its ``.onnx`` suffix)."""
    return spec.lower().endswith(".onnx")


def __getattr__(name: str):
    # ``analyze_onnx`` needs the onnx package; importing it on first use lets the rest of archcost (table,
    # profile, plot, report of torch models) run where onnx is not installed.
    if name == "analyze_onnx":
        try:
            from archcost.onnx_graph.analyze import analyze_onnx
        except ModuleNotFoundError as exc:
            if exc.name is None or exc.name.partition(".")[0] != "onnx":
                raise
            raise InputError(
                "reading an ONNX file needs the onnx package, which is not installed", "pip install onnx"
            ) from None
        return analyze_onnx
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["OnnxExportError", "OnnxFileError", "OnnxShapeError", "analyze_onnx", "export_onnx", "is_onnx_path"]
