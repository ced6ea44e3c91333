"""Export the re-ID embedding network to ONNX and check it against PyTorch with onnxruntime.

What goes into the graph: the eval-mode network (backbone, pooling, BNNeck) and the L2
normalisation, so the ONNX output ``embeddings (B, D)`` is exactly what
``pointforge.load_predictor`` returns (unit rows; rank by dot product). The classifier is left
out: it only serves training. Input ``image (B, 3, H, W)`` float32, RGB normalised with the
ImageNet mean/std as the eval transform does (:mod:`pointforge.tasks.reid.data.transforms`);
the batch dimension is dynamic, ``H × W`` fixed (the training input size).

Why the ``torch.export``-based exporter (``dynamo=True``) at opset 18: the same choice as the
detection and keypoint exports (``pointforge/tasks/detection/onnx_export.py``); it is torch's
maintained path, and the graph (convolutions, BatchNorm, pooling, a norm) needs nothing newer.
FastReID users report broken exports (fast-reid #438, #527, #645) from TorchScript tracing of
training-mode branches; exporting an eval-mode copy with a fixed single output avoids those.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pointforge.engine.checkpoint import atomic_write_bytes
from pointforge.export.onnx import quiet_loggers

OPSET = 18  # as pointforge/export/onnx.py and the detection export
INPUT_NAME = "image"
OUTPUT_NAME = "embeddings"


class OnnxMismatchError(RuntimeError):
    """onnxruntime's embeddings differ from PyTorch's by more than the tolerance."""


class EmbeddingGraph(nn.Module):
    """``image (B, 3, H, W)`` → unit-norm ``embeddings (B, D)`` of an eval-mode ReIDNet."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model(image), dim=1)


def export_reid_onnx(
    model: nn.Module,
    path: str | Path,
    height: int,
    width: int,
    opset: int = OPSET,
    atol: float = 1e-4,
    check_batch: int = 2,
) -> float:
    """Write ``model``'s embedding network to ``path`` and verify it with onnxruntime.

    The check feeds ``check_batch`` random images (a batch size other than the export's 1,
    which tests the dynamic batch axis) and compares with PyTorch. Returns the max abs
    difference; raises :class:`OnnxMismatchError` above ``atol``. The caller's model keeps
    its device and mode (a CPU copy in eval mode is exported).
    """
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be positive, got {height}×{width}")
    try:
        import onnxruntime as ort
        import onnxscript  # noqa: F401  (the dynamo exporter's translator)
    except ImportError:
        raise RuntimeError(
            "ONNX export needs onnx, onnxscript and onnxruntime: pip install 'pointforge[onnx]'"
        ) from None
    graph = EmbeddingGraph(copy.deepcopy(model).cpu().float().eval()).eval()
    gen = torch.Generator().manual_seed(0)
    example = torch.randn(1, 3, height, width, generator=gen)
    with quiet_loggers():
        program = torch.onnx.export(
            graph,
            (example,),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},),
            opset_version=opset,
            verbose=False,
        )
    if program is None:  # only a TorchScript export returns None
        raise RuntimeError("torch.onnx.export(dynamo=True) returned no program")
    data = program.model_proto.SerializeToString()
    atomic_write_bytes(data, path)  # temp file, fsync, rename: never a torn .onnx

    batch = torch.randn(check_batch, 3, height, width, generator=gen)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: batch.numpy()})
    with torch.no_grad():
        want = graph(batch).numpy()
    diff = float(np.abs(got - want).max())
    if not diff <= atol:
        raise OnnxMismatchError(
            f"ONNX export {path}: embeddings differ from PyTorch by {diff:.3g} > {atol}"
        )
    return diff
