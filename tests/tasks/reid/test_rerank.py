from __future__ import annotations

import numpy as np
import pytest
import torch

from pointforge.tasks.reid.rerank import rerank_distance_chunks, rerank_distances


def reference_rerank(qf: np.ndarray, gf: np.ndarray, k1: int, k2: int, lam: float) -> np.ndarray:
    """Zhong et al. 2017, written from the paper's equations with full matrices and loops."""
    feats = np.concatenate([qf, gf]).astype(np.float64)
    n, nq = len(feats), len(qf)
    d = ((feats[:, None] - feats[None]) ** 2).sum(-1)
    d = d / d.max(axis=1, keepdims=True)
    rank = np.argsort(d, axis=1, kind="stable")

    def recip(i: int, k: int) -> set[int]:  # eq. 4
        return {int(j) for j in rank[i, : k + 1] if i in rank[j, : k + 1]}

    v = np.zeros((n, n))
    for i in range(n):
        r = recip(i, k1)
        star = set(r)
        for c in r:  # eq. 6
            rc = recip(c, int(np.around(k1 / 2)))
            if len(rc & r) > 2 / 3 * len(rc):
                star |= rc
        idx = sorted(star)
        w = np.exp(-d[i, idx])  # eq. 7
        v[i, idx] = w / w.sum()
    if k2 > 1:  # eq. 11
        v = np.stack([v[rank[i, :k2]].mean(axis=0) for i in range(n)])
    out = np.zeros((nq, n - nq))
    for i in range(nq):
        for j in range(nq, n):
            jac = 1 - np.minimum(v[i], v[j]).sum() / np.maximum(v[i], v[j]).sum()  # eq. 10
            out[i, j - nq] = (1 - lam) * jac + lam * d[i, j]  # eq. 12
    return out


@pytest.mark.parametrize(("k1", "k2", "nq", "ng"), [(6, 3, 9, 25), (20, 6, 14, 40), (5, 1, 5, 12)])
def test_matches_reference(k1: int, k2: int, nq: int, ng: int) -> None:
    rng = np.random.default_rng(k1)
    centres = rng.normal(size=(6, 8))
    qf = centres[rng.integers(0, 6, nq)] + 0.6 * rng.normal(size=(nq, 8))
    gf = centres[rng.integers(0, 6, ng)] + 0.6 * rng.normal(size=(ng, 8))
    ref = reference_rerank(qf, gf, k1, k2, 0.3)
    q, g = torch.from_numpy(qf).float(), torch.from_numpy(gf).float()
    for chunk in (3, 64):
        got = rerank_distances(q, g, k1, k2, 0.3, chunk_size=chunk)
        np.testing.assert_allclose(got.numpy(), ref, atol=2e-5)
    starts = [s for s, _ in rerank_distance_chunks(q, g, k1, k2, 0.3, chunk_size=4)]
    assert starts == list(range(0, nq, 4))
