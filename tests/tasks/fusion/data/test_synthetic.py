"""Synthetic radar-camera scenes: determinism, box frames, radar on the visible faces with the
line-of-sight velocity a radar measures."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pointforge.geometry.camera import camera_from_global, transform_points
from pointforge.tasks.fusion.data.sample import ATTRIBUTE_NAMES, RADAR_COLUMNS
from pointforge.tasks.fusion.data.synthetic import SyntheticRadarCameraScenes, SyntheticSceneParams

COL = {c: i for i, c in enumerate(RADAR_COLUMNS)}
DETECTION_NAMES_TRUCK = 1  # index of 'truck' in DETECTION_NAMES


def test_deterministic_and_disjoint_splits() -> None:
    p = SyntheticSceneParams(val_size=4)
    a, b = SyntheticRadarCameraScenes(p)[2], SyntheticRadarCameraScenes(p)[2]
    assert a["image"].shape == (160, 288, 3) and a["image"].dtype == np.uint8
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_array_equal(a["radar"], b["radar"])
    for k in a["boxes"]:
        np.testing.assert_array_equal(a["boxes"][k], b["boxes"][k])
    v = SyntheticRadarCameraScenes(p, "val")[2]
    assert v["sample_token"] == "synthetic-val-2" and not np.array_equal(v["image"], a["image"])
    with pytest.raises(IndexError, match="val index 4"):
        SyntheticRadarCameraScenes(p, "val")[4]


def _footprint(sample, i, dt):
    """Box i's centre at time dt on the camera ground plane (x, z), its half length/width and
    unit length/width axes in (x, z) (rot_y: length axis (cos, -sin))."""
    b = sample["boxes"]
    c = b["center"][i][[0, 2]] + b["velocity"][i][[0, 2]] * dt
    ry = float(b["rot_y"][i])
    w, length = b["size"][i][0], b["size"][i][1]
    return (
        c,
        length / 2,
        w / 2,
        np.array([np.cos(ry), -np.sin(ry)]),
        np.array([np.sin(ry), np.cos(ry)]),
    )


def _nearest_face(sample, point_xz, dt):
    """(distance to the nearest box boundary, box index, outward normal of that side)."""
    best = (np.inf, -1, None)
    for i in range(len(sample["boxes"]["label"])):
        c, hl, hw, ax_l, ax_w = _footprint(sample, i, dt)
        d = point_xz - c
        a, bb = d @ ax_l, d @ ax_w
        # Distance to the rectangle's boundary (inside or outside).
        out = np.hypot(max(abs(a) - hl, 0), max(abs(bb) - hw, 0))
        dist = out if out > 0 else min(hl - abs(a), hw - abs(bb))
        side = np.sign(a) * ax_l if abs(abs(a) - hl) < abs(abs(bb) - hw) else np.sign(bb) * ax_w
        if dist < best[0]:
            best = (dist, i, side)
    return best


def test_radar_returns_lie_on_visible_faces_with_line_of_sight_velocity() -> None:
    exact = SyntheticSceneParams(
        range_noise=0.0, azimuth_noise=0.0, velocity_noise=0.0, clutter_mean=0.0
    )
    ds = SyntheticRadarCameraScenes(exact)
    cam_from_ego = np.linalg.inv(ds.cam_to_ego)
    radar_cam = transform_points(cam_from_ego, np.asarray(exact.radar_translation))[0]
    checked = moving = 0
    for idx in range(6):
        s = ds[idx]
        for row in s["radar"]:
            p_xz = row[[COL["x"], COL["z"]]].astype(np.float64)
            dist, i, normal = _nearest_face(s, p_xz, float(row[COL["dt"]]))
            assert dist < 1e-3, f"scene {idx}: return {row[:3]} is {dist} m from any box"
            # The face it lies on faces the radar.
            assert np.dot(normal, radar_cam[[0, 2]] - p_xz) > 0
            # Radial velocity = box velocity projected on the line of sight from the radar.
            los = p_xz - radar_cam[[0, 2]]
            los /= np.linalg.norm(los)
            vel = s["boxes"]["velocity"][i][[0, 2]]
            assert row[COL["v_radial"]] == pytest.approx(float(vel @ los), abs=1e-4)
            # The reported (compensated) velocity vector is v_radial along the line of sight.
            np.testing.assert_allclose(
                row[[COL["vx"], COL["vz"]]], row[COL["v_radial"]] * los, atol=1e-4
            )
            assert abs(row[COL["y"]] - radar_cam[1]) < 1e-4  # at the radar's height
            checked += 1
            moving += abs(row[COL["v_radial"]]) > 0.5
    assert checked > 20 and moving > 3  # the loop really checked moving returns


def test_noisy_radar_stays_near_faces_and_sweeps_go_back_in_time() -> None:
    ds = SyntheticRadarCameraScenes(SyntheticSceneParams(clutter_mean=0.0))
    dts = set()
    for idx in range(4):
        s = ds[idx]
        for row in s["radar"]:
            dist, _, _ = _nearest_face(s, row[[COL["x"], COL["z"]]].astype(float), row[COL["dt"]])
            # range σ 0.25 m, azimuth σ 0.3° (0.26 m at 50 m): 1.5 m is beyond 4 σ.
            assert dist < 1.5
            dts.add(round(float(row[COL["dt"]]), 4))
    assert dts == {0.0, round(-1 / 13, 4), round(-2 / 13, 4)}
    # With clutter, some returns are far from every box.
    s = SyntheticRadarCameraScenes(SyntheticSceneParams(clutter_mean=20.0))[0]
    far = [_nearest_face(s, r[[0, 2]].astype(float), r[COL["dt"]])[0] > 2 for r in s["radar"]]
    assert any(far)


def test_boxes_frames_and_attributes_agree() -> None:
    ds = SyntheticRadarCameraScenes()
    for idx in range(5):
        s = ds[idx]
        b = s["boxes"]
        T = camera_from_global(s["cam_to_ego"], s["ego_to_global"])
        np.testing.assert_allclose(transform_points(T, b["center_global"]), b["center"], atol=1e-3)
        # Boxes stand on the ground: bottom at the camera height below the camera (y down).
        np.testing.assert_allclose(b["center"][:, 1] + b["size"][:, 2] / 2, 1.5, atol=1e-4)
        uv = b["center"][:, :2] / b["center"][:, 2:] * ds.K[0, 0] + ds.K[:2, 2]
        assert ((uv >= b["box2d"][:, :2] - 1) & (uv <= b["box2d"][:, 2:] + 1)).all()
        speed = np.linalg.norm(b["velocity_global"], axis=1)
        np.testing.assert_allclose(speed, np.linalg.norm(b["velocity"], axis=1), atol=1e-4)
        for a, v in zip(b["attribute"], speed):
            if a >= 0:
                name = ATTRIBUTE_NAMES[a]
                moving_attr = name in ("vehicle.moving", "pedestrian.moving", "cycle.with_rider")
                assert bool(v > 0.2) == moving_attr


def test_params_are_checked() -> None:
    with pytest.raises(ValueError, match="not supported"):
        SyntheticRadarCameraScenes(
            dataclasses.replace(SyntheticSceneParams(), classes=("bus",), class_probs=(1.0,))
        )


def test_object_straddling_the_radar_gets_no_return_instead_of_an_error() -> None:
    # Scene 3355 of these params has a truck whose footprint reaches behind the radar (x < 3.4
    # m in the ego frame): no face looks at the radar, so it yields no return.
    p = SyntheticSceneParams(image_size=(96, 160), focal=126.64, num_objects=(2, 5),
                             depth_range=(6.0, 30.0))  # fmt: skip
    s = SyntheticRadarCameraScenes(p)[3355]
    assert DETECTION_NAMES_TRUCK in s["boxes"]["label"].tolist()
    near = s["boxes"]["center"][:, 2] - s["boxes"]["size"][:, 1] / 2
    assert (near < 3.4 - 1.7).any()  # the camera is 1.7 m ahead of the axle, the radar 3.4 m
