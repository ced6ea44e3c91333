"""NMS families against plain-Python references written from the papers' definitions."""

from __future__ import annotations

import importlib
import math

import pytest
import torch

from pointforge import ops

# The package re-exports the function `nms`, which shadows the submodule as an attribute.
nms_module = importlib.import_module("pointforge.ops.nms")


def iou_ref(a: list[float], b: list[float]) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(
        0.0, min(a[3], b[3]) - max(a[1], b[1])
    )
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def diou_ref(a: list[float], b: list[float]) -> float:
    cw = max(a[2], b[2]) - min(a[0], b[0])
    ch = max(a[3], b[3]) - min(a[1], b[1])
    rho2 = ((a[0] + a[2] - b[0] - b[2]) / 2) ** 2 + ((a[1] + a[3] - b[1] - b[3]) / 2) ** 2
    return iou_ref(a, b) - (rho2 / (cw**2 + ch**2) if cw**2 + ch**2 > 0 else 0.0)


def order_of(scores: list[float]) -> list[int]:
    """Decreasing score, ties by lower index."""
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def greedy_ref(boxes, scores, classes, crit, thr) -> tuple[list[int], dict[int, list[int]]]:
    """Textbook greedy NMS; also returns each kept box's cluster (itself + what it removed)."""
    remaining = order_of(scores)
    keep, clusters = [], {}
    while remaining:
        m = remaining.pop(0)
        keep.append(m)
        gone = [j for j in remaining if classes[j] == classes[m] and crit(boxes[m], boxes[j]) > thr]
        clusters[m] = [m, *gone]
        remaining = [j for j in remaining if j not in gone]
    return keep, clusters


def soft_ref(boxes, scores, classes, nt, sigma, thr, method) -> tuple[list[int], list[float]]:
    """Bodla et al. 2017, Algorithm 1, one box at a time."""
    s = list(scores)
    live = [i for i in range(len(s)) if s[i] >= thr]
    keep, kept_scores = [], []
    while live:
        m = max(live, key=lambda i: (s[i], -i))
        keep.append(m)
        kept_scores.append(s[m])
        live.remove(m)
        for j in live:
            if classes[j] != classes[m]:
                continue
            o = iou_ref(boxes[m], boxes[j])
            if method == "linear":
                s[j] *= 1 - o if o >= nt else 1.0
            else:
                s[j] *= math.exp(-o * o / sigma)
        live = [j for j in live if s[j] >= thr]
    return keep, kept_scores


def clustered(n: int, seed: int, centres: int = 6, classes: int = 3):
    """Float64 boxes jittered around a few centres (so NMS has work), uniform scores, classes;
    also a handful of zero-width, zero-height and exactly repeated boxes."""
    g = torch.Generator().manual_seed(seed)
    c = torch.rand(centres, 2, generator=g, dtype=torch.float64) * 60
    size = torch.rand(centres, 2, generator=g, dtype=torch.float64) * 20 + 5
    pick = torch.randint(centres, (n,), generator=g)
    jitter = torch.randn(n, 4, generator=g, dtype=torch.float64) * 2.5
    xy = c[pick] + jitter[:, :2]
    wh = (size[pick] + jitter[:, 2:]).clamp(min=1)
    wh[::9, 0] = 0
    wh[::11, 1] = 0
    boxes = torch.cat([xy - wh / 2, xy + wh / 2], dim=1)
    boxes[5::13] = boxes[1]
    scores = torch.rand(n, generator=g, dtype=torch.float64)
    idxs = torch.randint(classes, (n,), generator=g)
    return boxes, scores, idxs


CASES = [clustered(70, seed) for seed in range(3)]


def as_lists(boxes, scores, idxs):
    return boxes.tolist(), scores.tolist(), idxs.tolist()


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("thr", [0.3, 0.5])
def test_hard_and_diou_nms_match_greedy_reference(case: int, thr: float) -> None:
    boxes, scores, idxs = CASES[case]
    b, s, c = as_lists(boxes, scores, idxs)
    same = [0] * len(s)
    for crit, plain, batched in (
        (iou_ref, ops.nms, ops.batched_nms),
        (diou_ref, ops.diou_nms, ops.batched_diou_nms),
    ):
        keep = plain(boxes, scores, thr)
        assert keep.dtype == torch.int64
        assert keep.tolist() == greedy_ref(b, s, same, crit, thr)[0]
        assert batched(boxes, scores, idxs, thr).tolist() == greedy_ref(b, s, c, crit, thr)[0]


