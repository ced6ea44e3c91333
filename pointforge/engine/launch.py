"""Process-level setup done once before a run: device, seeding and the distributed group.

Distributed training follows torch's own launcher: ``torchrun`` (``torch.distributed.run``)
starts one process per device and sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``; :func:`distributed` reads them (``env://``), so the same
command works on one node or many (rendezvous flags go to torchrun, not to us).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from pointforge.engine import comm


@dataclass(frozen=True)
class DDPConfig:
    """DistributedDataParallel options; used only when launched with several processes."""

    # Let DDP skip parameters that get no gradient in a step (e.g. a head some batches do not
    # use). Off by default, as in torch: it costs an autograd-graph traversal every step.
    find_unused_parameters: bool = False
    # Process-group backend. auto = nccl on CUDA, gloo on CPU (torch's recommendation).
    backend: str = field(default="auto", metadata={"choices": ("auto", "nccl", "gloo")})


def launcher_env() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` set by torchrun; ``(0, 1, 0)`` in a plain process."""
    try:
        return (
            int(os.environ.get("RANK", "0")),
            int(os.environ.get("WORLD_SIZE", "1")),
            int(os.environ.get("LOCAL_RANK", "0")),
        )
    except ValueError as exc:
        raise RuntimeError(f"bad RANK/WORLD_SIZE/LOCAL_RANK environment variable: {exc}") from None


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` → CUDA when present, else CPU; anything else is passed to :class:`torch.device`.

    Under torchrun with several processes, ``auto``/``cuda`` mean ``cuda:LOCAL_RANK`` (one GPU
    per process); an explicit ``cuda:N`` is refused there, since every rank would share it.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device '{name}' requested but CUDA is not available (use device=auto)")
    _, world, local_rank = launcher_env()
    if device.type == "cuda" and world > 1:
        if device.index is not None and device.index != local_rank:
            raise RuntimeError(
                f"config key 'device' is {name!r}, but under torchrun each process uses "
                f"cuda:LOCAL_RANK (here cuda:{local_rank}); use device=auto or device=cuda"
            )
        device = torch.device("cuda", local_rank)
    return device


@contextmanager
def distributed(device: torch.device, backend: str = "auto") -> Iterator[bool]:
    """Join the process group described by torchrun's environment for the ``with`` body.

    Yields True when running distributed. A no-op in a plain process (``WORLD_SIZE`` unset or
    1) and when a group already exists (the caller that created it destroys it), so library
    calls nest inside ``pointforge train``'s own session.
    """
    rank, world, _ = launcher_env()
    if world == 1 or comm.is_initialized():
        yield comm.is_initialized()
        return
    if backend == "auto":
        backend = "nccl" if device.type == "cuda" else "gloo"
    if backend == "nccl" and device.type != "cuda":
        raise RuntimeError(
            f"config key 'train.ddp.backend' is nccl, which needs CUDA, but the device is "
            f"{device}; use train.ddp.backend=gloo (or auto)"
        )
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(
        backend,
        init_method="env://",
        rank=rank,
        world_size=world,
        device_id=device if device.type == "cuda" else None,
    )
    try:
        yield True
        # No rank tears the group down while a peer may still be inside a collective: a gloo
        # rank whose peer closed its sockets under pending work aborts (SIGABRT, "terminate
        # called without an active exception"), seen about once in 20 runs on a loaded CPU.
        # Only on a normal exit: after an exception the peers may never reach this barrier.
        comm.barrier()
    finally:
        dist.destroy_process_group()


def wrap_ddp(model: nn.Module, find_unused_parameters: bool = False) -> nn.Module:
    """``model`` wrapped in DistributedDataParallel when distributed, else ``model`` itself.

    DDP broadcasts rank 0's parameters and buffers at construction (so all ranks start equal)
    and averages gradients over ranks in ``backward``; the wrapper shares the parameters of
    ``model``, so optimiser, checkpoints and evaluation keep using the plain module.
    """
    if comm.get_world_size() == 1:
        return model
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise RuntimeError("cannot train with DDP: the model has no trainable parameters")
    device = params[0].device
    return DistributedDataParallel(
        model,
        device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=find_unused_parameters,
    )


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch; ``deterministic`` also forces deterministic kernels.

    Why the switch: deterministic kernels can be slower on CUDA, so they are opt-in; on CPU
    our ops are deterministic anyway, which is what makes exact resume testable.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    else:
        torch.backends.cudnn.benchmark = True
