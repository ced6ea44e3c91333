from __future__ import annotations

import itertools

import numpy as np
import pytest

from pointforge.tasks.reid.data.sampler import PKBatchSampler

# 10 identities with 1..7 images each (identity 30 has 1 image: drawn with replacement).
PIDS = [pid for pid, n in zip(range(10, 110, 10), [5, 3, 1, 7, 4, 4, 2, 6, 3, 5]) for _ in range(n)]


def take(sampler: PKBatchSampler, n: int) -> list[list[tuple[int, int]]]:
    return list(itertools.islice(iter(sampler), n))


def test_resume_gives_the_same_batches() -> None:
    full = take(PKBatchSampler(PIDS, p=4, k=3, seed=5), 7)  # crosses epochs (2 per epoch)
    for b in (1, 2, 5):
        resumed = take(PKBatchSampler(PIDS, p=4, k=3, seed=5, start_batch=b), 7 - b)
        assert resumed == full[b:]
    other_seed = take(PKBatchSampler(PIDS, p=4, k=3, seed=6), 7)
    assert other_seed != full


def test_each_batch_has_p_identities_times_k_images() -> None:
    pids = np.array(PIDS)
    for b, batch in enumerate(take(PKBatchSampler(PIDS, p=4, k=3, seed=0), 6)):
        positions = [pos for pos, _ in batch]
        assert positions == list(range(b * 12, (b + 1) * 12))
        ids = pids[[index for _, index in batch]].reshape(4, 3)
        assert (ids == ids[:, :1]).all()  # each group of K is one identity
        assert len(set(ids[:, 0])) == 4  # P distinct identities
        for group in np.array([index for _, index in batch]).reshape(4, 3):
            if np.sum(pids == pids[group[0]]) >= 3:  # enough images: no repeats
                assert len(set(group)) == 3


def test_epoch_visits_each_identity_once() -> None:
    sampler = PKBatchSampler(PIDS, p=3, k=2, seed=1)
    assert sampler.batches_per_epoch == 3
    ids = np.concatenate([sampler.batch_identities(b) for b in range(3)])
    assert len(set(ids.tolist())) == 9


def test_ranks_split_the_global_batch() -> None:
    single = take(PKBatchSampler(PIDS, p=4, k=2, seed=3, start_batch=2), 3)
    per_rank = [take(PKBatchSampler(PIDS, 4, 2, 3, 2, rank=r, world_size=2), 3) for r in (0, 1)]
    for b in range(3):
        assert per_rank[0][b] + per_rank[1][b] == single[b]
        assert len(per_rank[0][b]) == 4  # P/w identities × K


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="divisible by 3"):
        PKBatchSampler(PIDS, p=4, k=2, seed=0, world_size=3)
    with pytest.raises(ValueError, match="only 10 identities"):
        PKBatchSampler(PIDS, p=11, k=2, seed=0)
