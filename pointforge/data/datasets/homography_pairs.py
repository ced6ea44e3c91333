"""Image pairs related by a known homography: the unit of every homography benchmark.

Two sources produce them: HPatches (``hpatches.py``) and this module's generated benchmark,
which turns any folder of photos (default: scikit-image's sample photos, so users without
HPatches can evaluate) into *viewpoint* pairs (seeded random homography) and *illumination*
pairs (seeded photometric change, identity homography).

Resizing is where public evaluations went wrong: pytorch-superpoint rescaled the ground-truth
``H`` with the reference image's scale only. Here each image carries its own scale, and
:func:`resize_pair` maps ``H`` through both (docs/evaluation.md): ``H' = S2 · H · S1⁻¹``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from pointforge.data.image_io import UnreadableImageError, read_image
from pointforge.data.transforms.photometric import PhotometricConfig, photometric_augment
from pointforge.geometry.homography import HomographyConfig, sample_homography, warp_images
from pointforge.registry import DATASETS

# Real photographs among ``skimage.data`` that ship with scikit-image (no download). Binary or
# synthetic samples (checkerboard, horse, logo, phantom, colour wheel) are left out: they have
# few natural corners and would distort a benchmark of photo matching.
SKIMAGE_PHOTOS = (
    "astronaut",
    "brick",
    "camera",
    "cell",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "page",
    "retina",
    "rocket",
    "text",
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".bmp", ".tif", ".tiff", ".webp")
SPLITS = ("illumination", "viewpoint")


@dataclass(frozen=True)
class HomographyPair:
    """Two grey images and the homography that maps image 1's pixels onto image 2's.

    ``image1``: ``(H1, W1)`` uint8, ``image2``: ``(H2, W2)`` uint8, ``H``: ``(3, 3)`` float64
    mapping ``(x1, y1, 1)`` to image 2 (pixel centres at integer coordinates). ``split`` is the
    group the pair is reported under (HPatches ``i``/``v``, generated
    ``illumination``/``viewpoint``).
    """

    name: str
    split: str
    image1: np.ndarray
    image2: np.ndarray
    H: np.ndarray


def to_grey(image: np.ndarray, source: str) -> np.ndarray:
    """uint8 ``(H, W)`` from grey, RGB(A) or float [0, 1] images; errors name ``source``."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
    if img.ndim != 2:
        raise ValueError(f"{source}: expected a grey or colour image, got shape {img.shape}")
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    elif img.dtype != np.uint8:
        hi = float(img.max()) if img.size else 0.0
        img = np.clip(img * (255.0 if hi <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    return img


def scale_matrix(old_size: tuple[int, int], new_size: tuple[int, int]) -> np.ndarray:
    """``(3, 3)`` map from pixel coordinates of an ``old_size`` ``(h, w)`` image to the same
    point in its ``cv2.resize`` to ``new_size``.

    ``cv2.resize`` aligns pixel *areas*, so with integer pixel centres ``x' = s (x + ½) − ½``
    with ``s = w'/w`` (and likewise in y); the ½ terms vanish only when ``s = 1``.
    """
    (h, w), (nh, nw) = old_size, new_size
    sx, sy = nw / w, nh / h
    return np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]], np.float64)


def resize_pair(pair: HomographyPair, size: Sequence[int] | None) -> HomographyPair:
    """Resize both images to ``size`` ``(h, w)`` and rescale ``H`` with each image's own
    factors: ``H' = S2 · H · S1⁻¹``. ``None`` returns the pair unchanged."""
    if size is None:
        return pair
    nh, nw = (int(s) for s in size)
    s1 = scale_matrix(pair.image1.shape[:2], (nh, nw))
    s2 = scale_matrix(pair.image2.shape[:2], (nh, nw))
    h = s2 @ pair.H @ np.linalg.inv(s1)
    return HomographyPair(
        pair.name,
        pair.split,
        cv2.resize(pair.image1, (nw, nh), interpolation=cv2.INTER_AREA),
        cv2.resize(pair.image2, (nw, nh), interpolation=cv2.INTER_AREA),
        h / h[2, 2],
    )


