"""The nuScenes reader on a tiny fake tree written here: 2 samples, a front camera JPEG each,
front radar PCD sweeps in binary PCD, and annotations whose camera-frame values are computed
by hand below."""

from __future__ import annotations

import json
import logging

import cv2
import numpy as np
import pytest

from pointforge.geometry.camera import matrix_to_quat, yaw_to_quat
from pointforge.tasks.fusion.data.nuscenes import NuScenesParams, NuScenesRadarCamera
from pointforge.tasks.fusion.data.sample import ATTRIBUTE_NAMES, RADAR_COLUMNS, sample_gt_boxes
from pointforge.tasks.fusion.nusc_metrics import DETECTION_NAMES, evaluate_nusc

# The nuScenes radar PCD layout: 18 fields, float32 and small signed integers.
FIELDS = [
    "x",
    "y",
    "z",
    "dyn_prop",
    "id",
    "rcs",
    "vx",
    "vy",
    "vx_comp",
    "vy_comp",
    "is_quality_valid",
    "ambig_state",
    "x_rms",
    "y_rms",
    "invalid_state",
    "pdh0",
    "vx_rms",
    "vy_rms",
]
SIZES = [4, 4, 4, 1, 2, 4, 4, 4, 4, 4, 1, 1, 1, 1, 1, 1, 1, 1]
TYPES = ["F", "F", "F", "I", "I", "F", "F", "F", "F", "F", "I", "I", "I", "I", "I", "I", "I", "I"]


def write_pcd(path, rows) -> None:
    """rows: (x, y, z, rcs, vx_comp, vy_comp); other fields 0. Header + packed binary body."""
    dt = np.dtype([(f, f"<{'f' if t == 'F' else 'i'}{s}") for f, s, t in zip(FIELDS, SIZES, TYPES)])
    body = np.zeros(len(rows), dt)
    for i, (x, y, z, rcs, vx, vy) in enumerate(rows):
        body[i]["x"], body[i]["y"], body[i]["z"], body[i]["rcs"] = x, y, z, rcs
        body[i]["vx_comp"], body[i]["vy_comp"] = vx, vy
    header = (
        "# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\n"
        f"FIELDS {' '.join(FIELDS)}\nSIZE {' '.join(map(str, SIZES))}\nTYPE {' '.join(TYPES)}\n"
        f"COUNT {' '.join(['1'] * 18)}\nWIDTH {len(rows)}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\n"
        f"POINTS {len(rows)}\nDATA binary\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header.encode() + body.tobytes())


R_EGO_FROM_CAM = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], float)  # level, facing ego +x
T0 = 1_000_000  # µs


