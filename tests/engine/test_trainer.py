"""Engine behaviour on a tiny real task (linear regression) and on MagicPoint itself."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from pointforge.config import load_config
from pointforge.data.loader import build_train_loader
from pointforge.engine import run
from pointforge.engine.checkpoint import load_checkpoint
from pointforge.engine.trainer import NonFiniteLossError, Trainer
from pointforge.registry import TASKS
from pointforge.tasks.base import Task


class NoisyLine(Dataset):
    """y = 3x - 1 plus noise drawn from the global NumPy RNG (exercises worker seeding)."""

    def __len__(self) -> int:
        return 256

    def __getitem__(self, i: int) -> dict[str, Any]:
        x = torch.tensor([i / 256.0, 1.0])
        y = torch.tensor([3.0 * x[0] - 1.0 + 0.1 * np.random.randn()], dtype=torch.float32)
        return {"x": x, "y": y}


@TASKS.register("test_regression")
class RegressionTask(Task):
    nan_at: int | None = None

    def build_model(self) -> nn.Module:
        return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1)).to(self.device)

    def build_train_loader(self, start_iter: int) -> Iterator[dict[str, Any]]:
        return build_train_loader(
            NoisyLine(),
            self.cfg.data.batch_size,
            self.cfg.data.num_workers or 0,
            self.cfg.seed,
            start_iter,
        )

    def training_step(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        self.calls = getattr(self, "calls", 0) + 1
        loss = nn.functional.mse_loss(model(batch["x"]), batch["y"])
        if self.nan_at is not None and self.calls == self.nan_at:
            loss = loss * float("nan")
        # A randomly dropped term uses the torch RNG: resume must restore it too.
        return {"mse": loss, "reg": 1e-3 * torch.rand(()) * loss}

    def evaluate(self, model: nn.Module, output_dir: Path | None = None) -> dict[str, float]:
        with torch.no_grad():
            x = torch.stack([torch.linspace(0, 1, 32), torch.ones(32)], 1)
            return {"mse": float(nn.functional.mse_loss(model(x), 3 * x[:, :1] - 1))}


def regression_cfg(out: Path, max_iter: int = 8, workers: int = 0, **extra: str):
    overrides = [
        "task=test_regression",
        f"solver.max_iter={max_iter}",
        "solver.lr=0.01",
        "data.batch_size=8",
        f"data.num_workers={workers}",
        "train.checkpoint_period=2",
        "train.eval_period=4",
        "train.log_period=1",
        "train.progress_bar=false",
        "solver.lr_schedule=cosine",
        "solver.warmup_iters=3",
        "device=cpu",
        f"output_dir={out}",
        *[f"{k}={v}" for k, v in extra.items()],
    ]
    return load_config(None, overrides)


def interrupt_at(monkeypatch: pytest.MonkeyPatch, iteration: int) -> None:
    original = Trainer.run_step

    def run_step(self: Trainer, data: Any) -> None:
        if self.iter == iteration:
            raise KeyboardInterrupt("simulated kill")
        original(self, data)

    monkeypatch.setattr(Trainer, "run_step", run_step)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


EMA_AND_ACCUMULATION = {"train.ema.enabled": "true", "solver.accumulate_steps": "2"}


@pytest.mark.parametrize(("workers", "extra"), [(0, {}), (2, {}), (0, EMA_AND_ACCUMULATION)])
def test_exact_resume_matches_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int, extra: dict[str, str]
) -> None:
    run.train(regression_cfg(tmp_path / "a", workers=workers, **extra))
    with monkeypatch.context() as m:
        interrupt_at(m, 4)
        with pytest.raises(KeyboardInterrupt):
            run.train(regression_cfg(tmp_path / "b", workers=workers, **extra))
    assert load_checkpoint(tmp_path / "b/checkpoints/last.pth")["iteration"] == 4
    run.train(regression_cfg(tmp_path / "b", workers=workers, **extra), resume=True)
    a, b = (
        weights(tmp_path / "a/checkpoints/final.pth"),
        weights(tmp_path / "b/checkpoints/final.pth"),
    )
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ca = load_checkpoint(tmp_path / "a/checkpoints/final.pth")
    cb = load_checkpoint(tmp_path / "b/checkpoints/final.pth")
    assert ca["scheduler"] == cb["scheduler"]
    assert torch.equal(
        ca["optimizer"]["state"][0]["exp_avg"], cb["optimizer"]["state"][0]["exp_avg"]
    )
    assert ("ema" in ca) == ("ema" in cb) == bool(extra)
    if extra:  # the EMA of the weights resumes exactly too
        assert ca["ema"]["updates"] == cb["ema"]["updates"] == 8
        for k, v in ca["ema"]["model"].items():
            assert torch.equal(v, cb["ema"]["model"][k]), k


def test_output_layout_and_logs(tmp_path: Path) -> None:
    out = tmp_path / "run"
    metrics = run.train(regression_cfg(out))
    assert {"config.yaml", "metrics.jsonl", "tb", "checkpoints", "eval"} <= {
        p.name for p in out.iterdir()
    }
    assert (out / "checkpoints/final.pth").is_file() and (out / "checkpoints/last.pth").is_file()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows if "mse" in r] == list(range(1, 9))
    assert any("eval/mse" in r for r in rows if r["iteration"] == 4)  # periodic eval
    assert "lr" in rows[0] and rows[0]["lr"] < rows[4]["lr"]  # warmup visible
    saved = json.loads((out / "eval/metrics.json").read_text())
    assert saved["iteration"] == 8 and saved["metrics"] == metrics
    assert any(p.name.startswith("events.out.tfevents") for p in (out / "tb").iterdir())


def test_resume_drops_log_lines_past_the_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        interrupt_at(m, 5)  # iteration 5 is logged, but the last checkpoint is at 4
        with pytest.raises(KeyboardInterrupt):
            run.train(regression_cfg(out))
    with (out / "metrics.jsonl").open("a") as f:
        f.write('{"iteration": 5, "mse": 1.0')  # a torn final write
    before = [
        json.loads(line)["iteration"]
        for line in (out / "metrics.jsonl").read_text().splitlines()[:-1]
    ]
    assert 5 in before
    run.train(regression_cfg(out), resume=True)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows if "mse" in r] == list(range(1, 9))


def test_resume_finished_run_is_a_noop(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    run.train(regression_cfg(out))
    before = (out / "checkpoints/final.pth").stat().st_mtime_ns
    run.train(regression_cfg(out), resume=True)
    assert "already finished at iteration 8" in capsys.readouterr().out
    assert (out / "checkpoints/final.pth").stat().st_mtime_ns == before


def test_output_dir_policy(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run.train(regression_cfg(out, max_iter=2), resume=True)  # nothing to resume: starts it
    assert load_checkpoint(out / "checkpoints/final.pth")["iteration"] == 2
    run.train(regression_cfg(out, max_iter=2), overwrite=True)
    with pytest.raises(run.OutputDirError, match=r"already holds a run.*--resume.*--overwrite"):
        run.train(regression_cfg(out, max_iter=2))
    (out / "notes.txt").write_text("mine")
    run.train(regression_cfg(out, max_iter=2), overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"  # only our own artefacts are replaced


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "run"
    RegressionTask.nan_at = 5
    try:
        with pytest.raises(NonFiniteLossError, match=r"loss is nan at iteration 5"):
            run.train(regression_cfg(out))
    finally:
        RegressionTask.nan_at = None
    last = load_checkpoint(out / "checkpoints/last.pth")
    assert last["iteration"] == 4
    assert all(torch.isfinite(v).all() for v in last["model"].values())
    assert not (out / "checkpoints/final.pth").exists()


def test_magicpoint_exact_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_overrides: list[str]
) -> None:
    def cfg(name: str):
        return load_config(
            None,
            [
                *tiny_overrides,
                f"output_dir={tmp_path / name}",
                "solver.max_iter=4",
                "eval.noisy=false",
            ],
        )

    metrics = run.train(cfg("a"))
    assert 0.0 <= metrics["clean/ap"] <= 1.0 and "clean/harris/ap" in metrics
    with monkeypatch.context() as m:
        interrupt_at(m, 2)
        with pytest.raises(KeyboardInterrupt):
            run.train(cfg("b"))
    run.train(cfg("b"), resume=True)
    a, b = (
        weights(tmp_path / "a/checkpoints/final.pth"),
        weights(tmp_path / "b/checkpoints/final.pth"),
    )
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert (tmp_path / "a/eval/detections.png").is_file()


def _tensorboard_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of ``log_dir`` as TensorBoard shows it (purges applied)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def test_tensorboard_after_resume_matches_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11.4: resuming from checkpoint 4 purged step 4 itself (its loss and its eval), and
    the final step was logged twice. A killed run that logged step 5 past its checkpoint must
    read back exactly like an uninterrupted run."""
    run.train(regression_cfg(tmp_path / "a"))
    with monkeypatch.context() as m:
        interrupt_at(m, 5)  # steps 1-5 logged, last checkpoint at 4
        with pytest.raises(KeyboardInterrupt):
            run.train(regression_cfg(tmp_path / "b"))
    run.train(regression_cfg(tmp_path / "b"), resume=True)
    a, b = _tensorboard_scalars(tmp_path / "a/tb"), _tensorboard_scalars(tmp_path / "b/tb")
    assert [s for s, _ in a["mse"]] == list(range(1, 9))  # each step once, the last included
    assert [s for s, _ in a["eval/mse"]] == [4, 8]
    assert a.keys() == b.keys()
    assert {"mse", "reg", "lr", "eval/mse"} <= a.keys()
    for tag in a:
        assert [s for s, _ in b[tag]] == [s for s, _ in a[tag]], tag
        if "time" not in tag:  # wall-clock timings differ between runs
            np.testing.assert_allclose([v for _, v in b[tag]], [v for _, v in a[tag]], err_msg=tag)
