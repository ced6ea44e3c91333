"""SuperPoint-Lite distillation (task superpoint_distill) on real photos through the engine."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data as skdata

import pointforge
from pointforge import MAGICPOINT_WEIGHTS, SUPERPOINT_WEIGHTS
from pointforge.config import ConfigError, load_config
from pointforge.config.schema import Config
from pointforge.data.datasets.photo_folder import write_sample_photos
from pointforge.engine import run
from pointforge.models.loading import read_state_dict
from pointforge.tasks.keypoints.distill import SuperPointDistillTask, distill_losses
from pointforge.tasks.keypoints.export_labels import export_labels

SIZE = "[96,128]"
CONFIG = Path(__file__).resolve().parents[3] / "configs/superpoint_lite_distill_cpu.yaml"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("distill")
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


def distill_cfg(data: dict[str, Path], out: Path, *extra: str) -> Config:
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
            "solver.max_iter=12",
            "solver.steps=[10]",
            "train.checkpoint_period=6",
            "train.eval_period=0",
            "train.log_period=1",
            "homography_eval.pairs_per_image=1",
            *extra,
        ],
    )


def rows(out: Path) -> list[dict[str, float]]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if "loss_distill_det" in r]


def test_losses_match_a_hand_computed_case() -> None:
    """Teacher uniform over the 65 classes, student with logit a on class 0: KL(p_t || p_s) =
    log(e^a + 64) - log(65) - a/65. Descriptors e1 vs e2: 1 - cos = 1. Only valid cells count."""
    a = 2.0
    s_logits = torch.zeros(1, 65, 1, 2)
    s_logits[0, 0, 0, 0] = a
    s_logits[0, 0, 0, 1] = 50.0  # an invalid cell: must not count
    s_desc = torch.zeros(1, 4, 1, 2)
    s_desc[0, 0] = 1.0
    t_desc = torch.zeros(1, 4, 1, 2)
    t_desc[0, 1] = 1.0
    valid = torch.tensor([[[True, False]]])
    student = {"logits": s_logits, "descriptors": s_desc}
    teacher = {"logits": torch.zeros(1, 65, 1, 2), "descriptors": t_desc}
    det, desc = distill_losses(student, teacher, valid)
    assert det.item() == pytest.approx(math.log(math.exp(a) + 64) - math.log(65) - a / 65, 1e-5)
    assert desc.item() == pytest.approx(1.0, abs=1e-6)
    same = distill_losses(teacher, teacher, valid)
    assert same[0].item() == pytest.approx(0.0, abs=1e-6)
    assert same[1].item() == pytest.approx(0.0, abs=1e-6)
    none = distill_losses(student, teacher, torch.zeros_like(valid))
    assert none[0].item() == 0.0 and none[1].item() == 0.0


@pytest.fixture(scope="module")
def distilled(data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("distillrun") / "run"
    run.train(distill_cfg(data, out))
    return out


def test_student_learns_the_teacher_and_its_checkpoint_holds_only_the_student(
    distilled: Path,
) -> None:
    logged = rows(distilled)
    assert [r["iteration"] for r in logged] == list(range(1, 13))
    first, last = logged[0], logged[-3:]
    # A fresh student against the shipped teacher: both terms fall within a few steps.
    assert np.mean([r["loss_distill_det"] for r in last]) < 0.7 * first["loss_distill_det"]
    assert np.mean([r["loss_distill_desc"] for r in last]) < first["loss_distill_desc"]
    assert "loss_desc" not in first  # label_weight 0: pure distillation
    state = read_state_dict(distilled / "checkpoints/last.pth")
    assert state["conv1a.weight"].shape == (32, 1, 3, 3)
    assert state["convPa.weight"].shape == (128, 128, 3, 3)
    assert "conv4a.weight" not in state
    # The checkpoint is a SuperPoint-Lite the ordinary predictor opens without being told.
    pred = pointforge.load_predictor(distilled / "checkpoints/last.pth", device="cpu")
    out = pred(skdata.camera())
    assert out["descriptors"] is not None and out["descriptors"].shape[1] == 256
    assert len(out["keypoints"]) == len(out["descriptors"])


def test_a_copy_of_the_teacher_has_nothing_to_learn(data: dict[str, Path], tmp_path: Path) -> None:
    """Distilling the teacher into itself (same weights, float32) gives losses of exactly ~0:
    the student and teacher see the same images and valid cells."""
    out = tmp_path / "self"
    cfg = distill_cfg(
        data,
        out,
        "model.name=superpoint",
        "model.batchnorm=false",
        f"model.weights={SUPERPOINT_WEIGHTS}",
        "train.amp='off'",
        "solver.max_iter=1",
        "solver.steps=[]",
        "solver.lr=1.0e-12",
    )
    run.train(cfg)
    (first,) = rows(out)
    assert first["loss_distill_det"] < 1e-5
    assert first["loss_distill_desc"] < 1e-5


def test_label_weight_adds_the_papers_losses(data: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "labels"
    run.train(
        distill_cfg(data, out, "distill.label_weight=0.5", "solver.max_iter=1", "solver.steps=[]")
    )
    (first,) = rows(out)
    assert {"loss_det", "loss_det_warped", "loss_desc"} <= first.keys()


def test_bad_settings_are_named(data: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"distill\.detector_weight"):
        distill_cfg(data, tmp_path / "a", "distill.detector_weight=-1")
    with pytest.raises(ConfigError, match=r"distill\.detector_weight.*nothing to train"):
        distill_cfg(
            data,
            tmp_path / "b",
            "distill.detector_weight=0",
            "distill.descriptor_weight=0",
        )
    cfg = distill_cfg(data, tmp_path / "c", f"distill.teacher={MAGICPOINT_WEIGHTS}")
    with pytest.raises(ValueError, match=r"distill\.teacher: .*magicpoint_shapes\.pth has no desc"):
        SuperPointDistillTask(cfg, torch.device("cpu")).teacher()
