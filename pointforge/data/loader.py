"""DataLoader construction: infinite sampler, per-sample seeding and a collate for ragged fields.

Why seed per sample: transforms that draw from the global NumPy / ``random`` / torch state
inside ``__getitem__`` would otherwise give every worker the same augmentation stream, and
would make a resumed run differ from an uninterrupted one (which worker gets which sample, and
that worker's RNG history, are not part of any checkpoint). We reseed those global RNGs from
``(seed, global sample position)`` before each sample, so a sample is a pure function of its
position in the stream: no two workers or epochs repeat an augmentation, and resume is exact
with any number of workers. ``worker_init_fn`` additionally seeds each worker from torch's
per-worker seed for code that runs outside ``__getitem__``.

Why a stream object instead of a bare DataLoader iterator: when a sample raises or a worker
dies, the error must name the dataset and the sample, and only the loader side knows which
batch (stream positions, dataset indices) a worker was loading; see :mod:`.errors`.
"""

from __future__ import annotations

import random
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset, get_worker_info

from pointforge.data.errors import (
    SHM_ADVICE,
    DataLoadingError,
    SharedMemoryError,
    dead_worker_message,
    dead_worker_pids,
    dead_workers,
    exit_status,
    is_shared_memory_error,
    sample_error,
    shared_memory_error,
    worker_id_of,
    worker_sample_error,
)
from pointforge.data.samplers import (
    InfiniteSampler,
    PositionedBatchSampler,
    local_batch_size,
)
from pointforge.engine import comm


