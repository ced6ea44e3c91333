"""Infinite, seeded, resumable index samplers.

Why infinite: training is iteration based, so epochs are an implementation detail; an infinite
stream makes "resume at iteration N" a matter of starting the stream at position
``N * batch_size`` with no fast-forwarding through a DataLoader.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import torch
from torch.utils.data import Sampler

# Above this size a permutation per epoch is pointless (procedural datasets of 10**9 samples
# never repeat an index in a run) and too large to materialise; indices are read in order.
MAX_SHUFFLE_SIZE = 1 << 26


class InfiniteSampler(Sampler[int]):
    """Yields dataset indices forever, starting at global position ``start``.

    For finite datasets each epoch is a permutation drawn from ``(seed, epoch)``, so the stream is
    a pure function of the seed and the position: resuming at ``start`` reproduces the exact
    same sequence as an uninterrupted run. With ``world_size > 1`` each rank takes every
    ``world_size``-th element of the global stream (sharding for distributed training).
    """

    def __init__(
        self,
        size: int,
        shuffle: bool = True,
        seed: int = 0,
        start: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if size <= 0:
            raise ValueError(f"InfiniteSampler: dataset size must be > 0, got {size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"InfiniteSampler: rank {rank} not in [0, {world_size})")
        self.size = size
        self.shuffle = shuffle and size <= MAX_SHUFFLE_SIZE
        self.seed = seed
        self.start = start
        self.rank = rank
        self.world_size = world_size

    def _epoch_order(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.size)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.size, generator=g)

    def __iter__(self) -> Iterator[int]:
        for _, index in self.with_positions():
            yield index

    def with_positions(self) -> Iterator[tuple[int, int]]:
        """Yields ``(global position, dataset index)``; positions never repeat in a run."""
        pos = self.start * self.world_size + self.rank
        while True:
            epoch, offset = divmod(pos, self.size)
            if not self.shuffle:
                yield pos, offset
                pos += self.world_size
                continue
            order = self._epoch_order(epoch)
            while offset < self.size:
                yield pos, int(order[offset])
                offset += self.world_size
                pos += self.world_size


class PositionStream(Protocol):
    """What :class:`PositionedBatchSampler` chunks: a sampler that can yield
    ``(global position, dataset index)`` pairs (:class:`InfiniteSampler`, or
    :class:`pointforge.data.repeat_factor.RepeatFactorSampler`)."""

    def with_positions(self) -> Iterator[tuple[int, int]]: ...


class PositionedSampler(Sampler[tuple[int, int]]):
    """Adapter that yields ``(position, index)`` pairs of an :class:`InfiniteSampler`."""

    def __init__(self, sampler: InfiniteSampler) -> None:
        self.sampler = sampler

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return self.sampler.with_positions()


class PositionedBatchSampler:
    """Chunks of ``batch_size`` consecutive ``(position, index)`` pairs of an
    :class:`InfiniteSampler` (or any :class:`PositionStream`): one rank's part of each global
    batch, forever.

    Equivalent to ``DataLoader(sampler=..., batch_size=..., drop_last=True)`` over
    :class:`PositionedSampler`, as a batch sampler so that a task can swap in another one
    (identity-balanced batches) through the same loader.
    """

    def __init__(self, sampler: PositionStream, batch_size: int) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch size must be > 0, got {batch_size}")
        self.sampler = sampler
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        batch: list[tuple[int, int]] = []
        for item in self.sampler.with_positions():
            batch.append(item)
            if len(batch) == self.batch_size:
                yield batch
                batch = []


def local_batch_size(batch_size: int, world_size: int) -> int:
    """Each rank's share of the global ``data.batch_size``; the batch must split evenly."""
    if batch_size % world_size:
        raise ValueError(
            f"data.batch_size={batch_size} (the global batch) is not divisible by the "
            f"{world_size} processes"
        )
    return batch_size // world_size
