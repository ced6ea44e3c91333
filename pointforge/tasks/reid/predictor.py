"""The re-ID predictor: person crops → L2-normalised embeddings.

Why normalised: BoT ranks by cosine distance on the BNNeck feature; on unit vectors the
cosine distance is ``1 - a·b`` and the Euclidean one ``sqrt(2 - 2 a·b)``, so a caller can rank
with a plain dot product (or any nearest-neighbour index) and get evaluation's order.

Crops are preprocessed exactly as evaluation does (:func:`build_reid_transform` with
``train=False``: resize to the configured ``H × W``, ImageNet normalisation), so a crop's
embedding here equals its embedding inside ``pointforge eval``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pointforge.tasks.reid.data.image_set import image_to_tensor
from pointforge.tasks.reid.data.transforms import ReIDTransformParams, build_reid_transform


def crop_to_input(image: np.ndarray, params: ReIDTransformParams) -> torch.Tensor:
    """A BGR ``uint8 (h, w, 3)`` (or grey ``(h, w)``) crop → ``float32 (3, H, W)``, the eval
    transform's output."""
    if image.dtype != np.uint8:
        raise ValueError(f"re-ID crops must be uint8 images, got dtype {image.dtype}")
    if image.ndim == 2:
        rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    elif image.ndim == 3 and image.shape[2] == 3:
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    else:
        raise ValueError(f"re-ID crops must be (H, W, 3) BGR or (H, W) grey, got {image.shape}")
    out: torch.Tensor = build_reid_transform(params, train=False)(image_to_tensor(rgb))
    return out


class ReIDPredictor:
    """``pred(crops)`` → ``{"embeddings": float32 (N, D)}`` with unit-norm rows.

    ``crops``: one BGR ``uint8 (h, w, 3)`` image or a list of them (any sizes); they are
    embedded ``batch_size`` at a time. ``pred.embedding_dim`` is ``D``.
    """

    def __init__(
        self,
        model: nn.Module,
        params: ReIDTransformParams,
        device: torch.device,
        batch_size: int = 64,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model.to(device).eval()
        self.params = params
        self.device = device
        self.batch_size = batch_size
        self.embedding_dim = int(getattr(model, "embedding_dim", 0))

    @torch.inference_mode()
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Preprocessed ``(B, 3, H, W)`` → unit-norm ``float32 (B, D)`` on the CPU."""
        feats = self.model(images.to(self.device))
        return F.normalize(feats.float(), dim=1).cpu()

    def __call__(self, crops: np.ndarray | Sequence[np.ndarray]) -> dict[str, Any]:
        items = [crops] if isinstance(crops, np.ndarray) else list(crops)
        if not items:
            return {"embeddings": np.zeros((0, self.embedding_dim), np.float32)}
        out = []
        for start in range(0, len(items), self.batch_size):
            chunk = items[start : start + self.batch_size]
            batch = torch.stack([crop_to_input(c, self.params) for c in chunk])
            out.append(self.embed(batch))
        return {"embeddings": torch.cat(out).numpy().astype(np.float32, copy=False)}
