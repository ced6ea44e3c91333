"""Synthetic radar-camera scenes: shaded 3D boxes on a ground plane seen by a pinhole camera,
with radar returns from their visible faces.

Why: tests and the quickstart need radar-camera data with exact 3D ground truth and no
download. Scene ``i`` of a split is a pure function of ``(seed, split, i)``
(``default_rng([seed, scene_id])``; train uses scene ids ``0 …``, val ``VAL_OFFSET + i``, so
the two never share a scene), identical in any worker, order or machine.

What is simulated (all defaults in :class:`SyntheticSceneParams`):

* **Rig**: the nuScenes front camera and front radar mounting (camera 1.7 m ahead of the rear
  axle at 1.5 m height, level, facing forward; radar 3.4 m ahead at 0.5 m), and the ego at a
  random global pose, so the camera → ego → global chain is exercised.
* **Objects**: 3–5 nuScenes classes with nuScenes-like mean sizes (±6 %), on the ground, in the
  camera's field of view, not overlapping; vehicles mostly along the road. Moving objects move
  along their heading; attributes follow the speed (moving vs stopped/standing/without rider).
* **Image**: sky/ground background with noise, boxes drawn as Lambert-shaded faces facing the
  camera, far to near (painter's algorithm), so nearer boxes occlude farther ones.
* **Radar**: per sweep (key sweep and earlier ones, 13 Hz as the nuScenes ARS 408), each
  visible object is detected with probability ``p_detect`` and yields 1 + Poisson returns on
  the radar-facing vertical faces at the radar's height (the radar has no elevation), unless
  the camera sees another object there (occlusion); range and azimuth get Gaussian noise; the
  radar measures the radial velocity (object velocity on the line of sight, + noise), and, as
  in nuScenes, reports it as the vector ``(vx_comp, vy_comp)`` along the line of sight; static
  clutter returns are added. The ego is static, so compensated = measured velocities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from torch.utils.data import Dataset

from pointforge.geometry.camera import (
    BOX_FACES,
    box_corners,
    invert_transform,
    make_transform,
    project_points,
    transform_points,
    yaw_to_matrix,
    yaw_to_quat,
)
from pointforge.tasks.fusion.data.sample import (
    ATTRIBUTE_NAMES,
    build_boxes,
    filter_radar,
    radar_sweep_to_camera,
)
from pointforge.tasks.fusion.nusc_metrics import DETECTION_NAMES

SPLITS = ("train", "val")
VAL_OFFSET = 10**9  # val scene ids start here; train uses 0 .. VAL_OFFSET - 1
# Mean nuScenes box sizes (w, l, h) in m, as listed in mmdetection3d's nuScenes anchor config.
CLASS_SIZE = {
    "car": (1.95, 4.61, 1.72),
    "truck": (2.46, 6.74, 2.73),
    "pedestrian": (0.66, 0.73, 1.76),
    "bicycle": (0.60, 1.68, 1.27),
    "barrier": (2.49, 0.49, 0.98),
}
# (probability of moving, speed range m/s, mean extra returns, RCS dBsm, BGR colour)
_CLASS_MOTION = {
    "car": (0.6, (2.0, 12.0), 1.5, 8.0, None),
    "truck": (0.6, (2.0, 10.0), 3.0, 15.0, (60, 90, 170)),
    "pedestrian": (0.5, (0.5, 2.0), 0.0, -5.0, (60, 140, 220)),
    "bicycle": (0.6, (2.0, 6.0), 0.0, -2.0, (160, 60, 150)),
    "barrier": (0.0, (0.0, 0.0), 0.5, 0.0, (40, 120, 240)),
}
_ATTR = {  # (moving, static) attribute per class; barrier has none
    "car": ("vehicle.moving", "vehicle.stopped"),
    "truck": ("vehicle.moving", "vehicle.stopped"),
    "pedestrian": ("pedestrian.moving", "pedestrian.standing"),
    "bicycle": ("cycle.with_rider", "cycle.without_rider"),
}
_R_EGO_FROM_CAM = np.array([[0.0, 0, 1], [-1, 0, 0], [0, -1, 0]])  # level, looking along ego +x


@dataclass(frozen=True)
class SyntheticSceneParams:
    """Parameters of the synthetic radar-camera scenes."""

    # 160 x 288: nuScenes' 900 x 1600 scaled by 0.18 (then 2 rows cropped) so both sides are
    # multiples of 32 (a stride-32 backbone needs no padding) and a CPU renders ~ms per scene;
    # CenterFusion trains at 448 x 800.
    image_size: tuple[int, int] = (160, 288)
    focal: float = 1266.4 * 0.18  # nuScenes CAM_FRONT fx ≈ 1266 px at 1600 px width
    classes: tuple[str, ...] = ("car", "truck", "pedestrian", "bicycle", "barrier")
    class_probs: tuple[float, ...] = (0.45, 0.1, 0.25, 0.1, 0.1)  # car-heavy, as nuScenes
    num_objects: tuple[int, int] = (3, 8)  # inclusive range per scene
    depth_range: tuple[float, float] = (6.0, 50.0)  # m ahead of the ego
    max_lateral: float = 15.0  # m left/right of the ego
    cam_translation: tuple[float, float, float] = (1.7, 0.0, 1.5)  # nuScenes CAM_FRONT
    radar_translation: tuple[float, float, float] = (3.4, 0.0, 0.5)  # nuScenes RADAR_FRONT
    radar_sweeps: int = 3  # as CenterFusion accumulates
    radar_period: float = 1 / 13  # s, ARS 408 cycle (13 Hz in nuScenes)
    p_detect: float = 0.9  # probability a visible object gives any return in a sweep
    range_noise: float = 0.25  # m, 1 σ (ARS 408 far-range accuracy order, ±0.4 m)
    azimuth_noise: float = float(np.deg2rad(0.3))  # rad, 1 σ (ARS 408 ±0.1 … 0.3°)
    velocity_noise: float = 0.1  # m/s, 1 σ radial
    rcs_noise: float = 2.0  # dBsm, 1 σ
    clutter_mean: float = 6.0  # Poisson mean of static clutter returns per sweep
    max_radar_depth: float = 60.0  # m, as the nuScenes reader (CenterFusion --max_pc_dist)
    train_size: int = 10_000  # scenes in an epoch of the train split
    val_size: int = 200  # scenes in the val split
    seed: int = 0


def _scene_objects(rng: np.random.Generator, p: SyntheticSceneParams, hfov: float):
    """Object list (ego frame): dicts of class, centre (3,), size (3,), yaw, velocity (3,)."""
    probs = np.asarray(p.class_probs, float)
    objs: list[dict[str, Any]] = []
    n = int(rng.integers(p.num_objects[0], p.num_objects[1] + 1))
    for _ in range(50 * n):
        if len(objs) == n:
            break
        name = p.classes[rng.choice(len(p.classes), p=probs / probs.sum())]
        size = np.asarray(CLASS_SIZE[name]) * rng.uniform(0.94, 1.06, 3)
        x = rng.uniform(*p.depth_range)
        half = min(p.max_lateral, (x - p.cam_translation[0]) * np.tan(hfov / 2) * 0.9)
        y = rng.uniform(-half, half)
        radius = np.hypot(size[0], size[1]) / 2
        if any(
            np.hypot(x - o["center"][0], y - o["center"][1]) < radius + o["r"] + 0.3 for o in objs
        ):
            continue
        if name in ("car", "truck"):
            yaw = (
                rng.choice([0.0, np.pi]) + rng.normal(0, 0.15)
                if rng.random() < 0.8
                else rng.uniform(-np.pi, np.pi)
            )
        elif name == "barrier":
            yaw = rng.choice([0.0, np.pi / 2]) + rng.normal(0, 0.1)
        else:
            yaw = rng.uniform(-np.pi, np.pi)
        p_move, speeds, _, _, _ = _CLASS_MOTION[name]
        speed = rng.uniform(*speeds) if rng.random() < p_move else 0.0
        vel = speed * np.array([np.cos(yaw), np.sin(yaw), 0.0])
        center = np.array([x, y, size[2] / 2])
        objs.append(
            {"name": name, "center": center, "size": size, "yaw": float(yaw), "vel": vel}
            | {"r": radius}
        )
    return objs


def _background(rng: np.random.Generator, h: int, w: int, horizon: float) -> np.ndarray:
    rows = np.arange(h, dtype=np.float32)[:, None]
    sky = np.array([235, 200, 160], np.float32) + rng.uniform(-20, 20, 3)
    ground = np.array([95, 100, 105], np.float32) + rng.uniform(-15, 15, 3)
    t_sky = np.clip(rows / max(horizon, 1), 0, 1)[..., None]
    t_gnd = np.clip((rows - horizon) / max(h - horizon, 1), 0, 1)[..., None]
    img = np.where(
        rows[..., None] < horizon, sky * (0.8 + 0.2 * t_sky), ground * (0.8 + 0.4 * t_gnd)
    )
    img = np.broadcast_to(img, (h, w, 3)) + rng.normal(0, 4, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


class SyntheticRadarCameraScenes(Dataset):
    """Map-style dataset of synthetic scenes; item ``i`` is the sample dictionary of
    :mod:`.sample` (``sample_token`` = ``"synthetic-<split>-<i>"``)."""

    def __init__(self, params: SyntheticSceneParams = SyntheticSceneParams(), split: str = "train"):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        unknown = [c for c in params.classes if c not in CLASS_SIZE]
        if unknown:
            raise ValueError(
                f"synthetic classes {unknown} not supported (have {tuple(CLASS_SIZE)})"
            )
        if len(params.class_probs) != len(params.classes):
            raise ValueError("class_probs must have one entry per class")
        self.params, self.split = params, split
        h, w = params.image_size
        self.K = np.array(
            [[params.focal, 0, (w - 1) / 2], [0, params.focal, (h - 1) / 2], [0, 0, 1]]
        )
        self.cam_to_ego = make_transform(_R_EGO_FROM_CAM, params.cam_translation)
        self.radar_to_ego = make_transform(np.eye(3), params.radar_translation)
        self.hfov = 2 * np.arctan(w / 2 / params.focal)

    def __len__(self) -> int:
        return self.params.train_size if self.split == "train" else self.params.val_size

    def scene_id(self, index: int) -> int:
        return index + (VAL_OFFSET if self.split == "val" else 0)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"synthetic {self.split} index {index} out of range [0, {len(self)})")
        p = self.params
        rng = np.random.default_rng([p.seed, self.scene_id(index)])
        h, w = p.image_size
        objs = _scene_objects(rng, p, self.hfov)
        ego_yaw = rng.uniform(-np.pi, np.pi)
        ego_to_global = make_transform(yaw_to_quat(ego_yaw), [*rng.uniform(0, 2000, 2), 0.0])
        cam_from_ego = invert_transform(self.cam_to_ego)
        image, ids = self._render(rng, objs, cam_from_ego, h, w)
        radar = self._radar(rng, objs, ids, cam_from_ego)
        radar = filter_radar(radar, self.K, (h, w), p.max_radar_depth)
        R_g = ego_to_global[:3, :3]
        boxes = build_boxes(
            transform_points(ego_to_global, np.array([o["center"] for o in objs]).reshape(-1, 3)),
            np.array([o["size"] for o in objs]).reshape(-1, 3),
            np.array([yaw_to_quat(o["yaw"] + ego_yaw) for o in objs]).reshape(-1, 4),
            np.array([(R_g @ o["vel"])[:2] for o in objs]).reshape(-1, 2),
            np.array([DETECTION_NAMES.index(o["name"]) for o in objs], np.int64),
            np.array([self._attribute(o) for o in objs], np.int64),
            self.cam_to_ego,
            ego_to_global,
            self.K,
            (h, w),
        )
        return {
            "image": image,
            "intrinsics": self.K.copy(),
            "cam_to_ego": self.cam_to_ego.copy(),
            "ego_to_global": ego_to_global,
            "radar": radar,
            "boxes": boxes,
            "sample_token": f"synthetic-{self.split}-{index}",
        }

    @staticmethod
    def _attribute(o: dict[str, Any]) -> int:
        if o["name"] not in _ATTR:
            return -1
        moving = np.linalg.norm(o["vel"]) > 0.2
        return ATTRIBUTE_NAMES.index(_ATTR[o["name"]][0 if moving else 1])

    def _render(self, rng, objs, cam_from_ego, h, w) -> tuple[np.ndarray, np.ndarray]:
        """BGR image (H, W, 3) and object-id buffer (H, W) (object index + 1, 0 = background)."""
        image = _background(rng, h, w, self.K[1, 2])
        ids = np.zeros((h, w), np.int32)
        light = np.array([0.4, -0.8, -0.45])  # towards the light, camera frame (up-left-back)
        light /= np.linalg.norm(light)
        order = sorted(range(len(objs)), key=lambda i: -objs[i]["center"][0])  # far to near
        for i in order:
            o = objs[i]
            colour = _CLASS_MOTION[o["name"]][4]
            base = rng.uniform(40, 220, 3) if colour is None else np.asarray(colour, float)
            corners = transform_points(
                cam_from_ego, box_corners(o["center"], o["size"], yaw_to_matrix(o["yaw"]))
            )
            if (corners[:, 2] < 0.3).any():
                continue  # straddles the camera plane: not drawn (never the case by default)
            uv, _ = project_points(self.K, corners)
            for face in BOX_FACES:
                pts = corners[face]
                normal = np.cross(pts[1] - pts[0], pts[2] - pts[1])
                if np.dot(normal, pts.mean(0)) >= 0:
                    continue  # faces away from the camera
                shade = 0.35 + 0.65 * max(
                    0.0, float(np.dot(normal / np.linalg.norm(normal), light))
                )
                poly = np.round(uv[face] * 16).astype(np.int32)  # 4 fractional bits
                cv2.fillConvexPoly(
                    image, poly, tuple(float(c) for c in base * shade), cv2.LINE_AA, 4
                )
                cv2.fillConvexPoly(ids, poly, i + 1, cv2.LINE_8, 4)
        return image, ids

    def _radar(self, rng, objs, ids, cam_from_ego) -> np.ndarray:
        """Radar rows (N, 9) in the camera frame (see :func:`radar_sweep_to_camera`)."""
        p = self.params
        h, w = ids.shape
        radar_pos = np.asarray(p.radar_translation)
        cam_from_radar = cam_from_ego @ self.radar_to_ego
        visible = np.bincount(ids.ravel(), minlength=len(objs) + 1)[1:]
        parts = []
        for k in range(p.radar_sweeps):
            dt = -k * p.radar_period
            xyz, vel, rcs = [], [], []
            for i, o in enumerate(objs):
                if visible[i] == 0 or rng.random() > p.p_detect:
                    continue
                _, _, extra, class_rcs, _ = _CLASS_MOTION[o["name"]]
                center = o["center"] + o["vel"] * dt
                corners = box_corners(center, o["size"], yaw_to_matrix(o["yaw"]))
                faces = []
                for face in BOX_FACES[2:]:  # the four vertical faces
                    a, b = corners[[c for c in face if c < 4], :2]  # their top edge, in xy
                    mid = (a + b) / 2
                    # For a rectangle, mid - centre is the outward normal of that side.
                    if np.dot(mid - center[:2], mid - radar_pos[:2]) < 0:
                        faces.append((a, b))
                if not faces:
                    continue  # the radar is inside the footprint (a long truck at 6 m)
                for _ in range(1 + rng.poisson(extra)):
                    a, b = faces[rng.integers(len(faces))]
                    pt = np.r_[a + rng.uniform(0, 1) * (b - a), radar_pos[2]]
                    uv, _ = project_points(self.K, transform_points(cam_from_ego, pt))
                    u, v = np.round(uv[0]).astype(int) if np.isfinite(uv).all() else (-1, -1)
                    if 0 <= u < w and 0 <= v < h and ids[v, u] not in (0, i + 1):
                        continue  # the camera sees another object in front: occluded
                    rel = pt[:2] - radar_pos[:2]
                    r = np.linalg.norm(rel) + rng.normal(0, p.range_noise)
                    az = np.arctan2(rel[1], rel[0]) + rng.normal(0, p.azimuth_noise)
                    los = np.array([np.cos(az), np.sin(az)])
                    v_rad = float(o["vel"][:2] @ los) + rng.normal(0, p.velocity_noise)
                    xyz.append([r * los[0], r * los[1], 0.0])
                    vel.append(v_rad * los)
                    rcs.append(class_rcs + rng.normal(0, p.rcs_noise))
            n_clutter = rng.poisson(p.clutter_mean)
            r = rng.uniform(2.0, p.max_radar_depth, n_clutter)
            az = rng.uniform(-self.hfov / 2, self.hfov / 2, n_clutter)
            los = np.stack([np.cos(az), np.sin(az)], 1)
            xyz += np.c_[r[:, None] * los, np.zeros(n_clutter)].tolist()
            vel += (rng.normal(0, p.velocity_noise, (n_clutter, 1)) * los).tolist()
            rcs += rng.normal(-8.0, p.rcs_noise, n_clutter).tolist()
            parts.append(
                radar_sweep_to_camera(
                    np.asarray(xyz).reshape(-1, 3),
                    np.asarray(vel).reshape(-1, 2),
                    np.asarray(rcs),
                    cam_from_radar,
                    dt,
                )
            )
        return np.concatenate(parts)
