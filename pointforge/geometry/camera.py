"""3D rigid transforms, quaternions and pinhole projection for the camera/radar tasks.

Why: nuScenes stores every pose as a translation plus a unit quaternion ``(w, x, y, z)`` and
chains four frames (sensor → ego → global, and back into the camera), and the radar-camera
fusion family (CenterFusion) needs the same few operations everywhere: rotate a box, move
points between frames, project box corners into the image. Keeping them in one NumPy module
(float64, no torch) means the data readers, the synthetic scene renderer and the metrics
agree on one convention:

* quaternions are ``(w, x, y, z)``, Hamilton convention, active rotation (as in nuScenes);
* a transform ``T_a_from_b`` is a (4, 4) matrix with ``p_a = T_a_from_b @ p_b``;
* frames: ego/global are x forward, y left, z up; the camera is x right, y down, z forward;
* a box's own frame has x along its length ``l``, y along its width ``w``, z up along its
  height ``h`` (nuScenes' ``wlh`` order for sizes); its yaw is the rotation about the up axis;
* in the camera frame the box heading is ``rot_y``, the rotation about the camera y axis
  (KITTI / CenterNet convention): ``rot_y = 0`` means the box length points along camera +x.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

# Box corner signs in the box frame: x (length), y (width), z (height). Corners 0-3 are the
# top face (z = +h/2), 4-7 the bottom face, both counter-clockwise seen from above starting at
# front-left, so faces can be listed by index (see BOX_FACES).
_CORNER_SIGNS = np.array(
    [
        [1, 1, 1],
        [-1, 1, 1],
        [-1, -1, 1],
        [1, -1, 1],
        [1, 1, -1],
        [-1, 1, -1],
        [-1, -1, -1],
        [1, -1, -1],
    ],
    dtype=np.float64,
)
# The six faces of a box as corner indices, each ordered so that the right-hand normal points
# out of the box (used by renderers for back-face culling): top, bottom, front, back, left, right.
BOX_FACES = np.array(
    [[0, 1, 2, 3], [4, 7, 6, 5], [0, 3, 7, 4], [1, 5, 6, 2], [0, 4, 5, 1], [3, 2, 6, 7]],
    dtype=np.int64,
)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Unit quaternion ``(w, x, y, z)`` (4,) → rotation matrix (3, 3). Normalises ``q`` first."""
    q = np.asarray(q, dtype=np.float64)
    n = np.linalg.norm(q)
    if not np.isfinite(n) or n < 1e-12:
        raise ValueError(f"quaternion {q.tolist()} has zero or non-finite norm")
    w, x, y, z = q / n
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quat(R: np.ndarray) -> np.ndarray:
    """Rotation matrix (3, 3) → unit quaternion ``(w, x, y, z)`` (4,) with ``w >= 0``.

    Shepperd's method: pick the largest of the four squared components to divide by, which
    keeps the result accurate for rotations near 180°.
    """
    R = np.asarray(R, dtype=np.float64)
    tr = np.trace(R)
    diag = np.array([tr, R[0, 0], R[1, 1], R[2, 2]])
    k = int(np.argmax(diag))
    if k == 0:
        s = 2.0 * np.sqrt(1.0 + tr)
        q = [0.25 * s, (R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s]
    elif k == 1:
        s = 2.0 * np.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2])
        q = [(R[2, 1] - R[1, 2]) / s, 0.25 * s, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s]
    elif k == 2:
        s = 2.0 * np.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2])
        q = [(R[0, 2] - R[2, 0]) / s, (R[0, 1] + R[1, 0]) / s, 0.25 * s, (R[1, 2] + R[2, 1]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1])
        q = [(R[1, 0] - R[0, 1]) / s, (R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, 0.25 * s]
    quat = np.asarray(q)
    quat /= np.linalg.norm(quat)
    return -quat if quat[0] < 0 else quat


def yaw_to_quat(yaw: float) -> np.ndarray:
    """Rotation by ``yaw`` radians about +z → quaternion ``(w, x, y, z)`` (4,)."""
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


def yaw_to_matrix(yaw: float) -> np.ndarray:
    """Rotation by ``yaw`` radians about +z → (3, 3)."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def matrix_to_yaw(R: np.ndarray) -> float:
    """Heading of a rotation (3, 3) in a z-up frame: the angle of its rotated x axis in the
    xy plane (as the nuScenes devkit defines a box's yaw), in (-π, π]."""
    R = np.asarray(R, dtype=np.float64)
    return float(np.arctan2(R[1, 0], R[0, 0]))


def quat_to_yaw(q: np.ndarray) -> float:
    """Heading (see :func:`matrix_to_yaw`) of quaternion ``(w, x, y, z)`` (4,)."""
    return matrix_to_yaw(quat_to_matrix(q))


def rot_y_to_matrix(rot_y: float) -> np.ndarray:
    """Box-to-camera rotation (3, 3) of a level box with camera heading ``rot_y``.

    The box's x (length) axis maps to ``(cos, 0, -sin)``, its z (up) axis to camera −y (up), and
    its y (width) axis to ``z × x = (sin, 0, cos)``; so ``R @ [1, 0, 0]`` is the heading and
    ``rot_y = -atan2(v_z, v_x)`` recovers it (:func:`matrix_to_rot_y`)."""
    c, s = np.cos(rot_y), np.sin(rot_y)
    return np.array([[c, s, 0.0], [0.0, 0.0, -1.0], [-s, c, 0.0]])


def matrix_to_rot_y(R_cam_from_box: np.ndarray) -> float:
    """Camera heading ``rot_y`` in (-π, π] of a box rotation (3, 3) expressed in the camera frame.

    Only the projection of the box's length axis on the camera xz plane is used, so a small
    camera pitch/roll (nuScenes cameras are within ~1° of level) is dropped."""
    v = np.asarray(R_cam_from_box, dtype=np.float64)[:, 0]
    return float(-np.arctan2(v[2], v[0]))


def make_transform(rotation: npt.ArrayLike, translation: npt.ArrayLike) -> np.ndarray:
    """(4, 4) rigid transform from a rotation — quaternion (4,) or matrix (3, 3) — and a
    translation (3,)."""
    rotation = np.asarray(rotation, dtype=np.float64)
    T = np.eye(4)
    T[:3, :3] = quat_to_matrix(rotation) if rotation.shape == (4,) else rotation
    T[:3, 3] = np.asarray(translation, dtype=np.float64)
    return T


def invert_transform(T: np.ndarray) -> np.ndarray:
    """Inverse of a rigid (4, 4) transform (uses ``Rᵀ``, exact for rotations)."""
    R, t = T[:3, :3], T[:3, 3]
    inv = np.eye(4)
    inv[:3, :3] = R.T
    inv[:3, 3] = -R.T @ t
    return inv


def transform_points(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply (4, 4) ``T`` to points (N, 3) → (N, 3)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return points @ T[:3, :3].T + T[:3, 3]


def rotate_vectors(T: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Apply only the rotation of (4, 4) ``T`` to free vectors (N, 3), e.g. velocities."""
    vectors = np.asarray(vectors, dtype=np.float64).reshape(-1, 3)
    return vectors @ T[:3, :3].T


def camera_from_global(cam_to_ego: np.ndarray, ego_to_global: np.ndarray) -> np.ndarray:
    """(4, 4) ``T_cam_from_global`` = (ego_to_global · cam_to_ego)⁻¹: the chain used to bring
    global-frame annotations into the camera of one sample."""
    return invert_transform(ego_to_global @ cam_to_ego)


def project_points(K: np.ndarray, points_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pinhole projection of camera-frame points (N, 3) with intrinsics ``K`` (3, 3).

    Returns pixel coordinates (N, 2) (x right, y down, pixel centres at integers as in nuScenes
    and OpenCV) and depths (N,) = z. Points with ``z <= 0`` get NaN pixels: they are behind
    the camera and have no image."""
    points_cam = np.asarray(points_cam, dtype=np.float64).reshape(-1, 3)
    z = points_cam[:, 2]
    uvw = points_cam @ np.asarray(K, dtype=np.float64).T
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = uvw[:, :2] / uvw[:, 2:3]
    uv[z <= 0] = np.nan
    return uv, z


def box_corners(center: np.ndarray, size_wlh: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """The 8 corners (8, 3) of a box in the frame of ``center`` (3,).

    ``size_wlh`` is (width, length, height) (3,); ``rotation`` is the box-to-frame rotation,
    a (3, 3) matrix or a quaternion (4,). Corner order: see ``_CORNER_SIGNS`` (top face 0-3,
    bottom face 4-7); :data:`BOX_FACES` indexes into it."""
    rotation = np.asarray(rotation, dtype=np.float64)
    R = quat_to_matrix(rotation) if rotation.shape == (4,) else rotation
    width, length, height = np.asarray(size_wlh, dtype=np.float64)
    local = _CORNER_SIGNS * np.array([length / 2, width / 2, height / 2])
    return local @ R.T + np.asarray(center, dtype=np.float64)


def box_corners_yaw(center: np.ndarray, size_wlh: np.ndarray, yaw: float) -> np.ndarray:
    """Corners (8, 3) of a box in a z-up frame (ego/global) with heading ``yaw`` about +z."""
    return box_corners(center, size_wlh, yaw_to_matrix(yaw))


def box_corners_cam(center_cam: np.ndarray, size_wlh: np.ndarray, rot_y: float) -> np.ndarray:
    """Corners (8, 3) of a level box in the camera frame with heading ``rot_y`` (see
    :func:`rot_y_to_matrix`)."""
    return box_corners(center_cam, size_wlh, rot_y_to_matrix(rot_y))


def project_box(
    K: np.ndarray, center_cam: np.ndarray, size_wlh: np.ndarray, rot_y: float
) -> tuple[np.ndarray, np.ndarray]:
    """Project a camera-frame box: corner pixels (8, 2) (NaN behind the camera) and depths (8,)."""
    return project_points(K, box_corners_cam(center_cam, size_wlh, rot_y))
