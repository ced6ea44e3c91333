"""pointforge: train, evaluate and deploy "everything as points" vision models.

Public API::

    import pointforge
    pred = pointforge.load_predictor()      # shipped default weights
    out = pred(image)                       # (H, W) uint8 grey or (H, W, 3) uint8 BGR
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__version__ = "0.1.0"

WEIGHTS_DIR = Path(__file__).parent / "weights"
# Stage 1 (detector only, Synthetic Shapes): the default detector of export-labels.
MAGICPOINT_WEIGHTS = WEIGHTS_DIR / "magicpoint_shapes.pth"
# Stage 2 (detector + descriptor, photos): the default of load_predictor/detect/match/export-onnx
# once shipped; until then the MagicPoint is the default.
SUPERPOINT_WEIGHTS = WEIGHTS_DIR / "superpoint.pth"
DEFAULT_WEIGHTS = SUPERPOINT_WEIGHTS if SUPERPOINT_WEIGHTS.is_file() else MAGICPOINT_WEIGHTS


def load_predictor(weights: str | Path | None = None, device: str = "auto", **options: Any):
    """A ready predictor for ``weights``, of the task that made them.

    ``weights=None`` loads the default keypoint weights shipped inside the package (see
    ``pointforge/weights/*.json`` for how they were made). A pointforge checkpoint carries its
    run's config, so its task is read from it (a detection checkpoint gives a box detector, a
    re-ID checkpoint an embedder, ...); a MagicLeap-v1 state dict is a keypoint model.
    ``options`` are the task predictor's own, e.g. for keypoints ``max_keypoints`` (1000;
    ``None`` for all), ``detection_threshold``, ``nms_radius``, ``border``, ``tile_size``
    (1024: larger images run in tiles to bound memory); an unknown option is refused with the
    closest valid name. ``weights`` may also be a run's folder: its ``checkpoints/best.pth``
    when the run kept one (``train.best_metric``), else ``checkpoints/final.pth``.
    """
    from pointforge.predictor import load_predictor as load

    path = Path(weights) if weights is not None else DEFAULT_WEIGHTS
    if weights is None and not path.is_file():
        raise FileNotFoundError(f"default weights missing from the package: {path}")
    return load(path, device=device, **options)


__all__ = ["__version__", "load_predictor"]
