"""Synthetic Shapes primitives, drawn directly at the output resolution with anti-aliasing.

Each ``draw_*`` paints onto a float32 ``(H, W)`` image in place and returns the exact
ground-truth corners as float32 ``(K, 2)`` (x, y) with pixel centres at integer coordinates.
Drawing uses OpenCV's fixed-point ``shift`` (1/16 px) and ``LINE_AA``, so geometry is
sub-pixel: no 960×1280 render plus blur-and-resize as in the public implementations.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

SHIFT = 4
SCALE = 1 << SHIFT
AA = cv2.LINE_AA
EMPTY = np.zeros((0, 2), np.float32)


def fix(pts: npt.ArrayLike) -> np.ndarray:
    """Float pixel coordinates → OpenCV fixed-point int32 for ``shift=SHIFT``."""
    return np.round(np.asarray(pts) * SCALE).astype(np.int32)


def snap(pts: np.ndarray) -> np.ndarray:
    """The exact coordinates OpenCV draws for ``pts`` (quantised to 1/16 px) as float32."""
    return (fix(pts) / SCALE).astype(np.float32).reshape(-1, 2)


def contrasting_colour(
    rng: np.random.Generator, background: float, min_diff: float = 40.0
) -> float:
    """A grey level at least ``min_diff`` away from ``background`` (so corners are visible)."""
    lo, hi = background - min_diff, background + min_diff
    choices = [
        c
        for c in (
            rng.uniform(0, lo) if lo > 0 else None,
            rng.uniform(hi, 255) if hi < 255 else None,
        )
        if c is not None
    ]
    return float(choices[int(rng.integers(len(choices)))]) if choices else 255.0 - background


def local_background(img: np.ndarray, pts: np.ndarray) -> float:
    """Mean grey level of ``img`` over the bounding box of ``pts`` (the shape's surroundings).

    Colours are chosen against this *local* level, not the global mean, so a shape is never
    drawn in nearly the colour of the background right under it.
    """
    h, w = img.shape
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    x0, y0 = np.clip(np.floor(pts.min(0)).astype(int), 0, [w - 1, h - 1])
    x1, y1 = np.clip(np.ceil(pts.max(0)).astype(int), 0, [w - 1, h - 1])
    return float(img[y0 : y1 + 1, x0 : x1 + 1].mean())


def _segments_intersect(p1, p2, q1, q2) -> bool:
    def ccw(a, b, c):
        return (c[1] - a[1]) * (b[0] - a[0]) > (b[1] - a[1]) * (c[0] - a[0])

    return ccw(p1, q1, q2) != ccw(p2, q1, q2) and ccw(p1, p2, q1) != ccw(p1, p2, q2)


def draw_lines(img: np.ndarray, rng: np.random.Generator, bg: float) -> np.ndarray:
    """1–5 non-crossing segments; keypoints are their endpoints."""
    h, w = img.shape
    segs: list[tuple[np.ndarray, np.ndarray]] = []
    min_len = 0.15 * min(h, w)
    for _ in range(int(rng.integers(1, 6)) * 4):  # attempts
        if len(segs) >= 5:
            break
        p, q = rng.uniform([0, 0], [w - 1, h - 1], (2, 2))
        if np.linalg.norm(p - q) < min_len:
            continue
        if any(_segments_intersect(p, q, a, b) for a, b in segs):
            continue
        segs.append((p, q))
    pts = []
    for p, q in segs:
        fp, fq = fix([p, q])
        thick = int(rng.integers(1, max(2, min(h, w) // 40 + 2)))
        colour = contrasting_colour(rng, local_background(img, np.array([p, q])))
        cv2.line(img, tuple(fp), tuple(fq), colour, thick, AA, SHIFT)
        pts += [p, q]
    return snap(np.array(pts)) if pts else EMPTY


def _polygon_ok(pts: np.ndarray, min_edge: float) -> bool:
    """Reject polygons with tiny edges or nearly flat corners (not detectable corners)."""
    n = len(pts)
    for i in range(n):
        a, b, c = pts[i - 1], pts[i], pts[(i + 1) % n]
        e1, e2 = a - b, c - b
        l1, l2 = np.linalg.norm(e1), np.linalg.norm(e2)
        if l1 < min_edge or l2 < min_edge:
            return False
        cos = float(e1 @ e2 / (l1 * l2))
        if cos < -0.94 or cos > 0.94:  # angle > ~160° or < ~20°
            return False
    return True


def random_polygon(
    rng: np.random.Generator, cx: float, cy: float, radius: float
) -> np.ndarray | None:
    """A convex 3–5-gon: sorted random angles around a centre with jittered radii."""
    n = int(rng.integers(3, 6))
    for _ in range(10):
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = radius * rng.uniform(0.6, 1.0, n)
        pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1)
        hull = cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2)
        if len(hull) == n and _polygon_ok(pts, 0.25 * radius):
            return pts
    return None


def draw_polygon(img: np.ndarray, rng: np.random.Generator, bg: float) -> np.ndarray:
    h, w = img.shape
    r = rng.uniform(0.2, 0.45) * min(h, w)
    pts = random_polygon(rng, rng.uniform(r, w - 1 - r), rng.uniform(r, h - 1 - r), r)
    if pts is None:
        return EMPTY
    cv2.fillPoly(img, [fix(pts)], contrasting_colour(rng, local_background(img, pts)), AA, SHIFT)
    return snap(pts)


def draw_multiple_polygons(img: np.ndarray, rng: np.random.Generator, bg: float) -> np.ndarray:
    """Several non-overlapping polygons (bounding circles do not intersect)."""
    h, w = img.shape
    circles: list[tuple[float, float, float]] = []
    out = []
    for _ in range(30):
        if len(circles) >= int(rng.integers(2, 6)):
            break
        r = rng.uniform(0.08, 0.2) * min(h, w)
        cx, cy = rng.uniform(r, w - 1 - r), rng.uniform(r, h - 1 - r)
        if any(np.hypot(cx - x, cy - y) < r + rr + 2 for x, y, rr in circles):
            continue
        pts = random_polygon(rng, cx, cy, r)
        if pts is None:
            continue
        circles.append((cx, cy, r))
        colour = contrasting_colour(rng, local_background(img, pts))
        cv2.fillPoly(img, [fix(pts)], colour, AA, SHIFT)
        out.append(pts)
    return snap(np.concatenate(out)) if out else EMPTY


def draw_ellipses(img: np.ndarray, rng: np.random.Generator, bg: float) -> np.ndarray:
    """Smooth blobs: no corners, so they teach the detector what is *not* a keypoint."""
    h, w = img.shape
    for _ in range(int(rng.integers(1, 7))):
        ax, ay = rng.uniform(0.05, 0.25, 2) * min(h, w)
        c = fix([rng.uniform(0, w - 1), rng.uniform(0, h - 1)])
        axes = (int(ax * SCALE), int(ay * SCALE))
        cv2.ellipse(
            img,
            tuple(c),
            axes,
            float(rng.uniform(0, 180)),
            0,
            360,
            contrasting_colour(rng, bg),
            -1,
            AA,
            SHIFT,
        )
    return EMPTY


def draw_star(img: np.ndarray, rng: np.random.Generator, bg: float) -> np.ndarray:
    """3–5 rays from a centre; keypoints are the centre (a junction) and the tips."""
    h, w = img.shape
    r = rng.uniform(0.25, 0.45) * min(h, w)
    c = np.array([rng.uniform(r, w - 1 - r), rng.uniform(r, h - 1 - r)])
    n = int(rng.integers(3, 6))
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    if n > 1 and np.min(np.diff(np.r_[ang, ang[0] + 2 * np.pi])) < 0.5:
        ang = np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(0, 2 * np.pi)
    tips = c + (r * rng.uniform(0.6, 1.0, n))[:, None] * np.stack([np.cos(ang), np.sin(ang)], 1)
    colour = contrasting_colour(rng, local_background(img, np.vstack([c, tips])))
    thick = int(rng.integers(1, max(2, min(h, w) // 40 + 2)))
    fc = fix(c)
    for t in fix(tips):
        cv2.line(img, tuple(fc), tuple(t), colour, thick, AA, SHIFT)
    return snap(np.vstack([c, tips]))


def _random_quad_homography(rng: np.random.Generator, w: float, h: float, amp: float) -> np.ndarray:
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    dst = src + rng.uniform(-amp, amp, (4, 2)).astype(np.float32) * np.array([w, h], np.float32)
    return cv2.getPerspectiveTransform(src, dst)


def _apply(H: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return cv2.perspectiveTransform(pts.reshape(-1, 1, 2).astype(np.float64), H).reshape(-1, 2)


def draw_checkerboard(img: np.ndarray, rng: np.random.Generator, bg: float) -> np.ndarray:
    """A perspective-warped checkerboard; keypoints are all grid corners inside the image."""
    h, w = img.shape
    rows, cols = int(rng.integers(3, 7)), int(rng.integers(3, 7))
    size = rng.uniform(0.5, 0.9) * min(h, w)
    cw, ch = size / cols * rng.uniform(0.8, 1.25), size / rows
    gx, gy = np.meshgrid(np.arange(cols + 1) * cw, np.arange(rows + 1) * ch)
    grid = np.stack([gx, gy], -1)  # (rows+1, cols+1, 2)
    H = _random_quad_homography(rng, cols * cw, rows * ch, 0.15)
    angle = rng.uniform(0, 2 * np.pi)
    R = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    warped = _apply(H, grid.reshape(-1, 2))
    warped = (warped - warped.mean(0)) @ R.T + [
        rng.uniform(0.3, 0.7) * w,
        rng.uniform(0.3, 0.7) * h,
    ]
    c1 = contrasting_colour(rng, local_background(img, warped))
    warped = warped.reshape(rows + 1, cols + 1, 2)
    c2 = contrasting_colour(rng, c1, 60.0)
    for i in range(rows):
        for j in range(cols):
            quad = np.array(
                [warped[i, j], warped[i, j + 1], warped[i + 1, j + 1], warped[i + 1, j]]
            )
            cv2.fillConvexPoly(img, fix(quad), c1 if (i + j) % 2 == 0 else c2, AA, SHIFT)
    pts = snap(warped.reshape(-1, 2))
    inside = (pts[:, 0] >= 0) & (pts[:, 0] <= w - 1) & (pts[:, 1] >= 0) & (pts[:, 1] <= h - 1)
    return pts[inside]


def draw_stripes(img: np.ndarray, rng: np.random.Generator, bg: float) -> np.ndarray:
    """Parallel stripes inside a rotated rectangle; keypoints are the stripe corners."""
    h, w = img.shape
    n = int(rng.integers(3, 8))
    length = rng.uniform(0.4, 0.8) * min(h, w)
    width = rng.uniform(0.5, 0.9) * min(h, w)
    edges = np.sort(rng.uniform(0, width, n - 1))
    edges = np.r_[0, edges, width]
    keep = np.r_[True, np.diff(edges) > 3.0]
    edges = edges[keep]
    angle = rng.uniform(0, np.pi)
    R = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = np.array([rng.uniform(0.35, 0.65) * w, rng.uniform(0.35, 0.65) * h])
    top = np.stack([edges - width / 2, np.full_like(edges, -length / 2)], 1) @ R.T + centre
    bot = np.stack([edges - width / 2, np.full_like(edges, length / 2)], 1) @ R.T + centre
    c1 = contrasting_colour(rng, local_background(img, np.vstack([top, bot])))
    for i in range(0, len(edges) - 1, 2):  # every other stripe filled, the rest is background
        quad = np.array([top[i], top[i + 1], bot[i + 1], bot[i]])
        cv2.fillConvexPoly(img, fix(quad), c1, AA, SHIFT)
    # Corners exist only where a filled stripe has an edge.
    idx = sorted({j for i in range(0, len(edges) - 1, 2) for j in (i, i + 1)})
    pts = snap(np.vstack([top[idx], bot[idx]]))
    inside = (pts[:, 0] >= 0) & (pts[:, 0] <= w - 1) & (pts[:, 1] >= 0) & (pts[:, 1] <= h - 1)
    return pts[inside]


def draw_cube(img: np.ndarray, rng: np.random.Generator, bg: float) -> np.ndarray:
    """A rotated cube under orthographic projection: 3 visible faces, 7 visible vertices."""
    h, w = img.shape
    s = rng.uniform(0.25, 0.4) * min(h, w)
    verts = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], float) - 0.5
    verts *= s * rng.uniform(0.7, 1.3, 3)
    # Rotations that show three faces: tilt towards the viewer about x and y, spin about z.
    ax, ay = rng.uniform(np.pi / 8, 3 * np.pi / 8, 2) * rng.choice([-1, 1], 2)
    az = rng.uniform(0, 2 * np.pi)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    v = verts @ (rz @ ry @ rx).T
    centre = np.array([rng.uniform(0.35, 0.65) * w, rng.uniform(0.35, 0.65) * h])
    p2 = v[:, :2] + centre
    faces = [(0, 1, 3, 2), (4, 5, 7, 6), (0, 1, 5, 4), (2, 3, 7, 6), (0, 2, 6, 4), (1, 3, 7, 5)]
    hidden = int(np.argmin(v[:, 2]))  # farthest from the viewer (viewer looks along -z)
    visible = [f for f in faces if hidden not in f]
    colour = contrasting_colour(rng, local_background(img, p2))
    # Faces differ from each other by >= 30 grey levels so the inner edges (and the central
    # junction) are visible.
    shades = colour + np.array([0.0, 35.0, -35.0])[rng.permutation(3)]
    for f, shade in zip(visible, shades):
        cv2.fillConvexPoly(img, fix(p2[list(f)]), float(np.clip(shade, 0, 255)), AA, SHIFT)
    pts = snap(np.delete(p2, hidden, axis=0))
    inside = (pts[:, 0] >= 0) & (pts[:, 0] <= w - 1) & (pts[:, 1] >= 0) & (pts[:, 1] <= h - 1)
    return pts[inside]


def draw_gaussian_noise(img: np.ndarray, rng: np.random.Generator, bg: float) -> np.ndarray:
    """Pure noise: no keypoints (teaches the detector not to fire on texture)."""
    img[:] = rng.uniform(0, 255, img.shape)
    return EMPTY


PRIMITIVES = {
    "lines": draw_lines,
    "polygon": draw_polygon,
    "multiple_polygons": draw_multiple_polygons,
    "ellipses": draw_ellipses,
    "star": draw_star,
    "checkerboard": draw_checkerboard,
    "stripes": draw_stripes,
    "cube": draw_cube,
    "gaussian_noise": draw_gaussian_noise,
}
