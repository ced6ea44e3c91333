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
# once shipped; until then the MagicPoint is the default (DESIGN.md section 2).
SUPERPOINT_WEIGHTS = WEIGHTS_DIR / "superpoint.pth"
DEFAULT_WEIGHTS = SUPERPOINT_WEIGHTS if SUPERPOINT_WEIGHTS.is_file() else MAGICPOINT_WEIGHTS


def load_predictor(weights: str | Path | None = None, device: str = "auto", **options: Any):
    """A ready keypoint predictor.

    ``weights=None`` loads the default weights shipped inside the package (see
    ``pointforge/weights/*.json`` for how they were made). A pointforge checkpoint and a
    MagicLeap-v1 state dict both work. ``options``: ``max_keypoints`` (1000; ``None`` for
    all), ``detection_threshold``, ``nms_radius``, ``border``, ``tile_size`` (1024: larger
    images run the network in tiles to bound memory; ``None`` for whole images); see
    :class:`~pointforge.tasks.keypoints.predictor.KeypointPredictor`.
    """
    import difflib
    import inspect

    from pointforge.tasks.keypoints.predictor import (
        KeypointPredictor,
        build_model_for_state_dict,
        load_state_dict_from_file,
    )

    known = [p for p in inspect.signature(KeypointPredictor).parameters if p != "model"]
    for name in options:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise TypeError(
                f"load_predictor() got an unknown option {name!r}; {hint}options are: "
                + ", ".join(known)
            )

    path = Path(weights) if weights is not None else DEFAULT_WEIGHTS
    if weights is None and not path.is_file():
        raise FileNotFoundError(f"default weights missing from the package: {path}")
    model = build_model_for_state_dict(load_state_dict_from_file(path))
    return KeypointPredictor(model, device=device, **options)


__all__ = ["__version__", "load_predictor"]
