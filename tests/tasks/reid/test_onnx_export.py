"""ONNX export of the embedding network, checked against PyTorch by onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pointforge.tasks.reid.model import reid_resnet18
from pointforge.tasks.reid.onnx_export import OUTPUT_NAME, export_reid_onnx

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def test_export_matches_pytorch_and_takes_any_batch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = reid_resnet18(num_classes=5)
    for m in model.modules():  # non-trivial BatchNorm statistics, as after training
        if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    model.train()  # the export uses an eval-mode copy; the caller's model is left as it is
    diff = export_reid_onnx(model, tmp_path / "reid.onnx", 32, 16, check_batch=3)
    assert diff < 1e-4 and model.training
    session = ort.InferenceSession(str(tmp_path / "reid.onnx"))
    x = torch.randn(5, 3, 32, 16)
    (got,) = session.run([OUTPUT_NAME], {"image": x.numpy()})
    assert got.shape == (5, 512)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    with torch.no_grad():
        want = torch.nn.functional.normalize(model.eval()(x), dim=1).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)
