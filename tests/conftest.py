"""Shared fixtures. Tests run on CPU with few threads so the suite is quick on 2 cores."""

from __future__ import annotations

import os

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
