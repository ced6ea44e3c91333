"""Detection transforms that move boxes with the pixels: CenterNet's training augmentation and
the deterministic letterbox used for evaluation and prediction.

Why one crop-and-resize instead of a chain: CenterNet (Zhou et al., "Objects as Points", 2019,
Sec. 5 "Training"; xingyizhou/CenterNet ``src/lib/datasets/sample/ctdet.py``) warps each image
once with an affine map given by a random centre and a random window size; that is a crop (with
zero padding where the window leaves the image) followed by a resize, which is what
``torchvision.transforms.v2.functional.resized_crop`` does for the image and for a
``tv_tensors.BoundingBoxes`` in one call, with a single interpolation.

Boxes that leave the crop are clipped to it, and boxes left with a side under 1 px are dropped
together with their labels (``v2.SanitizeBoundingBoxes``). That is augmentation, not data loss:
the object is not in the crop, so it must not be a target; the annotation itself is untouched
and appears in the next crop. Evaluation never crops (:class:`LetterboxTransform`).

Every transform maps ``(image uint8 (3, h, w) RGB, boxes float32 (K, 4) xyxy, labels int64 (K,))``
to ``{"image": float32 (3, H, W) in [0, 1], "boxes": (K', 4), "labels": (K',),
"scale": float32 (2,) = (sx, sy)}`` where ``(H, W)`` is ``image_size``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

# AlexNet-style PCA colour noise (Krizhevsky et al. 2012), eigen-decomposition of ImageNet RGB
# pixel covariance as published with fb.resnet.torch (datasets/imagenet.lua), RGB order.
# CenterNet applies the same kind of lighting noise with std 0.1 (utils/image.py, color_aug).
PCA_EIGVAL = torch.tensor([0.2175, 0.0188, 0.0045])
PCA_EIGVEC = torch.tensor(
    [[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]]
)


@dataclass(frozen=True)
class AugmentParams:
    """CenterNet's training augmentation (config keys ``data.augment.*``)."""

    enabled: bool = True  # False: training uses the evaluation letterbox (no randomness)
    # Window scale relative to the letterboxed image; CenterNet draws it from
    # np.arange(0.6, 1.4, 0.1) (ctdet.py, when random crop is on, the default). >1 zooms out.
    scale_range: tuple[float, float] = (0.6, 1.4)
    # Crop centre drawn uniformly from [b, 1-b] of each side. CenterNet keeps the centre 128 px
    # from the border of COCO images (~640 px wide), i.e. b ~= 0.2; 0.25 for small images.
    crop_border: float = 0.25
    flip_prob: float = 0.5  # CenterNet opts.py --flip 0.5
    # Brightness/contrast/saturation factors in [1 - j, 1 + j], applied in random order;
    # CenterNet color_aug uses var 0.4 for each.
    color_jitter: float = 0.4
    lighting_std: float = 0.1  # CenterNet color_aug: lighting_(..., alphastd=0.1, ...)


def _boxes(boxes: torch.Tensor, h: int, w: int) -> tv_tensors.BoundingBoxes:
    return tv_tensors.BoundingBoxes(
        boxes.to(torch.float32).reshape(-1, 4), format="XYXY", canvas_size=(h, w)
    )


def _check_input(image: torch.Tensor) -> None:
    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(
            f"expected a uint8 (3, H, W) image, got {image.dtype} {tuple(image.shape)}"
        )


