"""``pointforge summary`` / ``explain`` on the classification task (configs/resnet_digits.yaml)."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
import torch

from pointforge.cli.inspect_cmds import image_to_input
from pointforge.cli.main import main
from pointforge.config import load_config
from pointforge.engine.run import build_task

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "resnet_digits.yaml"


def test_explain_feeds_the_eval_transform_and_explains_the_top_class(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    cfg = load_config(CONFIG, ["device=cpu"])
    task = build_task(cfg)
    torch.manual_seed(0)
    model = task.build_model().eval()
    torch.save({"model": model.state_dict()}, tmp_path / "resnet.pth")
    val = task.build_dataset("val")
    digit = val.images[3, 0].numpy()  # uint8 (8, 8), the raw image behind val[3]
    cv2.imwrite(str(tmp_path / "digit.png"), digit)
    # The CLI's input is exactly what evaluation feeds the network for this image.
    x = image_to_input(task, cfg, model, cv2.imread(str(tmp_path / "digit.png"), -1))
    torch.testing.assert_close(x[0], val[3]["image"])
    with torch.no_grad():
        top = int(model(x).argmax())
    out = tmp_path / "cam.png"
    argv = ["explain", str(CONFIG), str(tmp_path / "digit.png"), "device=cpu"]
    assert main([*argv, "--weights", str(tmp_path / "resnet.pth"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"class {top} " in printed and "'layer4'" in printed
    assert cv2.imread(str(out)).shape == (128, 128, 3)  # 8x8 enlarged 16x


def test_summary_of_resnet18_digits(capsys: pytest.CaptureFixture) -> None:
    assert main(["summary", str(CONFIG), "device=cpu"]) == 0
    out = capsys.readouterr().out
    assert "layer4.1.conv2" in out and "[1, 512, 2, 2]" in out  # 16x16 input, stride 8
    # torchvision resnet18 with a 1-channel 3x3 stem and a 10-class head.
    assert "fc " in out and "5,130" in out
