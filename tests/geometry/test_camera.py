"""Tests of pointforge.geometry.camera: round trips and a box corner projected by hand."""

from __future__ import annotations

import numpy as np
import pytest

from pointforge.geometry import camera as cam


def _random_quats(n: int, seed: int = 0) -> np.ndarray:
    q = np.random.default_rng(seed).normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q[q[:, 0] < 0] *= -1
    return q


def test_quat_matrix_round_trip() -> None:
    for q in _random_quats(50):
        R = cam.quat_to_matrix(q)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(R) == pytest.approx(1.0)
        np.testing.assert_allclose(cam.matrix_to_quat(R), q, atol=1e-10)
    # Near-180° rotations take the non-trace branches of Shepperd's method.
    for axis in np.eye(3):
        q = np.r_[0.0, axis]
        np.testing.assert_allclose(cam.matrix_to_quat(cam.quat_to_matrix(q)), q, atol=1e-12)


def test_yaw_round_trips_and_90_degrees_by_hand() -> None:
    for yaw in np.linspace(-3.1, 3.1, 13):
        assert cam.quat_to_yaw(cam.yaw_to_quat(yaw)) == pytest.approx(yaw)
        np.testing.assert_allclose(cam.quat_to_matrix(cam.yaw_to_quat(yaw)), cam.yaw_to_matrix(yaw))
        assert cam.matrix_to_rot_y(cam.rot_y_to_matrix(yaw)) == pytest.approx(yaw)
    # yaw 90° maps ego x (forward) onto ego y (left).
    np.testing.assert_allclose(cam.yaw_to_matrix(np.pi / 2) @ [1, 0, 0], [0, 1, 0], atol=1e-15)
    with pytest.raises(ValueError, match="zero"):
        cam.quat_to_matrix(np.zeros(4))


def test_transform_chain_round_trip() -> None:
    q1, q2 = _random_quats(2, seed=1)
    cam_to_ego = cam.make_transform(q1, [1.7, 0.0, 1.5])
    ego_to_global = cam.make_transform(q2, [400.0, 1100.0, 0.0])
    pts = np.random.default_rng(2).normal(size=(7, 3)) * 20
    glob = cam.transform_points(ego_to_global @ cam_to_ego, pts)
    back = cam.transform_points(cam.camera_from_global(cam_to_ego, ego_to_global), glob)
    np.testing.assert_allclose(back, pts, atol=1e-9)
    np.testing.assert_allclose(cam.invert_transform(cam_to_ego) @ cam_to_ego, np.eye(4), atol=1e-12)
    # Vectors ignore the translation.
    np.testing.assert_allclose(
        cam.rotate_vectors(cam_to_ego, [[1, 0, 0]])[0], cam.quat_to_matrix(q1)[:, 0]
    )


def test_corner_projected_by_hand() -> None:
    K = np.array([[100.0, 0, 50], [0, 100.0, 40], [0, 0, 1]])
    center, wlh = np.array([1.0, 0.5, 10.0]), np.array([2.0, 4.0, 1.5])
    # rot_y = 0: corner 0 is (+l/2, +w/2, +h/2) = (2, 1, 0.75) in the box frame; the box x axis
    # is camera x, box y (width) is camera z, box z (up) is camera -y: offset (2, -0.75, 1),
    # point (3, -0.25, 11) -> u = 100*3/11 + 50, v = 100*(-0.25)/11 + 40.
    uv, z = cam.project_box(K, center, wlh, 0.0)
    np.testing.assert_allclose(uv[0], [100 * 3 / 11 + 50, -25 / 11 + 40])
    assert z[0] == pytest.approx(11.0)
    # rot_y = 90°: box x -> (0, 0, -1), box y -> (1, 0, 0): offset (1, -0.75, -2), point
    # (2, -0.25, 8) -> u = 100*2/8 + 50 = 75, v = -25/8 + 40 = 36.875.
    uv, _ = cam.project_box(K, center, wlh, np.pi / 2)
    np.testing.assert_allclose(uv[0], [75.0, 36.875])
    # The 8 corners span exactly the box size along each box axis.
    c = cam.box_corners_cam(center, wlh, 0.3)
    np.testing.assert_allclose(c.mean(axis=0), center)
    R = cam.rot_y_to_matrix(0.3)
    local = (c - center) @ R
    np.testing.assert_allclose(local.max(axis=0) - local.min(axis=0), [4.0, 2.0, 1.5])
    # Behind the camera: no pixel.
    uv, z = cam.project_points(K, [[0, 0, -1.0]])
    assert np.isnan(uv).all() and z[0] == -1


def test_box_faces_have_outward_normals() -> None:
    c = cam.box_corners(np.zeros(3), [2.0, 4.0, 1.5], np.eye(3))
    for face in cam.BOX_FACES:
        p = c[face]
        n = np.cross(p[1] - p[0], p[2] - p[1])
        assert np.dot(n, p.mean(axis=0)) > 0  # points away from the box centre


def test_ego_yaw_zero_is_rot_y_minus_90_in_a_forward_camera() -> None:
    # Level camera looking along ego +x: cam z -> ego x, cam x -> ego -y, cam y -> ego -z.
    R_ego_from_cam = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], dtype=float)
    R_cam_from_box = R_ego_from_cam.T @ cam.yaw_to_matrix(0.0)
    # A car driving away from the camera: KITTI rot_y = -90°.
    assert cam.matrix_to_rot_y(R_cam_from_box) == pytest.approx(-np.pi / 2)
    np.testing.assert_allclose(cam.rot_y_to_matrix(-np.pi / 2), R_cam_from_box, atol=1e-12)
