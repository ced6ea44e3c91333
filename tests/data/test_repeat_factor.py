"""RepeatFactorSampler: per-epoch stochastic rounding of the factors, long-run frequencies,
exact resume at any position, and DDP shards that partition the global stream."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from pointforge.data.repeat_factor import RepeatFactorSampler, repeat_factor_batch_sampler

FACTORS = [1.0, 1.5, 2.25, 3.0, 1.0, 1.2]


def take(it, n):  # type: ignore[no-untyped-def]
    return list(itertools.islice(it, n))


def test_each_epoch_holds_floor_or_ceil_copies_and_is_shuffled() -> None:
    s = RepeatFactorSampler(FACTORS, seed=1)
    orders = [s.epoch_order(e) for e in range(20)]
    for e, order in enumerate(orders):
        counts = torch.bincount(order, minlength=len(FACTORS)).tolist()
        for r, c in zip(FACTORS, counts):
            assert c in (math.floor(r), math.floor(r) + 1) and c >= 1
        assert s.epoch_size(e) == order.numel()
    # Integer factors are exact; fractional ones are rounded differently across epochs.
    assert {int((o == 3).sum()) for o in orders} == {3}
    assert len({int((o == 1).sum()) for o in orders}) == 2
    assert len({o.numel() for o in orders}) > 1  # epochs differ in length
    assert orders[0].tolist() != sorted(orders[0].tolist())


def test_long_run_frequency_matches_the_factors() -> None:
    s = RepeatFactorSampler(FACTORS, seed=7)
    epochs = 2000
    counts = torch.zeros(len(FACTORS), dtype=torch.float64)
    for e in range(epochs):
        counts += torch.bincount(s.epoch_order(e), minlength=len(FACTORS)).double()
    mean = counts / epochs
    # The fractional part is a Bernoulli(frac) per epoch: std of the mean <= 0.5 / sqrt(2000).
    for r, m in zip(FACTORS, mean.tolist()):
        assert abs(m - r) < 0.04, (r, m)
    assert abs(s.expected_epoch_size - sum(FACTORS)) < 1e-12


@pytest.mark.parametrize("start", [0, 3, 7, 8, 23, 61])
def test_resume_at_any_position_is_the_tail_of_the_stream(start: int) -> None:
    full = take(iter(RepeatFactorSampler(FACTORS, seed=3)), 120)
    resumed = take(iter(RepeatFactorSampler(FACTORS, seed=3, start=start)), 120 - start)
    assert resumed == full[start:]
    pairs = take(RepeatFactorSampler(FACTORS, seed=3, start=start).with_positions(), 5)
    assert [p for p, _ in pairs] == list(range(start, start + 5))


def test_stream_depends_on_the_seed() -> None:
    a = take(iter(RepeatFactorSampler(FACTORS, seed=0)), 40)
    b = take(iter(RepeatFactorSampler(FACTORS, seed=1)), 40)
    assert a != b and sorted(set(a)) == list(range(len(FACTORS)))


@pytest.mark.parametrize("world", [2, 3])
def test_ranks_partition_the_global_stream(world: int) -> None:
    n = 90
    full = take(RepeatFactorSampler(FACTORS, seed=5).with_positions(), n)
    shards = [
        take(RepeatFactorSampler(FACTORS, seed=5, rank=r, world_size=world).with_positions(), n)
        for r in range(world)
    ]
    seen = [set(p for p, _ in shard[: n // world]) for shard in shards]
    for a, b in itertools.combinations(seen, 2):
        assert not a & b
    merged = sorted(item for shard in shards for item in shard[: n // world])
    assert merged == full
    # A resumed rank continues its own shard exactly.
    resumed = take(
        RepeatFactorSampler(FACTORS, seed=5, start=11, rank=1, world_size=world).with_positions(),
        10,
    )
    assert resumed == shards[1][11:21]


def test_batch_sampler_resumes_at_a_batch_and_splits_the_global_batch() -> None:
    full = take(iter(repeat_factor_batch_sampler(FACTORS, 4, 2, 0, 0, 1)), 12)
    resumed = take(iter(repeat_factor_batch_sampler(FACTORS, 4, 2, 5, 0, 1)), 7)
    assert resumed == full[5:]
    r0 = take(iter(repeat_factor_batch_sampler(FACTORS, 4, 2, 5, 0, 2)), 7)
    r1 = take(iter(repeat_factor_batch_sampler(FACTORS, 4, 2, 5, 1, 2)), 7)
    for whole, a, b in zip(full[5:], r0, r1):
        assert sorted(a + b) == sorted(whole) and len(a) == len(b) == 2
    with pytest.raises(ValueError, match=r"data\.batch_size=5"):
        repeat_factor_batch_sampler(FACTORS, 5, 0, 0, 0, 2)


@pytest.mark.parametrize(
    ("factors", "match"),
    [([1.0, 0.5], "item 1 has 0.5"), ([float("nan")], "item 0"), ([], "empty")],
)
def test_bad_factors_are_refused(factors: list[float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RepeatFactorSampler(factors)