def load_source_images(path: str | Path | None) -> list[tuple[str, np.ndarray]]:
    """``(name, (H, W) uint8)`` for every image in folder ``path`` (sorted by file name), or
    the scikit-image sample photos when ``path`` is ``None``."""
    if path is None:
        import skimage.data

        return [
            (n, to_grey(getattr(skimage.data, n)(), f"skimage.data.{n}")) for n in SKIMAGE_PHOTOS
        ]
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"data.path: image folder {root} does not exist")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"data.path: no images ({', '.join(IMAGE_SUFFIXES)}) in {root}")
    out = []
    for f in files:
        try:
            out.append((f.stem, read_image(f, grey=True)))
        except UnreadableImageError as exc:  # a benchmark must not run on a partial picture
            raise UnreadableImageError(f, f"{exc.reason} (in data.path)") from None
    return out


# Viewpoint changes of the generated benchmark: the training amplitudes (docs/keypoints.md) with
# rotation limited to ±30° (HPatches viewpoint sequences rarely rotate more) and no black
# borders, so image 2 is fully covered by image 1's content.
DEFAULT_VIEWPOINT = HomographyConfig(max_angle=np.pi / 6, allow_artifacts=False)
# Illumination changes: brightness, contrast, shade and mild noise; no blur or speckle, which
# are sensor effects rather than lighting.
DEFAULT_ILLUMINATION = PhotometricConfig(
    brightness=50.0,
    contrast=(0.5, 1.5),
    noise_std=(0.0, 5.0),
    speckle_prob=(0.0, 0.0),
    motion_blur_max=1,  # kernel size 1 = no blur
)


@dataclass(frozen=True)
class HomographyPairsParams:
    """``data.*`` keys of ``homography_pairs`` (benchmark pairs made from an image folder)."""

    # Any image folder; null = scikit-image's sample photos (shipped, no download).
    path: str | None = None
    # Images are resized to this; each image's own factors rescale H (docs/evaluation.md).
    image_size: tuple[int, ...] = (240, 320)
    # The seeded viewpoint and illumination changes of the generated pairs.
    photometric: PhotometricConfig = field(default_factory=PhotometricConfig)
    homographic: HomographyConfig = field(default_factory=HomographyConfig)


@DATASETS.register("homography_pairs", params=HomographyPairsParams)
class GeneratedPairs(Dataset):
    """Seeded homography benchmark from a folder of photos.

    Each source image (resized to ``image_size``) gives ``pairs_per_image`` viewpoint pairs and
    as many illumination pairs. Pair ``k`` of image ``i`` draws from its own generator seeded
    by ``(seed, i, k, split)``, so the same seed gives the same pairs in any order.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        image_size: Sequence[int] = (240, 320),
        pairs_per_image: int = 5,
        seed: int = 0,
        homographic: HomographyConfig = DEFAULT_VIEWPOINT,
        photometric: PhotometricConfig = DEFAULT_ILLUMINATION,
    ) -> None:
        if pairs_per_image <= 0:
            raise ValueError(f"pairs_per_image must be > 0, got {pairs_per_image}")
        self.height, self.width = (int(s) for s in image_size)
        self.images = [
            (n, cv2.resize(im, (self.width, self.height), interpolation=cv2.INTER_AREA))
            for n, im in load_source_images(path)
        ]
        self.pairs_per_image = pairs_per_image
        self.seed = seed
        self.homographic = homographic
        self.photometric = photometric

    def __len__(self) -> int:
        return 2 * self.pairs_per_image * len(self.images)

    def __getitem__(self, index: int) -> HomographyPair:
        if not 0 <= index < len(self):
            raise IndexError(f"pair index {index} out of range [0, {len(self)})")
        image_idx, rest = divmod(index, 2 * self.pairs_per_image)
        split_idx, k = divmod(rest, self.pairs_per_image)
        split = SPLITS[split_idx]
        name, image = self.images[image_idx]
        seq = np.random.SeedSequence([self.seed, image_idx, k, split_idx])
        if split == "illumination":
            rng = np.random.default_rng(seq)
            warped = photometric_augment(image, rng, self.photometric)
            return HomographyPair(f"{name}/i{k}", split, image, warped, np.eye(3))
        gen = torch.Generator().manual_seed(int(seq.generate_state(1, np.uint64)[0] >> 1))
        h = sample_homography(
            1, self.height, self.width, self.homographic, generator=gen, dtype=torch.float64
        )
        src = torch.from_numpy(image).to(torch.float32)[None, None]
        warped_t = warp_images(src, h.float()).round().clamp(0, 255).to(torch.uint8)[0, 0]
        return HomographyPair(f"{name}/v{k}", split, image, warped_t.numpy(), h[0].numpy())
