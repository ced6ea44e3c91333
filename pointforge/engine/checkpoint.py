"""Atomic checkpoints and the RNG state they carry.

Why atomic: a run killed mid-write (SIGKILL, OOM, pre-emption) must never leave a truncated
``last.pth`` behind, since that would lose the whole run. We write to a temp file in the same
directory, fsync it, rename it over the target (atomic on POSIX) and fsync the directory.

Checkpoints hold only tensors and plain containers so that they load with
``torch.load(weights_only=True)`` (no arbitrary pickle code runs on load).
"""

from __future__ import annotations

import logging
import os
import random
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pointforge.engine import comm

log = logging.getLogger("pointforge")

FORMAT_VERSION = 1
_PERIODIC = re.compile(r"^iter_(\d{7,})\.pth$")


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, corrupt or of the wrong format; the message names the file."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to ``path`` atomically: temp file → fsync → rename → fsync dir."""
    _atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_text(text: str, path: str | Path) -> None:
    """Write a small text file (config, metrics) with the same guarantees as checkpoints."""
    _atomic_write(path, lambda f: f.write(text.encode()))


def atomic_write_bytes(data: bytes, path: str | Path) -> None:
    """Write an in-memory file (a label shard) with the same guarantees as checkpoints."""
    _atomic_write(path, lambda f: f.write(data))


def _atomic_write(path: str | Path, write: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            # mkstemp creates 0600; give the file the mode a plain open() would have.
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, bad pickle, ...
        from pointforge.models.loading import torch_load_problem

        raise CheckpointError(f"cannot load checkpoint {path}: {torch_load_problem(exc)}") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(obj).__name__}, expected a dict")
    return obj


def run_weights(path: str | Path) -> Path:
    """``path`` itself for a file; for a run's folder (or its ``checkpoints/``), the weights a
    user wants from it: ``best.pth`` when the run kept one (``train.best_metric``), else
    ``final.pth``. So ``pointforge eval CONFIG --weights runs/x`` and
    ``load_predictor("runs/x")`` take a run's best weights (``docs/config.md``)."""
    path = Path(path)
    if not path.is_dir():
        return path
    folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    for name in ("best.pth", "final.pth"):
        if (folder / name).is_file():
            log.info("weights of run %s: %s", path, folder / name)
            return folder / name
    raise CheckpointError(
        f"weights {path} is a folder holding neither checkpoints/best.pth nor "
        "checkpoints/final.pth; pass a .pth file or the folder of a finished run"
    )


def capture_rng_state() -> dict[str, Any]:
    """Python, NumPy and torch (CPU and CUDA) RNG states as weights_only-loadable values."""
    np_state = np.random.get_state(legacy=True)
    if not isinstance(np_state, tuple):  # a dict only when the bit generator is not MT19937
        raise TypeError("numpy's global RandomState does not use MT19937; cannot capture it")
    state: dict[str, Any] = {
        "python": _to_plain(random.getstate()),
        "numpy": {
            "key": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    random.setstate(_to_tuple(state["python"]))
    np_s = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            np_s["key"].numpy().astype(np.uint32),
            np_s["pos"],
            np_s["has_gauss"],
            np_s["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_plain(obj: Any) -> Any:
    if isinstance(obj, tuple):
        return [_to_plain(v) for v in obj]
    return obj


def _to_tuple(obj: Any) -> Any:
    if isinstance(obj, list):
        return tuple(_to_tuple(v) for v in obj)
    return obj


class Checkpointer:
    """Writes ``last.pth`` (always), ``iter_NNNNNNN.pth`` (keeping the newest ``keep_last``)
    and ``final.pth`` into ``directory``."""

    def __init__(self, directory: str | Path, keep_last: int = 3) -> None:
        self.directory = Path(directory)
        self.keep_last = keep_last

    @property
    def last_path(self) -> Path:
        return self.directory / "last.pth"

    def save(self, state: dict[str, Any], iteration: int, final: bool = False) -> Path:
        """Save ``state`` as ``last.pth`` and a periodic or final file; prune old periodic files.

        Under DDP every rank calls this (the weights are identical on all ranks); only rank 0
        writes, and all ranks wait for it, so none runs ahead of a checkpoint it may be asked
        to resume from. Each rank's RNG state is kept too (``rng_per_rank``): the streams differ
        per rank, and every rank must resume its own.
        """
        state = {**state, "iteration": iteration, "format_version": FORMAT_VERSION}
        if comm.get_world_size() > 1 and "rng" in state:
            state["rng_per_rank"] = comm.all_gather(state["rng"])
        name = "final.pth" if final else f"iter_{iteration:07d}.pth"
        target = self.directory / name
        if comm.is_main_process():
            atomic_save(state, target)
            # last.pth is a second atomic write rather than a link: links do not survive copies.
            atomic_save(state, self.last_path)
            self._prune()
        comm.barrier()
        return target

    def _prune(self) -> None:
        periodic = sorted(p for p in self.directory.glob("iter_*.pth") if _PERIODIC.match(p.name))
        excess = len(periodic) - self.keep_last
        for p in periodic[: max(excess, 0)]:
            p.unlink(missing_ok=True)

    def resume_path(self) -> Path | None:
        """The checkpoint to resume from: ``last.pth``; without one, ``final.pth`` or else the
        newest ``iter_*.pth``; ``None`` if there is no checkpoint.

        Why the fallback: :meth:`save` writes the periodic (or final) file first and
        ``last.pth`` second, so a run killed between the two writes of its *first* save has
        ``iter_0000001.pth`` but no ``last.pth``. (Killed between the writes of a later save,
        ``last.pth`` is one save behind the newest ``iter_*.pth``; resuming from it is still
        exact, it just repeats those iterations.) Temp files of interrupted writes never match.
        """
        if self.last_path.is_file():
            return self.last_path
        final = self.directory / "final.pth"
        if final.is_file():
            return final
        periodic = sorted(p for p in self.directory.glob("iter_*.pth") if _PERIODIC.match(p.name))
        return periodic[-1] if periodic else None

    def remove_stale_temp_files(self) -> list[Path]:
        """Delete temp files that writes killed mid-way (SIGKILL, power loss) left behind.

        :func:`atomic_save` names them ``.<target>.<random>.tmp``; they are never loaded, but
        each is as large as a checkpoint. Call only when no save is in progress (on resume).
        """
        stale = sorted(self.directory.glob(".*.pth.*.tmp"))
        for p in stale:
            p.unlink(missing_ok=True)
        return stale

    def load_last(self) -> dict[str, Any]:
        """Load the checkpoint of :meth:`resume_path`, checking the format version."""
        path = self.resume_path()
        if path is None:
            raise CheckpointError(
                f"--resume given but no checkpoint at {self.last_path}; start without --resume"
            )
        ckpt = load_checkpoint(path)
        version = ckpt.get("format_version")
        if version != FORMAT_VERSION:
            raise CheckpointError(
                f"checkpoint {path} has format_version {version}, expected {FORMAT_VERSION}"
            )
        per_rank = ckpt.get("rng_per_rank")
        if per_rank is not None and len(per_rank) == comm.get_world_size():
            ckpt["rng"] = per_rank[comm.get_rank()]  # this rank's streams (DDP runs)
        return ckpt
