"""Best checkpoint and early stopping (train.best_metric / best_mode / patience), engine-wide.

A tiny registered task whose evaluation follows a fixed script of scores keyed by a step
counter kept in the model's buffers (so it is part of every checkpoint and resumes exactly):
the best iteration and the early stop are known in advance, and a kill in the middle must not
change them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from pointforge.cli.main import main as cli_main
from pointforge.config import load_config
from pointforge.config.validate import ConfigError
from pointforge.data.loader import build_train_loader
from pointforge.engine import run
from pointforge.engine.best import BestMetricError
from pointforge.engine.checkpoint import CheckpointError, load_checkpoint, run_weights
from pointforge.engine.trainer import Trainer
from pointforge.models.loading import fit_state_dict, read_state_dict
from pointforge.registry import TASKS
from pointforge.tasks.base import Task

# Score after N training steps: rises to 0.6 at 8, then never beats it.
SCRIPT = {2: 0.1, 4: 0.5, 6: 0.4, 8: 0.6, 10: 0.55, 12: 0.5, 14: 0.45, 16: 0.7, 18: 0.2}


class SumOfTwo(Dataset):
    """64 fixed samples: y = x0 + x1."""

    def __init__(self) -> None:
        self.x = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))

    def __len__(self) -> int:
        return 64

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "y": self.x[i].sum(0, keepdim=True)}


class Counted(nn.Module):
    """(B, 2) -> (B, 1) with a ``steps`` buffer counting training steps."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 1)
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


