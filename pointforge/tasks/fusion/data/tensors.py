"""Sample dictionaries → tensors, the batch collate, and the registered fusion datasets.

Why: the readers (:mod:`.synthetic`, :mod:`.nuscenes`) produce the NumPy sample dictionary of
:mod:`.sample`; the engine's loader wants tensors, and a batch must keep the ragged parts
(boxes, radar points) per image. Item layout (``K`` boxes, ``N`` radar points)::

    image          float32 (3, H, W) RGB in [0, 1] (the model normalises it itself)
    intrinsics     float32 (3, 3)
    cam_to_ego, ego_to_global   float64 (4, 4)
    radar          float32 (N, 9) (RADAR_COLUMNS)
    boxes          dict of tensors, the sample's ``boxes`` arrays (BOX_KEYS)
    sample_token   str;  index  int (position in the dataset, for order-free evaluation)

Batch: ``image (B, 3, H, W)``, ``intrinsics (B, 3, 3)``, transforms ``(B, 4, 4)``, ``radar
(B, Nmax, 9)`` zero-padded with ``radar_mask (B, Nmax)`` bool, ``boxes`` a list of B dicts,
``sample_token`` a list, ``index (B,)``.

Registered datasets (``data.name``): ``synthetic_radar_camera`` (params
:class:`SyntheticSceneParams`) and ``nuscenes`` (params :class:`NuScenesSplitParams`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from pointforge.registry import DATASETS
from pointforge.tasks.fusion.data.nuscenes import NuScenesParams, NuScenesRadarCamera
from pointforge.tasks.fusion.data.sample import RADAR_COLUMNS
from pointforge.tasks.fusion.data.synthetic import SyntheticRadarCameraScenes, SyntheticSceneParams


def sample_to_tensors(sample: dict[str, Any], index: int) -> dict[str, Any]:
    """One sample dictionary → the item layout of the module docstring."""
    rgb = np.ascontiguousarray(sample["image"][..., ::-1].transpose(2, 0, 1))
    return {
        "image": torch.from_numpy(rgb).float().div_(255.0),
        "intrinsics": torch.as_tensor(sample["intrinsics"], dtype=torch.float32),
        "cam_to_ego": torch.as_tensor(sample["cam_to_ego"], dtype=torch.float64),
        "ego_to_global": torch.as_tensor(sample["ego_to_global"], dtype=torch.float64),
        "radar": torch.as_tensor(sample["radar"], dtype=torch.float32).reshape(
            -1, len(RADAR_COLUMNS)
        ),
        "boxes": {k: torch.as_tensor(np.asarray(v)) for k, v in sample["boxes"].items()},
        "sample_token": str(sample["sample_token"]),
        "index": int(index),
    }


def collate_fusion(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Items → a batch (module docstring): fixed-size tensors stacked, radar zero-padded."""
    if not samples:
        raise ValueError("collate_fusion: empty batch")
    n = max([int(s["radar"].shape[0]) for s in samples] + [1])
    radar = torch.zeros(len(samples), n, len(RADAR_COLUMNS))
    mask = torch.zeros(len(samples), n, dtype=torch.bool)
    for i, s in enumerate(samples):
        k = int(s["radar"].shape[0])
        radar[i, :k] = s["radar"]
        mask[i, :k] = True
    stack = ("image", "intrinsics", "cam_to_ego", "ego_to_global")
    shapes = {tuple(s["image"].shape) for s in samples}
    if len(shapes) > 1:
        raise ValueError(f"collate_fusion: images of different sizes {sorted(shapes)} in a batch")
    return {
        **{k: torch.stack([s[k] for s in samples]) for k in stack},
        "radar": radar,
        "radar_mask": mask,
        "boxes": [s["boxes"] for s in samples],
        "sample_token": [s["sample_token"] for s in samples],
        "index": torch.tensor([s["index"] for s in samples]),
    }


class TensorSamples(Dataset):
    """A reader of sample dictionaries seen through :func:`sample_to_tensors`; keeps the
    reader's ``split`` for error messages."""

    def __init__(self, reader: Dataset, split: str) -> None:
        self.reader = reader
        self.split = split

    def __len__(self) -> int:
        return len(self.reader)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, Any]:
        return sample_to_tensors(self.reader[index], index)


@DATASETS.register("synthetic_radar_camera", params=SyntheticSceneParams)
def build_synthetic(split: str, **params: Any) -> TensorSamples:
    """The built-in synthetic scenes (:mod:`.synthetic`); ``params``: its fields."""
    for k in ("image_size", "num_objects", "depth_range"):
        if k in params:
            params[k] = tuple(params[k])
    return TensorSamples(SyntheticRadarCameraScenes(SyntheticSceneParams(**params), split), split)


@dataclass(frozen=True)
class NuScenesSplitParams:
    """``data.`` keys of the nuScenes reader for training and evaluation."""

    root: str | None = None  # nuScenes root holding <version>/*.json, samples/, sweeps/
    version: str = "v1.0-mini"  # table folder; v1.0-trainval for the full set
    # Scene names of each split; the defaults are the devkit's mini_train / mini_val split of
    # v1.0-mini (nuscenes/utils/splits.py). For v1.0-trainval pass the devkit's train / val
    # lists (700 / 150 scenes); null reads every scene.
    train_scenes: tuple[str, ...] | None = (
        "scene-0061", "scene-0553", "scene-0655", "scene-0757",
        "scene-0796", "scene-1077", "scene-1094", "scene-1100",
    )  # fmt: skip
    val_scenes: tuple[str, ...] | None = ("scene-0103", "scene-0916")
    camera: str = "CAM_FRONT"
    radars: tuple[str, ...] = ("RADAR_FRONT",)
    radar_sweeps: int = 3  # CenterFusion --radar_sweeps 3
    max_radar_depth: float = 60.0  # CenterFusion --max_pc_dist 60
    # 448 x 800: CenterFusion's input resolution for nuScenes (both multiples of 32).
    image_size: tuple[int, int] = (448, 800)
    drop_empty_boxes: bool = True  # devkit eval drops boxes without lidar/radar points
    on_missing: str = field(default="error", metadata={"choices": ("error", "skip")})


@DATASETS.register("nuscenes", params=NuScenesSplitParams)
def build_nuscenes(split: str, **params: Any) -> TensorSamples:
    """nuScenes front camera + radar (:mod:`.nuscenes`) for ``split`` ("train" / "val")."""
    if split not in ("train", "val"):
        raise ValueError(f"nuscenes split must be 'train' or 'val', got {split!r}")
    scenes = params.pop("train_scenes" if split == "train" else "val_scenes")
    params.pop("val_scenes" if split == "train" else "train_scenes")
    for k in ("radars", "image_size"):
        if params.get(k) is not None:
            params[k] = tuple(params[k])
    reader = NuScenesRadarCamera(
        NuScenesParams(scenes=tuple(scenes) if scenes is not None else None, **params)
    )
    if len(reader) == 0:
        raise ValueError(
            f"nuScenes {params.get('version')} has no sample in the {split} scenes under "
            f"{params.get('root')} (config keys data.{split}_scenes, data.version)"
        )
    return TensorSamples(reader, split)
