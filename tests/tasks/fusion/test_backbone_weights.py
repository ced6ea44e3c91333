"""``model.backbone_weights`` of CenterFusion through the config path (the key is CenterNet's,
inherited): a torchvision ResNet-18 file lands in the backbone and the model still runs; a
ResNet-34 file for model.depth 18 and a missing file are errors naming the file / the key."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch
from torchvision.models import resnet18, resnet34

from pointforge.config.loader import load_config
from pointforge.engine.run import build_task
from pointforge.models.loading import WeightsError
from pointforge.tasks.fusion.model import CenterFusion

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/: shared helpers
from resnet_files import backbone_key, perturbed_state

CONFIG = Path(__file__).resolve().parents[3] / "configs" / "centerfusion_synthetic.yaml"
SMALL = ["device=cpu", "model.neck_channels=[16,16,16]", "model.head_conv=8"]


def build(*overrides: str) -> CenterFusion:
    model = build_task(load_config(CONFIG, [*SMALL, *overrides])).build_model()
    assert isinstance(model, CenterFusion)
    return model


def test_torchvision_file_fills_the_backbone_and_the_model_runs(tmp_path: Path) -> None:
    state = perturbed_state(resnet18, seed=4)
    # Stored the way training scripts often nest it; the fc.* classifier is ignored.
    path = tmp_path / "resnet18.pth"
    torch.save({"state_dict": state, "epoch": 90}, path)
    model = build(f"model.backbone_weights={path}", "model.radar=false")
    own = model.state_dict()
    trunk = [k for k in state if not k.startswith("fc.")]
    for key in trunk:
        assert torch.equal(own[backbone_key(key)], state[key]), key
    with torch.no_grad():
        out = model.eval()(torch.rand(1, 3, 64, 128))
    assert out["depth"].shape == (1, 1, 16, 32) and torch.isfinite(out["heatmap"]).all()


def test_wrong_depth_and_missing_file_are_named_errors(tmp_path: Path) -> None:
    r34 = tmp_path / "resnet34.pth"
    torch.save(perturbed_state(resnet34, seed=5), r34)
    with pytest.raises(
        WeightsError, match=rf"{re.escape(str(r34))} \(model\.backbone_weights, .*ResNet-18"
    ):
        build(f"model.backbone_weights={r34}")
    absent = tmp_path / "resnet18-f37072fd.pth"
    with pytest.raises(
        FileNotFoundError, match=rf"model\.backbone_weights: .*{re.escape(str(absent))}"
    ):
        build(f"model.backbone_weights={absent}")
