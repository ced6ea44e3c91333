"""Rank / world-size helpers and the few collectives the engine needs.

Why a module of its own: data loading, hooks, checkpointing and tasks all ask "which rank am I,
how many are there, am I the one that writes?". Each helper degrades to single-process
behaviour when ``torch.distributed`` is not initialised (rank 0 of 1, barrier is a no-op,
gathers return ``[obj]``), so no caller needs an ``if distributed`` branch of its own.

The process group itself is created in :mod:`pointforge.engine.launch` from the environment
that ``torchrun`` (``torch.distributed.run``) sets: ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


def is_initialized() -> bool:
    """True when a default process group exists (we are one of several ranks)."""
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    """Global rank of this process; 0 when not distributed."""
    return dist.get_rank() if is_initialized() else 0


def get_world_size() -> int:
    """Number of processes in the job; 1 when not distributed."""
    return dist.get_world_size() if is_initialized() else 1


def get_local_rank() -> int:
    """Rank on this node (selects the GPU); ``LOCAL_RANK`` from torchrun, else 0."""
    return int(os.environ.get("LOCAL_RANK", "0")) if is_initialized() else 0


def is_main_process() -> bool:
    """The process that writes files, logs and shows the progress bar."""
    return get_rank() == 0


def barrier() -> None:
    """Wait for every rank; a no-op in a single process."""
    if get_world_size() > 1:
        dist.barrier()


def _collective_device() -> torch.device:
    """NCCL only moves CUDA tensors; gloo wants CPU tensors."""
    if is_initialized() and dist.get_backend() == dist.Backend.NCCL:
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_gather(obj: T) -> list[T]:
    """Every rank's ``obj`` (any picklable value), in rank order, on every rank."""
    world = get_world_size()
    if world == 1:
        return [obj]
    out: list[Any] = [None] * world
    dist.all_gather_object(out, obj)
    return out


def broadcast(obj: T, src: int = 0) -> T:
    """Rank ``src``'s ``obj`` on every rank (picklable values)."""
    if get_world_size() == 1:
        return obj
    box: list[Any] = [obj]
    dist.broadcast_object_list(box, src=src, device=_collective_device())
    return box[0]


def reduce_metrics(metrics: Mapping[str, float], average: bool = True) -> dict[str, float]:
    """All-reduce a flat ``{name: float}`` dict: mean (or sum) over ranks, result on all ranks.

    Every rank must pass the same keys (checked, since a mismatch would silently pair up the
    wrong values). One ``all_reduce`` of a float64 vector of ``len(metrics)`` values, so the
    order of keys (sorted) is the only thing ranks have to agree on.
    """
    world = get_world_size()
    if world == 1:
        return {k: float(v) for k, v in metrics.items()}
    keys = sorted(metrics)
    all_keys = all_gather(keys)
    if any(k != keys for k in all_keys):
        raise RuntimeError(
            f"reduce_metrics: ranks returned different metric names: {dict(enumerate(all_keys))}"
        )
    values = torch.tensor(
        [float(metrics[k]) for k in keys], dtype=torch.float64, device=_collective_device()
    )
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    if average:
        values /= world
    return dict(zip(keys, values.cpu().tolist(), strict=True))
