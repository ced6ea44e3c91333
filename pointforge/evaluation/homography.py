"""Homography-benchmark metrics, one frozen protocol (docs/evaluation.md).

Why our own: the public implementations disagree on this table through silent protocol bugs
(H rescaled with one image's factors, non-standard matching score). Every metric here is a
few vectorised torch operations per pair (distance matrices, no per-point Python loops):

* repeatability at ``distance`` px over the top-``rep_keypoints`` points of each image that
  warp inside the other image: ``(count1 + count2) / (n1 + n2)``; MLE = mean distance of the
  counted points;
* homography estimation from the top-``match_keypoints`` points: mutual nearest neighbours on
  descriptors, OpenCV RANSAC (``ransac_threshold`` px), error = mean distance of the 4 image
  corners under the estimated and the true H; correctness at e = 1/3/5 and the glue-factory
  style AUC of that error;
* NN mAP: each shared-view point of image 1 matched to its descriptor nearest neighbour in
  image 2, ranked by descriptor distance, correct within ``distance`` px, AP normalised by the
  points that have a true correspondence;
* matching score: correct mutual-NN matches (≤ ``distance`` px) among shared-view points
  ÷ the mean number of shared-view points of the two images.

Descriptor metrics are NaN for detector-only methods (``descriptors is None``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np
import torch

from pointforge.data.datasets.homography_pairs import HomographyPair


@dataclass(frozen=True)
class HomographyEvalConfig:
    """Homography benchmark settings (task ``homography_eval``); defaults = docs/evaluation.md."""

    # Methods to compare: "pointforge" (the evaluated weights) and OpenCV "sift", "orb",
    # "gftt_sift" (Shi-Tomasi corners + SIFT descriptors).
    methods: tuple[str, ...] = ("pointforge", "sift", "orb", "gftt_sift")
    # Generated benchmark (data.name=homography_pairs): viewpoint pairs per source image, and
    # as many illumination pairs. 5, like the 5 pairs of an HPatches sequence.
    pairs_per_image: int = 5
    # Points per image for repeatability/MLE (300) and for matching/homography (1000).
    rep_keypoints: int = 300
    match_keypoints: int = 1000
    # Correctness radius of a point or match, px (3 in the SuperPoint protocol).
    distance: float = 3.0
    # cv2.findHomography RANSAC reprojection threshold, px.
    ransac_threshold: float = 3.0
    # Corner-error thresholds for homography correctness and AUC, px.
    thresholds: tuple[float, ...] = (1.0, 3.0, 5.0)
    # Pairs drawn into eval/matches_*.png.
    num_visualize: int = 3
    # SIFT and ORB keypoints go through the network's NMS (detection.nms_radius) like every
    # other detector here: OpenCV repeats a location (ORB per pyramid level, SIFT per
    # orientation), which repeatability would count several times. False = OpenCV's raw lists.
    opencv_nms: bool = True


@dataclass
class PairRecord:
    """Per-pair results of one method. ``corner_error`` is ``inf`` when no homography could be
    estimated and NaN for detector-only methods. ``points1/points2``: ``(M, 2)`` mutual-NN
    match positions, ``inliers``: ``(M,)`` RANSAC mask (kept for the example-match figure)."""

    name: str
    split: str
    rep: float
    mle: float
    corner_error: float
    nn_ap: float
    m_score: float
    num_keypoints: float
    extract_s: float = 0.0
    metric_s: float = 0.0
    points1: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    points2: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    inliers: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    # Top-``rep_keypoints`` detections of each image, ``(N, 2)``: drawn for detector-only methods.
    keypoints1: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    keypoints2: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))


def warp(points: torch.Tensor, H: torch.Tensor) -> torch.Tensor:
    """``(N, 2)`` (x, y) through ``(3, 3)`` H, float64."""
    p = torch.cat([points, torch.ones_like(points[:, :1])], 1) @ H.T
    w = p[:, 2:]
    return p[:, :2] / torch.where(w.abs() < 1e-12, torch.full_like(w, 1e-12), w)


def pairwise_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(N, M)`` Euclidean distances of ``(N, D)`` and ``(M, D)`` rows via one GEMM
    (``|a|² + |b|² − 2 a·b``), several times faster than ``torch.cdist`` on CPU here."""
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * (a @ b.T)
    return d2.clamp_min_(0).sqrt_()


