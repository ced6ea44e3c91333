"""Homographic adaptation (SuperPoint paper §5, docs/keypoints.md): labels for real photos.

A detector trained on synthetic shapes misses many corners of real photos and is not
repeatable under viewpoint change. Averaging its heatmaps over ``N_h`` random views of the same
image (each warped back into the image's frame) keeps the points that are found consistently.

Everything is batched on the device: ``B`` images × ``N_h`` homographies are warped with one
``grid_sample``, sent through the network in chunks of ``forward_batch``, warped back with one
``grid_sample``, and reduced; only the sampling of the homographies (a few 8×8 solves) runs on
the CPU. The first homography of every image is the identity and is neither warped nor
un-warped, so ``N_h = 1`` is exactly the plain detector.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pointforge.geometry.homography import (
    HomographyConfig,
    sample_homography,
    valid_mask,
    warp_images,
)
from pointforge.tasks.keypoints.postprocess import extract_keypoints, logits_to_heatmap


def adaptation_homographies(
    index: int, num: int, height: int, width: int, cfg: HomographyConfig, seed: int = 0
) -> torch.Tensor:
    """``(num, 3, 3)`` homographies of image ``index``: identity first, then ``num - 1`` random.

    Seeded by ``(seed, index)`` alone, so an image gets the same homographies whatever batch or
    shard it falls in (resumed exports reproduce the labels of uninterrupted ones).
    """
    eye = torch.eye(3)[None]
    if num == 1:
        return eye
    state = np.random.SeedSequence([seed, index]).generate_state(1, np.uint64)[0]
    gen = torch.Generator().manual_seed(int(state >> 1))
    return torch.cat([eye, sample_homography(num - 1, height, width, cfg, generator=gen)])


def for_amp(model: nn.Module, amp: str) -> nn.Module:
    """``model`` in the memory format :func:`detector_heatmaps` feeds it: channels-last for
    ``amp="bf16"`` (with channels-last inputs, oneDNN's fast bf16 convolutions), unchanged
    otherwise."""
    return model.to(memory_format=torch.channels_last) if amp == "bf16" else model


@torch.inference_mode()
def detector_heatmaps(
    model: nn.Module, images: torch.Tensor, forward_batch: int, amp: str = "off"
) -> torch.Tensor:
    """``(M, 1, H, W)`` → ``(M, H, W)`` keypoint probabilities, ``forward_batch`` per forward.

    ``amp="bf16"`` runs the network under bf16 autocast on channels-last inputs (oneDNN's fast
    path on CPU, with the model prepared by :func:`for_amp`; the softmax and everything after
    it stay float32)."""
    bf16 = amp == "bf16"
    out = []
    for chunk in images.split(forward_batch):
        if bf16:
            chunk = chunk.contiguous(memory_format=torch.channels_last)
        with torch.autocast(images.device.type, torch.bfloat16, enabled=bf16):
            logits = model(chunk)["logits"]
        out.append(logits_to_heatmap(logits.float().contiguous()))
    return torch.cat(out)


@torch.inference_mode()
def adapt_heatmaps(
    model: nn.Module,
    images: torch.Tensor,
    homographies: torch.Tensor,
    forward_batch: int = 50,
    aggregation: str = "mean",
    valid_border_margin: int = 3,
    amp: str = "off",
) -> torch.Tensor:
    """Aggregated heatmaps ``(B, H, W)`` of ``images`` ``(B, 1, H, W)`` under ``homographies``
    ``(B, N, 3, 3)`` (source → warped pixels; ``[:, 0]`` must be the identity).

    ``mean``: ``Σ_k m_k·h_k / Σ_k m_k`` with ``h_k`` the heatmap of view ``k`` warped back and
    ``m_k`` its validity mask (pixels of the image that view ``k`` saw, eroded by
    ``valid_border_margin`` so the zero padding of the warp does not leak in); ``max``: the
    per-pixel maximum of ``m_k·h_k``. The identity's mask is all ones, so no pixel is unseen.
    """
    if aggregation not in ("mean", "max"):
        raise ValueError(f"aggregation must be 'mean' or 'max', got {aggregation!r}")
    b, n = homographies.shape[:2]
    _, _, h, w = images.shape
    if images.shape[0] != b or homographies.shape[2:] != (3, 3):
        raise ValueError(
            f"images {tuple(images.shape)} and homographies {tuple(homographies.shape)} must "
            "be (B, 1, H, W) and (B, N, 3, 3)"
        )
    homographies = homographies.to(images.device, torch.float32)
    heat = detector_heatmaps(model, images, forward_batch, amp)  # identity views (B, H, W)
    if n == 1:
        return heat
    hs = homographies[:, 1:].reshape(-1, 3, 3)  # (B·(N-1), 3, 3)
    sources = images.repeat_interleave(n - 1, dim=0)  # (B·(N-1), 1, H, W)
    warped_heat = detector_heatmaps(model, warp_images(sources, hs), forward_batch, amp)
    back, mask = unwarp_heatmaps(warped_heat, hs, valid_border_margin)
    return aggregate(heat, back.reshape(b, n - 1, h, w), mask.reshape(b, n - 1, h, w), aggregation)


def unwarp_heatmaps(
    heat: torch.Tensor, homographies: torch.Tensor, valid_border_margin: int = 3
) -> tuple[torch.Tensor, torch.Tensor]:
    """Heatmaps ``(M, H, W)`` of views warped by ``homographies`` ``(M, 3, 3)`` → the same
    heatmaps in the source frame, ``back(p) = heat(H p)``, and their validity masks ``(M, H, W)``
    (1 where ``H p`` fell inside the view, eroded by ``valid_border_margin`` pixels)."""
    _, h, w = heat.shape
    inv = torch.linalg.inv(homographies.float())
    back = warp_images(heat[:, None], inv)[:, 0]
    mask = valid_mask(inv, h, w, erode=valid_border_margin)[:, 0]
    return back, mask


def aggregate(
    identity: torch.Tensor, back: torch.Tensor, mask: torch.Tensor, aggregation: str = "mean"
) -> torch.Tensor:
    """Reduce the identity heatmap ``(B, H, W)`` and un-warped views ``back``/``mask``
    ``(B, N-1, H, W)`` to ``(B, H, W)``: masked mean (the identity weighs 1 everywhere) or max."""
    if aggregation == "max":
        return torch.maximum(identity, (back * mask).amax(dim=1))
    return (identity + (back * mask).sum(dim=1)) / (1.0 + mask.sum(dim=1))


def heatmap_keypoints(
    heat: torch.Tensor,
    threshold: float,
    nms_radius: int,
    border: int,
    max_keypoints: int | None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """NMS + border + threshold (+ top-k) of ``(B, H, W)`` → ``[(kpts (N, 2) xy, scores (N,))]``."""
    dets = extract_keypoints(heat, threshold, border, max_keypoints, nms_radius)
    return [(k.cpu().numpy().astype(np.float32), s.cpu().numpy()) for k, s in dets]
