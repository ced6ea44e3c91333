"""``model.backbone_weights`` of CenterNet through the config path: a torchvision ResNet-18
state dict lands in the backbone (its ``fc.*`` ignored, one load table), a ResNet-34 file and a
missing file are errors naming the file / the key, ``model.weights`` is applied after it, and
a checkpoint trained with it loads (``load_model``, under ``load_predictor``) without the
torchvision file."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import pytest
import torch
from torchvision.models import resnet18, resnet34

from pointforge.config.loader import load_config
from pointforge.engine.run import build_task, train
from pointforge.models.loading import WeightsError
from pointforge.predictor import load_model
from pointforge.tasks.detection.model import CenterNet

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/: shared helpers
from resnet_files import backbone_key, perturbed_state

CONFIG = Path(__file__).resolve().parents[3] / "configs" / "centernet_shapes.yaml"
SMALL = ["device=cpu", "data.image_size=[64,64]", "data.num_train=2", "data.num_val=1"]


def build(*overrides: str) -> CenterNet:
    model = build_task(load_config(CONFIG, [*SMALL, *overrides])).build_model()
    assert isinstance(model, CenterNet)
    return model


def test_torchvision_file_fills_the_backbone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Laid out like torchvision's ImageNet-v1 file: fc.* included, and (saved before PyTorch
    # 0.4.1) no BatchNorm num_batches_tracked counters.
    state = perturbed_state(resnet18, seed=1)
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(state, path)
    with caplog.at_level(logging.INFO, logger="pointforge"):
        model = build(f"model.backbone_weights={path}")
    own = model.state_dict()
    trunk = [k for k in state if not k.startswith("fc.")]
    assert len(trunk) == 100  # every conv, BN affine and BN statistic of ResNet-18
    for key in trunk:
        assert torch.equal(own[backbone_key(key)], state[key]), key
    tables = [r.getMessage() for r in caplog.records if r.getMessage().startswith("weights ")]
    assert len(tables) == 1 and str(path) in tables[0] and "model.backbone_weights" in tables[0]
    assert re.search(r"loaded +100\n", tables[0])
    assert re.search(r"ignored +2 +fc\.weight, fc\.bias", tables[0])
    assert re.search(r"kept fresh init +20 +bn1\.num_batches_tracked", tables[0])
    # A fresh build without the key is a different (random) backbone.
    scratch = build()
    assert not torch.equal(scratch.state_dict()["backbone.0.weight"], state["conv1.weight"])


def test_wrong_depth_and_missing_file_are_named_errors(tmp_path: Path) -> None:
    r34 = tmp_path / "resnet34.pth"
    torch.save(perturbed_state(resnet34, seed=2), r34)
    with pytest.raises(WeightsError) as err:
        build(f"model.backbone_weights={r34}")
    msg = str(err.value)
    assert str(r34) in msg and "model.backbone_weights" in msg and "ResNet-18" in msg
    assert "unexpected layer1.2.conv1.weight" in msg  # ResNet-34 has 3 blocks in layer1
    absent = tmp_path / "nowhere" / "resnet18.pth"
    with pytest.raises(
        FileNotFoundError, match=rf"model\.backbone_weights: .*{re.escape(str(absent))}"
    ):
        build(f"model.backbone_weights={absent}")


def test_model_weights_are_applied_after_and_predictor_needs_no_torchvision_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "resnet18.pth"
    torch.save(perturbed_state(resnet18, seed=3), path)
    run = tmp_path / "run"
    train(
        load_config(
            CONFIG,
            [
                *SMALL,
                f"output_dir={run}",
                f"model.backbone_weights={path}",
                "data.batch_size=2",
                "data.num_workers=0",
                "solver.max_iter=1",
                "solver.warmup_iters=0",
                "train.eval_period=0",
                "train.progress_bar=false",
                "train.channels_last=false",
            ],
        )
    )
    checkpoint = run / "checkpoints" / "last.pth"
    trained = torch.load(checkpoint, map_location="cpu", weights_only=True)["model"]
    # One step of Adam moved the backbone away from the file ...
    assert not torch.equal(trained["backbone.0.weight"], torch.load(path)["conv1.weight"])
    # ... and model.weights, fitted after construction, wins over backbone_weights.
    both = build(f"model.backbone_weights={path}", f"model.weights={checkpoint}")
    assert torch.equal(both.state_dict()["backbone.0.weight"], trained["backbone.0.weight"])
    # The deployed checkpoint holds the backbone: loading it needs no torchvision file.
    path.unlink()
    deployed, _, _ = load_model(checkpoint)  # what load_predictor and export-onnx build on
    assert torch.equal(deployed.state_dict()["backbone.0.weight"], trained["backbone.0.weight"])
