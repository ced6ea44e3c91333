"""Kill safety and data failures of real runs.

* A real ``python -m pointforge train`` subprocess is SIGKILLed at seeded moments (before its
  first checkpoint, inside checkpoint writes, mid-training, during the final evaluation) and
  resumed with ``--resume`` until it finishes: every checkpoint on disk always loads, temp files
  are never taken for checkpoints and are cleaned up, and the final weights and metrics are
  bitwise equal to an uninterrupted run. The harness is benchmarks/bench_kill_resume.py (the
  long version).
* Resume edge cases in-process: no checkpoint yet, ``last.pth`` missing after a kill between the
  two writes of the first save, a final evaluation that never finished.
* A dataset that raises and a worker that dies mid-run give named errors and leave every
  checkpoint intact.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, get_worker_info

from pointforge.cli.main import main as cli_main
from pointforge.config import load_config
from pointforge.data.errors import DataLoadingError
from pointforge.data.loader import build_train_loader
from pointforge.engine import run
from pointforge.engine.checkpoint import Checkpointer, atomic_save, load_checkpoint
from pointforge.registry import TASKS
from pointforge.tasks.base import Task

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_kill_resume.py"


def harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_kill_resume", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses need their module registered
    spec.loader.exec_module(module)
    return module


def test_sigkill_at_seeded_moments_then_resume_is_bitwise_exact(tmp_path: Path) -> None:
    h = harness()
    config = h.write_config(tmp_path / "kill.yaml", iters=4, workers=0)
    h.run_to_end(config, tmp_path / "reference", resume=False)
    rng = random.Random(20261123)
    moments = [
        h.Moment("before-first"),
        h.Moment("mid-write", count=rng.randint(1, 2)),
        h.Moment("training", count=1, delay=rng.uniform(0.0, 0.3)),
        h.Moment("mid-write", count=rng.randint(1, 2)),
        h.Moment("final-eval"),  # as soon as final.pth appears, before eval/metrics.json
    ]
    out = tmp_path / "killed"
    tally = h.kill_and_resume(config, out, moments)
    assert tally.kills == len(moments), tally  # every moment was reached and killed
    # The kill left a temp file, i.e. it landed inside atomic_save, at least once.
    assert tally.mid_write_kills >= 1, tally
    ckpt_dir = out / "checkpoints"
    assert not [n for n in os.listdir(ckpt_dir) if h.TEMP_NAME.match(n)]  # cleaned on resume
    h.check_checkpoint_dir(ckpt_dir)
    assert load_checkpoint(ckpt_dir / "final.pth")["iteration"] == 4
    assert h.same_weights(tmp_path / "reference/checkpoints/final.pth", ckpt_dir / "final.pth")
    ref = json.loads((tmp_path / "reference/eval/metrics.json").read_text())
    got = json.loads((out / "eval/metrics.json").read_text())
    assert json.dumps(got) == json.dumps(ref)  # same final evaluation (NaN-safe comparison)


# -- in-process edge cases on a tiny task --------------------------------------------------------


class Line(Dataset):
    """y = 2x + 1 samples; ``raise_at`` raises, ``die_at`` kills its worker process."""

    raise_at: int | None = None
    die_at: int | None = None

    def __len__(self) -> int:
        return 64

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if i == self.raise_at:
            raise OSError(f"cannot read record {i}")
        if i == self.die_at and get_worker_info() is not None:
            os._exit(7)
        x = torch.tensor([i / 64.0, 1.0])
        return {"x": x, "y": 2.0 * x[:1] + 1.0 + 0.01 * torch.randn(1)}


@TASKS.register("test_kill_line")
class LineTask(Task):
    def build_model(self) -> nn.Module:
        return nn.Linear(2, 1).to(self.device)

    def build_train_loader(self, start_iter: int) -> Iterator[dict[str, Any]]:
        d = self.cfg.data
        return build_train_loader(
            Line(), d.batch_size, d.num_workers or 0, self.cfg.seed, start_iter
        )

    def training_step(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"mse": nn.functional.mse_loss(model(batch["x"]), batch["y"])}

    def evaluate(self, model: nn.Module, output_dir: Path | None = None) -> dict[str, float]:
        with torch.no_grad():
            x = torch.stack([torch.linspace(0, 1, 16), torch.ones(16)], 1)
            return {"mse": float(nn.functional.mse_loss(model(x), 2 * x[:, :1] + 1))}


def line_overrides(out: Path, max_iter: int = 6, workers: int = 0) -> list[str]:
    return [
        "task=test_kill_line",
        f"solver.max_iter={max_iter}",
        "solver.lr=0.05",
        "data.batch_size=4",
        f"data.num_workers={workers}",
        "train.checkpoint_period=2",
        "train.eval_period=0",
        "train.progress_bar=false",
        "device=cpu",
        f"output_dir={out}",
    ]


def line_cfg(out: Path, max_iter: int = 6, workers: int = 0):
    return load_config(None, line_overrides(out, max_iter, workers))


def killed(*args: Any, **kwargs: Any) -> None:
    raise KeyboardInterrupt("stands in for a kill at the first checkpoint")


def test_resume_before_first_checkpoint_restarts_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    run.train(line_cfg(tmp_path / "a"))
    with monkeypatch.context() as m:
        m.setattr(Checkpointer, "save", killed)
        with pytest.raises(KeyboardInterrupt):
            run.train(line_cfg(tmp_path / "b"))
    assert (tmp_path / "b/config.yaml").is_file() and Checkpointer(
        tmp_path / "b/checkpoints"
    ).resume_path() is None
    run.train(line_cfg(tmp_path / "b"), resume=True)
    assert "holds no checkpoint yet; starting the run from iteration 0" in caplog.text
    a = load_checkpoint(tmp_path / "a/checkpoints/final.pth")["model"]
    b = load_checkpoint(tmp_path / "b/checkpoints/final.pth")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    # A run killed before it wrote anything (its directory does not even exist) is started by
    # --resume, so a requeue script that always passes --resume works from any kill moment.
    caplog.clear()
    run.train(line_cfg(tmp_path / "c"), resume=True)
    assert "holds no checkpoint yet; starting the run from iteration 0" in caplog.text
    c = load_checkpoint(tmp_path / "c/checkpoints/final.pth")["model"]
    assert all(torch.equal(a[k], c[k]) for k in a)


def test_kill_between_the_two_writes_of_the_first_save(tmp_path: Path) -> None:
    """Checkpointer.save writes iter_N.pth then last.pth: a kill in between must not strand
    the run, and temp files of killed writes are never candidates and get cleaned up."""
    ck = Checkpointer(tmp_path, keep_last=2)
    ck.save({"w": torch.tensor(2.0)}, 2)
    (tmp_path / "last.pth").unlink()
    torn = tmp_path / ".last.pth.k9x2a1.tmp"
    torn.write_bytes(b"PK\x03\x04 torn")  # what SIGKILL inside atomic_save leaves
    (tmp_path / ".iter_0000004.pth.q8w7e6.tmp").write_bytes(b"")
    assert ck.resume_path() == tmp_path / "iter_0000002.pth"
    assert ck.load_last()["iteration"] == 2
    assert sorted(p.name for p in ck.remove_stale_temp_files()) == [
        ".iter_0000004.pth.q8w7e6.tmp",
        ".last.pth.k9x2a1.tmp",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iter_0000002.pth"]
    atomic_save({"w": torch.tensor(4.0), "iteration": 4, "format_version": 1}, ck.last_path)
    assert ck.resume_path() == ck.last_path  # last.pth wins whenever it exists


def test_resume_after_kill_during_final_eval_evaluates(tmp_path: Path) -> None:
    out = tmp_path / "run"
    metrics = run.train(line_cfg(out))
    saved = out / "eval/metrics.json"
    saved.write_text(saved.read_text()[:10])  # torn by a kill mid-write
    assert run.train(line_cfg(out), resume=True) == metrics
    assert json.loads(saved.read_text()) == {"iteration": 6, "metrics": metrics}
    saved.unlink()  # killed before it was written
    assert run.train(line_cfg(out), resume=True) == metrics


def checkpoints_all_load(ckpt_dir: Path) -> list[int]:
    names = sorted(p.name for p in ckpt_dir.iterdir())
    assert all(n.endswith(".pth") for n in names), names  # no temp file left
    return [int(load_checkpoint(ckpt_dir / n)["iteration"]) for n in names]


@pytest.mark.parametrize("workers", [0, 1])
def test_dataset_error_mid_run_is_named_and_checkpoints_intact(
    tmp_path: Path, capsys: pytest.CaptureFixture, workers: int
) -> None:
    out = tmp_path / "run"
    config = tmp_path / "line.yaml"
    config.write_text("task: test_kill_line\n")
    Line.raise_at = 37
    try:
        code = cli_main(["train", str(config), *line_overrides(out, 40, workers)])
    finally:
        Line.raise_at = None
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err  # one line
    assert err.startswith(
        "pointforge train: error: DataLoadingError: dataset Line failed on sample index 37 "
        "(stream position"
    ), err
    assert "OSError: cannot read record 37" in err
    iterations = checkpoints_all_load(out / "checkpoints")
    assert iterations and max(iterations) < 40


def test_worker_death_mid_run_is_named_and_checkpoints_intact(tmp_path: Path) -> None:
    out = tmp_path / "run"
    Line.die_at = 37
    try:
        with pytest.raises(DataLoadingError) as info:
            run.train(line_cfg(out, max_iter=40, workers=1))
    finally:
        Line.die_at = None
    text = str(info.value)
    assert "DataLoader worker 0 (pid" in text and "of dataset Line died (exit code 7)" in text
    assert "at sample index 37 (stream position" in text
    iterations = checkpoints_all_load(out / "checkpoints")
    assert iterations and max(iterations) < 40
