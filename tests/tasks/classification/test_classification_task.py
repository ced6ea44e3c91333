"""The classification task through the real engine: training, checkpoints, resume, eval, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pointforge.cli.main import main
from pointforge.config import load_config
from pointforge.config.schema import Config
from pointforge.engine import run
from pointforge.engine.checkpoint import load_checkpoint
from pointforge.engine.trainer import Trainer

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
# data.val_fraction=0.05 keeps evaluation cheap: round(5 %) of each of the 10 digit classes.
DIGITS_VAL_SIZE = 90


def digits_cfg(out: Path, *extra: str) -> Config:
    """ResNet-18 (small-input stem) on native 8x8 digits: seconds per run on CPU."""
    return load_config(
        None,
        [
            "task=classification",
            "model.name=resnet18",
            "model.small_input=true",
            "data.name=digits",
            "data.image_size=[8,8]",
            "data.batch_size=8",
            "data.num_workers=0",
            "data.val_fraction=0.05",
            "classification.in_channels=1",
            "classification.mean=[0.3]",
            "classification.std=[0.38]",
            "classification.augment=affine",
            "solver.optimizer=sgd",
            "solver.lr=0.05",
            "solver.max_iter=4",
            "train.checkpoint_period=2",
            "train.eval_period=0",
            "train.log_period=1",
            "train.progress_bar=false",
            "device=cpu",
            f"output_dir={out}",
            *extra,
        ],
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, dict[str, float]]:
    """One 4-iteration run shared by the tests below (training is the slow part)."""
    cfg = digits_cfg(tmp_path_factory.mktemp("classification") / "run")
    return cfg, run.train(cfg)


def test_training_writes_checkpoint_that_round_trips(
    trained: tuple[Config, dict[str, float]],
) -> None:
    cfg, metrics = trained
    tmp_path = Path(str(cfg.output_dir)).parent
    assert {"top1", "top5", "mean_class_acc", "loss"} <= metrics.keys()
    assert 0.0 <= metrics["top1"] <= metrics["top5"] <= 1.0
    rows = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows if "loss_cls" in r] == [1, 2, 3, 4]
    confusion = json.loads((tmp_path / "run/eval/confusion.json").read_text())
    assert confusion["classes"] == [str(i) for i in range(10)]
    assert sum(map(sum, confusion["confusion"])) == DIGITS_VAL_SIZE

    ckpt = load_checkpoint(tmp_path / "run/checkpoints/final.pth")  # weights_only=True
    assert ckpt["iteration"] == 4
    task = run.build_task(cfg)
    model = task.build_model()
    model.load_state_dict(ckpt["model"], strict=True)
    again = task.evaluate(model)
    assert again == pytest.approx(metrics, abs=1e-6)


def test_exact_resume_with_augmentation(
    trained: tuple[Config, dict[str, float]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Trainer.run_step

    def interrupted(self: Trainer, data: object) -> None:
        if self.iter == 2:
            raise KeyboardInterrupt("simulated kill")
        original(self, data)

    with monkeypatch.context() as m:
        m.setattr(Trainer, "run_step", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run.train(digits_cfg(tmp_path / "b"))
    run.train(digits_cfg(tmp_path / "b"), resume=True)
    a = load_checkpoint(Path(str(trained[0].output_dir)) / "checkpoints/final.pth")["model"]
    b = load_checkpoint(tmp_path / "b/checkpoints/final.pth")["model"]
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_training_step_fits_a_batch(tmp_path: Path) -> None:
    """Labels and images line up: a few steps of training_step fit one augmented batch."""
    torch.manual_seed(0)
    task = run.build_task(digits_cfg(tmp_path, "data.batch_size=32"))
    model = task.build_model().train()
    batch = next(task.build_train_loader(0))
    assert batch["image"].shape == (32, 1, 8, 8) and batch["label"].shape == (32,)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(12):
        loss = task.training_step(model, batch)["loss_cls"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    with torch.no_grad():
        hits = (model(batch["image"]).argmax(1) == batch["label"]).float().mean()
    assert float(hits) > 0.8  # chance is 0.1


def test_cli_eval_prints_topk(
    trained: tuple[Config, dict[str, float]], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    weights = Path(str(trained[0].output_dir)) / "checkpoints/final.pth"
    argv = ["eval", str(CONFIGS / "resnet_digits.yaml"), "--weights", str(weights)]
    # The config's own 16x16 inputs: the convolutional weights do not depend on image size.
    assert main([*argv, "data.val_fraction=0.05", "--output-dir", str(tmp_path / "eval")]) == 0
    out = capsys.readouterr().out
    assert "top1: " in out and "top5: " in out
    saved = json.loads((tmp_path / "eval/eval/metrics.json").read_text())
    assert 0.0 <= saved["metrics"]["top1"] <= 1.0


def test_image_folder_trains_through_the_engine(tmp_path: Path) -> None:
    """Colour PNGs in class folders, 3-channel input, crop+flip augmentation, 2 iterations."""
    rng = np.random.default_rng(0)
    for k, name in enumerate(["circle", "square", "triangle"]):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(5):
            image = rng.integers(0, 60, (12, 14, 3), dtype=np.uint8) + np.uint8(60 * k)
            cv2.imwrite(str(tmp_path / "data" / name / f"{i}.png"), image)
    cfg = digits_cfg(
        tmp_path / "run",
        "data.name=image_folder",
        f"data.root={tmp_path / 'data'}",
        "data.val_fraction=0.2",
        "data.batch_size=4",
        "solver.max_iter=2",
        "classification.in_channels=3",
        "classification.mean=[0.5,0.5,0.5]",
        "classification.std=[0.25,0.25,0.25]",
        "classification.augment=crop_flip",
    )
    metrics = run.train(cfg)
    assert metrics["top5"] == 1.0  # 3 classes: top-5 always contains the answer
    assert 0.0 <= metrics["top1"] <= 1.0
    confusion = json.loads((tmp_path / "run/eval/confusion.json").read_text())
    assert confusion["classes"] == ["circle", "square", "triangle"]
    assert sum(map(sum, confusion["confusion"])) == 3  # one held-out image per class
    state = load_checkpoint(tmp_path / "run/checkpoints/final.pth")["model"]
    assert state["conv1.weight"].shape[1] == 3 and state["fc.weight"].shape[0] == 3


def test_bad_image_folder_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "no_such_folder"
    argv = [
        "train",
        str(CONFIGS / "resnet_digits.yaml"),
        "data.name=image_folder",
        f"data.root={missing}",
        f"output_dir={tmp_path / 'run'}",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"image folder {missing} does not exist (config key data.root)" in err


def test_wrong_model_or_dataset_is_named(tmp_path: Path) -> None:
    # The ResNet's own key does not exist for another model: refused at load time, named.
    with pytest.raises(ValueError, match=r"unknown config key 'model\.small_input'"):
        digits_cfg(tmp_path, "model.name=magicpoint")
    config = tmp_path / "wrong.yaml"
    config.write_text("task: classification\nmodel: {name: magicpoint}\ndevice: cpu\n")
    with pytest.raises(ValueError, match="model 'magicpoint' is not a classifier"):
        run.build_task(load_config(config)).build_model()
    with pytest.raises(ValueError, match=r"unknown config key 'data\.val_fraction'"):
        digits_cfg(tmp_path, "data.name=synthetic_shapes")
