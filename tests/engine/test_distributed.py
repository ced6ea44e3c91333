"""Distributed training: 2 CPU ranks (gloo, via torchrun) versus one process on the same batch.

The equivalence test runs this file as a torchrun worker script (the ``__main__`` block), so
the workers use the real engine (``run.train``) with the test task registered below. Per-rank
batch = ``data.batch_size / world_size`` and rank ``r`` takes global sample positions
``r, r + 2, ...``, so the two ranks' batches of an iteration are exactly the single process's
batch; DDP averages the two per-rank mean gradients, which is the mean over the whole batch.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from pointforge.cli.launch import torchrun_args
from pointforge.cli.main import build_parser, main
from pointforge.config import load_config
from pointforge.config.loader import ConfigError
from pointforge.data.loader import build_train_loader
from pointforge.engine import comm, launch, run
from pointforge.engine.checkpoint import load_checkpoint
from pointforge.engine.trainer import Trainer
from pointforge.registry import TASKS
from pointforge.tasks.base import Task

GLOBAL_BATCH = 8
MAX_ITER = 6


class NoisyLine(Dataset):
    """y = 3x - 1 + noise from the global NumPy RNG (seeded per stream position by the loader,
    so a sample is identical whichever rank draws it)."""

    def __len__(self) -> int:
        return 40

    def __getitem__(self, i: int) -> dict[str, Any]:
        x = torch.tensor([i / 40.0, 1.0])
        y = torch.tensor([3.0 * x[0] - 1.0 + 0.1 * np.random.randn()], dtype=torch.float32)
        return {"x": x, "y": y}


@TASKS.register("test_ddp_regression")
class DDPRegressionTask(Task):
    def build_model(self) -> nn.Module:
        return nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1)).to(self.device)

    def build_train_loader(self, start_iter: int) -> Iterator[dict[str, Any]]:
        # rank / world size come from the process group (comm) by default.
        return build_train_loader(
            NoisyLine(), self.cfg.data.batch_size, 0, self.cfg.seed, start_iter
        )

    def training_step(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"mse": nn.functional.mse_loss(model(batch["x"]), batch["y"])}

    def evaluate(self, model: nn.Module, output_dir: Path | None = None) -> dict[str, float]:
        with torch.no_grad():
            x = torch.stack([torch.linspace(0, 1, 16), torch.ones(16)], 1)
            mse = float(nn.functional.mse_loss(model(x), 3 * x[:, :1] - 1))
        # A rank-dependent value shows the cross-rank averaging: mean over 2 ranks = 0.5.
        return {"mse": mse, "rank": float(comm.get_rank())}


def ddp_cfg(out: Path, max_iter: int = MAX_ITER):
    return load_config(
        None,
        [
            "task=test_ddp_regression",
            f"solver.max_iter={max_iter}",
            "solver.lr=0.05",
            f"data.batch_size={GLOBAL_BATCH}",
            "data.num_workers=0",
            "train.checkpoint_period=3",
            "train.eval_period=3",
            "train.log_period=1",
            "train.progress_bar=false",
            "device=cpu",
            f"output_dir={out}",
        ],
    )


def capture_first_gradients(path: Path) -> None:
    """Make Trainer save every parameter's gradient after the first step to ``path``."""
    original = Trainer.run_step

    def run_step(self: Trainer, data: Any) -> None:
        original(self, data)
        if self.iter == 0:  # the counter moves on after run_step returns
            grads = {n: p.grad.detach().clone() for n, p in self.model.named_parameters()}
            torch.save(grads, path)

    Trainer.run_step = run_step  # type: ignore[method-assign]


def capture_rng_before_step(iteration: int, path: Path) -> None:
    """Make Trainer save the torch RNG state at the start of step ``iteration + 1``."""
    original = Trainer.run_step

    def run_step(self: Trainer, data: Any) -> None:
        if self.iter == iteration and not path.exists():
            torch.save(torch.get_rng_state(), path)
        original(self, data)

    Trainer.run_step = run_step  # type: ignore[method-assign]


