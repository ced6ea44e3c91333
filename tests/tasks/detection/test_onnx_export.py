"""ONNX export of the plain CenterNet: onnxruntime agrees with PyTorch; DCN opset guard."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pointforge.tasks.detection.model import CenterNet, CenterNetParams
from pointforge.tasks.detection.onnx_export import DeformableExportError, export_centernet_onnx


@pytest.mark.parametrize("skips", [False, True], ids=["paper", "skip_connections"])
def test_plain_export_matches_pytorch(tmp_path: Path, skips: bool) -> None:
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    pytest.importorskip("onnxscript", reason="onnxscript (dynamo exporter) is not installed")
    torch.manual_seed(0)
    model = CenterNet(3, CenterNetParams(skip_connections=skips))
    model.train()  # the export uses an eval copy and leaves the caller's model as it was
    path = tmp_path / "centernet.onnx"
    diffs = export_centernet_onnx(model, path, 64, 64)
    assert model.training
    assert set(diffs) == {"heatmap", "wh", "offset"} and max(diffs.values()) < 1e-4
    # An independent run on another image: heatmap is a probability map of the right shape.
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    image = torch.rand(1, 3, 64, 64)
    heat, wh, offset = session.run(None, {"image": image.numpy()})
    assert heat.shape == (1, 3, 16, 16) and wh.shape == offset.shape == (1, 2, 16, 16)
    model.eval()
    with torch.no_grad():
        ref = model(image)
    np.testing.assert_allclose(heat, ref["heatmap"].sigmoid().numpy(), atol=1e-4)
    np.testing.assert_allclose(wh, ref["wh"].numpy(), atol=1e-4)


def test_deformable_needs_opset_19(tmp_path: Path) -> None:
    model = CenterNet(2, CenterNetParams(deform=True))
    with pytest.raises(DeformableExportError, match="opset >= 19"):
        export_centernet_onnx(model, tmp_path / "dcn.onnx", 64, 64, opset=18)


def test_bad_size_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="multiples of 32"):
        export_centernet_onnx(CenterNet(2), tmp_path / "x.onnx", 64, 48)
