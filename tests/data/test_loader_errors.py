"""Data-loading failures give named errors: a sample that raises, a worker that dies, and a
shared-memory shortage (with advice); data.sharing_strategy applies torch's strategy."""

from __future__ import annotations

import contextlib
import os
from typing import Any

import pytest
import torch
import torch.multiprocessing
from torch.utils.data import Dataset, get_worker_info

from pointforge.config import load_config
from pointforge.config.validate import ConfigError
from pointforge.data.errors import (
    SHM_ADVICE,
    DataLoadingError,
    SharedMemoryError,
    apply_sharing_strategy,
    is_shared_memory_error,
)
from pointforge.data.loader import build_train_loader, explain_data_error
from pointforge.data.samplers import InfiniteSampler


class Flaky(Dataset):
    """64 tiny samples; index ``raise_at`` raises, index ``die_at`` kills its worker process."""

    def __init__(self, raise_at: int | None = None, die_at: int | None = None) -> None:
        self.raise_at = raise_at
        self.die_at = die_at

    def __len__(self) -> int:
        return 64

    def __getitem__(self, i: int) -> dict[str, Any]:
        if i == self.raise_at:
            raise ValueError(f"corrupt record for item {i}\n  (a second line of details)")
        if i == self.die_at and get_worker_info() is not None:
            os._exit(3)  # no Python error: the worker just disappears
        return {"x": torch.full((4,), float(i))}


def position_of(index: int, seed: int = 0) -> int:
    """The first stream position at which the seeded sampler yields ``index``."""
    stream = InfiniteSampler(64, shuffle=True, seed=seed).with_positions()
    return next(p for p, i in stream if i == index)


def first_error(stream: Any, max_batches: int = 40) -> BaseException:
    """Pull batches until one fails; return the error as the training loop would name it
    (torch may raise a worker death asynchronously, outside ``next``)."""
    try:
        for _ in range(max_batches):
            next(stream)
    except Exception as exc:
        named = explain_data_error(exc)
        return named if named is not None else exc
    finally:
        stream.close()
    raise AssertionError("no batch failed")


@pytest.mark.parametrize("workers", [0, 1])
def test_sample_that_raises_is_named(workers: int) -> None:
    stream = build_train_loader(Flaky(raise_at=13), 4, workers, seed=0, rank=0, world_size=1)
    err = first_error(stream)
    assert isinstance(err, DataLoadingError), err
    text = str(err)
    assert "\n" not in text  # one line, fit for the CLI
    expected = (
        f"dataset Flaky failed on sample index 13 (stream position {position_of(13)}): "
        "ValueError: corrupt record for item 13"
    )
    assert text.startswith(expected), text
    if workers:
        assert "[in DataLoader worker process" in text
        assert "corrupt record" in str(err.__cause__)  # torch's worker traceback is kept
    else:
        assert isinstance(err.__cause__, ValueError)


def test_worker_that_dies_is_named_with_its_sample() -> None:
    stream = build_train_loader(Flaky(die_at=21), 4, 2, seed=0, rank=0, world_size=1)
    err = first_error(stream)
    assert isinstance(err, DataLoadingError) and not isinstance(err, SharedMemoryError), err
    text = str(err)
    assert "of dataset Flaky died (exit code 3) at sample index 21" in text, text
    assert f"(stream position {position_of(21)};" in text
    assert "exited unexpectedly" in text and "data.num_workers=0" in text
    assert "DataLoader worker" in str(err.__cause__)