def inside(points: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Bool ``(N,)``: inside an ``(h, w)`` image, pixel centres 0 … size − 1."""
    h, w = shape
    x, y = points[:, 0], points[:, 1]
    return (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)


def repeatability(
    kp1: torch.Tensor,
    kp2: torch.Tensor,
    H: torch.Tensor,
    shape1: tuple[int, int],
    shape2: tuple[int, int],
    distance: float,
) -> tuple[float, float]:
    """(repeatability, MLE) of ``kp1`` ``(N1, 2)`` and ``kp2`` ``(N2, 2)`` (already top-k).

    Points that do not warp inside the other image are dropped. A kept point counts when its
    nearest warped counterpart is within ``distance``. NaN repeatability when neither image has
    a point in the shared view; NaN MLE when no point counts.
    """
    a = warp(kp1, H)
    a = a[inside(a, shape2)]
    b = kp2[inside(warp(kp2, torch.linalg.inv(H)), shape1)]
    n1, n2 = len(a), len(b)
    if n1 + n2 == 0:
        return math.nan, math.nan
    if n1 == 0 or n2 == 0:
        return 0.0, math.nan
    d = pairwise_distance(a, b)
    d1, d2 = d.min(1).values, d.min(0).values
    ok = torch.cat([d1[d1 <= distance], d2[d2 <= distance]])
    rep = len(ok) / (n1 + n2)
    return rep, float(ok.mean()) if len(ok) else math.nan


def mutual_nn(desc1: torch.Tensor, desc2: torch.Tensor) -> torch.Tensor:
    """``(M, 2)`` index pairs ``(i, j)`` that are each other's descriptor nearest neighbour."""
    if len(desc1) == 0 or len(desc2) == 0:
        return torch.zeros(0, 2, dtype=torch.long)
    d = pairwise_distance(desc1, desc2)
    nn12, nn21 = d.argmin(1), d.argmin(0)
    i = torch.arange(len(desc1))
    keep = nn21[nn12] == i
    return torch.stack([i[keep], nn12[keep]], 1)


def corner_error(H_est: np.ndarray, H: np.ndarray, shape1: tuple[int, int]) -> float:
    """Mean distance of image 1's 4 corners mapped by ``H_est`` and by the true ``H``."""
    h, w = shape1
    c = torch.tensor([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=torch.float64)
    e = warp(c, torch.from_numpy(H_est).double()) - warp(c, torch.from_numpy(H).double())
    return float(e.norm(dim=1).mean())


def nn_average_precision(
    desc1: torch.Tensor,
    desc2: torch.Tensor,
    warped1: torch.Tensor,
    kp2: torch.Tensor,
    distance: float,
) -> float:
    """AP of nearest-neighbour matching 1 → 2 ranked by descriptor distance.

    ``warped1``: image-1 points mapped into image 2, ``(N1, 2)``; ``kp2``: ``(N2, 2)``, both
    restricted to the shared view. Positives = points of image 1 with any image-2 point within
    ``distance`` (the best any matcher can get), so AP is 1 only if all of them are found and
    ranked before every wrong match. NaN when there is no positive.
    """
    if len(desc1) == 0 or len(desc2) == 0:
        return math.nan
    geo = pairwise_distance(warped1, kp2)
    positives = int((geo.min(1).values <= distance).sum())
    if positives == 0:
        return math.nan
    dist, nn = pairwise_distance(desc1, desc2).min(1)
    correct = geo.gather(1, nn[:, None])[:, 0] <= distance
    tp = correct[dist.argsort(stable=True)].double()
    precision = tp.cumsum(0) / torch.arange(1, len(tp) + 1, dtype=torch.float64)
    return float((precision * tp).sum() / positives)


def pair_metrics(
    f1: dict,
    f2: dict,
    H_np: np.ndarray,
    shape1: tuple[int, int],
    shape2: tuple[int, int],
    cfg: HomographyEvalConfig,
) -> PairRecord:
    """All metrics of one pair from two feature dicts (``keypoints`` ``(N, 2)`` sorted by score
    descending, ``descriptors`` ``(N, D)`` or ``None``). ``name``/``split`` are filled by the
    caller."""
    H = torch.from_numpy(np.asarray(H_np, np.float64))
    k1 = torch.from_numpy(np.asarray(f1["keypoints"], np.float64)).reshape(-1, 2)
    k2 = torch.from_numpy(np.asarray(f2["keypoints"], np.float64)).reshape(-1, 2)
    rk = cfg.rep_keypoints
    rep, mle = repeatability(k1[:rk], k2[:rk], H, shape1, shape2, cfg.distance)
    rec = PairRecord("", "", rep, mle, math.nan, math.nan, math.nan, (len(k1) + len(k2)) / 2)
    rec.keypoints1 = k1[:rk].numpy().astype(np.float32)
    rec.keypoints2 = k2[:rk].numpy().astype(np.float32)
    if f1.get("descriptors") is None or f2.get("descriptors") is None:
        return rec
    mk = cfg.match_keypoints
    k1, k2 = k1[:mk], k2[:mk]
    d1 = torch.from_numpy(np.asarray(f1["descriptors"], np.float32))[:mk]
    d2 = torch.from_numpy(np.asarray(f2["descriptors"], np.float32))[:mk]
    # Homography from mutual NN over all top-k points (the SuperPoint protocol).
    m = mutual_nn(d1, d2)
    p1 = k1[m[:, 0]].numpy().astype(np.float32)
    p2 = k2[m[:, 1]].numpy().astype(np.float32)
    rec.points1, rec.points2 = p1, p2
    rec.corner_error = math.inf
    if len(m) >= 4:
        H_est, mask = cv2.findHomography(p1, p2, cv2.RANSAC, cfg.ransac_threshold)
        if H_est is not None and np.isfinite(H_est).all():
            rec.corner_error = corner_error(H_est, H_np, shape1)
            rec.inliers = mask.ravel().astype(bool)
    if len(rec.inliers) != len(p1):
        rec.inliers = np.zeros(len(p1), bool)
    # Shared-view points for NN mAP and matching score.
    w1 = warp(k1, H)
    s1 = inside(w1, shape2)
    s2 = inside(warp(k2, torch.linalg.inv(H)), shape1)
    rec.nn_ap = nn_average_precision(d1[s1], d2[s2], w1[s1], k2[s2], cfg.distance)
    n_shared = (int(s1.sum()) + int(s2.sum())) / 2
    if n_shared > 0:
        ms = mutual_nn(d1[s1], d2[s2])
        err = (w1[s1][ms[:, 0]] - k2[s2][ms[:, 1]]).norm(dim=1)
        rec.m_score = float((err <= cfg.distance).sum()) / n_shared
    else:
        rec.m_score = 0.0
    return rec


def error_auc(errors: np.ndarray, thresholds: tuple[float, ...]) -> list[float]:
    """Glue-factory-style AUC of the recall-vs-error curve up to each threshold, ÷ threshold.

    The curve joins ``(0, 0)`` and ``(e_i, i/n)`` for the sorted errors (failures are ``inf``
    and never reached) linearly, and is extended flat to the threshold.
    """
    e = np.sort(np.asarray(errors, np.float64))
    n = len(e)
    if n == 0:
        return [math.nan for _ in thresholds]
    recall = np.arange(1, n + 1) / n
    e, recall = np.r_[0.0, e], np.r_[0.0, recall]
    out = []
    for t in thresholds:
        last = int(np.searchsorted(e, t))  # errors strictly below t
        x = np.r_[e[:last], t]
        y = np.r_[recall[:last], recall[last - 1]]
        out.append(float(np.trapezoid(y, x) / t))
    return out


def _nanmean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else math.nan


def summarize(records: list[PairRecord], cfg: HomographyEvalConfig) -> dict[str, float]:
    """Metrics of a group of pairs: means over pairs (NaN pairs skipped for rep/MLE/mAP), the
    fraction of pairs with corner error ≤ e, AUC, and extraction time per pair in ms."""
    if not records:
        return {}
    err = np.array([r.corner_error for r in records])
    out = {
        "rep": _nanmean(np.array([r.rep for r in records])),
        "mle": _nanmean(np.array([r.mle for r in records])),
    }
    has_desc = not np.isnan(err).all()
    for t in cfg.thresholds:
        out[f"h_acc@{t:g}"] = float((err <= t).mean()) if has_desc else math.nan
    for t, auc in zip(cfg.thresholds, error_auc(err, cfg.thresholds), strict=True):
        out[f"auc@{t:g}"] = auc if has_desc else math.nan
    out["nn_map"] = _nanmean(np.array([r.nn_ap for r in records]))
    out["m_score"] = _nanmean(np.array([r.m_score for r in records]))
    out["num_kpts"] = float(np.mean([r.num_keypoints for r in records]))
    out["ms_per_pair"] = 1000.0 * float(np.mean([r.extract_s for r in records]))
    # Metric cost per pair (distance matrices, RANSAC), to check it stays small next to it.
    out["metric_ms"] = 1000.0 * float(np.mean([r.metric_s for r in records]))
    return out


class PairSet(Protocol):
    """What the benchmark reads of a pair dataset (``HPatches``, ``GeneratedPairs``): its
    length and pair ``i`` for ``0 <= i < len``."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int, /) -> HomographyPair: ...


def run_benchmark(
    pairs: PairSet,
    extractors: Mapping[str, Callable[[np.ndarray], dict]],
    cfg: HomographyEvalConfig,
    progress: bool = False,
) -> dict[str, list[PairRecord]]:
    """Extract every pair with every method and score it: ``{method: [PairRecord, ...]}``.

    ``extract_s`` is the wall time of both extractions of a pair (the method's own cost; pair
    loading and metrics are excluded so methods compare fairly); ``metric_s`` the scoring.
    """
    records: dict[str, list[PairRecord]] = {m: [] for m in extractors}
    indices: Iterable[int] = range(len(pairs))
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc="pairs")
    for i in indices:
        pair = pairs[i]
        for method, extract in extractors.items():
            t0 = time.perf_counter()
            f1, f2 = extract(pair.image1), extract(pair.image2)
            elapsed = time.perf_counter() - t0
            rec = pair_metrics(f1, f2, pair.H, pair.image1.shape[:2], pair.image2.shape[:2], cfg)
            rec.name, rec.split, rec.extract_s = pair.name, pair.split, elapsed
            rec.metric_s = time.perf_counter() - t0 - elapsed
            records[method].append(rec)
    return records


def summarize_all(
    records: dict[str, list[PairRecord]], cfg: HomographyEvalConfig
) -> dict[str, float]:
    """Flat ``{"<split>/<method>/<metric>": value}`` for every split and ``overall``."""
    out: dict[str, float] = {}
    for method, recs in records.items():
        splits = sorted({r.split for r in recs})
        for split in [*splits, "overall"]:
            group = recs if split == "overall" else [r for r in recs if r.split == split]
            for key, value in summarize(group, cfg).items():
                out[f"{split}/{method}/{key}"] = value
    return out
