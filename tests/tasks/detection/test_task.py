"""Task ``centernet`` through the engine: a short training run and its metrics contract, exact
resume, bf16 + EMA, ``load_predictor`` in input pixels, config keys per dataset, bad input.

Runs are tiny (64×64 shapes, a few images, 2-4 steps) so the module stays quick on 2 cores;
what the model learns is measured on the shipped weights (test_weights.py).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

import pointforge
from pointforge.cli.main import main as cli_main
from pointforge.config.loader import build_config
from pointforge.engine.checkpoint import load_checkpoint
from pointforge.engine.run import build_task, train
from pointforge.models.loading import WeightsError
from pointforge.tasks.detection.data import AnnotationError, ShapesDetection
from pointforge.tasks.detection.data.base import DetectionDataset
from pointforge.tasks.detection.data.shapes import SHAPE_CLASSES
from pointforge.tasks.detection.data.transforms import LetterboxTransform
from pointforge.tasks.detection.decode import boxes_to_original, detect
from pointforge.tasks.detection.model import CenterNet

CONTRACT = {f"bbox/{k}" for k in ("AP", "AP50", "AP75", "APs", "APm", "APl")} | {
    f"bbox/AP-{name}" for name in SHAPE_CLASSES
}
CONFIGS = Path(__file__).resolve().parents[3] / "configs"


def tiny(out: Path | None = None, **over: Any) -> dict[str, Any]:
    """A config dict of a few-second CenterNet run on 64×64 shapes."""
    cfg: dict[str, Any] = {
        "task": "centernet",
        "device": "cpu",
        "output_dir": str(out) if out is not None else None,
        "data": {
            "name": "shapes_detection",
            "image_size": [64, 64],
            "num_train": 8,
            "num_val": 3,
            "min_size": 10,
            "max_size": 30,
            "max_objects": 3,
            "batch_size": 2,
            "num_workers": 0,
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
        node = cfg
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return cfg


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-iteration run (shared by the contract, resume and predictor tests)."""
    out = tmp_path_factory.mktemp("centernet") / "run"
    train(build_config(tiny(out)))
    return out


def test_training_writes_the_metric_contract(trained: Path) -> None:
    payload = json.loads((trained / "eval" / "metrics.json").read_text())
    assert payload["iteration"] == 4
    metrics = payload["metrics"]
    assert set(metrics) == CONTRACT
    for key, value in metrics.items():
        assert math.isnan(value) or 0.0 <= value <= 1.0, (key, value)
    logged = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    losses = [r for r in logged if "loss_hm" in r]
    assert len(losses) == 4 and all(
        math.isfinite(r[k]) and r[k] >= 0 for r in losses for k in ("loss_hm", "loss_wh")
    )


def test_resume_is_bitwise_exact(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "split"
    train(build_config(tiny(out, **{"solver.max_iter": 2})))
    train(build_config(tiny(out, **{"solver.max_iter": 4})), resume=True)
    a = load_checkpoint(trained / "checkpoints" / "final.pth")["model"]
    b = load_checkpoint(out / "checkpoints" / "final.pth")["model"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bf16_and_ema_train_and_stay_finite(tmp_path: Path) -> None:
    out = tmp_path / "amp_ema"
    over = {"train.amp": "bf16", "train.ema.enabled": True, "train.ema.tau": 1.0}
    metrics = train(build_config(tiny(out, **over, **{"solver.max_iter": 2})))
    assert set(metrics) == CONTRACT
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(r["total_loss"]) for r in logged if "total_loss" in r)
    ckpt = load_checkpoint(out / "checkpoints" / "final.pth")
    ema, model = ckpt["ema"]["model"], ckpt["model"]
    assert ckpt["ema"]["updates"] == 2
    assert all(torch.isfinite(v.float()).all() for v in ema.values())
    # The average is not the weights (decay > 0 after the first update).
    assert not torch.equal(ema["heatmap.2.weight"], model["heatmap.2.weight"])


def test_load_predictor_returns_boxes_in_input_pixels(trained: Path) -> None:
    weights = trained / "checkpoints" / "final.pth"
    pred = pointforge.load_predictor(weights, device="cpu", score_threshold=0.0)
    image_rgb, _, _, _ = ShapesDetection(
        "val", 1, image_size=(80, 120), size_range=(10, 30)
    ).render(0)
    bgr = np.ascontiguousarray(image_rgb[..., ::-1])
    out = pred(bgr)
    assert out["boxes"].dtype == np.float32 and out["boxes"].shape == (100, 4)
    assert out["scores"].dtype == np.float32 and out["labels"].dtype == np.int64
    assert np.all(np.diff(out["scores"]) <= 0)
    assert set(out["labels"].tolist()) <= {1, 2, 3, 4, 5}
    assert out["class_names"] == [SHAPE_CLASSES[c - 1] for c in out["labels"]]

    # Reference, step by step: letterbox 120×80 into 64×64 (scale 64/120), the network,
    # decode, divide by the scale, clip to the photo, index → category id.
    model = CenterNet(5)
    model.load_state_dict(load_checkpoint(weights)["model"])
    model.eval()
    chw = torch.from_numpy(image_rgb.transpose(2, 0, 1).copy())
    box = LetterboxTransform((64, 64))(chw, torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64))
    det = detect(model, box["image"][None], k=100)
    ref = boxes_to_original(det["boxes"], box["scale"][None], [[80, 120]])[0].numpy()
    # Same boxes up to the two resizers (torchvision on uint8 vs. interpolate on floats).
    order = np.argsort(-det["scores"][0].numpy(), kind="stable")
    assert np.abs(out["scores"] - det["scores"][0].numpy()[order]).max() < 0.05
    assert out["boxes"][:, 2].max() <= 120 and out["boxes"][:, 3].max() <= 80
    top = np.argmax(out["scores"])
    assert np.abs(out["boxes"][top] - ref[order][0]).max() < 4.0
    assert pred.categories == {i + 1: n for i, n in enumerate(SHAPE_CLASSES)}
    task = build_task(build_config(tiny()))
    drawn = task.draw(bgr, pred(bgr))
    assert drawn.shape == bgr.shape and not np.array_equal(drawn, bgr)
    x = task.preprocess(bgr)  # what summary/explain feed: the eval letterbox of the photo
    assert x.shape == (1, 3, 64, 64) and torch.allclose(x[0], box["image"], atol=1 / 255)


