"""k-reciprocal re-ranking (Zhong et al. 2017, "Re-ranking Person Re-identification with
k-reciprocal Encoding"), vectorised and chunked.

Equations (numbers from the paper):

- ``d(i, j)``: squared Euclidean distance between the ``N = Q + G`` probe and gallery
  features, each row divided by its maximum (the authors' released code does this);
- ``N(i, k)``: the ``k`` nearest neighbours of ``i`` (itself included, hence ``k + 1``
  entries); ``R(i, k) = {j ∈ N(i, k) : i ∈ N(j, k)}`` (eq. 4);
- ``R*(i, k)``: ``R(i, k)`` plus ``R(c, round(k/2))`` of every ``c ∈ R(i, k)`` whose half set
  shares more than 2/3 of its members with ``R(i, k)`` (eq. 6);
- ``V_ij = exp(-d(i, j))`` for ``j ∈ R*(i, k1)``, 0 elsewhere, rows normalised to sum 1 (eq. 7);
- local query expansion: ``V_i ← mean of V_j over j ∈ N(i, k2)`` (eq. 11);
- Jaccard distance ``d_J(i, j) = 1 - Σ min(V_i, V_j) / Σ max(V_i, V_j)`` (eqs. 8-10), with
  ``Σ max = 2 - Σ min`` because the rows sum to 1;
- final distance ``(1 - λ) d_J + λ d`` (eq. 12). Defaults k1 = 20, k2 = 6, λ = 0.3 (§4.3).

Memory: no ``(N, N)`` array is built. The distances are computed ``chunk_size`` rows at a time
(``(chunk, N)`` float32) and only the ``k1 + 1`` nearest neighbours of each row are kept; the
k-reciprocal sets are ``(N, k1 + 1)`` index arrays; ``V`` and its expansion are scipy sparse
matrices with at most ``S = (k1 + 1)(round(k1/2) + 2)`` (V) and ``k2·S`` (expanded) non-zeros
per row, in practice a few tens to a few hundred. ``Σ min(V_i, V_j)`` is summed over the
columns where both rows are non-zero (inverted index over the gallery rows, as in the paper's
code), in groups of query rows bounded by :data:`PAIR_BUDGET` index pairs. What is inherently
O(N²) is the time of the neighbour search, and the ``(Q, G)`` output that
:func:`rerank_distances` concatenates (use :func:`rerank_distance_chunks` to avoid it).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch

K1, K2, LAMBDA = 20, 6, 0.3  # Zhong et al. 2017, §4.3
PAIR_BUDGET = 4_000_000  # (query entry, gallery entry) pairs per Jaccard step: ~100 MB
GATHER_BUDGET = 8_000_000  # floats gathered at once to weigh the expanded sets: 32 MB


def _sq_distances(feats: torch.Tensor, sq: torch.Tensor, rows: slice, cols: slice) -> torch.Tensor:
    """Squared Euclidean distances ``(r, c)`` between ``feats[rows]`` and ``feats[cols]``."""
    a, b = feats[rows], feats[cols]
    return (sq[rows, None] + sq[None, cols] - 2.0 * (a @ b.t())).clamp(min=0)


def _nearest(d: torch.Tensor, k: int) -> torch.Tensor:
    """Indices ``(r, k)`` of the ``k`` smallest entries of each row of ``d (r, N)``, nearest
    first, equal distances in index order (a stable argsort's first ``k``; ``topk`` itself
    does not order ties, and a full sort of every row would cost O(N log N) per row)."""
    values, index = torch.topk(d, k, dim=1, largest=False, sorted=False)
    by_index = torch.argsort(index, dim=1)
    values, index = values.gather(1, by_index), index.gather(1, by_index)
    return index.gather(1, torch.sort(values, dim=1, stable=True).indices)


def _reciprocal(initial_rank: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``R(i, k)`` for all ``i``: indices ``(N, k+1)`` and a membership mask ``(N, k+1)``."""
    forward = initial_rank[:, : k + 1]
    backward = initial_rank[forward, : k + 1]  # (N, k+1, k+1)
    own = torch.arange(len(initial_rank))[:, None, None]
    return forward, (backward == own).any(dim=2)


