"""The radar-camera sample dictionary shared by every fusion data source, and the code that
builds its frame-dependent parts.

Why: the synthetic scenes (:mod:`.synthetic`) and the nuScenes reader (:mod:`.nuscenes`) differ
only in where images, poses, radar returns and global boxes come from; moving boxes and radar
into the camera, projecting 2D boxes, filtering and resizing are done here once, so everything
after a reader (targets, augmentation, evaluation) sees one format.

Sample dictionary (``K`` boxes, ``N`` radar points)::

    "image":         uint8 (H, W, 3), BGR (OpenCV order)
    "intrinsics":    float64 (3, 3), pinhole K of *this* image (scaled with any resize);
                     pixel centres at integer coordinates
    "cam_to_ego":    float64 (4, 4), T_ego_from_cam of the camera
    "ego_to_global": float64 (4, 4), T_global_from_ego at the camera's timestamp
    "radar":         float32 (N, 9), camera frame, columns RADAR_COLUMNS:
                     x, y, z      position (m; camera frame: x right, y down, z forward)
                     vx, vy, vz   ego-motion-compensated velocity (m/s), i.e. nuScenes'
                                  (vx_comp, vy_comp, 0) rotated from the radar into the camera;
                                  a radar measures only the radial part, so this is the radial
                                  velocity vector, not the object's full velocity
                     rcs          radar cross section (dBsm)
                     v_radial     signed compensated radial velocity (m/s, > 0 moving away
                                  from the radar)
                     dt           sweep time minus camera time (s, <= ~0)
                     only points in front of the camera, inside the image and closer than
                     the reader's max depth are kept
    "boxes": dict of arrays, one row per box (camera-visible boxes only, see build_boxes):
        "center":          float32 (K, 3) box centre, camera frame (m)
        "size":            float32 (K, 3) (w, l, h) (m)
        "rot_y":           float32 (K,)   heading about the camera y axis (KITTI/CenterNet)
        "velocity":        float32 (K, 3) velocity in the camera frame (m/s; NaN if unknown)
        "box2d":           float32 (K, 4) x1, y1, x2, y2 of the projected corners, clipped
        "depth":           float32 (K,)   = center z
        "label":           int64 (K,)     index into DETECTION_NAMES (the 10 nuScenes classes)
        "attribute":       int64 (K,)     index into ATTRIBUTE_NAMES, -1 if none
        "center_global":   float64 (K, 3) box centre, global frame
        "rotation_global": float64 (K, 4) quaternion (w, x, y, z), global frame
        "velocity_global": float64 (K, 2) (vx, vy), global frame (NaN if unknown)
    "sample_token":  str

The global-frame fields are what :class:`~pointforge.tasks.fusion.nusc_metrics.NuscBox` needs
(:func:`sample_gt_boxes`), so GT for the metric comes straight from a sample.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from pointforge.geometry.camera import (
    box_corners,
    camera_from_global,
    matrix_to_rot_y,
    project_points,
    quat_to_matrix,
    rotate_vectors,
    transform_points,
)
from pointforge.tasks.fusion.nusc_metrics import DETECTION_NAMES, NuscBox

RADAR_COLUMNS: tuple[str, ...] = ("x", "y", "z", "vx", "vy", "vz", "rcs", "v_radial", "dt")
# nuScenes attributes (the eight of the attribute table, detection README).
ATTRIBUTE_NAMES: tuple[str, ...] = (
    "vehicle.moving",
    "vehicle.parked",
    "vehicle.stopped",
    "cycle.with_rider",
    "cycle.without_rider",
    "pedestrian.moving",
    "pedestrian.standing",
    "pedestrian.sitting_lying_down",
)
BOX_KEYS: tuple[str, ...] = (
    "center",
    "size",
    "rot_y",
    "velocity",
    "box2d",
    "depth",
    "label",
    "attribute",
    "center_global",
    "rotation_global",
    "velocity_global",
)


def radar_sweep_to_camera(
    points: np.ndarray,
    vel_comp: np.ndarray,
    rcs: np.ndarray,
    T_cam_from_radar: np.ndarray,
    dt: float,
) -> np.ndarray:
    """One radar sweep in the radar frame → rows (N, 9) of the sample's ``radar`` array.

    ``points`` (N, 3) and ``vel_comp`` (N, 2) (nuScenes ``vx_comp, vy_comp``) are in the radar
    sensor frame (x forward, y left, z up); ``rcs`` (N,). The signed radial velocity is the
    compensated velocity projected on the horizontal line of sight from the sensor."""
    points = np.asarray(points, np.float64).reshape(-1, 3)
    vel_comp = np.asarray(vel_comp, np.float64).reshape(-1, 2)
    rng = np.linalg.norm(points[:, :2], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        v_radial = np.where(rng > 0, (vel_comp * points[:, :2]).sum(1) / rng, 0.0)
    vel3 = np.concatenate([vel_comp, np.zeros((len(points), 1))], axis=1)
    out = np.concatenate(
        [
            transform_points(T_cam_from_radar, points),
            rotate_vectors(T_cam_from_radar, vel3),
            np.asarray(rcs, np.float64).reshape(-1, 1),
            v_radial[:, None],
            np.full((len(points), 1), dt),
        ],
        axis=1,
    )
    return out.astype(np.float32)


def filter_radar(
    radar: np.ndarray, K: np.ndarray, image_hw: tuple[int, int], max_depth: float
) -> np.ndarray:
    """Keep radar rows (N, 9) in front of the camera, projecting inside the image and with
    depth ≤ ``max_depth`` (CenterFusion keeps only points that project into the image)."""
    if len(radar) == 0:
        return radar.reshape(0, len(RADAR_COLUMNS)).astype(np.float32)
    uv, z = project_points(K, radar[:, :3])
    h, w = image_hw
    with np.errstate(invalid="ignore"):
        keep = (z > 0) & (z <= max_depth)
        keep &= (uv[:, 0] >= -0.5) & (uv[:, 0] < w - 0.5) & (uv[:, 1] >= -0.5)
        keep &= uv[:, 1] < h - 0.5
    return radar[keep]


def build_boxes(
    center_global: np.ndarray,
    size: np.ndarray,
    rotation_global: np.ndarray,
    velocity_global: np.ndarray,
    label: np.ndarray,
    attribute: np.ndarray,
    cam_to_ego: np.ndarray,
    ego_to_global: np.ndarray,
    K: np.ndarray,
    image_hw: tuple[int, int],
    min_depth: float = 0.5,
) -> dict[str, np.ndarray]:
    """Global-frame boxes (K0 rows: centres (K0, 3), sizes wlh (K0, 3), quaternions (K0, 4),
    velocities (K0, 2) or (K0, 3), labels, attribute indices) → the sample's ``boxes`` dict.

    A box is kept when its centre is at least ``min_depth`` in front of the camera and the 2D
    box of its corners that are in front of the camera overlaps the image (the 2D box is then
    clipped to the image)."""
    T = camera_from_global(cam_to_ego, ego_to_global)
    n = len(center_global)
    center_global = np.asarray(center_global, np.float64).reshape(n, 3)
    rotation_global = np.asarray(rotation_global, np.float64).reshape(n, 4)
    size = np.asarray(size, np.float64).reshape(n, 3)
    vg = np.asarray(velocity_global, np.float64).reshape(n, -1)[:, :2]
    h, w = image_hw
    rows: dict[str, list[Any]] = {k: [] for k in BOX_KEYS}
    for i in range(n):
        c = transform_points(T, center_global[i])[0]
        if c[2] < min_depth:
            continue
        R = T[:3, :3] @ quat_to_matrix(rotation_global[i])
        corners = transform_points(T, box_corners(center_global[i], size[i], rotation_global[i]))
        uv, _ = project_points(K, corners[corners[:, 2] > 0.1])
        if len(uv) == 0:
            continue
        x1, y1 = np.clip(uv.min(0), [0, 0], [w - 1, h - 1])
        x2, y2 = np.clip(uv.max(0), [0, 0], [w - 1, h - 1])
        if x2 <= x1 or y2 <= y1:
            continue
        v3 = np.r_[vg[i], 0.0]
        rows["center"].append(c)
        rows["size"].append(size[i])
        rows["rot_y"].append(matrix_to_rot_y(R))
        rows["velocity"].append(rotate_vectors(T, v3)[0])
        rows["box2d"].append([x1, y1, x2, y2])
        rows["depth"].append(c[2])
        rows["label"].append(int(label[i]))
        rows["attribute"].append(int(attribute[i]))
        rows["center_global"].append(center_global[i])
        rows["rotation_global"].append(rotation_global[i])
        rows["velocity_global"].append(vg[i])
    return empty_boxes() if not rows["center"] else _as_arrays(rows)


def _as_arrays(rows: dict[str, list[Any]]) -> dict[str, np.ndarray]:
    out = {}
    for k, v in rows.items():
        dtype: type[np.generic] = np.int64 if k in ("label", "attribute") else np.float32
        if k.endswith("_global"):
            dtype = np.float64
        out[k] = np.asarray(v, dtype=dtype)
    return out


def empty_boxes() -> dict[str, np.ndarray]:
    """A ``boxes`` dict with zero rows and the documented shapes/dtypes."""
    widths = {"center": 3, "size": 3, "velocity": 3, "box2d": 4, "center_global": 3}
    widths |= {"rotation_global": 4, "velocity_global": 2}
    rows: dict[str, list[Any]] = {k: [] for k in BOX_KEYS}
    out = _as_arrays(rows)
    return {k: v.reshape((0, widths[k]) if k in widths else (0,)) for k, v in out.items()}


def resize_sample(sample: dict[str, Any], image_hw: tuple[int, int]) -> dict[str, Any]:
    """Resize the image to ``image_hw`` = (H, W) and scale the intrinsics and 2D boxes to match
    (pixel-centre convention: u' = (u + 0.5)·s − 0.5). 3D data is unchanged."""
    h0, w0 = sample["image"].shape[:2]
    h, w = image_hw
    if (h, w) == (h0, w0):
        return sample
    sx, sy = w / w0, h / h0
    out = dict(sample)
    out["image"] = cv2.resize(sample["image"], (w, h), interpolation=cv2.INTER_AREA)
    K = sample["intrinsics"].copy()
    K[0, :] *= sx
    K[1, :] *= sy
    K[0, 2] += 0.5 * sx - 0.5
    K[1, 2] += 0.5 * sy - 0.5
    out["intrinsics"] = K
    boxes = dict(sample["boxes"])
    b = boxes["box2d"].astype(np.float64)
    b[:, 0::2] = (b[:, 0::2] + 0.5) * sx - 0.5
    b[:, 1::2] = (b[:, 1::2] + 0.5) * sy - 0.5
    boxes["box2d"] = b.astype(np.float32)
    out["boxes"] = boxes
    return out


def sample_gt_boxes(sample: dict[str, Any]) -> list[NuscBox]:
    """The sample's boxes as global-frame :class:`NuscBox` ground truth for the metric."""
    b = sample["boxes"]
    out = []
    for i in range(len(b["label"])):
        a = int(b["attribute"][i])
        out.append(
            NuscBox(
                sample_token=sample["sample_token"],
                translation=tuple(map(float, b["center_global"][i])),
                size=tuple(map(float, b["size"][i])),
                rotation=tuple(map(float, b["rotation_global"][i])),
                velocity=tuple(map(float, b["velocity_global"][i])),
                detection_name=DETECTION_NAMES[int(b["label"][i])],
                attribute_name=ATTRIBUTE_NAMES[a] if a >= 0 else "",
            )
        )
    return out