def test_config_shows_each_dataset_s_keys(capsys: pytest.CaptureFixture[str]) -> None:
    coco = str(CONFIGS / "centernet_coco.yaml")
    assert cli_main(["config", coco, "data.train.json=A.json", "data.train.images=I"]) == 0
    shown = capsys.readouterr().out
    assert "train:\n    json: A.json\n    images: I" in shown and "bbox" not in shown
    assert "centernet:\n  max_objects: 128" in shown and "focal_alpha: 2.0" in shown
    assert cli_main(["config", coco, "data.name=voc", "data.train.root=VOC"]) == 0
    shown = capsys.readouterr().out
    assert "root: VOC" in shown and "class_names: []" in shown and "json" not in shown
    assert cli_main(["config", coco, "data.name=yolo", "data.classes_file=c.txt"]) == 0
    shown = capsys.readouterr().out
    assert "classes_file: c.txt" in shown and "labels: null" in shown
    assert cli_main(["config", coco, "data.train.jsn=A.json"]) == 2
    assert "Did you mean 'data.train.json'" in capsys.readouterr().err
    assert cli_main(["config", coco, "data.image_size=[500,512]"]) == 2
    assert "data.image_size" in capsys.readouterr().err
    for name in ("centernet_shapes.yaml", "centernet_chess.yaml"):
        assert cli_main(["config", str(CONFIGS / name)]) == 0
    capsys.readouterr()


def test_empty_dataset_is_a_named_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text(
        json.dumps({"images": [], "annotations": [], "categories": [{"id": 1, "name": "a"}]})
    )
    data = {"name": "coco", "train": {"json": str(empty), "images": str(tmp_path)}}
    task = build_task(build_config({"task": "centernet", "device": "cpu", "data": data}))
    with pytest.raises(AnnotationError, match=rf"coco\[train\]: no images in {empty}"):
        task.build_model()
    task = build_task(build_config(tiny(**{"data.num_train": 0})))
    with pytest.raises(ValueError, match=r"shapes\[train\]: num_images must be > 0"):
        task.build_dataset("train")
    # Not a detection dataset at all.
    with pytest.raises(ValueError, match="not a detection dataset"):
        build_task(
            build_config({"task": "centernet", "data": {"name": "digits", "image_size": [32, 32]}})
        ).build_dataset("train")


def test_class_count_mismatch_names_the_head_and_reinit_fine_tunes(tmp_path: Path) -> None:
    other = CenterNet(2)  # weights of a 2-class dataset
    other.set_categories([(3, "cat"), (7, "dog")])
    path = tmp_path / "two_classes.pth"
    torch.save(other.state_dict(), path)
    task = build_task(build_config(tiny(**{"model.weights": str(path)})))
    with pytest.raises(WeightsError) as err:
        task.build_model()
    msg = str(err.value)
    assert "heatmap.2.weight" in msg and "heatmap.2.bias" in msg
    assert "class_name_bytes" not in msg and "category_ids" not in msg  # refitted from the data
    over = {"model.weights": str(path), "model.load.reinit_mismatched": [r"heatmap\.2\."]}
    model = build_task(build_config(tiny(**over))).build_model()
    assert isinstance(model, CenterNet) and model.num_classes == 5
    assert model.categories == [(i + 1, n) for i, n in enumerate(SHAPE_CLASSES)]
    assert torch.equal(model.state_dict()["wh.2.weight"], other.state_dict()["wh.2.weight"])


def test_val_categories_must_match_train(tmp_path: Path) -> None:
    task = build_task(build_config(tiny()))
    val = task.build_dataset("val")
    assert isinstance(val, DetectionDataset)
    val.categories = val.categories[:-1]
    with pytest.raises(ValueError, match="val split's categories"):
        task.build_evaluator(None)


def test_detect_and_export_onnx_commands_take_a_detection_checkpoint(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The generic commands read the task from the checkpoint: ``detect`` writes boxes,
    scores and labels per image and draws them; ``export-onnx`` exports and verifies."""
    from pointforge.cli.main import main

    weights = str(trained / "checkpoints" / "final.pth")
    image_rgb, _, _, _ = ShapesDetection("val", 1, image_size=(64, 64)).render(0)
    photo = tmp_path / "shapes.png"
    cv2.imwrite(str(photo), np.ascontiguousarray(image_rgb[..., ::-1]))
    out, draw = tmp_path / "det.npz", tmp_path / "drawn"
    assert (
        main(
            [
                "detect",
                str(photo),
                "--weights",
                weights,
                "--out",
                str(out),
                "--draw",
                str(draw),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    saved = np.load(out)
    assert saved["shapes/boxes"].shape[1] == 4 and saved["shapes/labels"].dtype == np.int64
    assert len(saved["shapes/scores"]) == len(saved["shapes/boxes"])
    assert cv2.imread(str(draw / "shapes.png")) is not None
    onnx_path = tmp_path / "cn.onnx"
    assert main(["export-onnx", "--weights", weights, "--out", str(onnx_path)]) == 0
    assert "verified with onnxruntime" in capsys.readouterr().out