def build_tree(root) -> None:
    ego_rot = yaw_to_quat(np.pi / 2).tolist()  # ego heading = global +y
    tables = {
        "sensor": [
            {"token": "sen_cam", "channel": "CAM_FRONT", "modality": "camera"},
            {"token": "sen_rad", "channel": "RADAR_FRONT", "modality": "radar"},
        ],
        "calibrated_sensor": [
            {
                "token": "cs_cam",
                "sensor_token": "sen_cam",
                "translation": [1.5, 0.0, 1.5],
                "rotation": matrix_to_quat(R_EGO_FROM_CAM).tolist(),
                "camera_intrinsic": [[100.0, 0, 80], [0, 100.0, 45], [0, 0, 1]],
            },
            {
                "token": "cs_rad",
                "sensor_token": "sen_rad",
                "translation": [3.0, 0.0, 0.5],
                "rotation": [1.0, 0, 0, 0],
                "camera_intrinsic": [],
            },
        ],
        "ego_pose": [
            {
                "token": "ep1",
                "translation": [100.0, 200.0, 0.0],
                "rotation": ego_rot,
                "timestamp": T0,
            },
            {
                "token": "ep0",
                "translation": [100.0, 199.0, 0.0],
                "rotation": ego_rot,
                "timestamp": T0 - 100_000,
            },
            {
                "token": "ep2",
                "translation": [100.0, 201.0, 0.0],
                "rotation": ego_rot,
                "timestamp": T0 + 500_000,
            },
        ],
        "scene": [{"token": "sc1", "name": "scene-0001"}],
        "sample": [
            {"token": "s1", "timestamp": T0, "scene_token": "sc1", "prev": "", "next": "s2"},
            {
                "token": "s2",
                "timestamp": T0 + 500_000,
                "scene_token": "sc1",
                "prev": "s1",
                "next": "",
            },
        ],
        "sample_data": [
            {
                "token": "cam1",
                "sample_token": "s1",
                "ego_pose_token": "ep1",
                "calibrated_sensor_token": "cs_cam",
                "timestamp": T0,
                "is_key_frame": True,
                "filename": "samples/CAM_FRONT/c1.jpg",
                "prev": "",
                "next": "cam2",
            },
            {
                "token": "cam2",
                "sample_token": "s2",
                "ego_pose_token": "ep2",
                "calibrated_sensor_token": "cs_cam",
                "timestamp": T0 + 500_000,
                "is_key_frame": True,
                "filename": "samples/CAM_FRONT/c2.jpg",
                "prev": "cam1",
                "next": "",
            },
            {
                "token": "rad0",
                "sample_token": "s1",
                "ego_pose_token": "ep0",
                "calibrated_sensor_token": "cs_rad",
                "timestamp": T0 - 100_000,
                "is_key_frame": False,
                "filename": "sweeps/RADAR_FRONT/r0.pcd",
                "prev": "",
                "next": "rad1",
            },
            {
                "token": "rad1",
                "sample_token": "s1",
                "ego_pose_token": "ep1",
                "calibrated_sensor_token": "cs_rad",
                "timestamp": T0,
                "is_key_frame": True,
                "filename": "samples/RADAR_FRONT/r1.pcd",
                "prev": "rad0",
                "next": "rad2",
            },
            {
                "token": "rad2",
                "sample_token": "s2",
                "ego_pose_token": "ep2",
                "calibrated_sensor_token": "cs_rad",
                "timestamp": T0 + 500_000,
                "is_key_frame": True,
                "filename": "samples/RADAR_FRONT/r2.pcd",
                "prev": "rad1",
                "next": "",
            },
        ],
        "category": [
            {"token": "cat_car", "name": "vehicle.car"},
            {"token": "cat_ped", "name": "human.pedestrian.adult"},
            {"token": "cat_dog", "name": "animal"},
        ],
        "instance": [
            {"token": "i_car", "category_token": "cat_car"},
            {"token": "i_ped", "category_token": "cat_ped"},
            {"token": "i_dog", "category_token": "cat_dog"},
        ],
        "attribute": [{"token": "at_mov", "name": "vehicle.moving"}],
        "sample_annotation": [
            # Car 10 m ahead of the ego (global +y), same heading: global yaw 90°.
            {
                "token": "a1",
                "sample_token": "s1",
                "instance_token": "i_car",
                "translation": [100.0, 210.0, 1.0],
                "size": [2.0, 4.0, 1.5],
                "rotation": yaw_to_quat(np.pi / 2).tolist(),
                "attribute_tokens": ["at_mov"],
                "prev": "",
                "next": "a2",
                "num_lidar_pts": 10,
                "num_radar_pts": 1,
            },
            {
                "token": "a2",
                "sample_token": "s2",
                "instance_token": "i_car",
                "translation": [100.0, 211.0, 1.0],
                "size": [2.0, 4.0, 1.5],
                "rotation": yaw_to_quat(np.pi / 2).tolist(),
                "attribute_tokens": ["at_mov"],
                "prev": "a1",
                "next": "",
                "num_lidar_pts": 10,
                "num_radar_pts": 1,
            },
            {
                "token": "a3",
                "sample_token": "s1",
                "instance_token": "i_ped",
                "translation": [102.0, 215.0, 0.9],
                "size": [0.6, 0.7, 1.8],
                "rotation": [1.0, 0, 0, 0],
                "attribute_tokens": [],
                "prev": "",
                "next": "",
                "num_lidar_pts": 0,
                "num_radar_pts": 0,
            },
            {
                "token": "a4",
                "sample_token": "s1",
                "instance_token": "i_dog",
                "translation": [101.0, 212.0, 0.3],
                "size": [0.3, 0.8, 0.5],
                "rotation": [1.0, 0, 0, 0],
                "attribute_tokens": [],
                "prev": "",
                "next": "",
                "num_lidar_pts": 5,
                "num_radar_pts": 0,
            },
        ],
    }
    (root / "v1.0-mini").mkdir(parents=True)
    for name, recs in tables.items():
        (root / "v1.0-mini" / f"{name}.json").write_text(json.dumps(recs))
    for c in ("c1", "c2"):
        (root / "samples/CAM_FRONT").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / f"samples/CAM_FRONT/{c}.jpg"), np.full((90, 160, 3), 128, np.uint8))
    # Key sweep: a return 7 m ahead of the radar (ego (10, 0, 0.5)), radial velocity 2 m/s;
    # one behind the camera and one 100 m away, both filtered out.
    write_pcd(
        root / "samples/RADAR_FRONT/r1.pcd",
        [(7, 0, 0, 5.0, 2.0, 0.0), (-5, 0, 0, 1.0, 0, 0), (100, 0, 0, 1.0, 0, 0)],
    )
    # Previous sweep, 0.1 s earlier, the ego 1 m behind: the same global point is 8 m ahead.
    write_pcd(root / "sweeps/RADAR_FRONT/r0.pcd", [(8, 0, 0, 6.0, 2.0, 0.0)])
    write_pcd(root / "samples/RADAR_FRONT/r2.pcd", [(6, 0, 0, 5.0, 2.0, 0.0)])


