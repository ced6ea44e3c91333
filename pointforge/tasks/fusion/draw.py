"""Pictures of 3D detections: a bird's-eye view and the image with projected 3D boxes.

Why: a metric table says how good a model is, not how it fails; CenterFusion's debugger draws
both views. Ground truth is green, predictions red (BGR uint8, OpenCV). Boxes are in the camera
frame (x right, z forward; see :mod:`pointforge.geometry.camera`).
"""

from __future__ import annotations

import cv2
import numpy as np

from pointforge.geometry.camera import BOX_FACES, box_corners_cam, project_points

GT_COLOUR = (0, 200, 0)
PRED_COLOUR = (0, 0, 230)
RADAR_COLOUR = (200, 120, 0)


def draw_projected_boxes(
    image: np.ndarray,
    intrinsics: np.ndarray,
    boxes: dict[str, np.ndarray],
    colour: tuple[int, int, int],
) -> np.ndarray:
    """Draw the 12 edges of each camera-frame box (``center (K, 3)``, ``size (K, 3)``,
    ``rot_y (K,)``) on a copy of BGR ``image (H, W, 3)``; boxes partly behind the camera are
    skipped."""
    out = image.copy()
    for c, s, r in zip(boxes["center"], boxes["size"], boxes["rot_y"], strict=True):
        corners = box_corners_cam(c, s, float(r))
        if (corners[:, 2] <= 0.1).any():
            continue
        uv, _ = project_points(intrinsics, corners)
        pts = np.round(uv * 16).astype(np.int32)
        for face in BOX_FACES:
            cv2.polylines(out, [pts[face]], True, colour, 1, cv2.LINE_AA, 4)
    return out


def draw_bev(
    gt: dict[str, np.ndarray],
    pred: dict[str, np.ndarray],
    radar: np.ndarray | None = None,
    extent: tuple[float, float] = (30.0, 60.0),
    pixels_per_m: float = 8.0,
) -> np.ndarray:
    """Top view (camera x to the right, z up the picture) of the box footprints: ``gt`` green,
    ``pred`` red (``center``, ``size``, ``rot_y`` arrays), radar points (N, ≥3) blue. ``extent``
    is (half width, depth) in metres. A short line marks each box's heading. Returns BGR."""
    half, depth = extent
    w, h = int(2 * half * pixels_per_m), int(depth * pixels_per_m)
    img = np.full((h, w, 3), 255, np.uint8)
    for z in range(10, int(depth), 10):  # range rings every 10 m
        y = int(h - z * pixels_per_m)
        cv2.line(img, (0, y), (w - 1, y), (220, 220, 220), 1)

    def to_px(xz: np.ndarray) -> np.ndarray:
        return np.stack([(xz[:, 0] + half) * pixels_per_m, h - xz[:, 1] * pixels_per_m], 1)

    if radar is not None and len(radar):
        for u, v in to_px(np.asarray(radar)[:, [0, 2]]).astype(int):
            cv2.circle(img, (int(u), int(v)), 1, RADAR_COLOUR, -1)
    for boxes, colour in ((gt, GT_COLOUR), (pred, PRED_COLOUR)):
        for c, s, r in zip(boxes["center"], boxes["size"], boxes["rot_y"], strict=True):
            foot = box_corners_cam(c, s, float(r))[:4][:, [0, 2]]
            pts = np.round(to_px(foot) * 16).astype(np.int32)
            cv2.polylines(img, [pts], True, colour, 1, cv2.LINE_AA, 4)
            head = to_px(np.array([[c[0], c[2]], [c[0] + np.cos(r) * s[1] / 2,
                                                  c[2] - np.sin(r) * s[1] / 2]]))  # fmt: skip
            p0, p1 = np.round(head).astype(int)
            cv2.line(img, (int(p0[0]), int(p0[1])), (int(p1[0]), int(p1[1])), colour, 1)
    return img
