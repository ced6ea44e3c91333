"""Repeat-factor sampling: an infinite, seeded, resumable stream that shows item ``i`` about
``r_i`` times per epoch (LVIS, Gupta et al. 2019, "repeat factor sampling").

Why here and generic: the stream only needs one float ``r_i >= 1`` per dataset item; what makes
an item worth repeating (a rare detection class, ``docs/detection.md``) is the task's business.

Epoch ``e`` of the stream holds ``floor(r_i)`` copies of item ``i`` plus one more with
probability ``frac(r_i)``, shuffled; both the rounding and the shuffle are drawn from a generator
seeded by ``(seed, e)``. So the stream, like :class:`~pointforge.data.samplers.InfiniteSampler`'s,
is a pure function of the seed and the global position: a run resumed at position ``N`` yields
exactly what an uninterrupted run yields from ``N`` on, and ``world_size`` ranks each take every
``world_size``-th position of the same global stream ("Exact resume" in ``docs/architecture.md``).
Epochs have different lengths (the rounding differs), so a position is located by summing the
lengths of the epochs before it; only the rounding draws (``n`` uniforms an epoch) are needed for
that, never the shuffles.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

from pointforge.data.samplers import PositionedBatchSampler, local_batch_size


def _generator(seed: int, epoch: int) -> torch.Generator:
    # A different mixing constant from InfiniteSampler's, so the two never share a stream.
    return torch.Generator().manual_seed(seed * 1_000_033 + epoch + 7)


class RepeatFactorSampler(Sampler[int]):
    """Yields dataset indices forever, item ``i`` about ``repeat_factors[i]`` times an epoch,
    starting at this rank's ``start``-th element (global position ``start * world_size + rank``).

    ``repeat_factors``: ``(N,)`` floats, each finite and >= 1 (1: the item is seen once an
    epoch, as with plain shuffling).
    """

    def __init__(
        self,
        repeat_factors: Sequence[float] | np.ndarray | torch.Tensor,
        seed: int = 0,
        start: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        factors = torch.as_tensor(repeat_factors, dtype=torch.float64).reshape(-1)
        if factors.numel() == 0:
            raise ValueError("RepeatFactorSampler: no repeat factors (empty dataset)")
        bad = ~torch.isfinite(factors) | (factors < 1.0)
        if bool(bad.any()):
            i = int(bad.nonzero()[0])
            raise ValueError(
                f"RepeatFactorSampler: repeat factors must be finite and >= 1; item {i} has "
                f"{float(factors[i])}"
            )
        if not 0 <= rank < world_size:
            raise ValueError(f"RepeatFactorSampler: rank {rank} not in [0, {world_size})")
        self.floor = factors.floor()
        self.frac = factors - self.floor
        self.seed, self.start, self.rank, self.world_size = seed, start, rank, world_size
        self._sizes: list[int] = []  # length of epoch e, computed on demand

    @property
    def expected_epoch_size(self) -> float:
        """Mean epoch length, ``sum(r_i)``."""
        return float((self.floor + self.frac).sum())

    def _counts(self, g: torch.Generator) -> torch.Tensor:
        """``(N,)`` int64 copies of each item in one epoch (the first draws of ``g``)."""
        u = torch.rand(self.floor.numel(), generator=g, dtype=torch.float64)
        return (self.floor + (u < self.frac).to(torch.float64)).to(torch.int64)

    def epoch_size(self, epoch: int) -> int:
        """Number of stream elements in ``epoch`` (cached: a resume sums them)."""
        while len(self._sizes) <= epoch:
            g = _generator(self.seed, len(self._sizes))
            self._sizes.append(int(self._counts(g).sum()))
        return self._sizes[epoch]

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """``(epoch_size(epoch),)`` int64: the dataset indices of ``epoch`` in stream order."""
        g = _generator(self.seed, epoch)
        counts = self._counts(g)
        items = torch.repeat_interleave(torch.arange(counts.numel()), counts)
        return items[torch.randperm(items.numel(), generator=g)]

    def __iter__(self) -> Iterator[int]:
        for _, index in self.with_positions():
            yield index

    def with_positions(self) -> Iterator[tuple[int, int]]:
        """Yields ``(global position, dataset index)``; positions never repeat in a run."""
        pos = self.start * self.world_size + self.rank
        epoch, first = 0, 0  # ``first``: global position of the epoch's first element
        while pos >= first + self.epoch_size(epoch):
            first += self.epoch_size(epoch)
            epoch += 1
        while True:
            order = self.epoch_order(epoch)
            size = order.numel()
            while pos < first + size:
                yield pos, int(order[pos - first])
                pos += self.world_size
            first += size
            epoch += 1
            while pos >= first + self.epoch_size(epoch):  # world_size > an epoch: skip it
                first += self.epoch_size(epoch)
                epoch += 1


def repeat_factor_batch_sampler(
    repeat_factors: Sequence[float] | np.ndarray | torch.Tensor,
    batch_size: int,
    seed: int,
    start_iter: int,
    rank: int,
    world_size: int,
) -> PositionedBatchSampler:
    """Rank ``rank``'s part of each global batch of ``batch_size`` drawn from a
    :class:`RepeatFactorSampler`, positioned at batch ``start_iter`` (the counterpart of
    :func:`pointforge.data.loader.default_batch_sampler`)."""
    local_batch = local_batch_size(batch_size, world_size)
    sampler = RepeatFactorSampler(
        repeat_factors, seed=seed, start=start_iter * local_batch, rank=rank, world_size=world_size
    )
    return PositionedBatchSampler(sampler, local_batch)