def worker(out: Path) -> None:
    """One torchrun rank: train 3 iterations, then resume the same run to MAX_ITER."""
    torch.set_num_threads(1)
    with launch.distributed(torch.device("cpu"), "gloo") as is_distributed:
        assert is_distributed and comm.get_world_size() == 2
        rank = comm.get_rank()
        capture_first_gradients(out.parent / f"grads_rank{rank}.pt")
        run.train(ddp_cfg(out, max_iter=3))
        torch.save(torch.get_rng_state(), out.parent / f"rng_saved_rank{rank}.pt")
        capture_rng_before_step(3, out.parent / f"rng_resumed_rank{rank}.pt")
        run.train(ddp_cfg(out), resume=True)


def test_two_rank_ddp_matches_single_process(tmp_path: Path) -> None:
    single, multi = tmp_path / "single" / "run", tmp_path / "ddp" / "run"
    single.parent.mkdir()
    multi.parent.mkdir()
    original = Trainer.run_step
    try:
        capture_first_gradients(single.parent / "grads.pt")
        run.train(ddp_cfg(single))
    finally:
        Trainer.run_step = original  # type: ignore[method-assign]

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    proc = subprocess.run(
        [*cmd, __file__, "--out", str(multi)], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    # Step-1 gradients: identical on both ranks (DDP all-reduce) and equal to one process's
    # gradient of the whole batch up to float32 summation order (mean of 2 means of 4 vs a
    # mean of 8): a few ulps, so 1e-6 absolute is tight for gradients of order 1.
    g_single = torch.load(single.parent / "grads.pt")
    g0, g1 = (torch.load(multi.parent / f"grads_rank{r}.pt") for r in (0, 1))
    for name, g in g_single.items():
        assert torch.equal(g0[name], g1[name]), name
        torch.testing.assert_close(g0[name], g, rtol=0, atol=1e-6)
    # Final weights after 6 Adam steps (with a resume at 3 on both ranks) match too; Adam
    # divides by sqrt(v), which can scale those ulps up a little, hence 1e-5.
    w_single = load_checkpoint(single / "checkpoints/final.pth")["model"]
    final = load_checkpoint(multi / "checkpoints/final.pth")
    assert final["iteration"] == MAX_ITER
    for name, w in w_single.items():
        torch.testing.assert_close(final["model"][name], w, rtol=0, atol=1e-5)
    diff = max(float((final["model"][n] - w).abs().max()) for n, w in w_single.items())
    print(f"DDP vs single process: max abs weight difference after {MAX_ITER} steps {diff:.3g}")

    # Each rank has its own RNG stream and resumed its own, not rank 0's.
    saved, resumed = (
        [torch.load(multi.parent / f"rng_{kind}_rank{r}.pt") for r in (0, 1)]
        for kind in ("saved", "resumed")
    )
    assert not torch.equal(saved[0], saved[1])
    assert torch.equal(resumed[0], saved[0]) and torch.equal(resumed[1], saved[1])

    # Rank 0 alone wrote the logs (a second writer would duplicate lines); evaluation results
    # are never averaged over ranks: rank 0's (whose evaluator gathered every rank's
    # predictions) are broadcast, so this metric, the evaluating rank, reads 0 everywhere.
    rows = [json.loads(line) for line in (multi / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows if "mse" in r] == list(range(1, MAX_ITER + 1))
    # Logged training losses are global-batch means (AverageOverRanks), as in one process.
    single_rows = [json.loads(line) for line in (single / "metrics.jsonl").read_text().splitlines()]
    torch.testing.assert_close(
        [r["mse"] for r in rows if "mse" in r],
        [r["mse"] for r in single_rows if "mse" in r],
        rtol=1e-5,
        atol=0,
    )
    assert [r["eval/rank"] for r in rows if "eval/rank" in r] == [0.0, 0.0]
    saved = json.loads((multi / "eval/metrics.json").read_text())
    assert saved["iteration"] == MAX_ITER and saved["metrics"]["rank"] == 0.0


def test_loader_shards_the_global_batch_over_ranks() -> None:
    def first_batch(rank: int, world: int) -> torch.Tensor:
        it = build_train_loader(NoisyLine(), 8, 0, 3, start_iter=5, rank=rank, world_size=world)
        return next(it)["y"].flatten()

    whole = first_batch(0, 1)
    r0, r1 = first_batch(0, 2), first_batch(1, 2)
    assert len(r0) == len(r1) == 4
    # Rank r holds positions r, r + 2, ...: interleaving the shards gives the one batch back.
    assert torch.equal(torch.stack([r0, r1], 1).flatten(), whole)
    with pytest.raises(ValueError, match=r"data.batch_size=6 .* not divisible by the 4"):
        build_train_loader(NoisyLine(), 6, 0, 0, rank=0, world_size=4)


def test_comm_helpers_degrade_to_single_process() -> None:
    assert not comm.is_initialized()
    assert (comm.get_rank(), comm.get_world_size(), comm.get_local_rank()) == (0, 1, 0)
    assert comm.is_main_process()
    comm.barrier()  # no process group: must not raise or block
    assert comm.all_gather({"a": 1}) == [{"a": 1}]
    assert comm.broadcast([1, 2]) == [1, 2]
    assert comm.reduce_metrics({"ap": 0.25, "n": 3}) == {"ap": 0.25, "n": 3.0}
    model = nn.Linear(2, 1)
    assert launch.wrap_ddp(model) is model
    with launch.distributed(torch.device("cpu")) as is_distributed:
        assert not is_distributed and not comm.is_initialized()


def test_ddp_config_keys_and_checks() -> None:
    cfg = load_config(None, ["task=magicpoint", "train.ddp.find_unused_parameters=true"])
    assert cfg.train.ddp.find_unused_parameters and cfg.train.ddp.backend == "auto"
    with pytest.raises(ConfigError, match=r"'train\.ddp\.backend' is nccl, which needs CUDA"):
        load_config(None, ["task=magicpoint", "train.ddp.backend=nccl", "device=cpu"])
    with pytest.raises(ConfigError, match=r"'train\.ddp\.backend' must be one of"):
        load_config(None, ["task=magicpoint", "train.ddp.backend=mpi"])


def test_launch_builds_torchrun_arguments(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["launch", "--help"])
    assert exc.value.code == 0
    assert "--nproc" in capsys.readouterr().out

    def argv(*extra: str) -> list[str]:
        args = build_parser().parse_args(["launch", "cfg.yaml", "solver.lr=1e-4", *extra])
        return torchrun_args(args)

    assert argv("--nproc", "2") == [
        *("--nproc-per-node", "2", "--nnodes", "1", "--standalone"),
        *("-m", "pointforge", "train", "cfg.yaml", "solver.lr=1e-4"),
    ]
    multi = argv(
        *("--nproc", "8", "--nnodes", "2", "--node-rank", "1"),
        *("--master-addr", "10.0.0.1", "--master-port", "29400", "--output-dir", "o", "--resume"),
    )
    assert multi[:10] == [
        *("--nproc-per-node", "8", "--nnodes", "2", "--node-rank", "1"),
        *("--master-addr", "10.0.0.1", "--master-port", "29400"),
    ]
    assert multi[-4:] == ["solver.lr=1e-4", "--output-dir", "o", "--resume"]
    elastic = argv("--nproc", "4", "--nnodes", "1:4", "--rdzv-endpoint", "h:29400")
    assert "--rdzv-endpoint" in elastic and elastic[elastic.index("--rdzv-id") + 1] == "pointforge"
    with pytest.raises(ValueError, match="--master-addr"):
        argv("--nproc", "2", "--nnodes", "2")
    with pytest.raises(ValueError, match="--nproc must be >= 1"):
        argv("--nproc", "0")


if __name__ == "__main__":  # a torchrun worker of test_two_rank_ddp_matches_single_process
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    worker(parser.parse_args().out)