def test_diou_nms_across_blocks_and_column_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    boxes, scores, idxs = CASES[0]
    b, s, c = as_lists(boxes, scores, idxs)
    monkeypatch.setattr(nms_module, "_BLOCK", 7)
    monkeypatch.setattr(nms_module, "_MAX_PAIRS", 50)
    assert ops.diou_nms(boxes, scores, 0.4).tolist() == greedy_ref(b, s, [0] * 70, diou_ref, 0.4)[0]
    got = ops.batched_diou_nms(boxes, scores, idxs, 0.4).tolist()
    assert got == greedy_ref(b, s, c, diou_ref, 0.4)[0]


def test_diou_nms_is_nms_when_centres_coincide() -> None:
    g = torch.Generator().manual_seed(7)
    half = torch.rand(40, 2, generator=g) * 10 + 1
    boxes = torch.cat([20 - half, 20 + half], dim=1)
    scores = torch.rand(40, generator=g)
    assert torch.equal(ops.diou_nms(boxes, scores, 0.5), ops.nms(boxes, scores, 0.5))


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("method", ["linear", "gaussian"])
def test_soft_nms_matches_reference(case: int, method: str) -> None:
    boxes, scores, idxs = CASES[case]
    b, s, c = as_lists(boxes, scores, idxs)
    for classes, (keep, kept) in (
        ([0] * len(s), ops.soft_nms(boxes, scores, method=method)),
        (c, ops.batched_soft_nms(boxes, scores, idxs, method=method)),
    ):
        want_keep, want_scores = soft_ref(b, s, classes, 0.3, 0.5, 0.001, method)
        assert keep.dtype == torch.int64 and keep.tolist() == want_keep
        torch.testing.assert_close(kept, torch.tensor(want_scores, dtype=kept.dtype))
        assert bool((kept[1:] <= kept[:-1]).all())
    # A larger score threshold drops more, never adds.
    keep, kept = ops.soft_nms(boxes, scores, method=method, score_threshold=0.2)
    assert keep.tolist() == soft_ref(b, s, [0] * len(s), 0.3, 0.5, 0.2, method)[0]
    assert bool((kept >= 0.2).all())


@pytest.mark.parametrize("case", range(len(CASES)))
def test_weighted_nms_matches_reference(case: int) -> None:
    boxes, scores, idxs = CASES[case]
    b, s, c = as_lists(boxes, scores, idxs)
    for classes, (keep, merged) in (
        ([0] * len(s), ops.weighted_nms(boxes, scores, 0.5)),
        (c, ops.batched_weighted_nms(boxes, scores, idxs, 0.5)),
    ):
        want_keep, clusters = greedy_ref(b, s, classes, iou_ref, 0.5)
        assert keep.tolist() == want_keep
        want = [
            [
                sum(s[j] * b[j][k] for j in clusters[m]) / sum(s[j] for j in clusters[m])
                for k in range(4)
            ]
            for m in want_keep
        ]
        torch.testing.assert_close(merged, torch.tensor(want, dtype=merged.dtype))


def test_weighted_nms_hand_case_and_errors() -> None:
    # IoU((0,0,10,10), (1,1,11,11)) = 81/119 > 0.5: merged = 0.9·A + 0.1·B = (0.1, 0.1, 10.1, 10.1).
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [50.0, 50, 60, 60]])
    scores = torch.tensor([0.9, 0.1, 0.0])
    keep, merged = ops.weighted_nms(boxes, scores, 0.5)
    assert keep.tolist() == [0, 2]
    torch.testing.assert_close(merged, torch.tensor([[0.1, 0.1, 10.1, 10.1], [50.0, 50, 60, 60]]))
    with pytest.raises(ValueError, match="scores must be >= 0"):
        ops.weighted_nms(boxes, torch.tensor([0.9, -0.1, 0.2]), 0.5)


