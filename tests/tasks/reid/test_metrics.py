from __future__ import annotations

import numpy as np
import pytest
import torch

from pointforge.tasks.reid.metrics import evaluate_rank, rank_from_distance_chunks


def test_hand_computed_case() -> None:
    # gallery:      g0   g1   g2   g3   g4   g5   g6
    g_pids = torch.tensor([2, 1, 1, -1, 3, 1, 0])
    g_cams = torch.tensor([1, 0, 1, 1, 2, 2, 1])
    q_pids, q_cams = torch.tensor([1, 3, 5]), torch.tensor([0, 0, 0])
    dist = torch.tensor(
        [
            [0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.6],
            [0.5, 0.6, 0.7, 0.01, 0.05, 0.8, 0.9],
            [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
        ]
    )
    # Query 0 (pid 1, cam 0): g1 is the same identity in the same camera and g3 is junk, both
    # removed; the ranked list is g0(-) g2(+) g4(-) g5(+) g6(-): matches at ranks 2 and 4.
    #   AP = (1/2 + 2/4) / 2 = 0.5; INP = 2 matches / rank 4 of the last = 0.5; first hit rank 2.
    # Query 1 (pid 3): junk g3 (nearest) removed, g4 first → AP = 1, INP = 1/1 = 1, rank 1.
    # Query 2 (pid 5): no match in the gallery → left out of the means, counted.
    result = rank_from_distance_chunks([(0, dist[:2]), (2, dist[2:])], q_pids, q_cams, g_pids,
                                       g_cams, max_rank=5)  # fmt: skip
    assert result.num_valid == 2 and result.num_no_match == 1
    np.testing.assert_allclose(result.cmc, [0.5, 1.0, 1.0, 1.0, 1.0])
    assert result.mAP == pytest.approx((0.5 + 1.0) / 2)
    assert result.mINP == pytest.approx((0.5 + 1.0) / 2)


def test_same_camera_match_only_counts_as_no_match() -> None:
    # The only image of the query's identity is from the query's camera: no valid match.
    result = rank_from_distance_chunks([(0, torch.tensor([[0.1, 0.5]]))], torch.tensor([4]),
                                       torch.tensor([2]), torch.tensor([4, 9]),
                                       torch.tensor([2, 1]), max_rank=2)  # fmt: skip
    assert result.num_valid == 0 and result.num_no_match == 1


def brute_force(qf, gf, qp, gp, qc, gc, metric, max_rank):
    """Full distance matrix and one loop per query (float64)."""
    qf, gf = qf.double().numpy(), gf.double().numpy()
    if metric == "cosine":
        qn = qf / np.linalg.norm(qf, axis=1, keepdims=True)
        gn = gf / np.linalg.norm(gf, axis=1, keepdims=True)
        dist = 1 - qn @ gn.T
    else:
        dist = np.sqrt(((qf[:, None, :] - gf[None, :, :]) ** 2).sum(-1))
    cmc, aps, inps = np.zeros(max_rank), [], []
    for i in range(len(qf)):
        order = np.argsort(dist[i], kind="stable")
        kept = [j for j in order if not (gp[j] == qp[i] and gc[j] == qc[i]) and gp[j] != -1]
        hits = [rank for rank, j in enumerate(kept) if gp[j] == qp[i]]
        if not hits:
            continue
        cmc[hits[0] :] += 1
        aps.append(np.mean([(n + 1) / (rank + 1) for n, rank in enumerate(hits)]))
        inps.append(len(hits) / (hits[-1] + 1))
    return cmc / len(aps), float(np.mean(aps)), float(np.mean(inps)), len(aps)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_chunked_equals_brute_force(metric: str) -> None:
    g = torch.Generator().manual_seed(0)
    nq, ng = 23, 61
    qf, gf = torch.randn(nq, 8, generator=g), torch.randn(ng, 8, generator=g)
    qp, gp = torch.randint(1, 8, (nq,), generator=g), torch.randint(-1, 8, (ng,), generator=g)
    qc, gc = torch.randint(0, 3, (nq,), generator=g), torch.randint(0, 3, (ng,), generator=g)
    qp[0] = 99  # a query without any match
    gf[:10] += 0.5 * qf[:10]  # some structure so the ranks are not all chance
    ref = brute_force(qf, gf, qp.numpy(), gp.numpy(), qc.numpy(), gc.numpy(), metric, 20)
    for chunk in (1, 4, 7, 100):
        res = evaluate_rank(qf, gf, qp, gp, qc, gc, metric=metric, chunk_size=chunk, max_rank=20)
        np.testing.assert_allclose(res.cmc, ref[0])
        assert res.mAP == pytest.approx(ref[1]) and res.mINP == pytest.approx(ref[2])
        assert res.num_valid == ref[3] and res.num_no_match == nq - ref[3]