def _expanded_sets(initial_rank: torch.Tensor, k1: int, chunk: int) -> tuple[np.ndarray, ...]:
    """``R*(i, k1)`` (eq. 6) as sparse rows: ``(row, col)`` int64 arrays, duplicates removed."""
    n = len(initial_rank)
    half = int(np.around(k1 / 2.0))  # the authors' code rounds half to even (k1 = 5 → 2)
    r_idx, r_mask = _reciprocal(initial_rank, k1)
    h_idx, h_mask = _reciprocal(initial_rank, half)
    h_size = h_mask.sum(dim=1)
    rows_out, cols_out = [], []
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        ri, rm = r_idx[s:e], r_mask[s:e]  # (c, k1+1)
        cand_idx, cand_mask = h_idx[ri], h_mask[ri]  # (c, k1+1, half+1)
        same = cand_idx[..., None] == ri[:, None, None, :]  # (c, k1+1, half+1, k1+1)
        inter = (same & rm[:, None, None, :]).any(dim=3) & cand_mask
        overlap = inter.sum(dim=2)  # |R(c, half) ∩ R(i, k1)| per candidate c
        accept = rm & (overlap.double() > 2.0 / 3.0 * h_size[ri].double())
        members = torch.cat(
            [torch.where(rm, ri, n), torch.where(accept[..., None] & cand_mask, cand_idx, n)
             .flatten(1)],
            dim=1,
        )  # fmt: skip
        members = torch.sort(members, dim=1).values
        dup = torch.zeros_like(members, dtype=torch.bool)
        dup[:, 1:] = members[:, 1:] == members[:, :-1]
        valid = (members < n) & ~dup
        row, pos = torch.nonzero(valid, as_tuple=True)
        rows_out.append((row + s).numpy())
        cols_out.append(members[row, pos].numpy())
    return np.concatenate(rows_out), np.concatenate(cols_out)


