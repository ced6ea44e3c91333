from __future__ import annotations

import os
import random
import stat
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch

from pointforge.engine.checkpoint import (
    Checkpointer,
    CheckpointError,
    atomic_save,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
)


def test_atomic_save_keeps_old_file_when_write_fails(tmp_path: Path) -> None:
    path = tmp_path / "last.pth"
    atomic_save({"w": torch.ones(3)}, path)
    with mock.patch("torch.save", side_effect=OSError("disk full")), pytest.raises(OSError):
        atomic_save({"w": torch.zeros(3)}, path)
    assert torch.equal(load_checkpoint(path)["w"], torch.ones(3))  # old content intact
    assert [p.name for p in tmp_path.iterdir()] == ["last.pth"]  # no temp file left behind


def test_truncated_checkpoint_error_names_file(tmp_path: Path) -> None:
    path = tmp_path / "iter_0000010.pth"
    atomic_save({"w": torch.randn(100)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"iter_0000010\.pth.*corrupt, truncated"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pth")


def test_rng_state_round_trip_is_weights_only_loadable(tmp_path: Path) -> None:
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    atomic_save({"rng": capture_rng_state()}, tmp_path / "rng.pth")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    restore_rng_state(load_checkpoint(tmp_path / "rng.pth")["rng"])  # weights_only=True inside
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_checkpointer_keeps_last_n(tmp_path: Path) -> None:
    ck = Checkpointer(tmp_path, keep_last=2)
    for it in (10, 20, 30):
        ck.save({"w": torch.tensor(float(it))}, it)
    ck.save({"w": torch.tensor(40.0)}, 40, final=True)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["final.pth", "iter_0000020.pth", "iter_0000030.pth", "last.pth"]
    last = ck.load_last()
    assert last["iteration"] == 40 and last["format_version"] == 1


def test_atomic_save_file_mode_follows_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_save({"x": torch.ones(1)}, tmp_path / "a.pth")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.pth").stat().st_mode) == 0o644
