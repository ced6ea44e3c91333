"""nuScenes reader: front camera image, accumulated radar sweeps and 3D boxes of each sample.

Why: users with the nuScenes data (v1.0 json tables plus ``samples/`` and ``sweeps/``) should
train and evaluate CenterFusion-style models without nuscenes-devkit (which pins numpy<2).
This reads the raw tables directly:

* ``sample`` (key frames), ``sample_data`` (files; key frames and sweeps linked by
  ``prev``/``next``), ``calibrated_sensor`` (sensor → ego extrinsics, camera intrinsics),
  ``sensor`` (channel names), ``ego_pose`` (ego → global at each ``sample_data`` timestamp),
  ``sample_annotation`` (global boxes), ``instance`` → ``category`` (class), ``attribute``,
  and ``scene`` (to select scenes by name).
* Radar: the key-frame sweep of each radar channel and its ``radar_sweeps − 1`` predecessors
  (``prev`` links). Each sweep goes radar → ego (its own ego pose) → global → ego (the camera's
  pose) → camera, so ego motion between sweeps is removed; its ``dt`` is kept as a column.
  CenterFusion accumulates 3 sweeps (``--radar_sweeps 3`` in its train/test scripts) and keeps
  points within 60 m (``--max_pc_dist 60``): those are the defaults.
* Box velocity (not stored in nuScenes) is the centre difference between the previous and next
  annotations of the instance over their time difference (or current and the one neighbour),
  NaN when neither exists or the gap exceeds 1.5 s (3 s across both), as the devkit documents
  for ``box_velocity``.
* Classes: nuScenes general categories → the 10 detection classes (detection README); other
  categories (animals, strollers, debris, …) are not detection targets and are dropped,
  counted in ``stats``.

A sample whose image or radar file is missing is named and refused (``on_missing="error"``) or
dropped with a log line and counted in ``skipped`` (``on_missing="skip"``); files are checked
when the dataset is built. The output is the sample dictionary of :mod:`.sample`.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from torch.utils.data import Dataset

from pointforge.geometry.camera import invert_transform, make_transform
from pointforge.tasks.fusion.data.pcd import read_pcd
from pointforge.tasks.fusion.data.sample import (
    ATTRIBUTE_NAMES,
    RADAR_COLUMNS,
    build_boxes,
    filter_radar,
    radar_sweep_to_camera,
    resize_sample,
)
from pointforge.tasks.fusion.nusc_metrics import DETECTION_NAMES

log = logging.getLogger("pointforge")

# General category → detection class (nuScenes detection README, "Classes and attributes").
CATEGORY_TO_DETECTION: dict[str, str] = {
    "movable_object.barrier": "barrier",
    "vehicle.bicycle": "bicycle",
    "vehicle.bus.bendy": "bus",
    "vehicle.bus.rigid": "bus",
    "vehicle.car": "car",
    "vehicle.construction": "construction_vehicle",
    "vehicle.motorcycle": "motorcycle",
    "human.pedestrian.adult": "pedestrian",
    "human.pedestrian.child": "pedestrian",
    "human.pedestrian.construction_worker": "pedestrian",
    "human.pedestrian.police_officer": "pedestrian",
    "movable_object.trafficcone": "traffic_cone",
    "vehicle.trailer": "trailer",
    "vehicle.truck": "truck",
}
TABLES = (
    "sample",
    "sample_data",
    "sample_annotation",
    "calibrated_sensor",
    "ego_pose",
    "sensor",
    "instance",
    "category",
    "attribute",
)
MAX_VELOCITY_GAP_S = 1.5  # devkit box_velocity max_time_diff


@dataclass(frozen=True)
class NuScenesParams:
    """Where the data is and how to read it."""

    root: str | None = None  # dataset root holding <version>/*.json, samples/, sweeps/
    version: str = "v1.0-trainval"  # table folder under root (v1.0-mini for the mini split)
    scenes: tuple[str, ...] | None = None  # scene names to read (e.g. a split); None: all
    camera: str = "CAM_FRONT"  # camera channel (CenterFusion uses all six; we read one)
    # Radar channels merged into the camera view; CenterFusion merges FRONT, FRONT_LEFT and
    # FRONT_RIGHT for CAM_FRONT; the front radar alone covers the front camera's field of view.
    radars: tuple[str, ...] = ("RADAR_FRONT",)
    radar_sweeps: int = 3  # key sweep + 2 previous (CenterFusion --radar_sweeps 3)
    max_radar_depth: float = 60.0  # m, camera depth (CenterFusion --max_pc_dist 60)
    # Radar state filters as in the devkit's RadarPointCloud (None keeps every point; the
    # devkit's defaults would be invalid_state (0,), dynprop 0-6, ambig_state (3,)).
    invalid_states: tuple[int, ...] | None = None
    dynprop_states: tuple[int, ...] | None = None
    ambig_states: tuple[int, ...] | None = None
    image_size: tuple[int, int] | None = None  # (H, W) output size; None keeps 900 x 1600
    drop_empty_boxes: bool = True  # drop boxes with no lidar and no radar point (devkit eval)
    on_missing: str = field(default="error", metadata={"choices": ("error", "skip")})


def load_tables(root: str | Path, version: str) -> dict[str, list[dict[str, Any]]]:
    """The json tables of ``root/version`` (missing ones named in a FileNotFoundError)."""
    folder = Path(root) / version
    out = {}
    for name in (*TABLES, "scene"):
        path = folder / f"{name}.json"
        if not path.is_file():
            if name == "scene":
                continue  # only needed to select scenes by name
            raise FileNotFoundError(f"nuScenes table {name} not found: {path}")
        out[name] = json.loads(path.read_text())
    return out


def _pose(rec: dict[str, Any]) -> np.ndarray:
    return make_transform(np.asarray(rec["rotation"]), np.asarray(rec["translation"]))


class NuScenesRadarCamera(Dataset):
    """Map-style dataset over the key frames of the selected scenes; item ``i`` is the sample
    dictionary of :mod:`.sample` for the ``i``-th kept sample (ordered by scene, then time).

    Attributes: ``tokens`` (kept sample tokens), ``skipped`` ({token: missing path}),
    ``stats`` (Counter of dropped annotations by reason)."""

    def __init__(self, params: NuScenesParams) -> None:
        if params.root is None:
            raise ValueError("config key 'data.root': the nuScenes root folder is required")
        if params.on_missing not in ("error", "skip"):
            raise ValueError(f"on_missing must be 'error' or 'skip', got {params.on_missing!r}")
        if params.radar_sweeps < 1:
            raise ValueError(f"radar_sweeps must be >= 1, got {params.radar_sweeps}")
        self.params = params
        self.root = Path(params.root)
        t = load_tables(self.root, params.version)
        by_token = {name: {r["token"]: r for r in t[name]} for name in t}
        self.sample_data = by_token["sample_data"]
        self.calib = by_token["calibrated_sensor"]
        self.ego_pose = by_token["ego_pose"]
        self.annotation = by_token["sample_annotation"]
        self.samples = by_token["sample"]
        sensors = by_token["sensor"]
        channel_of = {
            c["token"]: sensors[c["sensor_token"]]["channel"] for c in t["calibrated_sensor"]
        }
        self.key_data: dict[tuple[str, str], str] = {}
        for sd in t["sample_data"]:
            if sd["is_key_frame"]:
                self.key_data[(sd["sample_token"], channel_of[sd["calibrated_sensor_token"]])] = sd[
                    "token"
                ]
        self.anns_of: dict[str, list[str]] = defaultdict(list)
        for a in t["sample_annotation"]:
            self.anns_of[a["sample_token"]].append(a["token"])
        cat_name = {c["token"]: c["name"] for c in t["category"]}
        self.category_of = {i["token"]: cat_name[i["category_token"]] for i in t["instance"]}
        self.attr_name = {a["token"]: a["name"] for a in t["attribute"]}
        self.stats: Counter[str] = Counter()
        self.skipped: dict[str, str] = {}
        self.tokens = [tok for tok in self._select(t) if self._files_ok(tok)]
        self.kept = {tok: self._kept_annotations(tok) for tok in self.tokens}
        if self.skipped:
            log.warning(
                "nuScenes %s: skipped %d of %d samples with missing files (first: %s)",
                params.version,
                len(self.skipped),
                len(self.skipped) + len(self.tokens),
                next(iter(self.skipped.values())),
            )

    # ------------------------------------------------------------------ indexing
    def _select(self, t: dict[str, list[dict[str, Any]]]) -> list[str]:
        samples = t["sample"]
        if self.params.scenes is not None:
            if "scene" not in t:
                raise FileNotFoundError(
                    f"nuScenes table scene not found: {self.root / self.params.version}/scene.json "
                    "(needed by data.scenes)"
                )
            known = {s["name"]: s["token"] for s in t["scene"]}
            unknown = [n for n in self.params.scenes if n not in known]
            if unknown:
                raise ValueError(f"data.scenes: unknown scene name(s) {unknown[:5]}")
            wanted = {known[n] for n in self.params.scenes}
            samples = [s for s in samples if s["scene_token"] in wanted]
        samples = sorted(samples, key=lambda s: (s["scene_token"], s["timestamp"]))
        return [s["token"] for s in samples]

    def _key(self, token: str, channel: str) -> dict[str, Any]:
        sd = self.key_data.get((token, channel))
        if sd is None:
            raise ValueError(f"nuScenes sample {token}: no key-frame sample_data for {channel}")
        return self.sample_data[sd]

    def _sweeps(self, token: str, channel: str) -> list[dict[str, Any]]:
        sd = self._key(token, channel)
        out: list[dict[str, Any]] = []
        while len(out) < self.params.radar_sweeps:
            out.append(sd)
            if not sd["prev"]:
                break  # the scene's first sweeps have fewer predecessors
            sd = self.sample_data[sd["prev"]]
        return out

    def _files_ok(self, token: str) -> bool:
        files = [self._key(token, self.params.camera)["filename"]]
        for ch in self.params.radars:
            files += [sd["filename"] for sd in self._sweeps(token, ch)]
        for f in files:
            if not (self.root / f).is_file():
                if self.params.on_missing == "error":
                    raise FileNotFoundError(
                        f"nuScenes sample {token}: file not found: {self.root / f} "
                        "(set data.on_missing=skip to drop such samples)"
                    )
                self.skipped[token] = str(self.root / f)
                return False
        return True

    def __len__(self) -> int:
        return len(self.tokens)

    # ------------------------------------------------------------------ reading
    def _radar(self, token: str, cam_sd: dict[str, Any], T_cam_from_global: np.ndarray):
        p, parts = self.params, []
        for ch in p.radars:
            for sd in self._sweeps(token, ch):
                path = self.root / sd["filename"]
                pc = read_pcd(path)
                missing = {"x", "y", "z", "rcs", "vx_comp", "vy_comp"} - set(pc.dtype.names or ())
                if missing:
                    raise ValueError(f"{path}: radar PCD lacks field(s) {sorted(missing)}")
                keep = np.ones(len(pc), bool)
                for name, allowed in (
                    ("invalid_state", p.invalid_states),
                    ("dynprop", p.dynprop_states),
                    ("ambig_state", p.ambig_states),
                ):
                    if allowed is not None:
                        col = "dyn_prop" if name == "dynprop" else name
                        keep &= np.isin(pc[col], allowed)
                pc = pc[keep]
                T = (
                    T_cam_from_global
                    @ _pose(self.ego_pose[sd["ego_pose_token"]])
                    @ _pose(self.calib[sd["calibrated_sensor_token"]])
                )
                xyz = np.stack([pc["x"], pc["y"], pc["z"]], 1)
                vel = np.stack([pc["vx_comp"], pc["vy_comp"]], 1)
                dt = (sd["timestamp"] - cam_sd["timestamp"]) * 1e-6
                parts.append(radar_sweep_to_camera(xyz, vel, pc["rcs"], T, dt))
        if not parts:
            return np.zeros((0, len(RADAR_COLUMNS)), np.float32)
        return np.concatenate(parts)

    def _velocity(self, ann: dict[str, Any]) -> np.ndarray:
        prev = self.annotation.get(ann["prev"]) if ann["prev"] else None
        nxt = self.annotation.get(ann["next"]) if ann["next"] else None
        if prev is None and nxt is None:
            return np.full(3, np.nan)
        first, last = prev or ann, nxt or ann
        t0 = self.samples[first["sample_token"]]["timestamp"] * 1e-6
        t1 = self.samples[last["sample_token"]]["timestamp"] * 1e-6
        gap = t1 - t0
        limit = MAX_VELOCITY_GAP_S * (2 if prev is not None and nxt is not None else 1)
        if gap <= 0 or gap > limit:
            return np.full(3, np.nan)
        return (np.asarray(last["translation"]) - np.asarray(first["translation"])) / gap

    def _kept_annotations(self, token: str) -> list[tuple[str, str]]:
        """(annotation token, detection class) of the sample's detection targets; the dropped
        ones are counted in ``stats`` (once, when the dataset is built)."""
        kept = []
        for at in self.anns_of.get(token, ()):
            a = self.annotation[at]
            det = CATEGORY_TO_DETECTION.get(self.category_of[a["instance_token"]])
            if det is None:
                self.stats["not a detection class"] += 1
            elif self.params.drop_empty_boxes and a["num_lidar_pts"] + a["num_radar_pts"] == 0:
                self.stats["no lidar or radar point"] += 1
            else:
                kept.append((at, det))
        return kept

    def _annotations(self, token: str) -> tuple[np.ndarray, ...]:
        rows = []
        for at, det in self.kept[token]:
            a = self.annotation[at]
            attrs = [self.attr_name[x] for x in a["attribute_tokens"]]
            if attrs and attrs[0] not in ATTRIBUTE_NAMES:
                raise ValueError(f"sample_annotation {at}: unknown attribute {attrs[0]!r}")
            attr = ATTRIBUTE_NAMES.index(attrs[0]) if attrs else -1
            rows.append(
                (a["translation"], a["size"], a["rotation"], self._velocity(a)[:2],
                 DETECTION_NAMES.index(det), attr)
            )  # fmt: skip
        if not rows:
            return (np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 4)), np.zeros((0, 2)),
                    np.zeros(0, np.int64), np.zeros(0, np.int64))  # fmt: skip
        return tuple(np.asarray(col) for col in zip(*rows))

    def __getitem__(self, index: int) -> dict[str, Any]:
        token = self.tokens[index]
        cam_sd = self._key(token, self.params.camera)
        calib = self.calib[cam_sd["calibrated_sensor_token"]]
        if not calib.get("camera_intrinsic"):
            raise ValueError(f"nuScenes sample {token}: {self.params.camera} has no intrinsics")
        path = self.root / cam_sd["filename"]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"nuScenes sample {token}: cannot read image {path}")
        K = np.asarray(calib["camera_intrinsic"], np.float64)
        cam_to_ego = _pose(calib)
        ego_to_global = _pose(self.ego_pose[cam_sd["ego_pose_token"]])
        T_cam_from_global = invert_transform(ego_to_global @ cam_to_ego)
        radar = filter_radar(
            self._radar(token, cam_sd, T_cam_from_global),
            K,
            image.shape[:2],
            self.params.max_radar_depth,
        )
        center, size, rotation, velocity, label, attribute = self._annotations(token)
        boxes = build_boxes(
            center,
            size,
            rotation,
            velocity,
            label,
            attribute,
            cam_to_ego,
            ego_to_global,
            K,
            image.shape[:2],
        )
        sample = {
            "image": image,
            "intrinsics": K,
            "cam_to_ego": cam_to_ego,
            "ego_to_global": ego_to_global,
            "radar": radar,
            "boxes": boxes,
            "sample_token": token,
        }
        if self.params.image_size is not None:
            sample = resize_sample(sample, self.params.image_size)
        return sample