def _weights(
    feats: torch.Tensor, sq: torch.Tensor, row_max: torch.Tensor, rows: np.ndarray,
    cols: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """``exp(-d(i, j))`` for the listed pairs, in pieces of at most GATHER_BUDGET floats."""
    out = np.empty(len(rows), dtype=np.float32)
    step = max(1, GATHER_BUDGET // feats.shape[1])
    for s in range(0, len(rows), step):
        r = torch.from_numpy(rows[s : s + step])
        c = torch.from_numpy(cols[s : s + step])
        dot = (feats[r] * feats[c]).sum(dim=1)
        d = (sq[r] + sq[c] - 2.0 * dot).clamp(min=0) / row_max[r]
        out[s : s + step] = torch.exp(-d).numpy()
    return out


def _jaccard_min_sums(v_rows: sp.csr_matrix, gallery_csc: sp.csc_matrix) -> np.ndarray:
    """``Σ_j min(V_i, V_g)`` for the rows of ``v_rows`` against every gallery row: ``(r, G)``."""
    num_g = gallery_csc.shape[0]
    coo = v_rows.tocoo()
    qi, col, val = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data
    starts = gallery_csc.indptr[col].astype(np.int64)
    counts = gallery_csc.indptr[col + 1].astype(np.int64) - starts
    total = int(counts.sum())
    offsets = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(total)
    g_rows = gallery_csc.indices[offsets].astype(np.int64)
    mins = np.minimum(np.repeat(val, counts), gallery_csc.data[offsets])
    flat = np.repeat(qi, counts) * num_g + g_rows
    sums = np.bincount(flat, weights=mins, minlength=v_rows.shape[0] * num_g)
    return sums.reshape(v_rows.shape[0], num_g)


def rerank_distance_chunks(
    query_features: torch.Tensor,
    gallery_features: torch.Tensor,
    k1: int = K1,
    k2: int = K2,
    lambda_value: float = LAMBDA,
    chunk_size: int = 256,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yields ``(start, dist (c, G))`` re-ranked distances for queries ``start:start+c``.

    ``query_features (Q, D)``, ``gallery_features (G, D)``; for L2-normalised features
    ``d = 2 - 2 cos``. The chunks plug into
    :func:`pointforge.tasks.reid.metrics.rank_from_distance_chunks`.
    """
    if k1 < 1 or k2 < 1 or not 0.0 <= lambda_value <= 1.0:
        raise ValueError(f"re-ranking needs k1, k2 >= 1 and 0 <= λ <= 1, got {k1}, {k2}, "
                         f"{lambda_value}")  # fmt: skip
    num_q = len(query_features)
    feats = torch.cat([query_features, gallery_features]).float()
    n = len(feats)
    k1, k2 = min(k1, n - 1), min(k2, n)
    sq = (feats * feats).sum(dim=1)
    ranks, maxima = [], []
    for s in range(0, n, chunk_size):
        d = _sq_distances(feats, sq, slice(s, s + chunk_size), slice(0, n))
        maxima.append(d.max(dim=1).values.clamp(min=1e-12))
        ranks.append(_nearest(d, k1 + 1))
    initial_rank, row_max = torch.cat(ranks), torch.cat(maxima)

    rows, cols = _expanded_sets(initial_rank, k1, max(1, chunk_size // 4))
    weights = _weights(feats, sq, row_max, rows, cols)
    v = sp.csr_matrix((weights, (rows, cols)), shape=(n, n), dtype=np.float32)
    v = sp.csr_matrix(v.multiply(1.0 / np.asarray(v.sum(axis=1))).astype(np.float32))
    if k2 > 1:  # eq. 11: average the V rows of the k2 nearest neighbours
        nbr = initial_rank[:, :k2].numpy()
        expand = sp.csr_matrix(
            (np.full(nbr.size, 1.0 / k2, dtype=np.float32),
             (np.repeat(np.arange(n), k2), nbr.ravel())),
            shape=(n, n),
        )  # fmt: skip
        v = sp.csr_matrix(expand @ v)
    gallery_csc = sp.csc_matrix(v[num_q:])
    nnz_per_col = np.diff(gallery_csc.indptr)

    for s in range(0, num_q, chunk_size):
        e = min(s + chunk_size, num_q)
        original = _sq_distances(feats, sq, slice(s, e), slice(num_q, n)) / row_max[s:e, None]
        q_rows = v[s:e]
        pairs = np.add.reduceat(nnz_per_col[q_rows.indices], q_rows.indptr[:-1]) if q_rows.nnz \
            else np.zeros(e - s, dtype=np.int64)  # fmt: skip
        pairs = np.where(np.diff(q_rows.indptr) > 0, pairs, 0)
        min_sums = np.empty((e - s, n - num_q), dtype=np.float64)
        r = 0
        while r < e - s:  # groups of query rows within the pair budget
            stop, budget = r + 1, int(pairs[r])
            while stop < e - s and budget + int(pairs[stop]) <= PAIR_BUDGET:
                budget += int(pairs[stop])
                stop += 1
            min_sums[r:stop] = _jaccard_min_sums(q_rows[r:stop], gallery_csc)
            r = stop
        jaccard = torch.from_numpy(1.0 - min_sums / (2.0 - min_sums)).float()
        yield s, (1.0 - lambda_value) * jaccard + lambda_value * original


def rerank_distances(
    query_features: torch.Tensor,
    gallery_features: torch.Tensor,
    k1: int = K1,
    k2: int = K2,
    lambda_value: float = LAMBDA,
    chunk_size: int = 256,
) -> torch.Tensor:
    """The whole ``(Q, G)`` re-ranked distance matrix (see :func:`rerank_distance_chunks`)."""
    parts = rerank_distance_chunks(
        query_features, gallery_features, k1, k2, lambda_value, chunk_size
    )
    return torch.cat([d for _, d in parts])
