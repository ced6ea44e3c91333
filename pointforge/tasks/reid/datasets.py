"""The re-ID datasets in the ``DATASETS`` registry, with their ``data.`` keys.

Why a thin layer: the readers and the synthetic set take a params dataclass; the engine's
config holds the same fields flat under ``data.`` (``data.root``, ``data.on_bad_image``,
``data.num_train_ids``...). Each entry here rebuilds the dataclass from those keys, so the
config contract of ``docs/reid.md`` (``data.name=market1501 data.root=DIR``) reaches the
reader unchanged.

Every entry is called as ``DATASETS.build(name, split=..., transform=..., **data keys)`` with
``split`` in ``train | query | gallery``; it returns a set with ``.pids`` / ``.camids`` (int64,
one per item) and, for train, ``.num_classes``.
"""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset

from pointforge.registry import DATASETS
from pointforge.tasks.reid.data.readers import (
    ReIDFolderParams,
    Transform,
    dukemtmc,
    generic_reid,
    market1501,
)
from pointforge.tasks.reid.data.synthetic import SyntheticReID, SyntheticReIDParams

REID_DATASETS = ("synthetic_reid", "market1501", "dukemtmc", "reid_folder")


@DATASETS.register("market1501", params=ReIDFolderParams)
def market1501_dataset(split: str, transform: Transform | None = None, **keys: Any) -> Dataset:
    """Market-1501 (``bounding_box_train`` / ``query`` / ``bounding_box_test`` under
    ``data.root``)."""
    return market1501(split, ReIDFolderParams(**keys), transform)


@DATASETS.register("dukemtmc", params=ReIDFolderParams)
def dukemtmc_dataset(split: str, transform: Transform | None = None, **keys: Any) -> Dataset:
    """DukeMTMC-reID (Market's folders, ``0005_c2_f0046985.jpg`` names)."""
    return dukemtmc(split, ReIDFolderParams(**keys), transform)


@DATASETS.register("reid_folder", params=ReIDFolderParams)
def reid_folder_dataset(split: str, transform: Transform | None = None, **keys: Any) -> Dataset:
    """A user's own ``<root>/<split>/<identity>/<camera>_<anything>.jpg`` folder."""
    return generic_reid(split, ReIDFolderParams(**keys), transform)


@DATASETS.register("synthetic_reid", params=SyntheticReIDParams)
def synthetic_reid_dataset(split: str, transform: Transform | None = None, **keys: Any) -> Dataset:
    """The procedural identity set (no files; the default and the quickstart)."""
    return SyntheticReID(split, SyntheticReIDParams(**keys), transform)
