"""Keypoint predictor: load weights → preprocess → network → postprocess, all on the device.

This is the object behind ``pointforge.load_predictor`` (docs/cli.md): it accepts what users
have (grey or BGR uint8 of any size), and returns keypoints in the input's pixel coordinates.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pointforge.engine.precision import warn_if_emulated_bf16
from pointforge.models.loading import read_state_dict
from pointforge.models.superpoint import SuperPoint, architecture_of
from pointforge.tasks.keypoints.postprocess import (
    PRECISIONS,
    SCALES_RULE,
    extract_keypoints,
    logits_to_heatmap,
    refine_subpixel,
    sample_descriptors,
    scales_valid,
)

MIN_SIDE = 16
# Tiling (large images): the backbone's activations at full resolution cost ~1 KB per input
# pixel (64 float32 channels, several layers alive at once: 9.9 GB for a 4000x3000 photo), so
# images larger than one tile run the network tile by tile. TILE_MARGIN is the context each
# tile borrows from its neighbours: SuperPoint's receptive field is 84 px (8 conv3x3 layers and
# 3 pools before the 3x3 head conv: 1 + 2·(1+1) + 1 + 2·2·2 + 2 + 2·4·2 + 4 + 2·8·2 + 2·8 = 84),
# i.e. 42 px either side of a cell, so a 48 px margin (a multiple of the 8 px cell) makes the
# stitched output equal to the whole-image one.
TILE_MARGIN = 48
DEFAULT_TILE_SIZE = 1024

log = logging.getLogger("pointforge")


def load_state_dict_from_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Model weights from a pointforge checkpoint (key ``model``) or a raw (v1) state dict.

    Loads with ``weights_only=True``; strips a DDP ``module.`` prefix. Errors name the file.
    (Kept as the keypoint-side name of :func:`pointforge.models.loading.read_state_dict`.)
    """
    return read_state_dict(path)