class LetterboxTransform:
    """Resize keeping the aspect ratio so the image fits ``image_size = (H, W)``, then pad
    bottom/right with black. Deterministic; ``scale`` maps original pixels to these pixels
    (a prediction ``p`` in these pixels is ``p / scale`` in the original; no offset)."""

    def __init__(self, image_size: tuple[int, int]) -> None:
        self.image_size = (int(image_size[0]), int(image_size[1]))

    def __call__(
        self, image: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        _check_input(image)
        out_h, out_w = self.image_size
        h, w = image.shape[-2:]
        r = min(out_h / h, out_w / w)
        new_h = min(out_h, max(1, round(h * r)))
        new_w = min(out_w, max(1, round(w * r)))
        img = F.resize(image, [new_h, new_w], antialias=True)
        bx = F.resize(_boxes(boxes, h, w), [new_h, new_w])
        img = F.pad(img, [0, 0, out_w - new_w, out_h - new_h])
        return {
            "image": F.to_dtype(img, torch.float32, scale=True),
            "boxes": bx.as_subclass(torch.Tensor).reshape(-1, 4),
            "labels": labels.to(torch.int64),
            "scale": torch.tensor([new_w / w, new_h / h], dtype=torch.float32),
        }


class CenterNetTrainTransform:
    """Random scale + crop/shift (one ``resized_crop``), horizontal flip, colour jitter and PCA
    lighting noise, as in CenterNet's ``ctdet`` training sampler (see :class:`AugmentParams`).

    Uses the global ``random`` / ``torch`` RNGs, which the engine seeds per sample."""

    def __init__(self, image_size: tuple[int, int], params: AugmentParams | None = None) -> None:
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.params = params or AugmentParams()
        lo, hi = self.params.scale_range
        if not 0 < lo <= hi:
            raise ValueError(f"data.augment.scale_range must be 0 < lo <= hi, got {lo, hi}")
        if not 0 <= self.params.crop_border < 0.5:
            raise ValueError(
                f"data.augment.crop_border must be in [0, 0.5), got {self.params.crop_border}"
            )
        j = self.params.color_jitter
        self.jitter = v2.ColorJitter(brightness=j, contrast=j, saturation=j) if j > 0 else None
        self.sanitize = v2.SanitizeBoundingBoxes(min_size=1.0)

    def __call__(
        self, image: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        _check_input(image)
        p = self.params
        out_h, out_w = self.image_size
        h, w = image.shape[-2:]
        # The window (in original pixels) that becomes the output: the letterbox fit, grown or
        # shrunk by the random scale, centred at a random point away from the border.
        r = min(out_h / h, out_w / w) / random.uniform(*p.scale_range)
        win_w, win_h = max(1, round(out_w / r)), max(1, round(out_h / r))
        b = p.crop_border
        cx, cy = random.uniform(b * w, (1 - b) * w), random.uniform(b * h, (1 - b) * h)
        left, top = round(cx - win_w / 2), round(cy - win_h / 2)
        img = F.resized_crop(image, top, left, win_h, win_w, [out_h, out_w], antialias=True)
        bx = F.resized_crop(_boxes(boxes, h, w), top, left, win_h, win_w, [out_h, out_w])
        if random.random() < p.flip_prob:
            img, bx = F.horizontal_flip(img), F.horizontal_flip(bx)
        bx = F.clamp_bounding_boxes(bx)
        kept = self.sanitize({"image": img, "boxes": bx, "labels": labels.to(torch.int64)})
        out = F.to_dtype(img, torch.float32, scale=True)
        if self.jitter is not None:
            out = self.jitter(out)
        if p.lighting_std > 0:
            alpha = torch.randn(3) * p.lighting_std
            out = out + (PCA_EIGVEC @ (PCA_EIGVAL * alpha)).view(3, 1, 1)
        return {
            "image": out.clamp_(0.0, 1.0),
            "boxes": kept["boxes"].as_subclass(torch.Tensor).reshape(-1, 4),
            "labels": kept["labels"],
            "scale": torch.tensor([out_w / win_w, out_h / win_h], dtype=torch.float32),
        }


def build_transform(
    image_size: tuple[int, int], train: bool, augment: AugmentParams | None = None
) -> CenterNetTrainTransform | LetterboxTransform:
    """The training transform when ``train`` and augmentation is enabled, else the letterbox."""
    augment = augment or AugmentParams()
    if train and augment.enabled:
        return CenterNetTrainTransform(image_size, augment)
    return LetterboxTransform(image_size)
