"""The base Task's split cache: ``build_dataset`` builds each split once with ``make_dataset``."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from pointforge.config.schema import Config
from pointforge.tasks.base import Task


class CountingTask(Task):
    """Builds a split of ``len(split)`` rows and counts the builds; ``fail`` makes them raise."""

    def __init__(self) -> None:
        super().__init__(cast(Config, SimpleNamespace(task="counting")), torch.device("cpu"))
        self.builds: list[str] = []
        self.fail = False

    def make_dataset(self, split: str) -> Dataset:
        self.builds.append(split)
        if self.fail:
            raise ValueError(f"no {split!r} split here")
        return TensorDataset(torch.zeros(len(split)))

    def training_step(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        raise AssertionError("not trained")


def test_each_split_is_built_once_and_returned_as_the_same_object() -> None:
    task = CountingTask()
    train = task.build_dataset("train")
    val = task.build_dataset("val")
    assert len(train) == 5 and len(val) == 3  # type: ignore[arg-type]
    assert task.build_dataset("train") is train and task.build_dataset("val") is val
    assert task.builds == ["train", "val"]
    assert CountingTask().build_dataset("train") is not train  # the cache is per task


def test_a_failed_build_is_not_stored_and_raises_again() -> None:
    task = CountingTask()
    task.fail = True
    for _ in range(2):
        with pytest.raises(ValueError, match="no 'val' split here"):
            task.build_dataset("val")
    task.fail = False
    assert len(task.build_dataset("val")) == 3  # type: ignore[arg-type]
    assert task.builds == ["val", "val", "val"]


def test_a_task_without_datasets_names_itself_and_the_split() -> None:
    class NoData(Task):
        def training_step(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, Any]:
            return {}

    task = NoData(cast(Config, SimpleNamespace(task="nodata")), torch.device("cpu"))
    with pytest.raises(NotImplementedError, match="task 'nodata' defines no 'val' dataset"):
        task.build_dataset("val")
