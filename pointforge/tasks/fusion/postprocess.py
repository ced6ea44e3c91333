"""Model maps → 3D detections in the camera frame → global-frame :class:`NuscBox` es.

Why: evaluation, the predictor and the drawings all need the same decoding: CenterNet's top-K
3×3 peaks (no NMS, CenterNet §4), the 3D quantities read at each peak
(:func:`~pointforge.tasks.fusion.model.decode_cells`), then the sample's camera → ego → global
transforms to put boxes where the nuScenes metric compares them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pointforge.geometry.camera import matrix_to_yaw, rot_y_to_matrix, yaw_to_quat
from pointforge.tasks.fusion.data.sample import ATTRIBUTE_NAMES
from pointforge.tasks.fusion.model import decode_cells, topk_peaks
from pointforge.tasks.fusion.nusc_metrics import DETECTION_NAMES, NuscBox

# Attributes a class may take (nuScenes detection README): vehicles, cycles, pedestrians;
# cones and barriers have none.
_VEHICLE = ("car", "truck", "bus", "trailer", "construction_vehicle")
CLASS_ATTRIBUTES: dict[str, tuple[int, ...]] = {
    **{c: (0, 1, 2) for c in _VEHICLE},
    **{c: (3, 4) for c in ("motorcycle", "bicycle")},
    "pedestrian": (5, 6, 7),
}


@torch.no_grad()
def detect_3d(
    outputs: dict[str, torch.Tensor],
    intrinsics: torch.Tensor,
    stride: int,
    topk: int = 100,
    score_threshold: float = 0.0,
) -> list[dict[str, np.ndarray]]:
    """Per image, the detections scoring ≥ ``score_threshold`` among the top-``topk`` peaks,
    as NumPy arrays (``D`` rows): ``score``, ``label`` (index into DETECTION_NAMES), ``box2d``
    (D, 4) pixels, ``center`` (D, 3), ``size`` (D, 3) w l h, ``rot_y``, ``velocity`` (D, 3)
    (camera frame), ``attribute`` (D, 8) probabilities."""
    peaks = topk_peaks(outputs["heatmap"].float().sigmoid(), topk)
    dec = decode_cells(outputs, peaks, intrinsics, stride, secondary=True)
    out = []
    for i in range(peaks["scores"].shape[0]):
        keep = peaks["scores"][i] >= score_threshold
        row = {"score": peaks["scores"][i][keep], "label": peaks["labels"][i][keep]}
        row |= {k: v[i][keep] for k, v in dec.items() if k != "depth"}
        out.append({k: v.float().cpu().numpy() if k != "label" else v.cpu().numpy()
                    for k, v in row.items()})  # fmt: skip
    return out


def attribute_name(label: int, probs: np.ndarray) -> str:
    """The most probable attribute among those the class may have ("" when none)."""
    allowed = CLASS_ATTRIBUTES.get(DETECTION_NAMES[label], ())
    if not allowed:
        return ""
    return ATTRIBUTE_NAMES[max(allowed, key=lambda a: probs[a])]


def to_global_boxes(
    det: dict[str, np.ndarray],
    cam_to_ego: np.ndarray,
    ego_to_global: np.ndarray,
    sample_token: str,
) -> list[NuscBox]:
    """Camera-frame detections (:func:`detect_3d`) → global-frame boxes for the metric.

    Centre and velocity go through ``T_global_from_cam``; the heading is the global yaw of the
    box's length axis (``rot_y_to_matrix``), so a slightly tilted camera leaves the box level."""
    T = np.asarray(ego_to_global, np.float64) @ np.asarray(cam_to_ego, np.float64)
    R, t = T[:3, :3], T[:3, 3]
    boxes = []
    for j in range(len(det["score"])):
        label = int(det["label"][j])
        centre = R @ det["center"][j].astype(np.float64) + t
        yaw = matrix_to_yaw(R @ rot_y_to_matrix(float(det["rot_y"][j])))
        vel = R @ det["velocity"][j].astype(np.float64)
        boxes.append(
            NuscBox(
                sample_token=sample_token,
                translation=tuple(map(float, centre)),
                size=tuple(float(s) for s in det["size"][j]),
                rotation=tuple(map(float, yaw_to_quat(yaw))),
                velocity=(float(vel[0]), float(vel[1])),
                detection_name=DETECTION_NAMES[label],
                detection_score=float(det["score"][j]),
                attribute_name=attribute_name(label, det["attribute"][j]),
            )
        )
    return boxes


def camera_boxes(boxes: dict[str, Any]) -> dict[str, np.ndarray]:
    """A sample's ground-truth ``boxes`` (tensors or arrays) as the camera-frame arrays the
    drawings read: ``center``, ``size``, ``rot_y``, ``label``."""
    return {k: np.asarray(boxes[k]) for k in ("center", "size", "rot_y", "label")}