@TASKS.register("test_scripted_score")
class ScriptedTask(Task):
    def build_model(self) -> nn.Module:
        torch.manual_seed(0)
        model = Counted().to(self.device)
        if self.cfg.model.weights is not None:  # pointforge eval --weights
            fit_state_dict(model, read_state_dict(self.cfg.model.weights), self.cfg.model.weights)
        return model

    def build_train_loader(self, start_iter: int) -> Iterator[dict[str, Any]]:
        return build_train_loader(
            SumOfTwo(), self.cfg.data.batch_size, 0, self.cfg.seed, start_iter
        )

    def training_step(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        plain = getattr(model, "module", model)
        plain.steps += 1
        return {"mse": nn.functional.mse_loss(model(batch["x"]), batch["y"])}

    def evaluate(self, model: nn.Module, output_dir: Path | None = None) -> dict[str, float]:
        steps = int(model.steps)
        return {"score": SCRIPT.get(steps, 0.0), "steps": float(steps)}


def cfg_for(out: Path, *extra: str) -> Any:
    return load_config(
        None,
        [
            "task=test_scripted_score",
            "device=cpu",
            "data.batch_size=4",
            "data.num_workers=0",
            "solver.max_iter=20",
            "train.eval_period=2",
            "train.checkpoint_period=2",
            "train.progress_bar=false",
            "train.best_metric=score",
            f"output_dir={out}",
            *extra,
        ],
    )


def test_best_checkpoint_holds_the_best_evaluation(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run.train(cfg_for(out))  # no patience: runs to 20; the best is 0.7 at 16
    best = load_checkpoint(out / "checkpoints/best.pth")
    assert best["iteration"] == 16 and best["best"]["value"] == 0.7
    assert int(best["model"]["steps"]) == 16  # the weights of iteration 16, not the last
    assert "optimizer" not in best
    metrics = json.loads((out / "eval/metrics.json").read_text())
    assert metrics["iteration"] == 20
    assert metrics["best"]["iteration"] == 16 and metrics["best"]["metric"] == "score"
    assert metrics["best"]["path"] == "checkpoints/best.pth"


def test_min_mode_keeps_the_smallest(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run.train(cfg_for(out, "train.best_mode=min", "solver.max_iter=10"))
    # Scores 0.1 (2), 0.5, 0.4, 0.6, 0.55 (10): the smallest is iteration 2's.
    assert load_checkpoint(out / "checkpoints/best.pth")["iteration"] == 2


def test_patience_stops_like_a_finished_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    run.train(cfg_for(out, "train.patience=3"))
    # Best 0.6 at 8; 10, 12 and 14 do not beat it: stop at 14, before 16's 0.7.
    final = load_checkpoint(out / "checkpoints/final.pth")
    assert final["iteration"] == 14 and "early stop at iteration 14" in final["stopped"]
    metrics = json.loads((out / "eval/metrics.json").read_text())
    assert metrics["iteration"] == 14 and metrics["metrics"]["steps"] == 14.0
    assert metrics["best"]["iteration"] == 8 and metrics["best"]["stopped_early_at"] == 14
    assert load_checkpoint(out / "checkpoints/best.pth")["iteration"] == 8
    # --resume on a stopped run is a no-op, as on a finished one.
    before = (out / "checkpoints/final.pth").stat().st_mtime_ns
    run.train(cfg_for(out, "train.patience=3"), resume=True)
    assert "already finished at iteration 14 (early stop" in capsys.readouterr().out
    assert (out / "checkpoints/final.pth").stat().st_mtime_ns == before


def test_patience_count_survives_a_kill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run.train(cfg_for(tmp_path / "a", "train.patience=3"))
    original = Trainer.run_step

    def killed_at_11(self: Trainer, data: Any) -> None:
        if self.iter == 11:
            raise KeyboardInterrupt("simulated kill")
        original(self, data)

    with monkeypatch.context() as m:
        m.setattr(Trainer, "run_step", killed_at_11)
        with pytest.raises(KeyboardInterrupt):
            run.train(cfg_for(tmp_path / "b", "train.patience=3"))
    # The checkpoint at 10 holds the count after 10's evaluation (one without improvement).
    state = load_checkpoint(tmp_path / "b/checkpoints/last.pth")
    assert state["iteration"] == 10
    assert state["hooks"]["EvalHook"]["best"]["bad_evals"] == 1
    run.train(cfg_for(tmp_path / "b", "train.patience=3"), resume=True)
    a = load_checkpoint(tmp_path / "a/checkpoints/final.pth")
    b = load_checkpoint(tmp_path / "b/checkpoints/final.pth")
    assert a["iteration"] == b["iteration"] == 14
    assert a["hooks"] == b["hooks"]
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    ma = json.loads((tmp_path / "a/eval/metrics.json").read_text())
    mb = json.loads((tmp_path / "b/eval/metrics.json").read_text())
    assert ma == mb


def test_unknown_best_metric_names_the_key_and_the_metrics(tmp_path: Path) -> None:
    with pytest.raises(BestMetricError, match=r"best_metric' is 'scor'.*Did you mean 'score'"):
        run.train(cfg_for(tmp_path / "run", "train.best_metric=scor"))


def test_patience_needs_a_metric_and_evaluations(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'train.patience' needs train.best_metric"):
        cfg_for(tmp_path, "train.best_metric=null", "train.patience=2")
    with pytest.raises(ConfigError, match=r"'train.patience' needs periodic evaluations"):
        cfg_for(tmp_path, "train.patience=2", "train.eval_period=0")


def test_a_run_folder_points_eval_and_predictor_at_the_best_weights(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run.train(cfg_for(out, "solver.max_iter=10"))
    assert run_weights(out) == out / "checkpoints/best.pth"
    assert run_weights(out / "checkpoints/final.pth") == out / "checkpoints/final.pth"
    (out / "checkpoints/best.pth").unlink()
    assert run_weights(out) == out / "checkpoints/final.pth"
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"empty is a folder holding neither"):
        run_weights(tmp_path / "empty")


def test_eval_cli_on_a_run_folder_evaluates_best(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run.train(cfg_for(out, "solver.max_iter=10"))  # best 0.6 at 8; final at 10
    # The CLI's eval needs a config file; the run's own config.yaml is one.
    argv = ["eval", str(out / "config.yaml"), "--weights", str(out)]
    rc = cli_main([*argv, "--output-dir", str(tmp_path / "ev")])
    assert rc == 0
    metrics = json.loads((tmp_path / "ev/eval/metrics.json").read_text())
    assert metrics["metrics"]["steps"] == 8.0  # the best weights', not the final ones
    assert metrics["weights"].endswith("best.pth")
