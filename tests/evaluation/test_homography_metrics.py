"""Homography-benchmark metrics against hand-computed cases (docs/evaluation.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pointforge.evaluation.homography import (
    HomographyEvalConfig,
    PairRecord,
    corner_error,
    error_auc,
    mutual_nn,
    nn_average_precision,
    pair_metrics,
    repeatability,
    summarize,
    summarize_all,
)

SHAPE = (100, 200)  # (h, w)
SHIFT = torch.tensor([[1.0, 0, 5], [0, 1, 0], [0, 0, 1]], dtype=torch.float64)


def t(x) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float64)


def test_repeatability_and_mle_hand_case() -> None:
    # H shifts x by +5. Kept in image 2's view: (10,10) (20,20) (60,60); (198,50) → x 203 out.
    kp1 = t([[10, 10], [20, 20], [198, 50], [60, 60]])
    # Kept in image 1's view: (15,10) (25,22) (150,80); (2,50) → x -3 out.
    kp2 = t([[15, 10], [25, 22], [2, 50], [150, 80]])
    rep, mle = repeatability(kp1, kp2, SHIFT, SHAPE, SHAPE, 3.0)
    # Correct: 2 of image 1 (distances 0, 2) + 2 of image 2 (0, 2) over 3 + 3 points.
    assert rep == pytest.approx(4 / 6)
    assert mle == pytest.approx(1.0)
    # A tighter radius drops the 2-px pair in both directions.
    rep1, mle1 = repeatability(kp1, kp2, SHIFT, SHAPE, SHAPE, 1.5)
    assert rep1 == pytest.approx(2 / 6) and mle1 == pytest.approx(0.0)


def test_repeatability_empty_views() -> None:
    rep, mle = repeatability(t([[199, 5]]), t([[0, 5]]), SHIFT, SHAPE, SHAPE, 3.0)
    assert math.isnan(rep) and math.isnan(mle)
    rep, mle = repeatability(t([[10, 5]]), t([[0, 5]]), SHIFT, SHAPE, SHAPE, 3.0)
    assert rep == 0.0 and math.isnan(mle)


def test_mutual_nn_keeps_only_mutual_pairs() -> None:
    d1 = torch.tensor([[1.0, 0], [0, 1], [0.7, 0.7]])
    d2 = torch.tensor([[0.0, 1], [1, 0.1]])
    # 2 → 1 but 1 → 0, so (2, 1) is not mutual.
    assert mutual_nn(d1, d2).tolist() == [[0, 1], [1, 0]]
    assert mutual_nn(d1[:0], d2).shape == (0, 2)


def test_corner_error_hand_case() -> None:
    eye = np.eye(3)
    shift = np.array([[1.0, 0, 1], [0, 1, 0], [0, 0, 1]])
    assert corner_error(shift, eye, (11, 21)) == pytest.approx(1.0)
    # Scale ×2 about the origin on a 21×11 image: corners (0,0) (20,0) (20,10) (0,10) move by
    # 0, 20, √500, 10.
    scale = np.diag([2.0, 2.0, 1.0])
    assert corner_error(scale, eye, (11, 21)) == pytest.approx((20 + math.sqrt(500) + 10) / 4)


def test_error_auc_hand_case() -> None:
    # Sorted errors 0.5 2 4 inf, recall steps of 1/4, curve joined linearly from (0, 0).
    aucs = error_auc(np.array([2.0, 0.5, math.inf, 4.0]), (1.0, 3.0, 5.0))
    assert aucs == pytest.approx([0.1875, 1.125 / 3, 2.625 / 5])
    assert error_auc(np.zeros(3), (1.0,)) == pytest.approx([1.0])
    assert error_auc(np.full(3, math.inf), (1.0,)) == pytest.approx([0.0])


def test_nn_map_hand_case() -> None:
    warped1 = t([[0, 0], [10, 0], [20, 0]])
    kp2 = t([[0, 1], [10, 0], [50, 50]])
    # Positives: points 0 and 1 have a counterpart within 3 px; point 2 has none.
    desc2 = torch.tensor([[0.0], [10.0], [20.0]])
    # NN: 0 → kp2[0] (correct, dist .1), 1 → kp2[2] (wrong, .2), 2 → kp2[1] (wrong, .05).
    desc1 = torch.tensor([[0.1], [20.2], [10.05]])
    # Ranking: wrong, correct, wrong → precision at the hit = 1/2, over 2 positives.
    assert nn_average_precision(desc1, desc2, warped1, kp2, 3.0) == pytest.approx(0.25)


def _features(kp: np.ndarray, desc: np.ndarray | None) -> dict:
    return {"keypoints": kp.astype(np.float32), "scores": None, "descriptors": desc}


def test_pair_metrics_matching_score_and_homography() -> None:
    rng = np.random.default_rng(0)
    H = np.array([[0.9, 0.1, 12.0], [-0.05, 1.1, 4.0], [1e-4, 2e-4, 1.0]])
    kp1 = rng.uniform([20, 10], [170, 80], size=(40, 2))
    p = np.c_[kp1, np.ones(40)] @ H.T
    kp2 = p[:, :2] / p[:, 2:]
    desc = rng.normal(size=(40, 16)).astype(np.float32)
    desc /= np.linalg.norm(desc, axis=1, keepdims=True)
    desc2 = desc.copy()
    desc2[[0, 1]] = desc2[[1, 0]]  # two swapped descriptors: mutual NN but wrong place
    cfg = HomographyEvalConfig()
    rec = pair_metrics(_features(kp1, desc), _features(kp2, desc2), H, SHAPE, (120, 230), cfg)
    inside = (kp2[:, 0] <= 229) & (kp2[:, 1] <= 119) & (kp2.min(1) >= 0)
    assert inside.all()  # every point is in the shared view
    assert rec.rep == pytest.approx(1.0) and rec.mle == pytest.approx(0.0, abs=1e-4)
    assert rec.m_score == pytest.approx(38 / 40)
    assert rec.corner_error < 0.01 and rec.inliers.sum() == 38
    # Every NN distance is 0, so the stable ranking puts the 2 wrong matches (indices 0, 1)
    # first: the k-th correct match has precision k / (k + 2); 40 positives.
    assert rec.nn_ap == pytest.approx(sum(k / (k + 2) for k in range(1, 39)) / 40)
    # Detector-only: descriptor metrics are NaN, repeatability still measured.
    rec = pair_metrics(_features(kp1, None), _features(kp2, None), H, SHAPE, (120, 230), cfg)
    assert rec.rep == pytest.approx(1.0)
    assert all(math.isnan(v) for v in (rec.corner_error, rec.nn_ap, rec.m_score))


def test_pair_metrics_too_few_matches_is_a_failure_not_a_crash() -> None:
    kp = np.array([[10.0, 10], [30, 30]])
    desc = np.eye(2, dtype=np.float32)
    rec = pair_metrics(
        _features(kp, desc), _features(kp, desc), np.eye(3), SHAPE, SHAPE, HomographyEvalConfig()
    )
    assert rec.corner_error == math.inf and rec.m_score == pytest.approx(1.0)


def _record(split: str, err: float, rep: float = 0.5) -> PairRecord:
    return PairRecord("p", split, rep, 1.0, err, 0.5, 0.4, 100.0, extract_s=0.01)


def test_summarize_per_split_and_overall() -> None:
    cfg = HomographyEvalConfig()
    recs = {
        "a": [_record("i", 0.5), _record("i", 2.0), _record("v", math.inf), _record("v", 4.0)],
        "det": [_record("i", math.nan), _record("v", math.nan, rep=math.nan)],
    }
    out = summarize_all(recs, cfg)
    assert out["overall/a/h_acc@1"] == 0.25 and out["overall/a/h_acc@3"] == 0.5
    assert out["overall/a/h_acc@5"] == 0.75 and out["i/a/h_acc@3"] == 1.0
    assert out["v/a/h_acc@5"] == 0.5
    assert out["overall/a/auc@1"] == pytest.approx(0.1875)
    assert out["overall/a/ms_per_pair"] == pytest.approx(10.0) and "i/a/metric_ms" in out
    assert math.isnan(out["overall/det/h_acc@3"]) and math.isnan(out["overall/det/auc@5"])
    assert out["overall/det/rep"] == 0.5  # NaN pairs are skipped, not averaged as 0
    assert summarize([], cfg) == {}
