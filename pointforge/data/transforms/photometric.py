"""Photometric augmentation of uint8 grey images (docs/keypoints.md amplitudes).

All ops from the public SuperPoint configs are applied in a random order (as those configs do,
``random_order: true``), each with a random strength drawn from the configured range, so the
detector learns to ignore illumination, sensor noise and blur.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class PhotometricConfig:
    """Ranges: brightness ±75 of 255, contrast ×[0.3, 1.8], Gaussian noise σ∈[0, 15],
    speckle (salt-and-pepper) density up to 0.0035, additive shade with transparency
    [-0.5, 0.8] and kernel [50, 100] px, motion blur up to 7 px (docs/keypoints.md)."""

    enabled: bool = True
    brightness: float = 75.0
    contrast: tuple[float, ...] = (0.3, 1.8)
    noise_std: tuple[float, ...] = (0.0, 15.0)
    speckle_prob: tuple[float, ...] = (0.0, 0.0035)
    shade_transparency: tuple[float, ...] = (-0.5, 0.8)
    shade_kernel: tuple[int, ...] = (50, 100)
    shade_ellipses: int = 20
    motion_blur_max: int = 7


def _between(rng: np.random.Generator, bounds: tuple[float, ...]) -> float:
    """A uniform draw in ``[low, high)`` of a ``(low, high)`` range option."""
    low, high = bounds
    return float(rng.uniform(low, high))


def _brightness(img: np.ndarray, rng: np.random.Generator, cfg: PhotometricConfig) -> np.ndarray:
    return img + rng.uniform(-cfg.brightness, cfg.brightness)


def _contrast(img: np.ndarray, rng: np.random.Generator, cfg: PhotometricConfig) -> np.ndarray:
    mean = img.mean()
    return (img - mean) * _between(rng, cfg.contrast) + mean


def _gaussian_noise(
    img: np.ndarray, rng: np.random.Generator, cfg: PhotometricConfig
) -> np.ndarray:
    return img + rng.normal(0.0, _between(rng, cfg.noise_std), img.shape).astype(np.float32)


def _speckle(img: np.ndarray, rng: np.random.Generator, cfg: PhotometricConfig) -> np.ndarray:
    p = _between(rng, cfg.speckle_prob)
    u = rng.random(img.shape, dtype=np.float32)
    img = img.copy()
    img[u < p] = 0.0
    img[u > 1 - p] = 255.0
    return img


def _shade(img: np.ndarray, rng: np.random.Generator, cfg: PhotometricConfig) -> np.ndarray:
    """Darken or lighten by a blurred mask of random ellipses (cast shadows, vignetting)."""
    h, w = img.shape
    mask: np.ndarray = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(1, cfg.shade_ellipses + 1))):
        ax = int(rng.integers(1, max(2, min(h, w) // 5)))
        ay = int(rng.integers(1, max(2, min(h, w) // 5)))
        cx, cy = (
            int(rng.integers(ax, max(ax + 1, w - ax))),
            int(rng.integers(ay, max(ay + 1, h - ay))),
        )
        cv2.ellipse(mask, (cx, cy), (ax, ay), float(rng.uniform(0, 90)), 0, 360, 255, -1)
    transparency = _between(rng, cfg.shade_transparency)
    k = int(rng.integers(cfg.shade_kernel[0], cfg.shade_kernel[1] + 1)) | 1  # odd
    mask = cv2.GaussianBlur(mask, (k, k), 0)
    return img * (1 - transparency * mask / 255.0)


def _motion_blur(img: np.ndarray, rng: np.random.Generator, cfg: PhotometricConfig) -> np.ndarray:
    """Linear motion blur along a random direction (0°, 90° or a diagonal)."""
    size = int(rng.integers(0, (cfg.motion_blur_max + 1) // 2)) * 2 + 1  # odd, 1 … max
    if size <= 1:
        return img
    kernel = np.zeros((size, size), np.float32)
    mode = int(rng.integers(4))
    c = size // 2
    if mode == 0:
        kernel[c, :] = 1
    elif mode == 1:
        kernel[:, c] = 1
    elif mode == 2:
        np.fill_diagonal(kernel, 1)
    else:
        np.fill_diagonal(np.fliplr(kernel), 1)
    # Gaussian weighting along the line, as in the public implementation's idea.
    d = np.arange(size) - c
    kernel *= np.exp(-(d[None] ** 2 + d[:, None] ** 2) / (2 * (size / 2) ** 2))
    kernel /= kernel.sum()
    return cv2.filter2D(img, -1, kernel)


OPS = (_brightness, _contrast, _gaussian_noise, _speckle, _shade, _motion_blur)


def photometric_augment(
    image: np.ndarray, rng: np.random.Generator, cfg: PhotometricConfig
) -> np.ndarray:
    """``(H, W)`` uint8 → ``(H, W)`` uint8 with all ops in a random order."""
    if image.dtype != np.uint8 or image.ndim != 2:
        raise ValueError(
            f"photometric_augment expects (H, W) uint8, got {image.dtype} {image.shape}"
        )
    img = image.astype(np.float32)
    for i in rng.permutation(len(OPS)):
        img = OPS[i](img, rng, cfg)
    return np.clip(img, 0, 255).astype(np.uint8)
