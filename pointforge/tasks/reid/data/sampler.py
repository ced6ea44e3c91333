"""P×K identity batch sampler: each batch holds P identities with K images each.

Why: the batch-hard triplet loss (Hermans et al. 2017, "In Defense of the Triplet Loss") needs
positives and negatives inside every batch; P×K sampling guarantees K-1 positives and
(P-1)·K negatives per anchor. BoT (Luo et al. 2019) uses P=16, K=4.

Stream contract (see the engine's ``pointforge/data/samplers.py``): global batch ``b`` is a
pure function of ``(seed, b)``, so a run resumed at batch ``b`` sees exactly the batches of an
uninterrupted run, and DDP ranks split every global batch without communicating:

- identities are visited in "epochs": epoch ``e`` is a permutation of all identities drawn
  from ``(seed, e)``; batch ``b`` is chunk ``b mod E`` of epoch ``b // E`` where
  ``E = num_identities // P`` (the incomplete last chunk is dropped, as ``drop_last`` would);
- each identity's K images are drawn from an RNG seeded by ``(seed, b, identity)``: without
  replacement when it has at least K images, with replacement otherwise;
- rank ``r`` of ``w`` takes identities ``[r·P/w, (r+1)·P/w)`` of the batch, i.e. whole
  identity groups (the triplet loss is computed per rank), so ``P % w == 0`` is required.

Items are ``(global_position, dataset_index)`` with ``global_position = b·P·K + slot`` and
``slot = j·K + i`` for the ``i``-th image of the ``j``-th identity: the loader seeds each
sample's augmentation from its position (``pointforge.data.loader.SeededSamples``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

# Sub-stream tags so the identity permutations and the per-identity image draws never share
# an RNG stream even when (epoch) and (batch, identity) happen to be equal numbers.
_PERMUTATION_STREAM = 0
_IMAGES_STREAM = 1


class PKBatchSampler(Sampler[list[tuple[int, int]]]):
    """Endless iterator over this rank's share of the P×K global batches from ``start_batch``.

    ``pids``: the identity of every dataset item (``len(pids) == len(dataset)``, any integers).
    """

    def __init__(
        self,
        pids: Sequence[int],
        p: int,
        k: int,
        seed: int = 0,
        start_batch: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if p < 1 or k < 1:
            raise ValueError(f"PKBatchSampler: P and K must be >= 1, got P={p}, K={k}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"PKBatchSampler: rank {rank} not in [0, {world_size})")
        if p % world_size:
            raise ValueError(
                f"PKBatchSampler: P={p} identities per batch cannot be split over {world_size} "
                "processes (each rank keeps whole identity groups for the triplet loss); choose "
                f"P divisible by {world_size}"
            )
        if seed < 0 or start_batch < 0:
            raise ValueError(
                f"PKBatchSampler: seed and start_batch must be >= 0, got {seed}, {start_batch}"
            )
        labels = np.asarray(pids, dtype=np.int64)
        if labels.ndim != 1 or labels.size == 0:
            raise ValueError("PKBatchSampler: pids must be a non-empty 1-D sequence")
        self.identities, inverse = np.unique(labels, return_inverse=True)
        if len(self.identities) < p:
            raise ValueError(
                f"PKBatchSampler: P={p} identities per batch, but the dataset has only "
                f"{len(self.identities)} identities"
            )
        order = np.argsort(inverse, kind="stable")
        bounds = np.cumsum(np.bincount(inverse))[:-1]
        # groups[u]: dataset indices of identity u (the u-th smallest pid), ascending.
        self.groups: list[np.ndarray] = np.split(order, bounds)
        self.p, self.k, self.seed = p, k, seed
        self.start_batch, self.rank, self.world_size = start_batch, rank, world_size
        self.batches_per_epoch = len(self.identities) // p

    def batch_identities(self, b: int) -> np.ndarray:
        """Identity slots (indices into ``self.identities``) of global batch ``b``: ``(P,)``."""
        epoch, chunk = divmod(b, self.batches_per_epoch)
        rng = np.random.default_rng([self.seed, _PERMUTATION_STREAM, epoch])
        perm = rng.permutation(len(self.identities))
        return perm[chunk * self.p : (chunk + 1) * self.p]

    def identity_images(self, b: int, identity: int) -> np.ndarray:
        """The K dataset indices drawn for identity slot ``identity`` in batch ``b``: ``(K,)``."""
        group = self.groups[identity]
        rng = np.random.default_rng([self.seed, _IMAGES_STREAM, b, int(identity)])
        return rng.choice(group, size=self.k, replace=len(group) < self.k)

    def local_batch(self, b: int) -> list[tuple[int, int]]:
        """This rank's ``(global_position, dataset_index)`` pairs of global batch ``b``."""
        ids = self.batch_identities(b)
        per_rank = self.p // self.world_size
        out: list[tuple[int, int]] = []
        for j in range(self.rank * per_rank, (self.rank + 1) * per_rank):
            for i, index in enumerate(self.identity_images(b, int(ids[j]))):
                out.append((b * self.p * self.k + j * self.k + i, int(index)))
        return out

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        b = self.start_batch
        while True:
            yield self.local_batch(b)
            b += 1
