"""``data.repeat_threshold``: LVIS repeat factors of a hand-computed category table, the key on
every detection dataset and its validation, and a real CenterNet run on a tiny COCO set with one
rare class: the rare image is drawn ~r times as often, the build log says so, and a checkpoint
+ resume trains on exactly the batches of the uninterrupted run."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from pointforge.config.compose import data_schema
from pointforge.config.loader import build_config
from pointforge.config.validate import ConfigError
from pointforge.engine.checkpoint import load_checkpoint
from pointforge.engine.run import build_task, train
from pointforge.tasks.detection.repeat_factors import repeat_factors, summary
from pointforge.tasks.detection.task import CenterNetTask

COMMON, RARE = 1, 2  # COCO category ids of the tiny set
NUM_IMAGES = 6  # image 1 holds the rare class (and a common box), images 2..6 the common one


def test_hand_computed_factors() -> None:
    # 5 images, 4 classes: f = (3/5, 1/5, 2/5, 0); t = 0.8 gives r_c = max(1, sqrt(0.8 / f_c)):
    # r_0 = sqrt(4/3), r_1 = 2, r_2 = sqrt(2); class 3 is in no image (NaN).
    labels = [np.array([0, 1, 0]), np.array([0]), np.array([0, 2]), np.array([2]), np.zeros(0)]
    f = repeat_factors(labels, 4, 0.8)
    np.testing.assert_allclose(f.class_freq, [0.6, 0.2, 0.4, 0.0])
    np.testing.assert_allclose(f.class_factor[:3], [math.sqrt(4 / 3), 2.0, math.sqrt(2)])
    assert math.isnan(f.class_factor[3])
    # r_i = max over the image's classes; the empty image gets 1.
    expected = [2.0, math.sqrt(4 / 3), math.sqrt(2), math.sqrt(2), 1.0]
    np.testing.assert_allclose(f.image, expected)
    # A threshold at or below every class's frequency repeats nothing.
    np.testing.assert_array_equal(repeat_factors(labels, 4, 0.2).image, np.ones(5))
    line = summary(f, ["a", "b", "c", "d"], batch_size=2)
    assert "4 of 5 training images repeat" in line and "max r=2" in line
    assert f"~{sum(expected):.1f} draws" in line and "b f=0.2 r=2" in line
    assert line.index("b f=") < line.index("c f=") < line.index("a f=")
    assert "1 class(es) in no training image" in line
    with pytest.raises(ValueError, match="image 1 has class index 4"):
        repeat_factors([np.array([0]), np.array([4])], 4, 0.5)


def tiny_coco(root: Path) -> Path:
    """Six 64x64 PNGs, each with one 'common' box; image 1 also has a 'rare' box. Returns the
    json (train and val read it)."""
    rng = np.random.default_rng(0)
    images, anns = [], []
    (root / "images").mkdir(parents=True)
    for i in range(1, NUM_IMAGES + 1):
        img = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
        assert cv2.imwrite(str(root / "images" / f"{i}.png"), img)
        images.append({"id": i, "file_name": f"{i}.png", "width": 64, "height": 64})
        anns.append({"id": 10 * i, "image_id": i, "category_id": COMMON, "bbox": [4, 4, 20, 20]})
    anns.append({"id": 5, "image_id": 1, "category_id": RARE, "bbox": [30, 30, 24, 24]})
    cats = [{"id": COMMON, "name": "common"}, {"id": RARE, "name": "rare"}]
    path = root / "train.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


def coco_cfg(root: Path, out: Path | None, **over: Any) -> dict[str, Any]:
    split = {"json": str(root / "train.json"), "images": str(root / "images")}
    cfg: dict[str, Any] = {
        "task": "centernet",
        "device": "cpu",
        "seed": 3,
        "output_dir": str(out) if out is not None else None,
        "data": {
            "name": "coco",
            "train": split,
            "val": split,
            "image_size": [64, 64],
            "batch_size": 2,
            "num_workers": 0,
            "repeat_threshold": 0.5,
        },
        "solver": {"max_iter": 4, "lr": 1e-3},
        "train": {
            "checkpoint_period": 2,
            "eval_period": 0,
            "log_period": 1,
            "progress_bar": False,
            "channels_last": False,
        },
    }
    for key, value in over.items():
        cfg["data"][key] = value
    return cfg


def test_every_detection_dataset_has_the_key_and_it_is_checked(tmp_path: Path) -> None:
    for name in ("coco", "voc", "yolo", "chess", "shapes_detection"):
        fields = {f.name: f for f in dataclasses.fields(data_schema(name))}
        assert fields["repeat_threshold"].default is None, name
    root = tmp_path / "coco"
    tiny_coco(root)
    for bad in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ConfigError, match=r"data\.repeat_threshold"):
            build_config(coco_cfg(root, None, repeat_threshold=bad))
    for good in (None, 1.0, 1e-3):
        build_config(coco_cfg(root, None, repeat_threshold=good))
    shapes = {"name": "shapes_detection", "repeat_threshold": 2.0}
    with pytest.raises(ConfigError, match=r"data\.repeat_threshold"):
        build_config({"task": "centernet", "data": shapes})


def test_loader_draws_the_rare_image_r_times_as_often(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "coco"
    tiny_coco(root)
    task = build_task(build_config(coco_cfg(root, None)))
    with caplog.at_level(logging.INFO, logger="pointforge.tasks.detection.task"):
        stream = task.build_train_loader(0)
    # f_rare = 1/6, r = sqrt(0.5 * 6) = sqrt(3); the common class is in every image (r = 1).
    assert "data.repeat_threshold=0.5): 1 of 6 training images repeat" in caplog.text
    assert "rare f=0.1667 r=1.73" in caplog.text
    ids = [i for _ in range(90) for i in next(stream)["image_id"].tolist()]
    counts = np.bincount(ids, minlength=NUM_IMAGES + 1)[1:]
    common = counts[1:].mean()
    assert abs(counts[0] / common - math.sqrt(3)) < 0.2, counts
    # Without the key the same seed draws every image equally often (plain epochs).
    plain = build_task(build_config(coco_cfg(root, None, repeat_threshold=None)))
    plain_stream = plain.build_train_loader(0)
    flat = [i for _ in range(90) for i in next(plain_stream)["image_id"].tolist()]
    assert len(flat) == 180 and set(np.bincount(flat)[1:].tolist()) == {30}
    # Resumed at batch 37, the stream is the tail of the uninterrupted one.
    tail = task.build_train_loader(37)
    assert [next(tail)["image_id"].tolist() for _ in range(5)] == [
        ids[2 * b : 2 * b + 2] for b in range(37, 42)
    ]


def test_training_run_resumes_on_the_same_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "coco"
    tiny_coco(root)
    seen: list[list[int]] = []
    step = CenterNetTask.training_step

    def recording(self: CenterNetTask, model: Any, batch: dict[str, Any]) -> Any:
        seen.append(batch["image_id"].tolist())
        return step(self, model, batch)

    monkeypatch.setattr(CenterNetTask, "training_step", recording)
    whole, split = tmp_path / "whole", tmp_path / "split"
    train(build_config(coco_cfg(root, whole)))
    uninterrupted, seen[:] = list(seen), []
    train(build_config({**coco_cfg(root, split), "solver": {"max_iter": 2, "lr": 1e-3}}))
    train(build_config(coco_cfg(root, split)), resume=True)
    assert len(uninterrupted) == 4 and seen == uninterrupted
    a = load_checkpoint(whole / "checkpoints" / "final.pth")["model"]
    b = load_checkpoint(split / "checkpoints" / "final.pth")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
