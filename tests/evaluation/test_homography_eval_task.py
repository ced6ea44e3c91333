"""`pointforge eval configs/eval_homography.yaml` end to end, and its config checks."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
import skimage.data
import torch

import pointforge
from pointforge.cli.main import main
from pointforge.config.loader import load_config
from pointforge.tasks.keypoints.homography_eval import HomographyEvalTask

CONFIG = str(Path(__file__).parents[2] / "configs" / "eval_homography.yaml")


def test_eval_writes_table_report_and_plots(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "camera.png"), skimage.data.camera())  # corners a shapes detector sees
    out = tmp_path / "out"
    argv = [
        "eval",
        CONFIG,
        "--weights",
        str(pointforge.MAGICPOINT_WEIGHTS),
        f"data.path={photos}",
        "data.image_size=[96,128]",
        "homography_eval.pairs_per_image=1",
        "homography_eval.methods=[pointforge,sift]",
        "homography_eval.num_visualize=1",
        # Low threshold: the shipped detector must find points on these small photos whatever
        # checkpoint is shipped (a repeatability of NaN means no point in the shared view).
        "detection.detection_threshold=0.001",
        "train.progress_bar=false",
        "device=cpu",
        "--output-dir",
        str(out),
    ]
    assert main(argv) == 0
    table = capsys.readouterr().out
    # Side-by-side methods per split; the detector-only model has no descriptor metrics.
    for split in ("illumination", "viewpoint", "overall"):
        assert split in table
    model_row = next(line for line in table.splitlines() if line.startswith("pointforge"))
    assert "n/a" in model_row
    metrics = json.loads((out / "eval" / "metrics.json").read_text())["metrics"]
    assert 0 < metrics["overall/sift/rep"] <= 1 and 0 <= metrics["overall/pointforge/rep"] <= 1
    assert metrics["viewpoint/sift/h_acc@5"] in (0.0, 1.0)  # one viewpoint pair
    report = (out / "eval" / "report.md").read_text()
    assert "| viewpoint |" in report and "| pointforge |" in report
    for png in ("homography_metrics.png", "corner_error.png", "matches_0.png"):
        image = cv2.imread(str(out / "eval" / png))
        assert image is not None and image.shape[0] > 200 and image.std() > 10


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["homography_eval.methods=[sift,surf]"], "'homography_eval.methods' has unknown"),
        (["homography_eval.thresholds=[0.0]"], "'homography_eval.thresholds'"),
        # Switching data.name drops the file's homography_pairs keys (docs/config.md), but one
        # of them typed on the command line is still refused, named.
        (
            ["data.name=hpatches", "data.homographic.max_angle=1"],
            "unknown config key 'data.homographic'",
        ),
        (["data.name=hpatchs"], "Did you mean 'hpatches'?"),
        (["detection.scales=[0.5]"], "'detection.scales' must be distinct factors"),
    ],
)
def test_bad_config_is_one_named_line(
    overrides: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    assert main(["config", CONFIG, *overrides]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_hpatches_needs_its_path(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = tmp_path / "hp.yaml"
    config.write_text("task: homography_eval\ndata: {name: hpatches}\n")
    assert main(["config", str(config)]) == 2
    assert "'data.path' must name the HPatches folder" in capsys.readouterr().err


def test_task_is_evaluation_only() -> None:
    task = HomographyEvalTask(load_config(CONFIG), torch.device("cpu"))
    with pytest.raises(ValueError, match="evaluation-only"):
        task.build_train_loader(0)
    assert "convDa.weight" not in task.build_model().state_dict()  # model.name: magicpoint
    cfg = load_config(CONFIG, ["model.name=superpoint"])
    assert (
        "convDa.weight" in HomographyEvalTask(cfg, torch.device("cpu")).build_model().state_dict()
    )


def test_detection_scales_reach_the_benchmarked_predictor() -> None:
    overrides = ["detection.scales=[1.0,0.5]", "homography_eval.methods=[pointforge]"]
    cfg = load_config(CONFIG, overrides)
    task = HomographyEvalTask(cfg, torch.device("cpu"))
    assert task.extractors(task.build_model())["pointforge"].scales == (1.0, 0.5)


@pytest.mark.parametrize("subpixel", [True, False])
def test_detection_subpixel_reaches_the_benchmarked_predictor(subpixel: bool) -> None:
    overrides = [
        f"detection.subpixel={str(subpixel).lower()}",
        "homography_eval.methods=[pointforge]",
    ]
    task = HomographyEvalTask(load_config(CONFIG, overrides), torch.device("cpu"))
    assert task.extractors(task.build_model())["pointforge"].subpixel is subpixel


@pytest.mark.parametrize(("opencv_nms", "radius"), [(True, 2), (False, 0)])
def test_opencv_nms_reaches_the_benchmarked_baselines(opencv_nms: bool, radius: int) -> None:
    overrides = [
        f"homography_eval.opencv_nms={str(opencv_nms).lower()}",
        "detection.nms_radius=2",
        "homography_eval.methods=[orb,sift]",
    ]
    task = HomographyEvalTask(load_config(CONFIG, overrides), torch.device("cpu"))
    extractors = task.extractors(task.build_model())
    assert extractors["orb"]._list_nms == radius and extractors["sift"]._list_nms == radius


def test_weights_of_another_superpoint_shape_name_the_overrides_that_fit(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Evaluating the shipped SuperPoint-Lite with the config's model.name=superpoint fails on
    dozens of key names; the error must say which model keys fit the file."""
    argv = ["eval", CONFIG, "--weights", str(pointforge.WEIGHTS_DIR / "superpoint_lite.pth")]
    argv += ["model.name=superpoint", "device=cpu", "--output-dir", str(tmp_path / "out")]
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert "superpoint_lite.pth do not fit model SuperPoint" in err
    assert "these weights fit model.name=superpoint_lite model.batchnorm=true" in err