def worker_init_fn(worker_id: int) -> None:
    """Seed NumPy and ``random`` in a DataLoader worker from torch's per-worker seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def sample_seed(seed: int, position: int) -> int:
    """A 32-bit seed for the sample at ``position`` of the stream of run seed ``seed``."""
    return int(np.random.SeedSequence([seed, position]).generate_state(1)[0])


class SeededSamples(Dataset):
    """Wraps a dataset so that item ``(position, index)`` is ``dataset[index]`` computed with
    the global RNGs seeded from ``(seed, position)``.

    In the main process (``num_workers=0``) the previous RNG states are restored afterwards so
    that the training step's own randomness is not disturbed. An exception from the dataset is
    re-raised as a :class:`DataLoadingError` naming the dataset, index and position.

    With ``num_workers > 0``, each worker records the ``(position, index)`` it is loading in
    ``loading[worker_id]``, a ``(num_workers, 2)`` int64 tensor in shared memory, so a worker
    that dies without a Python error (killed, ``os._exit``, a native crash) can still be
    reported with the sample it died on. It costs two integer writes per sample.
    """

    def __init__(self, dataset: Dataset, seed: int, num_workers: int = 0) -> None:
        self.dataset = dataset
        self.seed = seed
        self.name = dataset_name(dataset)
        self.loading = torch.full((max(num_workers, 1), 2), -1, dtype=torch.int64)
        if num_workers > 0:
            self.loading.share_memory_()

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        position, index = key
        s = sample_seed(self.seed, position)
        worker = get_worker_info()
        in_main = worker is None
        if worker is not None and worker.id < len(self.loading):
            self.loading[worker.id, 0] = position
            self.loading[worker.id, 1] = index
        if in_main:
            saved = (random.getstate(), np.random.get_state(), torch.get_rng_state())
        random.seed(s)
        np.random.seed(s)
        torch.manual_seed(s)
        try:
            return self.dataset[index]
        except Exception as exc:
            raise sample_error(self.name, index, position, exc) from exc
        finally:
            if in_main:
                random.setstate(saved[0])
                np.random.set_state(saved[1])
                torch.set_rng_state(saved[2])


def collate(samples: Sequence[dict[str, Any]], as_list: Iterable[str] = ()) -> dict[str, Any]:
    """Stack equal-shaped tensors; keep ragged tensors as lists. Keys in ``as_list`` (ragged
    by nature, e.g. a task's ``(K_i, 2)`` points) are always lists, even when equal-sized."""
    keep = set(as_list)
    out: dict[str, Any] = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        first = values[0]
        if isinstance(first, torch.Tensor):
            if all(v.shape == first.shape for v in values) and key not in keep:
                out[key] = torch.stack(values)
            else:
                out[key] = values
        elif isinstance(first, int | float) and not isinstance(first, bool):
            out[key] = torch.tensor(values)
        else:
            out[key] = values
    return out


def default_batch_sampler(
    size: int,
    batch_size: int,
    seed: int,
    start_iter: int,
    rank: int,
    world_size: int,
) -> PositionedBatchSampler:
    """Rank ``rank``'s part of each global batch of ``batch_size``: per-epoch seeded
    permutations of ``size`` indices (see :class:`InfiniteSampler`), ranks interleaved."""
    local_batch = local_batch_size(batch_size, world_size)
    sampler = InfiniteSampler(
        size,
        shuffle=True,
        seed=seed,
        start=start_iter * local_batch,
        rank=rank,
        world_size=world_size,
    )
    return PositionedBatchSampler(sampler, local_batch)


def build_train_loader(
    dataset: Dataset,
    batch_size: int,
    num_workers: int,
    seed: int,
    start_iter: int = 0,
    pin_memory: bool = False,
    rank: int | None = None,
    world_size: int | None = None,
    collate_fn: Callable[[Sequence[dict[str, Any]]], dict[str, Any]] = collate,
    batch_sampler: Iterable[list[tuple[int, int]]] | None = None,
) -> Iterator[dict[str, Any]]:
    """An endless iterator of batches that starts exactly at iteration ``start_iter``.

    ``batch_size`` is the *global* batch (``data.batch_size``): with ``world_size`` ranks
    (default: the running process group, 1 without one) each rank yields batches of
    ``batch_size // world_size`` samples, and rank ``r`` takes global stream positions
    ``r, r + world_size, ...``, so the ranks' batches of one iteration together are exactly
    the batch a single process would draw. The stream position is ``start_iter * batch_size``
    whatever the number of ranks, so a resumed run (even on another number of GPUs) sees the
    same global batches as an uninterrupted one. The loader's generator is seeded from
    ``(seed, start_iter, rank)`` so workers of a resumed run do not replay the seeds of the
    first run.

    ``batch_sampler`` (a task's, e.g. identity-balanced P×K batches) replaces the default
    sampler; it must already be positioned at ``start_iter`` for this rank.
    """
    rank = comm.get_rank() if rank is None else rank
    world_size = comm.get_world_size() if world_size is None else world_size
    if batch_sampler is None:
        size = len(dataset)  # type: ignore[arg-type]
        batch_sampler = default_batch_sampler(size, batch_size, seed, start_iter, rank, world_size)
    generator = torch.Generator().manual_seed(seed * 7919 + start_iter + 104_729 * rank)
    loader = DataLoader(
        SeededSamples(dataset, seed, num_workers),
        batch_sampler=batch_sampler,
        num_workers=num_workers,
        collate_fn=collate_fn,
        worker_init_fn=worker_init_fn,
        generator=generator,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        prefetch_factor=4 if num_workers > 0 else None,
    )
    return BatchStream(loader)


def build_eval_loader(
    dataset: Dataset,
    batch_size: int,
    num_workers: int,
    collate_fn: Callable[[Sequence[dict[str, Any]]], dict[str, Any]] = collate,
    pin_memory: bool = False,
    rank: int | None = None,
    world_size: int | None = None,
) -> DataLoader:
    """One pass over this rank's shard of an evaluation set: indices ``rank, rank + world,
    ...`` in order, ``batch_size`` per forward. The shards are disjoint and cover the set, so
    the gathered predictions are the single-process ones (``docs/evaluation.md``)."""
    rank = comm.get_rank() if rank is None else rank
    world_size = comm.get_world_size() if world_size is None else world_size
    size = len(dataset)  # type: ignore[arg-type]
    if size == 0:
        raise ValueError(f"evaluation dataset {dataset_name(dataset)} is empty")
    shard = Subset(dataset, range(rank, size, world_size)) if world_size > 1 else dataset
    return DataLoader(
        shard,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate_fn,
        pin_memory=pin_memory,
    )


def dataset_name(dataset: Dataset) -> str:
    """How errors name a dataset: its class, plus ``split`` when it has one."""
    split = getattr(dataset, "split", None)
    return type(dataset).__name__ + (f"(split={split!r})" if isinstance(split, str) else "")


# Streams whose workers may still report a death; see explain_data_error().
_LIVE_STREAMS: weakref.WeakSet[BatchStream] = weakref.WeakSet()


class BatchStream(Iterator[dict[str, Any]]):
    """The endless batch iterator of :func:`build_train_loader`: a DataLoader iterator whose
    failures are re-raised as named :class:`DataLoadingError` / :class:`SharedMemoryError`."""

    def __init__(self, loader: DataLoader) -> None:
        self.samples: SeededSamples = loader.dataset  # type: ignore[assignment]
        self.dataset = self.samples.name
        self._it = iter(loader)
        _LIVE_STREAMS.add(self)

    def __next__(self) -> dict[str, Any]:
        try:
            return next(self._it)
        except StopIteration:
            raise
        except Exception as exc:
            named = self.explain(exc)
            if named is None:
                raise
            raise named from exc

    def close(self) -> None:
        """Stop the worker processes now rather than when the stream is garbage-collected."""
        shutdown = getattr(self._it, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()

    def _close_quietly(self) -> None:
        """Shut the workers down after one died. torch's SIGCHLD handler re-raises the death on
        every later child signal until then, which would otherwise surface as "Exception
        ignored" noise after our error, whenever the iterator gets garbage-collected."""
        for _ in range(3):
            try:
                self.close()
                return
            except RuntimeError:
                continue

    def _dead_worker_error(self, exc: BaseException, worker_id: int, pid: int) -> DataLoadingError:
        """The named error for worker ``worker_id`` (process ``pid``) that died."""
        position, index = (int(v) for v in self.samples.loading[worker_id])
        sample = (position, index) if position >= 0 else None
        status = exit_status(self._it, worker_id)
        msg = dead_worker_message(exc, self.dataset, worker_id, pid, sample, status)
        self._close_quietly()
        if is_shared_memory_error(exc):
            return SharedMemoryError(f"{msg} {SHM_ADVICE}")
        return DataLoadingError(msg)

    def explain(self, exc: BaseException, raised_by_next: bool = True) -> DataLoadingError | None:
        """A named error for ``exc`` if it is a data-loading failure of this stream, else None.

        Only errors that ``next`` raised are matched against the shared-memory texts: elsewhere
        (e.g. a Triton kernel "out of resource: shared memory") they mean something else.
        """
        unwrapped = worker_sample_error(exc)
        if unwrapped is not None:
            return unwrapped
        for pid in dead_worker_pids(exc):
            worker_id = worker_id_of(self._it, pid)
            if worker_id is not None:
                return self._dead_worker_error(exc, worker_id, pid)
        if raised_by_next and isinstance(exc, ConnectionError | EOFError):
            # The main process lost the connection to a worker (e.g. while receiving a
            # shared-memory file descriptor from it): name the worker if it died.
            for worker_id, pid in dead_workers(self._it):
                return self._dead_worker_error(exc, worker_id, pid)
        if isinstance(exc, DataLoadingError):
            return None  # already named
        if raised_by_next and is_shared_memory_error(exc):
            return shared_memory_error(exc, self.dataset)
        return None


def explain_data_error(exc: BaseException) -> DataLoadingError | None:
    """A named error for a data-loading failure raised *outside* ``next(stream)``.

    PyTorch's SIGCHLD handler raises "DataLoader worker (pid N) exited unexpectedly" in the main
    thread wherever it happens to be (forward, backward, a checkpoint write), so callers that
    run a training loop ask here; the streams alive at that moment are searched for the worker.
    """
    if isinstance(exc, DataLoadingError) and worker_sample_error(exc) is None:
        return None
    for stream in list(_LIVE_STREAMS):
        named = stream.explain(exc, raised_by_next=False)
        if named is not None:
            return named
    return None


def move_to_device(batch: Any, device: torch.device, non_blocking: bool = True) -> Any:
    """Recursively move tensors in dicts / lists to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, dict):
        return {k: move_to_device(v, device, non_blocking) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(move_to_device(v, device, non_blocking) for v in batch)
    return batch