def test_reads_boxes_and_radar_in_the_camera_frame(tmp_path) -> None:
    build_tree(tmp_path)
    ds = NuScenesRadarCamera(NuScenesParams(root=str(tmp_path), version="v1.0-mini"))
    assert len(ds) == 2 and ds.tokens == ["s1", "s2"]
    s = ds[0]
    assert s["image"].shape == (90, 160, 3) and s["sample_token"] == "s1"
    b = s["boxes"]
    # Only the car: the pedestrian has no points, the animal is not a detection class.
    assert ds.stats == {"no lidar or radar point": 1, "not a detection class": 1}
    assert b["label"].tolist() == [DETECTION_NAMES.index("car")]
    assert b["attribute"].tolist() == [ATTRIBUTE_NAMES.index("vehicle.moving")]
    # Ego frame: car at (10, 0, 1); camera at ego (1.5, 0, 1.5) -> offset (8.5, 0, -0.5);
    # camera x = -ego y = 0, camera y = -ego z = 0.5, camera z = ego x = 8.5.
    np.testing.assert_allclose(b["center"][0], [0.0, 0.5, 8.5], atol=1e-5)
    # Heading along ego x = camera z: KITTI rot_y = -90°.
    assert b["rot_y"][0] == pytest.approx(-np.pi / 2, abs=1e-6)
    # Velocity: next annotation 1 m further along global y after 0.5 s -> (0, 2) global,
    # (2, 0) in the ego frame, (0, 0, 2) in the camera frame.
    np.testing.assert_allclose(b["velocity_global"][0], [0.0, 2.0], atol=1e-9)
    np.testing.assert_allclose(b["velocity"][0], [0.0, 0.0, 2.0], atol=1e-5)
    # 2D box: corners at depth 8.5 ± 2 (length along z), x ± 1 (width), y from -0.25 to 1.25;
    # nearest face z = 6.5 gives the extreme pixels: x 80 ± 100/6.5, y 45 + 100*(-0.25)/6.5.
    np.testing.assert_allclose(
        b["box2d"][0], [80 - 100 / 6.5, 45 - 25 / 6.5, 80 + 100 / 6.5, 45 + 125 / 6.5], atol=1e-3
    )
    # Radar: key return radar (7, 0, 0) -> ego (10, 0, 0.5) -> camera (0, 1.0, 8.5); the earlier
    # sweep's return radar (8, 0, 0) with the ego 1 m back is the same global point, so it
    # lands on the same camera point once each sweep uses its own ego pose.
    r = s["radar"]
    assert r.shape == (2, len(RADAR_COLUMNS))
    col = {c: i for i, c in enumerate(RADAR_COLUMNS)}
    np.testing.assert_allclose(r[:, :3], [[0.0, 1.0, 8.5]] * 2, atol=1e-5)
    np.testing.assert_allclose(sorted(r[:, col["dt"]]), [-0.1, 0.0], atol=1e-6)
    np.testing.assert_allclose(r[:, col["v_radial"]], [2.0, 2.0])
    np.testing.assert_allclose(r[:, col["vx"] : col["vz"] + 1], [[0, 0, 2.0]] * 2, atol=1e-6)
    np.testing.assert_allclose(sorted(r[:, col["rcs"]]), [5.0, 6.0])
    # The global-frame GT feeds the metric directly: a perfect prediction scores NDS 1 except
    # for the attribute... which is right too.
    gt = sample_gt_boxes(s)
    pred = [type(g)(**{**g.__dict__, "detection_score": 0.5}) for g in gt]
    assert evaluate_nusc(gt, pred)["nds"] == pytest.approx(1.0)
    # Sample 2: velocity from the previous annotation only (1 m in 0.5 s).
    np.testing.assert_allclose(ds[1]["boxes"]["velocity_global"][0], [0.0, 2.0], atol=1e-9)


