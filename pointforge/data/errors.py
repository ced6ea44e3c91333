"""Named data-loading failures: a sample that raises, a worker that dies, shared memory that
runs out.

Why: PyTorch reports these as ``DataLoader worker (pid 1234) exited unexpectedly`` or as a
RuntimeError whose text is a worker's traceback, without saying which dataset or which sample
was being loaded, and a shared-memory shortage shows up as an ``unable to open shared memory``
error or a worker killed by a bus error with no hint of the fix. This module turns those into
:class:`DataLoadingError` / :class:`SharedMemoryError` with one-line messages that name the
dataset, the sample (index and stream position) and the original exception, plus the advice
that fixes a shared-memory shortage. The original exception stays chained (``__cause__``).

The only DataLoader internal it reads is the iterator's worker list (pid → worker id), in
:func:`worker_id_of`, which degrades to "not found" if a future PyTorch renames it.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Sequence
from typing import Any

import torch.multiprocessing

SHM_ADVICE = (
    "DataLoader workers ran out of shared memory (/dev/shm) or file descriptors. Fixes: set "
    "data.sharing_strategy=file_system (i.e. torch.multiprocessing.set_sharing_strategy("
    '"file_system")); in Docker, give the container more shared memory (docker run '
    "--shm-size=8g, or --ipc=host); or lower data.num_workers / data.batch_size."
)

# Texts PyTorch and the OS use when passing tensors through shared memory fails.
_SHM_PATTERN = re.compile(
    r"shared memory|/dev/shm|shm_open|torch_shm|bus error|"
    r"unable to (?:open|write to|mmap|resize)[^\n]*torch_|too many open files",
    re.IGNORECASE,
)
# "DataLoader worker (pid 123) exited ..." / "(pid(s) 123, 456) exited unexpectedly".
_DEAD_WORKER = re.compile(r"DataLoader worker \(pid(?:\(s\))? ([\d, ]+)\)")
# The first line torch's ExceptionWrapper puts in front of a worker's traceback.
_WORKER_CAUGHT = re.compile(r"^Caught \w+ in DataLoader worker process (\d+)")


class DataLoadingError(RuntimeError):
    """Loading a sample or batch failed. The message names the dataset, the sample (index and
    stream position when known) and the original exception."""


class SharedMemoryError(DataLoadingError):
    """Batches could not be passed from the workers through shared memory; the message says
    how to fix it (sharing strategy, Docker ``--shm-size``, fewer workers)."""


def sample_error(dataset: str, index: int, position: int, exc: BaseException) -> DataLoadingError:
    """The error for ``dataset[index]`` (at ``position`` of the sample stream) raising ``exc``.

    One line (the first of ``exc``'s message), so the CLI can print it as is; the full original
    stays chained as ``__cause__``."""
    return DataLoadingError(
        f"dataset {dataset} failed on sample index {index} (stream position {position}): "
        f"{type(exc).__name__}: {first_line(exc)}"
    )


def _chain_text(exc: BaseException) -> str:
    """The messages of ``exc`` and its causes/contexts, for pattern matching."""
    parts, seen = [], set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        parts.append(f"{type(cur).__name__}: {cur}")
        cur = cur.__cause__ or cur.__context__
    return "\n".join(parts)


def is_shared_memory_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) reports a shared-memory shortage."""
    return isinstance(exc, SharedMemoryError) or bool(_SHM_PATTERN.search(_chain_text(exc)))


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def shared_memory_error(exc: BaseException, dataset: str) -> SharedMemoryError:
    """``exc`` re-worded with :data:`SHM_ADVICE`; ``dataset`` names what was being loaded."""
    return SharedMemoryError(
        f"loading dataset {dataset} failed: {type(exc).__name__}: {first_line(exc)}. {SHM_ADVICE}"
    )


def worker_sample_error(exc: BaseException) -> DataLoadingError | None:
    """Unwrap a :class:`DataLoadingError` that a worker raised and torch re-raised in the main
    process with the worker's whole traceback as its message: keep our one-line summary (the
    traceback's last line) and say which worker it was. ``None`` if ``exc`` is not one."""
    text = str(exc)
    caught = _WORKER_CAUGHT.match(text)
    marker = f"{DataLoadingError.__module__}.{DataLoadingError.__qualname__}: "
    at = text.rfind(marker)
    if not isinstance(exc, DataLoadingError) or caught is None or at < 0:
        return None
    summary = text[at + len(marker) :].strip()
    return DataLoadingError(f"{summary} [in DataLoader worker process {caught.group(1)}]")


def dead_worker_pids(exc: BaseException) -> list[int]:
    """Worker pids named by torch's "DataLoader worker (pid ...) exited/killed" message."""
    match = _DEAD_WORKER.search(str(exc))
    if match is None:
        return []
    return [int(p) for p in match.group(1).replace(" ", "").split(",") if p]


def worker_id_of(iterator: Any, pid: int) -> int | None:
    """The worker id of process ``pid`` among a multi-process DataLoader iterator's workers
    (``None`` if it is not one of them, or if a future torch renames ``_workers``)."""
    workers: Sequence[Any] = getattr(iterator, "_workers", None) or []
    return next((i for i, w in enumerate(workers) if w.pid == pid), None)


def dead_workers(iterator: Any, wait_s: float = 1.0) -> list[tuple[int, int]]:
    """``(worker id, pid)`` of the iterator's workers that have exited, waiting up to
    ``wait_s`` for one to finish dying (a worker that dies while handing the main process a
    shared-memory file descriptor makes the main process fail before the worker is reaped)."""
    workers: Sequence[Any] = getattr(iterator, "_workers", None) or []
    deadline = time.monotonic() + wait_s
    while True:
        dead = [(i, w.pid) for i, w in enumerate(workers) if not w.is_alive()]
        if dead or not workers or time.monotonic() >= deadline:
            return dead
        time.sleep(0.05)


def exit_status(iterator: Any, worker_id: int) -> str:
    """How worker ``worker_id`` ended: "exit code N" or "killed by SIGNAME" ("" if unknown).

    torch's own message says so only when its SIGCHLD handler noticed first; when its queue
    timeout noticed, it says just "exited unexpectedly"."""
    proc = (getattr(iterator, "_workers", None) or [None] * (worker_id + 1))[worker_id]
    if proc is None:
        return ""
    proc.join(timeout=1.0)  # already dead: this only reaps it so exitcode is set
    code = proc.exitcode
    if code is None:
        return ""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def dead_worker_message(
    exc: BaseException,
    dataset: str,
    worker_id: int,
    pid: int,
    sample: tuple[int, int] | None,
    status: str = "",
) -> str:
    """Message for worker ``worker_id`` that died (``status``: see :func:`exit_status`);
    ``sample`` = ``(position, index)`` of the last sample it started to load, if known."""
    if sample is None:
        what = "before loading any sample"
    else:
        what = (
            f"at sample index {sample[1]} (stream position {sample[0]}; the last sample it started)"
        )
    how = f" ({status})" if status else ""
    cause = first_line(exc).split(". ")[0].rstrip(".")  # torch's advice follows; ours is below
    return (
        f"DataLoader worker {worker_id} (pid {pid}) of dataset {dataset} died{how} {what}: "
        f"{cause}. A worker dies without a Python error when the OS kills it (e.g. the "
        "out-of-memory killer: lower data.num_workers or data.batch_size) or when native code "
        "crashes or exits; rerun with data.num_workers=0 to see the failure in the main process."
    )


def apply_sharing_strategy(name: str | None) -> None:
    """Set torch's tensor-sharing strategy for DataLoader workers; ``None`` keeps torch's default.

    ``file_system`` passes shared tensors by file name instead of an open file descriptor, which
    avoids "Too many open files" and some ``/dev/shm`` limits (at the cost of leaking files if
    the process is killed; torch's shm manager cleans them up).
    """
    if name is None:
        return
    available = sorted(torch.multiprocessing.get_all_sharing_strategies())
    if name not in available:
        raise ValueError(
            f"config key 'data.sharing_strategy': {name!r} is not available on this platform "
            f"(available: {available})"
        )
    torch.multiprocessing.set_sharing_strategy(name)
