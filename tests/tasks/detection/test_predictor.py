"""Predictor: letterbox preprocessing and boxes mapped back to photo pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from pointforge.tasks.detection.predictor import CenterNetPredictor, PredictorParams, preprocess


class _OneBox(nn.Module):
    """Fake network: one class-1 peak at cell (10, 8) with size 8 × 6 cells, offset (0.5, 0)."""

    stride = 4

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        b, _, h, w = x.shape
        heat = torch.full((b, 2, h // 4, w // 4), -10.0)
        heat[:, 1, 8, 10] = 5.0
        wh = torch.zeros(b, 2, h // 4, w // 4)
        wh[:, 0, 8, 10], wh[:, 1, 8, 10] = 8.0, 6.0
        off = torch.zeros(b, 2, h // 4, w // 4)
        off[:, 0, 8, 10] = 0.5
        return {"heatmap": heat, "wh": wh, "offset": off}


def test_preprocess_letterbox() -> None:
    photo = np.full((100, 200, 3), 255, dtype=np.uint8)
    batch, scale, size = preprocess([photo], 64, "cpu")
    assert batch.shape == (1, 3, 64, 64)
    assert torch.allclose(batch[0, :, :32], torch.ones(3, 32, 64))  # resized photo
    assert batch[0, :, 32:].abs().sum() == 0  # bottom padding
    torch.testing.assert_close(scale, torch.tensor([[0.32, 0.32]]))
    assert size.tolist() == [[100, 200]]
    with pytest.raises(ValueError, match="image 0: expected an"):
        preprocess([photo[..., 0]], 64, "cpu")


def test_boxes_back_in_photo_pixels() -> None:
    pred = CenterNetPredictor(_OneBox(), "cpu", PredictorParams(input_size=128, topk=5))
    photo = np.zeros((192, 256, 3), dtype=np.uint8)  # s = 0.5
    out = pred(photo)
    # Input pixels: centre (10.5, 8)·4 = (42, 32), size (32, 24) → (26, 20, 58, 44); ÷ 0.5.
    np.testing.assert_allclose(out["boxes"][0], [52, 40, 116, 88], atol=1e-4)
    assert out["labels"][0] == 1 and out["scores"][0] == pytest.approx(
        torch.sigmoid(torch.tensor(5.0))
    )
    assert len(out["scores"]) == 5
    both = CenterNetPredictor(_OneBox(), "cpu", PredictorParams(128, score_threshold=0.5))(
        [photo, photo]
    )
    assert [len(d["scores"]) for d in both] == [1, 1]
