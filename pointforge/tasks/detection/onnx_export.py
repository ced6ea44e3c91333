"""Export a CenterNet network to ONNX and check it against PyTorch with onnxruntime.

What goes into the graph: ImageNet normalisation (inside the model), the network, and the
sigmoid on the heatmap; outputs ``heatmap (B, C, H/4, W/4)`` probabilities, ``wh`` and
``offset`` ``(B, 2, H/4, W/4)`` in output cells. Input ``image (B, 3, H, W)`` float32 RGB in
[0, 1], fixed H × W (multiples of 32).

Why decoding stays outside: the 3×3 max-pool, top-K and gathers could be expressed in ONNX
(with a fixed K), but the consumer then could not choose K or average a flipped pass (flip
test needs the dense maps, :func:`~pointforge.tasks.detection.decode.merge_flip`), and the
decode is a few array operations on a ``(C, H/4, W/4)`` map, negligible beside the network.
This matches the keypoint export (pointforge/export/onnx.py), which also stops at dense maps.

Deformable variant: torch 2.14's ``torch.export``-based exporter (``dynamo=True``) translates
``torchvision::deform_conv2d`` to the ONNX ``DeformConv`` operator, which exists from opset 19
on, and onnxruntime 1.32 runs it on the CPU (checked: max abs diff ~1e-7 on a DCN layer). The
legacy TorchScript exporter does not know the operator ("unrecognized namespace
torchvision::deform_conv2d"), so we export with ``dynamo=True`` only, and raise
:class:`DeformableExportError` for a deformable model at an opset below 19. The plain variant
exports at opset 18 (the keypoint export's default) or higher.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pointforge.engine.checkpoint import atomic_write_bytes
from pointforge.export.onnx import quiet_loggers
from pointforge.tasks.detection.model import BACKBONE_STRIDE, CenterNet

PLAIN_OPSET = 18  # same default as pointforge/export/onnx.py
DEFORM_OPSET = 19  # ONNX DeformConv was added in opset 19
OUTPUT_NAMES = ("heatmap", "wh", "offset")
INPUT_NAME = "image"


class DeformableExportError(RuntimeError):
    """A deformable CenterNet cannot be exported with the requested settings."""


class OnnxMismatchError(RuntimeError):
    """An ONNX output differs from PyTorch by more than the tolerance; the message names it."""


class CenterNetGraph(nn.Module):
    """``image (B, 3, H, W)`` in [0, 1] → ``(heatmap probabilities, wh, offset)``."""

    def __init__(self, model: CenterNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.model(image)
        return out["heatmap"].sigmoid(), out["wh"], out["offset"]


def export_centernet_onnx(
    model: CenterNet,
    path: str | Path,
    height: int,
    width: int,
    opset: int | None = None,
    atol: float = 1e-4,
) -> dict[str, float]:
    """Write ``model`` as ONNX to ``path`` and verify it with onnxruntime on a random image.

    ``height``, ``width``: the fixed input size (multiples of 32). ``opset``: default 18 for
    the plain model, 19 for the deformable one. Returns the max abs difference between
    onnxruntime and PyTorch per output; raises :class:`OnnxMismatchError` if one exceeds
    ``atol``. The caller's model keeps its device and train/eval mode (a CPU copy is exported).
    """
    if height % BACKBONE_STRIDE or width % BACKBONE_STRIDE or min(height, width) <= 0:
        raise ValueError(f"height and width must be positive multiples of 32, got {height}×{width}")
    deform = bool(model.params.deform)
    if opset is None:
        opset = DEFORM_OPSET if deform else PLAIN_OPSET
    if deform and opset < DEFORM_OPSET:
        raise DeformableExportError(
            f"a deformable CenterNet (torchvision::deform_conv2d) exports to ONNX DeformConv, "
            f"which needs opset >= {DEFORM_OPSET}; got opset {opset}"
        )
    try:
        import onnxruntime as ort
        import onnxscript  # noqa: F401  (the dynamo exporter's translator)
    except ImportError:
        raise RuntimeError(
            "ONNX export needs onnx, onnxscript and onnxruntime: pip install 'pointforge[onnx]'"
        ) from None

    graph = CenterNetGraph(copy.deepcopy(model).cpu().eval()).eval()
    example = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0))
    with quiet_loggers():
        program = torch.onnx.export(
            graph,
            (example,),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            opset_version=opset,
            verbose=False,
        )
    if program is None:  # only the legacy exporter (dynamo=False) returns None
        raise RuntimeError("torch.onnx.export(dynamo=True) returned no ONNXProgram")
    data = program.model_proto.SerializeToString()
    atomic_write_bytes(data, path)  # temp file, fsync, rename: never a torn .onnx

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    got = session.run(list(OUTPUT_NAMES), {INPUT_NAME: example.numpy()})
    with torch.no_grad():
        want = graph(example)
    diffs = {
        name: float(np.abs(g - w.numpy()).max()) for name, g, w in zip(OUTPUT_NAMES, got, want)
    }
    bad = {k: v for k, v in diffs.items() if not v <= atol}
    if bad:
        raise OnnxMismatchError(
            f"ONNX export {path}: outputs differ from PyTorch by more than {atol}: {bad}"
        )
    return diffs
