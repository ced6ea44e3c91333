"""SuperPoint joint training through the engine on real photos and exported labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import pointforge
from pointforge import MAGICPOINT_WEIGHTS
from pointforge.config import ConfigError, load_config
from pointforge.config.schema import Config
from pointforge.data.datasets.photo_folder import write_sample_photos
from pointforge.engine import run
from pointforge.engine.checkpoint import load_checkpoint
from pointforge.engine.trainer import Trainer
from pointforge.tasks.keypoints.export_labels import export_labels

SIZE = "[96,128]"
CONFIG = Path(__file__).resolve().parents[3] / "configs/superpoint_train.yaml"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sp")
    write_sample_photos(root / "train", ["camera", "brick", "clock"])
    write_sample_photos(root / "val", ["coins"])
    cfg = load_config(
        None,
        [
            "task=magicpoint",
            "data.name=photo_folder",
            "device=cpu",
            f"data.image_size={SIZE}",
            "adaptation.num_homographies=2",
        ],
    )
    export_labels(cfg, MAGICPOINT_WEIGHTS, root / "train", root / "labels", progress=False)
    return {"train": root / "train", "val": root / "val", "labels": root / "labels"}


def sp_cfg(data: dict[str, Path], out: Path, *extra: str) -> Config:
    return load_config(
        CONFIG,
        [
            "device=cpu",
            f"output_dir={out}",
            f"data.root={data['train']}",
            f"data.labels={data['labels']}",
            f"data.path={data['val']}",
            f"data.image_size={SIZE}",
            "data.batch_size=2",
            "data.num_workers=0",
            "solver.max_iter=4",
            "train.checkpoint_period=2",
            "train.eval_period=0",
            "train.log_period=1",
            "train.progress_bar=false",
            "homography_eval.pairs_per_image=1",
            "descriptor_loss.chunk=1",
            "detection.detection_threshold=0.001",
            *extra,
        ],
    )


@pytest.fixture(scope="module")
def trained(data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sprun") / "run"
    run.train(sp_cfg(data, out))
    return out


def test_training_logs_three_losses_and_evaluates_on_held_out_pairs(trained: Path) -> None:
    rows = [json.loads(x) for x in (trained / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "loss_desc" in r]
    assert [r["iteration"] for r in steps] == [1, 2, 3, 4]
    for r in steps:
        assert r["loss_det"] > 0 and r["loss_det_warped"] > 0 and r["loss_desc"] > 0
    final = json.loads((trained / "eval/metrics.json").read_text())["metrics"]
    # Descriptor metrics exist (n/a for a detector-only model): the head is really used.
    assert final["overall/pointforge/num_kpts"] > 0
    assert np.isfinite(final["overall/pointforge/m_score"])
    assert np.isfinite(final["overall/pointforge/nn_map"])


def test_checkpoint_loads_as_a_predictor_with_descriptors(trained: Path) -> None:
    ckpt = load_checkpoint(trained / "checkpoints/final.pth")
    assert ckpt["iteration"] == 4 and "convDb.weight" in ckpt["model"]
    pred = pointforge.load_predictor(trained / "checkpoints/final.pth", device="cpu")
    img = (np.random.default_rng(0).random((100, 120)) * 255).astype(np.uint8)
    out = pred(img)
    assert out["descriptors"] is not None
    assert out["descriptors"].shape == (len(out["keypoints"]), 256)


def test_descriptor_head_starts_fresh_from_magicpoint(
    data: dict[str, Path], tmp_path: Path
) -> None:
    cfg = sp_cfg(data, tmp_path / "x")
    task = run.build_task(cfg)
    model = task.build_model()
    shipped = torch.load(MAGICPOINT_WEIGHTS, weights_only=True)
    shipped = shipped.get("model", shipped)
    assert torch.equal(model.state_dict()["conv1a.weight"], shipped["conv1a.weight"])
    assert "convDa.weight" not in shipped


def test_exact_resume(
    data: dict[str, Path], trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Trainer.run_step

    def interrupted(self: Trainer, batch: object) -> None:
        if self.iter == 3:
            raise KeyboardInterrupt("simulated kill")
        original(self, batch)

    with monkeypatch.context() as m:
        m.setattr(Trainer, "run_step", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run.train(sp_cfg(data, tmp_path / "b"))
    run.train(sp_cfg(data, tmp_path / "b"), resume=True)
    a = load_checkpoint(trained / "checkpoints/final.pth")["model"]
    b = load_checkpoint(tmp_path / "b/checkpoints/final.pth")["model"]
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_config_needs_photos_and_labels() -> None:
    with pytest.raises(ConfigError, match=r"data\.labels"):
        load_config(CONFIG, ["data.labels=null"])
    with pytest.raises(ConfigError, match=r"descriptor_loss\.chunk"):
        load_config(CONFIG, ["descriptor_loss.chunk=0"])
