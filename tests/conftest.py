"""Shared fixtures. Tests run on CPU with few threads so the suite is quick on 2 cores."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")
# One intra-op thread: the tests' tensors are tiny, and several tests run subprocesses
# (DDP ranks, kill-and-resume) or DataLoader workers beside the main process; with more threads
# each on 2 cores, OpenMP oversubscription made single ops ~30x slower. Subprocesses inherit it.
os.environ["OMP_NUM_THREADS"] = "1"
torch.set_num_threads(1)


@pytest.fixture
def tiny_overrides() -> list[str]:
    """Overrides that make a MagicPoint run take seconds on CPU."""
    return [
        "task=magicpoint",
        "data.batch_size=2",
        "data.num_workers=0",
        "solver.max_iter=4",
        "train.checkpoint_period=2",
        "train.eval_period=0",
        "train.progress_bar=false",
        "eval.num_images=4",
        "eval.num_visualize=2",
        "eval.baselines=[harris]",
        "device=cpu",
    ]


# Real data from other repositories lives beside the repository, never in it (docs/detection.md,
# "Data beside the repository"): ../shared/data/<name> from the repository root.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REQUIRE_SHARED_DATA = "POINTFORGE_REQUIRE_SHARED_DATA"


def shared_data_path(name: str) -> Path:
    """``../shared/data/<name>``, or a one-line skip when it is absent (as in a user's clone).

    With POINTFORGE_REQUIRE_SHARED_DATA=1 (set by .ci/run when the folder exists) an absent set
    fails instead, so a CI machine that has the data can never pass by skipping.
    """
    path = SHARED_DATA / name
    if path.is_dir():
        return path
    reason = f"{path} is absent (real data kept beside the repository, docs/detection.md)"
    if os.environ.get(REQUIRE_SHARED_DATA) == "1":
        pytest.fail(f"{reason}, but {REQUIRE_SHARED_DATA}=1 requires it", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def shared_data() -> Callable[[str], Path]:
    """``shared_data("chess")`` in a test: the path of ``../shared/data/chess``, or a skip."""
    return shared_data_path
