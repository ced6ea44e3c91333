"""``pointforge summary`` and ``pointforge explain`` end to end on small real models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from pointforge.cli.inspect_cmds import image_to_input
from pointforge.cli.main import main
from pointforge.config import load_config
from pointforge.registry import TASKS
from pointforge.tasks.base import Task

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def bright_dark_classifier() -> nn.Sequential:
    """Class 0 = mean of bright (>0) pixels, class 1 = mean of dark (<0) pixels."""
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU()),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2, 2),
    )


@TASKS.register("test_bright_dark")
class BrightDarkTask(Task):
    """A classifier task whose only job here is to be built, preprocessed and explained."""

    default_dataset = "digits"  # for its data.image_size key

    def build_model(self) -> nn.Module:
        return bright_dark_classifier().to(self.device)  # random init: weights must be loaded

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        """BGR uint8 → (1, 1, H, W) grey in [-1, 1] at data.image_size (mid-grey = 0)."""
        h, w = self.cfg.data.image_size
        small = cv2.resize(image, (w, h), interpolation=cv2.INTER_NEAREST)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        return torch.from_numpy(grey).float().div(127.5).sub(1.0)[None, None]

    def build_train_loader(self, start_iter: int) -> Iterator[dict[str, Any]]:
        raise NotImplementedError("inference-only test task")

    def training_step(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        raise NotImplementedError("inference-only test task")

    def evaluate(self, model: nn.Module, output_dir: Path | None = None) -> dict[str, float]:
        return {}


def test_summary_prints_magicpoint_totals(capsys: pytest.CaptureFixture) -> None:
    cfg = str(CONFIGS / "magicpoint_shapes_quick.yaml")
    assert main(["summary", cfg, "device=cpu", "--input-size", "64", "96"]) == 0
    out = capsys.readouterr().out
    assert "conv1a" in out and "[1, 64, 64, 96]" in out
    assert "total params 939,905" in out
    # FLOPs of convolutions scale with the pixel count: 3,040,204,800 at 120x160 (see
    # tests/models/test_summary.py), so 64x96 gives 3,040,204,800 * 6144 / 19200.
    assert f"FLOPs {3_040_204_800 * 64 * 96 // (120 * 160):,}" in out
    assert main(["summary", cfg, "device=cpu", "model.name=superpoint"]) == 0
    assert "convDb" in capsys.readouterr().out


def test_explain_writes_the_cam_of_the_bright_square(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    net = bright_dark_classifier()
    with torch.no_grad():
        net[0][0].weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
        net[0][0].bias.zero_()
        net[3].weight.copy_(torch.eye(2))
        net[3].bias.zero_()
    torch.save({"model": net.state_dict()}, tmp_path / "bd.pth")
    (tmp_path / "cfg.yaml").write_text(
        "task: test_bright_dark\ndevice: cpu\ndata:\n  image_size: [16, 16]\n"
    )
    image = np.full((32, 32, 3), 128, np.uint8)
    image[4:20, 4:20] = 255  # bright square: the evidence for class 0
    image[22:28, 22:28] = 0  # dark square: the evidence for class 1
    cv2.imwrite(str(tmp_path / "img.png"), image)
    argv = ["explain", str(tmp_path / "cfg.yaml"), "--weights", str(tmp_path / "bd.pth")]
    out = tmp_path / "cam.png"
    assert main([*argv, str(tmp_path / "img.png"), "--out", str(out), "--alpha", "1"]) == 0
    assert "class 0" in capsys.readouterr().out
    cam = cv2.imread(str(out))
    assert cam.shape == (128, 128, 3)  # enlarged 4x (nearest) so the PNG is readable
    assert cam[48, 48, 2] > 100 and cam[48, 48, 0] < 50  # hot (red) on the bright square
    assert cam[100, 100, 0] > 100 and cam[100, 100, 2] < 50  # cold (blue) on the dark square
    assert main([*argv, str(tmp_path / "img.png"), "--out", str(out), "--class", "1"]) == 0
    cam = cv2.imread(str(out))
    assert cam[100, 100, 2] > cam[100, 100, 0] and cam[48, 48, 0] > cam[48, 48, 2]


def test_default_preprocessing_matches_channels_and_rgb_order() -> None:
    cfg = load_config(None, ["task=magicpoint", "data.image_size=[8, 16]", "device=cpu"])
    bgr = np.zeros((4, 6, 3), np.uint8)
    bgr[..., 0], bgr[..., 1], bgr[..., 2] = 10, 20, 30
    x = image_to_input(object(), cfg, nn.Conv2d(3, 2, 1), bgr)
    assert x.shape == (1, 3, 8, 16) and x.dtype == torch.float32
    torch.testing.assert_close(x[0, :, 3, 5], torch.tensor([30.0, 20.0, 10.0]) / 255)
    grey = np.full((4, 6), 51, np.uint8)
    x = image_to_input(object(), cfg, nn.Conv2d(3, 2, 1), grey)  # grey replicated to RGB
    torch.testing.assert_close(x, torch.full((1, 3, 8, 16), 0.2))
    x = image_to_input(object(), cfg, nn.Conv2d(1, 2, 1), bgr)  # BGR to luma for 1 channel
    expected = float(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)[0, 0]) / 255
    torch.testing.assert_close(x, torch.full((1, 1, 8, 16), expected))


def test_explain_errors_are_one_named_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    torch.save(nn.Linear(2, 2).state_dict(), tmp_path / "lin.pth")
    (tmp_path / "cfg.yaml").write_text("task: test_bright_dark\ndevice: cpu\n")
    cv2.imwrite(str(tmp_path / "img.png"), np.zeros((8, 8, 3), np.uint8))
    base = ["explain", str(tmp_path / "cfg.yaml"), "--out", str(tmp_path / "o.png")]
    assert main([*base, "--weights", str(tmp_path / "lin.pth"), str(tmp_path / "img.png")]) == 2
    assert "lin.pth do not fit" in capsys.readouterr().err
    torch.save(bright_dark_classifier().state_dict(), tmp_path / "bd.pth")
    assert main([*base, "--weights", str(tmp_path / "bd.pth"), str(tmp_path / "nope.png")]) == 2
    assert "cannot read image" in capsys.readouterr().err
    argv = [*base, "--weights", str(tmp_path / "bd.pth"), str(tmp_path / "img.png")]
    assert main([*argv, "--target-layer", "layer4"]) == 2
    assert "no module named 'layer4'" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["summary", "explain"])
def test_help(command: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0 and "usage: pointforge" in capsys.readouterr().out
