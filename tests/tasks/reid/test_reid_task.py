"""Task ``reid`` through the real engine: training, metric keys, exact resume, DDP, predictor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pointforge import load_predictor
from pointforge.config import load_config
from pointforge.config.schema import Config
from pointforge.config.validate import ConfigError
from pointforge.engine import run
from pointforge.engine.checkpoint import load_checkpoint
from pointforge.engine.trainer import Trainer
from pointforge.tasks.reid.data.synthetic import SyntheticReIDParams, render_image
from pointforge.tasks.reid.retrieval import GREEN, RED, retrieve

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
KEYS = ("rank1", "rank5", "rank10", "mAP", "mINP")
# 6 training identities, 3 test identities × 2 cameras: 6 queries, 12 gallery images.
SMALL = (
    "data.num_train_ids=6",
    "data.num_test_ids=3",
    "data.num_cameras=2",
    "data.images_per_camera=2",
    "data.height=64",
    "data.width=32",
)


def reid_cfg(out: Path, *extra: str) -> Config:
    """configs/reid_synthetic.yaml shrunk to seconds: 64×32, P=3 × K=2, 4 iterations."""
    return load_config(
        CONFIGS / "reid_synthetic.yaml",
        [
            *SMALL,
            "device=cpu",
            "data.image_size=[64,32]",
            "reid.p=2",
            "reid.k=2",
            "data.batch_size=4",
            "data.num_workers=0",
            "solver.max_iter=4",
            "solver.warmup_iters=1",
            "solver.steps=[3]",
            "train.checkpoint_period=2",
            "train.log_period=1",
            "train.progress_bar=false",
            f"output_dir={out}",
            *extra,
        ],
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, dict[str, float]]:
    cfg = reid_cfg(tmp_path_factory.mktemp("reid") / "run")
    return cfg, run.train(cfg)


def test_training_writes_the_metric_keys(trained: tuple[Config, dict[str, float]]) -> None:
    cfg, metrics = trained
    for prefix in ("reid", "reid_rerank"):  # the config turns re-ranking on
        for key in KEYS:
            assert 0.0 <= metrics[f"{prefix}/{key}"] <= 1.0, (prefix, key)
        assert metrics[f"{prefix}/rank1"] <= metrics[f"{prefix}/rank5"]
        assert metrics[f"{prefix}/rank5"] <= metrics[f"{prefix}/rank10"]
    # 3 test identities, each query has matches in the other camera: rank-10 over 12
    # gallery images minus the query's own camera (4 left) finds every match.
    assert metrics["reid/rank10"] == 1.0 and metrics["reid/num_no_match"] == 0.0
    out = Path(str(cfg.output_dir))
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r for r in rows if "loss_ce" in r]
    assert [r["iteration"] for r in losses] == [1, 2, 3, 4]
    assert all(r["loss_triplet"] >= 0.0 for r in losses)
    saved = json.loads((out / "eval/metrics.json").read_text())["metrics"]
    assert saved["reid/mAP"] == pytest.approx(metrics["reid/mAP"])


def test_exact_resume_mid_epoch(
    trained: tuple[Config, dict[str, float]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """6 identities / P=2 = 3 batches per epoch: stopping after 2 resumes mid-epoch."""
    original = Trainer.run_step

    def interrupted(self: Trainer, data: object) -> None:
        if self.iter == 2:
            raise KeyboardInterrupt("simulated kill")
        original(self, data)

    with monkeypatch.context() as m:
        m.setattr(Trainer, "run_step", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run.train(reid_cfg(tmp_path / "b", "reid.eval.rerank=false"))
    run.train(reid_cfg(tmp_path / "b", "reid.eval.rerank=false"), resume=True)
    a = load_checkpoint(Path(str(trained[0].output_dir)) / "checkpoints/final.pth")["model"]
    b = load_checkpoint(tmp_path / "b/checkpoints/final.pth")["model"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_pk_batches_shard_over_ranks(trained: tuple[Config, dict[str, float]]) -> None:
    """The two ranks' P×K shares of a global batch are the single process's batch."""
    cfg = trained[0]
    task = run.build_task(cfg)
    train = task.build_dataset("train")
    one = iter(task.batch_sampler(train, 5, 0, 1))
    ranks = [iter(task.batch_sampler(train, 5, r, 2)) for r in range(2)]
    for _ in range(4):  # crosses an epoch boundary (3 batches per epoch)
        whole = next(one)
        parts = [next(r) for r in ranks]
        assert parts[0] + parts[1] == whole
        pids = train.pids[[i for _, i in parts[0]]]  # type: ignore[attr-defined]
        assert len(set(pids.tolist())) == 1  # P/2 = 1 identity × K = 2 on each rank


def test_batch_must_be_p_times_k(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data.batch_size' must equal reid.p \* reid.k"):
        reid_cfg(tmp_path, "data.batch_size=6")


def test_predictor_gives_unit_embeddings(trained: tuple[Config, dict[str, float]]) -> None:
    cfg, _ = trained
    weights = Path(str(cfg.output_dir)) / "checkpoints/final.pth"
    pred = load_predictor(weights, device="cpu")
    params = SyntheticReIDParams(height=64, width=32)
    crops = [render_image(params, 70, c, 0)[:, :, ::-1].copy() for c in range(3)]  # BGR
    crops.append(np.zeros((50, 17, 3), np.uint8))  # any size is resized
    emb = pred(crops)["embeddings"]
    assert emb.dtype == np.float32 and emb.shape == (4, 512)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    # The same as the task's own eval path: preprocess → eval-mode model → normalise.
    task = run.build_task(cfg)
    model = task.build_model().eval()
    model.load_state_dict(load_checkpoint(weights)["model"])
    with torch.no_grad():
        ref = torch.nn.functional.normalize(model(task.preprocess(crops[1])), dim=1)
    np.testing.assert_allclose(emb[1], ref[0].numpy(), atol=1e-5)
    assert pred(crops[0])["embeddings"].shape == (1, 512)


def test_eval_under_two_ranks_equals_one_process(
    trained: tuple[Config, dict[str, float]], tmp_path: Path
) -> None:
    """``pointforge eval`` under torchrun: each rank embeds half of the 18 query + gallery
    images, rank 0 ranks the gathered set; the metrics are the single-process ones."""
    cfg, metrics = trained
    weights = str(Path(str(cfg.output_dir)) / "checkpoints/final.pth")
    config = str(Path(str(cfg.output_dir)) / "config.yaml")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd = [*torchrun, "--nproc-per-node", "2", "-m", "pointforge", "eval", config]
    proc = subprocess.run(
        [*cmd, "--weights", weights, "--output-dir", str(tmp_path / "two"), "data.batch_size=4"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    two = json.loads((tmp_path / "two/eval/metrics.json").read_text())["metrics"]
    assert two.keys() == metrics.keys()
    for key, value in metrics.items():
        assert two[key] == pytest.approx(value, abs=1e-6), key


def test_retrieve_writes_a_framed_strip(
    trained: tuple[Config, dict[str, float]], tmp_path: Path
) -> None:
    """``retrieve`` with a real checkpoint: the gallery in Market naming, a PNG strip whose
    frames are green exactly where the ranked crop shows the query's identity."""
    cfg, _ = trained
    weights = Path(str(cfg.output_dir)) / "checkpoints/final.pth"
    params = SyntheticReIDParams(height=64, width=32)
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    for pid in (70, 71, 72):
        for cam in (1, 2):
            bgr = render_image(params, pid, cam, 1)[:, :, ::-1]
            cv2.imwrite(str(gallery / f"{pid:04d}_c{cam + 1}s1_000001_00.jpg"), bgr)
    query = tmp_path / "0070_c1s1_000000_00.jpg"
    cv2.imwrite(str(query), render_image(params, 70, 0, 0)[:, :, ::-1])
    out = tmp_path / "strip.png"
    result = retrieve(weights, query, gallery, top_k=4, out_png=out, device="cpu")
    assert len(result["paths"]) == 4 and result["excluded"] == 0
    strip = cv2.imread(str(out))
    assert strip is not None and strip.shape == result["strip"].shape
    cell = (strip.shape[1] - 8) // 5
    for i, ok in enumerate(result["correct"]):
        x = cell + 8 + i * cell + 1  # inside the frame of result i
        assert tuple(int(v) for v in strip[1, x]) == (GREEN if ok else RED), i
        assert ok == result["paths"][i].name.startswith("0070_")
    # The same through the command line: one line per rank, then the PNG.
    from pointforge.cli.main import main

    cli_out = tmp_path / "cli_strip.png"
    args = [str(weights), str(query), str(gallery), "--top-k", "3", "--out", str(cli_out)]
    assert main(["retrieve", *args, "--device", "cpu"]) == 0
    assert cv2.imread(str(cli_out)) is not None
    assert main(["retrieve", *args, "--top-k", "0"]) == 2
    # export-onnx reads the task from the checkpoint and exports the embedding network.
    onnx_path = tmp_path / "reid.onnx"
    assert main(["export-onnx", "--weights", str(weights), "--out", str(onnx_path)]) == 0
    assert onnx_path.stat().st_size > 1000