def test_identical_zero_area_single_and_empty() -> None:
    box = torch.tensor([[2.0, 3.0, 8.0, 9.0]])
    same = box.repeat(4, 1)
    scores = torch.tensor([0.2, 0.9, 0.5, 0.7])
    for f in (ops.nms, ops.diou_nms):
        assert f(same, scores, 0.5).tolist() == [1]
    keep, merged = ops.weighted_nms(same, scores, 0.5)
    assert keep.tolist() == [1]
    torch.testing.assert_close(merged, box)
    # Linear: IoU 1 decays the copies to 0 (dropped); Gaussian: each pick multiplies the rest
    # by exp(-1/0.5), and the last copy ends at 0.2·e⁻⁶ = 0.0005 < 0.001 (dropped).
    assert ops.soft_nms(same, scores)[0].tolist() == [1]
    keep, kept = ops.soft_nms(same, scores, method="gaussian")
    assert keep.tolist() == [1, 3, 2]
    e = math.exp(-2)
    torch.testing.assert_close(kept, torch.tensor([0.9, 0.7 * e, 0.5 * e * e]))
    # Zero-area boxes have IoU 0 with everything (documented): nothing is suppressed.
    points = torch.tensor([[1.0, 1, 1, 1], [1.0, 1, 1, 1], [0.0, 5, 9, 5]])
    p_scores = torch.tensor([0.3, 0.8, 0.5])
    for f in (ops.nms, ops.diou_nms):
        assert f(points, p_scores, 0.5).tolist() == [1, 2, 0]
    assert ops.soft_nms(points, p_scores, method="gaussian")[0].tolist() == [1, 2, 0]
    assert ops.weighted_nms(points, p_scores, 0.5)[0].tolist() == [1, 2, 0]
    # Single box and empty input.
    one = torch.tensor([0.4])
    for f in (ops.nms, ops.diou_nms):
        assert f(box, one, 0.5).tolist() == [0]
    assert ops.soft_nms(box, one)[0].tolist() == [0]
    assert ops.weighted_nms(box, one, 0.5)[0].tolist() == [0]
    none, no_scores, no_idxs = torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64)
    for keep in (
        ops.nms(none, no_scores, 0.5),
        ops.batched_diou_nms(none, no_scores, no_idxs, 0.5),
        ops.batched_soft_nms(none, no_scores, no_idxs)[0],
        ops.batched_weighted_nms(none, no_scores, no_idxs, 0.5)[0],
    ):
        assert keep.shape == (0,) and keep.dtype == torch.int64
    assert ops.soft_nms(none, no_scores)[1].shape == (0,)
    assert ops.weighted_nms(none, no_scores, 0.5)[1].shape == (0, 4)


def test_classes_never_suppress_each_other() -> None:
    box = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    boxes = box.repeat(3, 1)
    scores = torch.tensor([0.9, 0.8, 0.7])
    idxs = torch.tensor([0, 1, 0])
    assert ops.batched_nms(boxes, scores, idxs, 0.5).tolist() == [0, 1]
    assert ops.batched_diou_nms(boxes, scores, idxs, 0.5).tolist() == [0, 1]
    keep, kept = ops.batched_soft_nms(boxes, scores, idxs, method="gaussian")
    assert keep.tolist() == [0, 1, 2]
    torch.testing.assert_close(kept, torch.tensor([0.9, 0.8, 0.7 * math.exp(-2)]))
    keep, merged = ops.batched_weighted_nms(
        boxes + torch.tensor([[0.0], [5.0], [1.0]]), scores, idxs, 0.5
    )
    assert keep.tolist() == [0, 1]
    # Class 0 merges boxes 0 and 2 (offsets 0 and 1, weights 0.9 and 0.7); class 1 stays alone.
    torch.testing.assert_close(merged[:, 0], torch.tensor([0.7 / 1.6, 5.0]))


def test_bad_input_is_named() -> None:
    boxes, scores = torch.zeros(3, 4), torch.zeros(3)
    with pytest.raises(ValueError, match="boxes"):
        ops.diou_nms(torch.zeros(3, 5), scores, 0.5)
    with pytest.raises(ValueError, match="scores"):
        ops.soft_nms(boxes, torch.zeros(4))
    with pytest.raises(ValueError, match="idxs"):
        ops.batched_weighted_nms(boxes, scores, torch.zeros(2, dtype=torch.int64), 0.5)
    with pytest.raises(ValueError, match="method"):
        ops.soft_nms(boxes, scores, method="cubic")
    with pytest.raises(ValueError, match="sigma"):
        ops.soft_nms(boxes, scores, method="gaussian", sigma=0.0)
    with pytest.raises(ValueError, match="score_threshold"):
        ops.soft_nms(boxes, scores, score_threshold=-math.inf)