def test_resize_scales_intrinsics(tmp_path) -> None:
    build_tree(tmp_path)
    p = NuScenesParams(root=str(tmp_path), version="v1.0-mini", image_size=(45, 80))
    s = NuScenesRadarCamera(p)[0]
    assert s["image"].shape == (45, 80, 3)
    # Scale 0.5: f 100 -> 50; c = (80 + 0.5) * 0.5 - 0.5 = 39.75, (45 + 0.5) * 0.5 - 0.5 = 22.25.
    np.testing.assert_allclose(s["intrinsics"], [[50, 0, 39.75], [0, 50, 22.25], [0, 0, 1]])


def test_missing_file_is_named_or_skipped_and_counted(tmp_path, caplog) -> None:
    build_tree(tmp_path)
    (tmp_path / "samples/RADAR_FRONT/r2.pcd").unlink()
    with pytest.raises(FileNotFoundError, match=r"sample s2: file not found: .*r2\.pcd"):
        NuScenesRadarCamera(NuScenesParams(root=str(tmp_path), version="v1.0-mini"))
    with caplog.at_level(logging.WARNING, logger="pointforge"):
        ds = NuScenesRadarCamera(
            NuScenesParams(root=str(tmp_path), version="v1.0-mini", on_missing="skip")
        )
    assert ds.tokens == ["s1"] and list(ds.skipped) == ["s2"]
    assert "skipped 1 of 2 samples" in caplog.text and "r2.pcd" in caplog.text
    # A missing table is named too.
    (tmp_path / "v1.0-mini/ego_pose.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"ego_pose\.json"):
        NuScenesRadarCamera(NuScenesParams(root=str(tmp_path), version="v1.0-mini"))


def test_truncated_pcd_is_named(tmp_path) -> None:
    from pointforge.tasks.fusion.data.pcd import read_pcd

    build_tree(tmp_path)
    path = tmp_path / "samples/RADAR_FRONT/r1.pcd"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ValueError, match=r"r1\.pcd: PCD body has .* \(truncated\?\)"):
        read_pcd(path)