def test_connection_lost_to_a_dead_worker_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that dies while handing over a shared-memory file descriptor makes the main
    process fail with ConnectionResetError (not torch's "exited unexpectedly")."""
    from torch.utils.data import dataloader

    first = first4()[0]

    def lost(self: Any, timeout: float = 5.0) -> Any:
        for w in self._workers:
            while w.is_alive():
                # torch's SIGCHLD handler may raise here: not the path tested.
                with contextlib.suppress(RuntimeError):
                    w.join(5.0)
        raise ConnectionResetError(104, "Connection reset by peer")

    with monkeypatch.context() as m:
        m.setattr(dataloader._MultiProcessingDataLoaderIter, "_try_get_data", lost)
        stream = build_train_loader(Flaky(die_at=first), 4, 1, seed=0, rank=0, world_size=1)
        err = first_error(stream)
    assert isinstance(err, DataLoadingError), err
    text = str(err)
    assert f"of dataset Flaky died (exit code 3) at sample index {first} (stream position 0;" in (
        text
    ), text
    assert "Connection reset by peer" in text
    assert isinstance(err.__cause__, ConnectionResetError)


def test_shared_memory_error_gets_advice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulate /dev/shm running out where torch reports it: the main process receiving a
    batch from a worker (rebuilding its tensors from shared memory)."""
    from torch.utils.data import dataloader

    def no_shm(self: Any, timeout: float = 5.0) -> Any:
        raise RuntimeError(
            "unable to open shared memory object </torch_4242_1234_0> in read-write mode: "
            "No such file or directory (2)"
        )

    stream = build_train_loader(Flaky(), 4, 1, seed=0, rank=0, world_size=1)
    with monkeypatch.context() as m:
        m.setattr(dataloader._MultiProcessingDataLoaderIter, "_try_get_data", no_shm)
        err = first_error(stream)
    assert isinstance(err, SharedMemoryError), err
    text = str(err)
    assert text.startswith("loading dataset Flaky failed: RuntimeError: unable to open shared")
    assert SHM_ADVICE in text and "--shm-size" in text and "data.num_workers" in text
    assert 'set_sharing_strategy("file_system")' in text and "\n" not in text


def test_sharing_strategy_switch_applies() -> None:
    old = torch.multiprocessing.get_sharing_strategy()
    try:
        apply_sharing_strategy(None)  # null keeps torch's default
        assert torch.multiprocessing.get_sharing_strategy() == old
        apply_sharing_strategy("file_system")
        assert torch.multiprocessing.get_sharing_strategy() == "file_system"
        # Batches really travel through file_system sharing from a worker.
        stream = build_train_loader(Flaky(), 4, 1, seed=0, rank=0, world_size=1)
        assert torch.equal(next(stream)["x"][:, 0], torch.tensor([float(i) for i in first4()]))
        stream.close()
    finally:
        torch.multiprocessing.set_sharing_strategy(old)


def first4() -> list[int]:
    stream = InfiniteSampler(64, shuffle=True, seed=0).with_positions()
    return [next(stream)[1] for _ in range(4)]


def test_shared_memory_detection_and_non_data_errors() -> None:
    bus = RuntimeError(
        "DataLoader worker (pid 4242) is killed by signal: Bus error. It is possible that "
        "dataloader's workers are out of shared memory."
    )
    assert is_shared_memory_error(bus)
    assert not is_shared_memory_error(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert explain_data_error(RuntimeError("mat1 and mat2 shapes cannot be multiplied")) is None
    # Outside the loader, "shared memory" is not ours (e.g. a GPU kernel's shared memory).
    stream = build_train_loader(Flaky(), 4, 0, seed=0, rank=0, world_size=1)
    triton = RuntimeError("out of resource: shared memory, Required: 98304, Hardware limit: 65536")
    assert explain_data_error(triton) is None
    assert isinstance(stream.explain(triton), SharedMemoryError)  # raised by next(): ours


def test_sharing_strategy_config_key() -> None:
    mp = ["task=magicpoint"]
    assert load_config(None, mp).data.sharing_strategy is None  # torch's default kept
    cfg = load_config(None, [*mp, "data.sharing_strategy=file_system"])
    assert cfg.data.sharing_strategy == "file_system"
    with pytest.raises(ConfigError, match=r"data\.sharing_strategy.*file_sytem"):
        load_config(None, [*mp, "data.sharing_strategy=file_sytem"])
