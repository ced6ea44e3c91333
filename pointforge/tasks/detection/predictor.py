"""CenterNet predictor: RGB photos in, boxes in photo pixels out.

Why this preprocessing: the network needs H, W multiples of 32 and is trained at a fixed
square size (512 × 512 in the paper, §5). A photo is resized to fit that square with its
aspect ratio kept (one scale s for both axes) and padded on the right and bottom, so that a
box maps back by a single division by s (no shift) —
:func:`~pointforge.tasks.detection.decode.boxes_to_original`. Resizing is done on the device
with ``torch.nn.functional.interpolate`` (bilinear, antialiased when shrinking, like OpenCV's
``INTER_AREA`` would), so a GPU predictor does not wait on the CPU.

``pred(image)`` with ``image`` an ``(H, W, 3)`` uint8 RGB array (or a list of them) returns
``{"boxes": (N, 4) float32 xyxy, "scores": (N,), "labels": (N,) int64}`` NumPy arrays (a list
of such dicts for a list), sorted by score, at most ``topk`` per image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pointforge.tasks.detection.decode import DEFAULT_TOPK, boxes_to_original, detect
from pointforge.tasks.detection.model import BACKBONE_STRIDE


@dataclass(frozen=True)
class PredictorParams:
    """Inference options (config keys of the CenterNet task options)."""

    input_size: int = 512  # square network input; the paper trains and tests at 512 × 512
    topk: int = DEFAULT_TOPK  # peaks kept per image; the paper uses 100 (COCO's maxDets)
    score_threshold: float = 0.0  # 0 keeps all top-k (what COCO AP wants); raise for display
    flip_test: bool = False  # average with the mirrored image (paper §5.1, slower ×2)

    def __post_init__(self) -> None:
        if self.input_size <= 0 or self.input_size % BACKBONE_STRIDE:
            raise ValueError(f"input_size must be a positive multiple of 32, got {self.input_size}")


def preprocess(
    images: Sequence[np.ndarray], size: int, device: torch.device | str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Letterbox RGB uint8 photos into one ``(B, 3, size, size)`` float batch in [0, 1].

    Returns the batch, ``scale (B, 2)`` = (s, s) per image and ``orig_size (B, 2)`` = (H, W).
    """
    batch = torch.zeros(len(images), 3, size, size, device=device)
    scales, sizes = [], []
    for i, image in enumerate(images):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"image {i}: expected an (H, W, 3) uint8 RGB array, got {image.shape} {image.dtype}"
            )
        h, w = image.shape[:2]
        s = size / max(h, w)
        nh, nw = max(1, round(h * s)), max(1, round(w * s))
        x = torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1)[None]
        x = x.float() / 255.0
        if (nh, nw) != (h, w):
            x = F.interpolate(x, (nh, nw), mode="bilinear", align_corners=False, antialias=s < 1)
        batch[i, :, :nh, :nw] = x[0].clamp(0, 1)
        scales.append((nw / w, nh / h))
        sizes.append((h, w))
    return batch, torch.tensor(scales, device=device), torch.tensor(sizes, device=device)


class CenterNetPredictor:
    """``pred(image_or_list)`` → detections in photo pixels; see the module docstring."""

    def __init__(
        self, model: nn.Module, device: torch.device | str, params: PredictorParams | None = None
    ) -> None:
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.params = params or PredictorParams()

    @torch.no_grad()
    def __call__(self, images: np.ndarray | Sequence[np.ndarray]) -> dict | list[dict]:
        single = isinstance(images, np.ndarray)
        batch_list = [images] if isinstance(images, np.ndarray) else list(images)
        p = self.params
        batch, scale, orig = preprocess(batch_list, p.input_size, self.device)
        det = detect(self.model, batch, k=p.topk, flip_test=p.flip_test)
        boxes = boxes_to_original(det["boxes"], scale, orig)
        results = []
        for i in range(len(batch_list)):
            keep = det["scores"][i] > p.score_threshold if p.score_threshold > 0 else slice(None)
            results.append(
                {
                    "boxes": boxes[i][keep].cpu().numpy(),
                    "scores": det["scores"][i][keep].cpu().numpy(),
                    "labels": det["labels"][i][keep].cpu().numpy(),
                }
            )
        return results[0] if single else results


class DetectionPredictor:
    """What ``pointforge.load_predictor`` returns for a CenterNet checkpoint.

    ``pred(image)`` takes a grey ``(H, W)`` or BGR ``(H, W, 3)`` uint8 image (OpenCV's layout,
    as every pointforge predictor), or a list of them, and returns per image
    ``{"boxes": float32 (N, 4) xyxy in that image's pixels, "scores": float32 (N,) descending,
    "labels": int64 (N,) dataset category ids, "class_names": list of N names}`` with the
    detections scoring above ``params.score_threshold``. ``categories`` maps each category id
    to its name (stored in the weights, see ``CenterNet.set_categories``).
    """

    def __init__(
        self,
        model: nn.Module,
        device: torch.device | str,
        params: PredictorParams,
        categories: Sequence[tuple[int, str]],
    ) -> None:
        self.inner = CenterNetPredictor(model, device, params)
        self.params = params
        self.category_ids = np.asarray([int(c) for c, _ in categories], dtype=np.int64)
        self.categories = {int(c): str(n) for c, n in categories}

    @staticmethod
    def _rgb(image: np.ndarray, i: int) -> np.ndarray:
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise ValueError(
                f"image {i}: expected a grey (H, W) or BGR (H, W, 3) uint8 array, got "
                f"{image.shape} {image.dtype}"
            )
        if image.ndim == 2:
            return np.repeat(image[..., None], 3, axis=2)
        if image.shape[2] != 3:
            raise ValueError(f"image {i}: expected 3 channels (BGR), got {image.shape[2]}")
        return np.ascontiguousarray(image[..., ::-1])

    def __call__(self, images: np.ndarray | Sequence[np.ndarray]) -> dict | list[dict]:
        single = isinstance(images, np.ndarray)
        batch: list[np.ndarray] = [images] if isinstance(images, np.ndarray) else list(images)
        raw = self.inner([self._rgb(im, i) for i, im in enumerate(batch)])
        results = []
        for det in raw:
            ids = self.category_ids[det["labels"].astype(np.int64)]
            results.append(
                {
                    "boxes": det["boxes"].astype(np.float32),
                    "scores": det["scores"].astype(np.float32),
                    "labels": ids,
                    "class_names": [self.categories[int(c)] for c in ids],
                }
            )
        return results[0] if single else results
