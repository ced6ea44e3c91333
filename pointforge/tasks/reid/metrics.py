"""Query → gallery ranking metrics: CMC, mAP and mINP, computed query chunk by query chunk.

Protocol (Market-1501, Zheng et al. 2015; the same for DukeMTMC-reID): for every query the
gallery is sorted by distance; gallery images of the query's identity taken by the query's
camera are removed (they are "too easy": same tracklet), and junk images (identity -1) are
removed as well, neither positives nor negatives. Distractors (identity 0) stay as negatives.

- CMC rank-k: fraction of queries whose first correct match is within the top k;
- AP: mean of the precision at each correct match (the non-interpolated AP of torchreid and
  FastReID; the official Market MATLAB code averages neighbouring precisions instead);
- INP (Ye et al. 2021, "Deep Learning for Person Re-identification: A Survey", eq. 8):
  ``|G| / R_hard``, the number of correct matches over the rank of the hardest (last) one;
  mINP is its mean.

Queries with no valid gallery match are left out of every mean and counted in
``num_no_match``.

Memory: the full ``(Q, G)`` distance matrix is never built; each chunk of ``c`` queries uses
about ``50·c·G`` bytes (the chunk's distances, sort order, gathered pids/cameras, a few
per-entry masks and cumulative counts), e.g. ~130 MB for ``c = 128`` against a 20 000-image
gallery (``benchmarks/bench_reid_eval.py`` measures it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

JUNK_PID = -1  # Market-1501 / DukeMTMC-reID file names: identity -1 marks junk images
DEFAULT_CHUNK = 128  # queries per chunk; see the memory note in the module docstring
METRICS = ("cosine", "euclidean")


@dataclass
class RankResult:
    """``cmc[k-1]`` = rank-k accuracy (``max_rank`` entries), all fractions in [0, 1]."""

    cmc: np.ndarray
    mAP: float
    mINP: float
    num_valid: int
    num_no_match: int


def query_distances(
    query: torch.Tensor, gallery: torch.Tensor, metric: str = "cosine"
) -> torch.Tensor:
    """``(c, D)``, ``(G, D)`` → ``(c, G)`` float32 distances.

    "cosine": ``1 - cos``; "euclidean": ``‖q - g‖`` (from ``|q|² + |g|² - 2 q·g``).
    """
    if metric not in METRICS:
        raise ValueError(f"distance metric must be one of {METRICS}, got {metric!r}")
    q, g = query.float(), gallery.float()
    if metric == "cosine":
        return 1.0 - F.normalize(q, dim=1) @ F.normalize(g, dim=1).t()
    d2 = (q * q).sum(1, keepdim=True) + (g * g).sum(1)[None, :] - 2.0 * (q @ g.t())
    return d2.clamp(min=0).sqrt()


class RankAccumulator:
    """Accumulates CMC counts, AP and INP over query chunks against a fixed gallery.

    ``gallery_pids``, ``gallery_camids``: ``(G,)`` int64.
    """

    def __init__(
        self,
        gallery_pids: torch.Tensor,
        gallery_camids: torch.Tensor,
        max_rank: int = 50,
        junk_pid: int | None = JUNK_PID,
    ) -> None:
        self.g_pids = torch.as_tensor(gallery_pids, dtype=torch.int64)
        self.g_camids = torch.as_tensor(gallery_camids, dtype=torch.int64)
        self.max_rank = max_rank
        self.junk_pid = junk_pid
        self.cmc_counts = np.zeros(max_rank, dtype=np.int64)
        self.ap_sum = 0.0
        self.inp_sum = 0.0
        self.num_valid = 0
        self.num_no_match = 0

    def update(
        self, dist: torch.Tensor, query_pids: torch.Tensor, query_camids: torch.Tensor
    ) -> None:
        """``dist (c, G)`` distances of ``c`` queries; ``query_pids``, ``query_camids`` ``(c,)``."""
        order = torch.sort(dist.float(), dim=1, stable=True).indices  # ties: gallery order
        gp, gc = self.g_pids[order], self.g_camids[order]
        del order
        qp = torch.as_tensor(query_pids, dtype=torch.int64)[:, None]
        qc = torch.as_tensor(query_camids, dtype=torch.int64)[:, None]
        match = gp == qp
        removed = match & (gc == qc)
        if self.junk_pid is not None:
            removed |= gp == self.junk_pid
        keep = ~removed
        good = match & keep
        del gp, gc, match, removed
        rank = keep.cumsum(dim=1, dtype=torch.int32) - 1  # 0-based rank among kept entries
        hits = good.cumsum(dim=1, dtype=torch.int32)  # correct matches up to this entry
        num_good = hits[:, -1]
        valid = num_good > 0
        self.num_no_match += int((~valid).sum())
        if not bool(valid.any()):
            return
        big = torch.iinfo(torch.int32).max
        first = torch.where(good, rank, big).min(dim=1).values
        last = torch.where(good, rank, -1).max(dim=1).values
        # precision at each correct match (rank >= 0 there; elsewhere it is masked out)
        precision = hits.double() / (rank + 1).clamp(min=1).double()
        ap = torch.where(good, precision, 0.0).sum(dim=1) / num_good.clamp(min=1)
        inp = num_good.double() / (last + 1).clamp(min=1).double()
        first_valid = first[valid].long()
        counts = torch.bincount(first_valid.clamp(max=self.max_rank), minlength=self.max_rank + 1)
        self.cmc_counts += np.cumsum(counts[: self.max_rank].numpy())
        self.ap_sum += float(ap[valid].sum())
        self.inp_sum += float(inp[valid].sum())
        self.num_valid += int(valid.sum())

    def result(self) -> RankResult:
        n = max(self.num_valid, 1)
        return RankResult(
            cmc=self.cmc_counts / n,
            mAP=self.ap_sum / n,
            mINP=self.inp_sum / n,
            num_valid=self.num_valid,
            num_no_match=self.num_no_match,
        )


def rank_from_distance_chunks(
    chunks: Iterable[tuple[int, torch.Tensor]],
    query_pids: torch.Tensor,
    query_camids: torch.Tensor,
    gallery_pids: torch.Tensor,
    gallery_camids: torch.Tensor,
    max_rank: int = 50,
    junk_pid: int | None = JUNK_PID,
) -> RankResult:
    """Metrics from ``(start, dist (c, G))`` chunks covering the queries (e.g. re-ranked ones)."""
    acc = RankAccumulator(gallery_pids, gallery_camids, max_rank, junk_pid)
    q_pids = torch.as_tensor(query_pids, dtype=torch.int64)
    q_camids = torch.as_tensor(query_camids, dtype=torch.int64)
    covered = 0
    for start, dist in chunks:
        end = start + dist.shape[0]
        acc.update(dist, q_pids[start:end], q_camids[start:end])
        covered += dist.shape[0]
    if covered != len(q_pids):
        raise ValueError(f"distance chunks covered {covered} of {len(q_pids)} queries")
    return acc.result()


def evaluate_rank(
    query_features: torch.Tensor,
    gallery_features: torch.Tensor,
    query_pids: torch.Tensor,
    gallery_pids: torch.Tensor,
    query_camids: torch.Tensor,
    gallery_camids: torch.Tensor,
    metric: str = "cosine",
    chunk_size: int = DEFAULT_CHUNK,
    max_rank: int = 50,
    junk_pid: int | None = JUNK_PID,
) -> RankResult:
    """CMC / mAP / mINP of ``(Q, D)`` queries against a ``(G, D)`` gallery, in query chunks."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if query_features.shape[1] != gallery_features.shape[1]:
        raise ValueError(
            f"query features are {query_features.shape[1]}-d but gallery features are "
            f"{gallery_features.shape[1]}-d"
        )
    gallery = gallery_features.float()

    def chunks() -> Iterable[tuple[int, torch.Tensor]]:
        for start in range(0, len(query_features), chunk_size):
            q = query_features[start : start + chunk_size]
            yield start, query_distances(q, gallery, metric)

    return rank_from_distance_chunks(
        chunks(), query_pids, query_camids, gallery_pids, gallery_camids, max_rank, junk_pid
    )
