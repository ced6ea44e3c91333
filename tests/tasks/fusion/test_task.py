"""Task ``centerfusion`` through the engine: a short run on the synthetic scenes writes the
nuScenes metrics, both submission files and the drawings; 4 iterations equal 2 + resume 2
bitwise; ``pointforge eval`` under 2 gloo ranks gathers the same NDS as one process; the
tiny fake nuScenes tree trains a step and evaluates; the predictor returns 3D boxes."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pointforge.config.loader import load_config
from pointforge.engine.checkpoint import load_checkpoint
from pointforge.engine.run import train
from pointforge.predictor import load_predictor
from pointforge.tasks.fusion.nusc_json import read_boxes

KEYS = {"nds", "mAP", "mATE", "mASE", "mAOE", "mAVE", "mAAE"}
TINY = (
    "task: centerfusion\ndevice: cpu\n"
    "data: {batch_size: 2, num_workers: 0, image_size: [64, 128], focal: 100.0, val_size: 5}\n"
    "model: {neck_channels: [16, 16, 16], head_conv: 8, secondary_convs: 1,"
    " radar_depth_residual: true, secondary_detach: true}\n"
    "solver: {lr: 0.001, max_iter: 4}\n"
    "train: {checkpoint_period: 2, eval_period: 0, log_period: 2, progress_bar: false,"
    " channels_last: false}\n"
    "centerfusion: {draw_samples: 1}\n"
)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cf")
    config = root / "tiny.yaml"
    config.write_text(TINY)
    train(load_config(config, [f"output_dir={root / 'full'}"]))
    return root


def test_training_writes_metrics_submission_files_and_drawings(run: Path) -> None:
    out = run / "full"
    metrics = json.loads((out / "eval/metrics.json").read_text())["metrics"]
    assert set(metrics) >= KEYS and all(k in KEYS or k.startswith("AP/") for k in metrics)
    assert "AP/car" in metrics and not any("@" in k for k in metrics)
    preds, meta, tokens = read_boxes(out / "eval/results_nusc.json")
    gt, _, gt_tokens = read_boxes(out / "eval/ground_truth_nusc.json")
    assert meta["use_radar"] is True and meta["use_camera"] is True
    assert tokens == gt_tokens == [f"synthetic-val-{i}" for i in range(5)]
    assert len(preds) == 5 * 100 and all(b.detection_score == -1 for b in gt) and gt
    assert (out / "eval/bev_0.png").is_file() and (out / "eval/image3d_0.png").is_file()
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert "eval/nds" in logged[-1] and {"loss_depth_sec", "loss_depth_res"} <= set(logged[0])


def test_resume_is_exact(run: Path) -> None:
    config = run / "tiny.yaml"
    half = run / "half"
    train(load_config(config, [f"output_dir={half}", "solver.max_iter=2"]))
    train(load_config(config, [f"output_dir={half}"]), resume=True)
    a = load_checkpoint(run / "full/checkpoints/final.pth")["model"]
    b = load_checkpoint(half / "checkpoints/final.pth")["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_two_gloo_ranks_gather_the_single_process_nds(run: Path) -> None:
    weights = str(run / "full/checkpoints/final.pth")
    cmd = ["-m", "pointforge", "eval", str(run / "tiny.yaml"), "--weights", weights]
    one, two = run / "eval_one", run / "eval_two"
    for prefix, out in (
        ([sys.executable], one),
        ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"],
         two),
    ):  # fmt: skip
        proc = subprocess.run([*prefix, *cmd, "--output-dir", str(out)], env=ENV,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    m1 = json.loads((one / "eval/metrics.json").read_text())["metrics"]
    m2 = json.loads((two / "eval/metrics.json").read_text())["metrics"]
    assert m1 == m2
    # The single-process evaluation of the same weights is the training run's final one.
    m0 = json.loads((run / "full/eval/metrics.json").read_text())["metrics"]
    assert m1["nds"] == pytest.approx(m0["nds"], abs=1e-6)
    assert (two / "eval/results_nusc.json").is_file()


def test_predictor_returns_3d_boxes(run: Path) -> None:
    from pointforge.tasks.fusion.data.tensors import build_synthetic

    pred = load_predictor(run / "full/checkpoints/final.pth", device="cpu", score_threshold=0.0)
    sample = build_synthetic("val", image_size=(64, 128), focal=100.0).reader[0]
    big = np.repeat(np.repeat(sample["image"], 2, 0), 2, 1)  # the predictor resizes it back
    k = sample["intrinsics"].copy()
    k[:2] = k[:2] * 2
    k[:2, 2] += 0.5
    out = pred(big, sample["radar"], k, sample["cam_to_ego"], sample["ego_to_global"])
    n = len(out["score"])
    assert n == 100 and out["center"].shape == (n, 3) and out["size"].shape == (n, 3)
    assert out["rot_y"].shape == (n,) and out["velocity"].shape == (n, 3)
    assert len(out["classes"]) == n and len(out["global"]) == n
    assert (out["size"] > 0).all() and (np.diff(out["score"]) <= 0).all()
    with pytest.raises(ValueError, match="pass radar points"):
        pred(big, None, k)


def _build_tree():
    path = Path(__file__).parent / "data" / "test_nuscenes.py"
    spec = importlib.util.spec_from_file_location("fusion_nuscenes_tree", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_tree


def test_fake_nuscenes_tree_trains_a_step_and_evaluates(tmp_path: Path) -> None:
    _build_tree()(tmp_path / "nusc")
    config = tmp_path / "nusc.yaml"
    config.write_text(
        TINY.replace("data: {", f"data: {{name: nuscenes, root: {tmp_path / 'nusc'}, "
                     "version: v1.0-mini, train_scenes: [scene-0001], val_scenes: [scene-0001], ")
        .replace(", focal: 100.0, val_size: 5", "").replace("[64, 128]", "[96, 160]")
    )  # fmt: skip
    metrics = train(load_config(config, [f"output_dir={tmp_path / 'out'}", "solver.max_iter=1"]))
    assert set(metrics) >= KEYS and set(k for k in metrics if k.startswith("AP/")) == {"AP/car"}
    _, _, tokens = read_boxes(tmp_path / "out/eval/results_nusc.json")
    assert tokens == ["s1", "s2"]
