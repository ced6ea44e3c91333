"""ONNX export of keypoint models as ``pointforge export-onnx`` runs it (the Task hook).

Input ``image`` ``(B, 1, H, W)`` float32 grey in [0, 1]; outputs ``heatmap`` ``(B, H, W)`` and,
for SuperPoint, ``descriptors`` ``(B, D, H/8, W/8)``; NMS and top-k stay outside the graph
(their output sizes depend on the image). The export itself is
:mod:`pointforge.export.onnx`; this module adds the defaults (480×640) and the onnxruntime
check at the export size and, for a dynamic graph, at a second size.
"""

from __future__ import annotations

import importlib.util
import time

import torch

from pointforge.export.request import OnnxExportRequest

# The second size a dynamic graph is verified at (and the one used when 240x320 is the first).
SECOND_SIZE = (240, 320)
DEFAULT_SIZE = (480, 640)  # the MagicLeap demo's and the benchmarks' resolution
DEFAULT_OPSET = 18


def export_keypoint_onnx(request: OnnxExportRequest) -> list[str]:
    """Export ``request.model`` (a SuperPoint-family network) and, with ``request.verify`` and
    onnxruntime installed, verify it; the lines ``export-onnx`` prints."""
    from pointforge.export.onnx import check_size, export_onnx, verify_onnx
    from pointforge.models.superpoint import SuperPoint

    model, dynamic, exporter = request.model, request.dynamic, request.exporter
    if not isinstance(model, SuperPoint):
        raise TypeError(f"expected a SuperPoint-family network, got {type(model).__name__}")
    height = request.height or DEFAULT_SIZE[0]
    width = request.width or DEFAULT_SIZE[1]
    opset = request.opset or DEFAULT_OPSET
    check_size(height, width)
    start = time.perf_counter()
    out = export_onnx(
        model, request.path, height, width, dynamic=dynamic, opset=opset, exporter=exporter
    )
    kind = "dynamic batch/H/W" if dynamic else f"fixed 1x1x{height}x{width}"
    lines = [
        f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {kind}, opset {opset}, "
        f"{exporter} exporter) in {time.perf_counter() - start:.1f} s"
    ]
    if not request.verify:
        return lines
    if importlib.util.find_spec("onnxruntime") is None:
        lines.append(
            "onnxruntime is not installed: verification skipped (pip install 'pointforge[onnx]')"
        )
        return lines
    sizes = [(1, height, width)]
    if dynamic:
        second = SECOND_SIZE if (height, width) != SECOND_SIZE else DEFAULT_SIZE
        sizes.append((2, *second))
    gen = torch.Generator().manual_seed(0)
    for b, h, w in sizes:
        diffs = verify_onnx(out, model, torch.rand(b, 1, h, w, generator=gen))
        shown = ", ".join(f"{name} {diff:.2g}" for name, diff in diffs.items())
        lines.append(f"verified with onnxruntime at {b}x1x{h}x{w}: max |ONNX - PyTorch| {shown}")
    return lines