def build_model_for_state_dict(state: dict[str, torch.Tensor]) -> SuperPoint:
    """A :class:`SuperPoint` whose architecture matches ``state`` (descriptor head, BN,
    channels: the full network or SuperPoint-Lite)."""
    model = SuperPoint(**architecture_of(state))
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - state.keys()), sorted(state.keys() - expected)
    if missing or unexpected:
        raise ValueError(
            f"weights do not fit the SuperPoint architecture: missing keys {missing}, "
            f"unexpected keys {unexpected}"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # shape mismatch
        raise ValueError(f"weights do not fit the SuperPoint architecture: {exc}") from None
    return model


def check_scales(scales: Sequence[float]) -> tuple[float, ...]:
    """``scales`` as a tuple of floats, or a ValueError stating :data:`SCALES_RULE`."""
    out = tuple(float(s) for s in scales)
    if not scales_valid(out):
        raise ValueError(f"scales {SCALES_RULE}, got {list(scales)}")
    return out


class KeypointPredictor:
    """Callable: ``(H, W)`` grey or ``(H, W, 3)`` BGR uint8 → keypoints, scores, descriptors.

    Any size works: the grey image is padded bottom/right (edge replication) to a multiple of 8
    and at least 16×16, never resized, so keypoints stay in input pixels and detections in the
    padding or within ``border`` of the real image's edge are dropped.

    Memory: an image larger than ``tile_size`` pixels in either side runs the network on
    ``tile_size``² tiles (plus a :data:`TILE_MARGIN` of context each side, which makes the
    stitched heatmap and descriptors equal to the whole-image ones), so peak memory is bounded
    by the tile, not the image: about 1 KB per tile pixel for the network plus ~20 bytes per
    image pixel for the stitched maps and NMS. The cost is compute: the margins are computed
    twice, +20 % for 1024-px tiles. ``tile_size=None`` runs whole images at once.

    ``max_keypoints`` caps the keypoints per image (the highest-scoring are kept; ``None`` keeps
    all); a warning says when the cap is reached, since more keypoints passed the threshold.

    ``scales`` (must include 1.0): the network also runs on the image resized by each other
    factor, and the detection heatmap is the mean of all scales' heatmaps, each resized back to
    the input's pixels (:meth:`heatmap`). A point must then respond at several scales, which
    favours points that survive zoom and viewpoint change; descriptors still come from scale
    1.0. ``(1.0, 0.5)`` costs ~1.25× the single-scale compute, ``(1.0, 0.707, 0.5)`` ~1.75×
    (docs/keypoints.md, "Multi-scale detection"). The ONNX export is single-scale.

    ``subpixel`` (default on) moves each keypoint off the pixel grid to the vertex of a Gaussian
    fitted through its heatmap peak and 4 neighbours (:func:`refine_subpixel`); descriptors are
    sampled at the refined positions. ``False`` gives the published integer keypoints.

    ``precision``: ``"fp32"`` (default) or ``"bf16"``, the network's arithmetic (autocast; the
    heatmap, NMS and descriptor sampling stay float32). bf16 roughly halves the CPU forward
    time on processors with AVX-512 BF16 at a small accuracy cost (docs/keypoints.md, "Speed
    on CPU"). On CPU the network always runs on channels-last tensors, oneDNN's fast layout
    (~1.7× faster than NCHW in fp32, same results up to float rounding).
    """

    def __init__(
        self,
        model: nn.Module,
        device: str | torch.device = "auto",
        max_keypoints: int | None = 1000,
        detection_threshold: float = 0.015,
        nms_radius: int = 4,
        border: int = 4,
        tile_size: int | None = DEFAULT_TILE_SIZE,
        scales: Sequence[float] = (1.0,),
        subpixel: bool = True,
        precision: str = "fp32",
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
        if tile_size is not None and (tile_size < 8 or tile_size % 8):
            raise ValueError(f"tile_size must be None or a multiple of 8 >= 8, got {tile_size}")
        self.scales = check_scales(scales)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.precision = precision
        if precision == "bf16":
            warn_if_emulated_bf16(self.device, "precision bf16")
        self.channels_last = self.device.type == "cpu"
        if self.channels_last:
            # A channels-last copy: converting in place would change the caller's model (the
            # one being trained, when the periodic benchmark builds a predictor) and with it
            # the rounding of its later steps.
            model = copy.deepcopy(model).to(memory_format=torch.channels_last)
        self.model = model.to(self.device).eval()
        self.max_keypoints = max_keypoints
        self.detection_threshold = detection_threshold
        self.nms_radius = nms_radius
        self.border = border
        self.tile_size = tile_size
        self.subpixel = subpixel
        self._warned_cap = False

    @staticmethod
    def to_grey(image: np.ndarray) -> np.ndarray:
        """``(H, W)`` uint8 grey from grey, ``(H, W, 1)``, BGR or BGRA uint8 (OpenCV order).

        BGRA is what ``cv2.imread(path, cv2.IMREAD_UNCHANGED)`` returns for a PNG with alpha;
        the alpha channel is ignored. Other dtypes are refused rather than rescaled: a float
        image may be in [0, 1] or [0, 255], and guessing wrong silently changes detections.
        """
        expected = "a uint8 numpy array, (H, W) grey or (H, W, 3) BGR (or (H, W, 4) BGRA)"
        if not isinstance(image, np.ndarray):
            raise ValueError(f"image must be {expected}, got {type(image).__name__}")
        if image.dtype != np.uint8:
            raise ValueError(f"image must be {expected}, got dtype {image.dtype}")
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[..., 0]
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
            raise ValueError(f"image must be {expected}, got shape {image.shape}")
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError(f"image is empty: shape {image.shape}")
        # Negative strides (``img[::-1]``) are refused by torch.from_numpy and OpenCV.
        image = np.ascontiguousarray(image)
        if image.ndim == 3:
            code = cv2.COLOR_BGR2GRAY if image.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
            return cv2.cvtColor(image, code)
        return image

    def __call__(self, image: np.ndarray) -> dict[str, np.ndarray | None]:
        grey = self.to_grey(image)
        h, w = grey.shape
        # Pad bottom/right to a multiple of 8 (and at least 16): no resampling, so keypoint
        # coordinates stay in input pixels; detections in the padding are dropped below.
        ph, pw = max(MIN_SIDE, -(-h // 8) * 8), max(MIN_SIDE, -(-w // 8) * 8)
        x = torch.from_numpy(grey).to(self.device, torch.float32).div_(255.0)[None, None]
        x = F.pad(x, (0, pw - w, 0, ph - h), mode="replicate") if (ph, pw) != (h, w) else x
        out = self.predict_batch(x, valid_size=(h, w))[0]
        return out

    @torch.inference_mode()
    def predict_batch(
        self, images: torch.Tensor, valid_size: tuple[int, int] | None = None
    ) -> list[dict[str, np.ndarray | None]]:
        """``(B, 1, H, W)`` float [0, 1] → one result dict per image."""
        images = images.to(self.device)
        h, w = images.shape[-2:]
        out = self._forward(images)
        heat = self._fuse_scales(images, logits_to_heatmap(out["logits"].float()))
        if valid_size is not None and valid_size != (h, w):
            vh, vw = valid_size
            heat = heat.clone()
            heat[:, vh:, :] = 0
            heat[:, :, vw:] = 0
            # The border frame must apply to the real image, not the padded one.
            if self.border > 0:
                heat[:, max(vh - self.border, 0) :, :] = 0
                heat[:, :, max(vw - self.border, 0) :] = 0
        dets = extract_keypoints(
            heat, self.detection_threshold, self.border, self.max_keypoints, self.nms_radius
        )
        capped = self.max_keypoints is not None and not self._warned_cap
        if capped and any(len(k) == self.max_keypoints for k, _ in dets):
            self._warned_cap = True
            log.warning(
                "keypoint cap reached: kept the %d highest-scoring keypoints of an image; more "
                "may have passed the threshold (raise max_keypoints, or None for all; warned "
                "once)",
                self.max_keypoints,
            )
        if self.subpixel:
            # Refined points stay inside the border frame that the integer ones were taken from.
            vh, vw = valid_size if valid_size is not None else (h, w)
            b = self.border
            lo = heat.new_tensor([b, b])
            hi = heat.new_tensor([vw - 1 - b, vh - 1 - b])
            refined = refine_subpixel(heat, [k for k, _ in dets])
            dets = [(k.clamp(min=lo, max=hi), s) for k, (_, s) in zip(refined, dets, strict=True)]
        descs = None
        if "descriptors" in out:
            descs = sample_descriptors(out["descriptors"].float(), [k for k, _ in dets], (h, w))
        results: list[dict[str, np.ndarray | None]] = []
        for i, (k, s) in enumerate(dets):
            results.append(
                {
                    "keypoints": k.cpu().numpy().astype(np.float32),
                    "scores": s.cpu().numpy().astype(np.float32),
                    "descriptors": None if descs is None else descs[i].cpu().numpy(),
                }
            )
        return results

    @torch.inference_mode()
    def heatmap(self, images: torch.Tensor) -> torch.Tensor:
        """Detection heatmap ``(B, H, W)`` of ``(B, 1, H, W)`` float [0, 1] images (H, W
        multiples of 8), fused over :attr:`scales` as :meth:`predict_batch` uses it."""
        images = images.to(self.device)
        heat = logits_to_heatmap(self._forward(images)["logits"].float())
        return self._fuse_scales(images, heat)

    def _fuse_scales(self, images: torch.Tensor, heat: torch.Tensor) -> torch.Tensor:
        """Mean of ``heat`` (the scale-1 heatmap ``(B, H, W)``) and the heatmaps of ``images``
        resized by every other scale (area resampling down, bilinear up; sides rounded to
        multiples of 8, at least 16), each resized back to ``(H, W)`` bilinearly."""
        others = [s for s in self.scales if s != 1.0]
        if not others:
            return heat
        h, w = images.shape[-2:]
        total = heat.clone()
        for s in others:
            size = (max(MIN_SIDE, round(h * s / 8) * 8), max(MIN_SIDE, round(w * s / 8) * 8))
            if s < 1.0:
                x = F.interpolate(images, size=size, mode="area")
            else:
                x = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
            hs = logits_to_heatmap(self._forward(x)["logits"].float())
            back = F.interpolate(hs[:, None], size=(h, w), mode="bilinear", align_corners=False)
            total += back[:, 0]
        return total / (len(others) + 1)

    def _forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """The model's outputs for ``(B, 1, H, W)`` (H, W multiples of 8), tile by tile when the
        image exceeds ``tile_size``; every output is ``(B, C, H/8, W/8)``."""
        t, m = self.tile_size, TILE_MARGIN
        h, w = images.shape[-2:]
        if t is None or (h <= t and w <= t):
            return self._run(images)
        out: dict[str, torch.Tensor] = {}
        for y0 in range(0, h, t):
            for x0 in range(0, w, t):
                y1, x1 = min(y0 + t, h), min(x0 + t, w)
                ya, xa = max(y0 - m, 0), max(x0 - m, 0)  # multiples of 8: the pool grid aligns
                part = self._run(images[..., ya : min(y1 + m, h), xa : min(x1 + m, w)])
                for key, v in part.items():
                    if key not in out:
                        out[key] = v.new_empty(*v.shape[:2], h // 8, w // 8)
                    core = v[..., (y0 - ya) // 8 : (y1 - ya) // 8, (x0 - xa) // 8 : (x1 - xa) // 8]
                    out[key][..., y0 // 8 : y1 // 8, x0 // 8 : x1 // 8] = core
        return out

    def _run(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """One network forward in the predictor's layout and :attr:`precision`."""
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(
            self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"
        ):
            return self.model(images)
