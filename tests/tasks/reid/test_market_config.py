"""The config contract: configs/reid_market.yaml with data.root=DIR reads a Market-1501 folder
and trains on it through the engine."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pointforge.config import load_config
from pointforge.config.validate import ConfigError
from pointforge.engine import run

CONFIGS = Path(__file__).resolve().parents[3] / "configs"


def market_folder(root: Path) -> Path:
    """3 training identities × 2 cameras × 2 images (+ a junk box), 2 test identities."""
    rng = np.random.default_rng(0)

    def write(folder: str, name: str) -> None:
        path = root / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), rng.integers(0, 255, (24, 12, 3), np.uint8))

    for pid in (2, 7, 11):
        for cam in (1, 2):
            for frame in (10, 20):
                write("bounding_box_train", f"{pid:04d}_c{cam}s1_{frame:06d}_01.jpg")
    write("bounding_box_train", "-1_c1s1_000001_00.jpg")
    for pid in (3, 5):
        write("query", f"{pid:04d}_c1s1_000100_00.jpg")
        write("bounding_box_test", f"{pid:04d}_c2s1_000200_00.jpg")
        write("bounding_box_test", f"{pid:04d}_c1s1_000300_00.jpg")  # same camera: ignored
    write("bounding_box_test", "0000_c3s1_000400_00.jpg")  # distractor
    write("bounding_box_test", "-1_c2s1_000500_00.jpg")  # junk
    return root


def test_market_config_trains_on_a_folder(tmp_path: Path) -> None:
    root = market_folder(tmp_path / "Market-1501")
    cfg = load_config(
        CONFIGS / "reid_market.yaml",
        [
            "data.name=market1501",  # the contract: data.name + data.root
            f"data.root={root}",
            "model.name=reid_resnet18",  # ResNet-50 is the recipe; 18 keeps the test quick
            "data.image_size=[32,16]",
            "reid.p=2",
            "reid.k=2",
            "data.batch_size=4",
            "data.num_workers=0",
            "solver.max_iter=1",
            "solver.warmup_iters=0",
            "solver.steps=[]",
            "train.progress_bar=false",
            "device=cpu",
            f"output_dir={tmp_path / 'run'}",
        ],
    )
    task = run.build_task(cfg)
    train = task.build_dataset("train")
    assert len(train) == 12 and train.num_classes == 3  # type: ignore[attr-defined]
    assert sorted(set(train.pids.tolist())) == [0, 1, 2]  # type: ignore[attr-defined]
    val = task.build_dataset("val")
    assert len(val) == 2 + 6  # 2 queries, 4 gallery boxes + distractor + junk
    metrics = run.train(cfg)
    # Each query has exactly one valid match (its other-camera box) among 4 candidates (it,
    # the other identity's 2 boxes, the distractor; junk and the query's own-camera box are
    # ignored): rank-10 finds it and its AP is 1 / its rank >= 1/4.
    assert metrics["reid/rank10"] == 1.0 and metrics["reid/num_no_match"] == 0.0
    assert 0.25 <= metrics["reid/mAP"] <= 1.0


def test_market_config_needs_its_root() -> None:
    with pytest.raises(ConfigError, match=r"'data\.root' must be the market1501 dataset folder"):
        load_config(CONFIGS / "reid_market.yaml", [])
