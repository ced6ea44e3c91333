"""The optimiser step's switches: gradient accumulation, clipping, bf16 autocast, NaN checks."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from pointforge.config import load_config
from pointforge.data.loader import build_train_loader
from pointforge.engine import precision
from pointforge.engine.trainer import NonFiniteLossError, Trainer
from pointforge.registry import TASKS
from pointforge.tasks.base import Task


class FixedPoints(Dataset):
    """64 fixed samples of y = w·x + noise; deterministic, so batch layout is the only variable."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(64, 4, generator=g)
        self.y = self.x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.1 * torch.randn(
            64, 1, generator=g
        )

    def __len__(self) -> int:
        return 64

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"x": self.x[i], "y": self.y[i]}


class SyncCountingMLP(nn.Sequential):
    """A BN-free MLP with a DDP-like ``no_sync`` that counts how often it is entered."""

    def __init__(self) -> None:
        super().__init__(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))
        self.no_sync_calls = 0

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        self.no_sync_calls += 1
        yield


@TASKS.register("test_step_mlp")
class MLPTask(Task):
    """Mean-squared error of a small MLP; ``scale`` inflates gradients for the clipping tests."""

    scale = 1.0
    nan_at_call: int | None = None

    def build_model(self) -> nn.Module:
        torch.manual_seed(1)
        return SyncCountingMLP().to(self.device)

    def build_train_loader(self, start_iter: int) -> Iterator[dict[str, Any]]:
        return build_train_loader(
            FixedPoints(), self.cfg.data.batch_size, 0, self.cfg.seed, start_iter
        )

    def training_step(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        self.calls = getattr(self, "calls", 0) + 1
        self.activations: list[torch.Tensor] = []
        hook = model[0].register_forward_hook(lambda m, i, o: self.activations.append(o))
        try:
            pred = model(batch["x"])
        finally:
            hook.remove()
        loss = self.scale * nn.functional.mse_loss(pred.float(), batch["y"])
        if self.calls == self.nan_at_call:
            loss = loss * float("inf")
        return {"mse": loss}

    def evaluate(self, model: nn.Module, output_dir: Path | None = None) -> dict[str, float]:
        return {}


def make_trainer(tmp_path: Path, *overrides: str) -> Trainer:
    cfg = load_config(
        None,
        [
            "task=test_step_mlp",
            "device=cpu",
            "solver.optimizer=sgd",
            "solver.momentum=0.0",
            "solver.lr=0.05",
            f"output_dir={tmp_path}",
            *overrides,
        ],
    )
    return Trainer(MLPTask(cfg, torch.device("cpu")), cfg, tmp_path)


def run_steps(trainer: Trainer, steps: int) -> None:
    data = trainer.task.build_train_loader(trainer.iter * trainer.accumulate_steps)
    trainer.model.train()
    for _ in range(steps):
        trainer.run_step(data)
        trainer.iter += 1


def test_accumulating_micro_batches_equals_one_big_batch(tmp_path: Path) -> None:
    big = make_trainer(tmp_path / "big", "data.batch_size=12")
    acc = make_trainer(tmp_path / "acc", "data.batch_size=4", "solver.accumulate_steps=3")
    run_steps(big, 3)
    run_steps(acc, 3)
    for (name, a), b in zip(big.model.named_parameters(), acc.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    # The logged loss is the mean over micro-batches, i.e. the big batch's loss.
    assert big.storage.latest()["mse"][0] == pytest.approx(acc.storage.latest()["mse"][0], 1e-5)
    # A DDP model must skip the all-reduce on all but the last micro-batch of each step.
    assert acc.model.no_sync_calls == 3 * 2 and big.model.no_sync_calls == 0
    # And the weights did move: the comparison is not between two untouched models.
    fresh = make_trainer(tmp_path / "fresh", "data.batch_size=12")
    assert not torch.allclose(fresh.model[0].weight, big.model[0].weight)


def test_accumulation_consumes_accumulate_steps_batches_per_iteration(tmp_path: Path) -> None:
    acc = make_trainer(tmp_path, "data.batch_size=4", "solver.accumulate_steps=2")
    data = acc.task.build_train_loader(0)
    acc.run_step(data)
    acc.iter += 1
    # The loader a resumed run builds must start at the next unseen batch.
    resumed = acc.task.build_train_loader(acc.iter * acc.accumulate_steps)
    assert torch.equal(next(resumed)["x"], next(data)["x"])


@pytest.mark.parametrize(
    ("override", "check"),
    [
        ("solver.clip_grad_norm=0.5", "norm"),
        ("solver.clip_grad_value=0.01", "value"),
    ],
)
def test_gradients_are_clipped(tmp_path: Path, override: str, check: str) -> None:
    MLPTask.scale = 100.0  # gradients far above both thresholds
    try:
        unclipped = make_trainer(tmp_path / "raw", "data.batch_size=8")
        clipped = make_trainer(tmp_path / "clip", "data.batch_size=8", override)
        run_steps(unclipped, 1)
        run_steps(clipped, 1)
    finally:
        MLPTask.scale = 1.0
    raw = [p.grad for p in unclipped.model.parameters()]
    grads = [p.grad for p in clipped.model.parameters()]
    raw_norm = torch.linalg.vector_norm(torch.cat([g.flatten() for g in raw]))
    norm = torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads]))
    if check == "norm":
        assert raw_norm > 5.0
        assert norm == pytest.approx(0.5, rel=1e-4)
        # Clipping by norm rescales: the direction is unchanged.
        for g, r in zip(grads, raw, strict=True):
            torch.testing.assert_close(g, r * (0.5 / raw_norm))
        assert clipped.storage.latest()["grad_norm"][0] == pytest.approx(float(raw_norm), 1e-5)
    else:
        assert max(float(g.abs().max()) for g in raw) > 0.01
        assert max(float(g.abs().max()) for g in grads) <= 0.01
        for g, r in zip(grads, raw, strict=True):
            torch.testing.assert_close(g, r.clamp(-0.01, 0.01))


def test_clipping_sees_unscaled_gradients_under_a_grad_scaler(tmp_path: Path) -> None:
    """fp16 training scales the loss by ~2^16; the clip threshold is in true gradient units.

    fp16 needs CUDA, but the GradScaler logic is device-independent, so a CPU scaler with a
    large scale checks the order unscale → clip → step.
    """
    MLPTask.scale = 100.0
    try:
        trainer = make_trainer(tmp_path, "data.batch_size=8", "solver.clip_grad_norm=0.5")
        trainer.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)
        run_steps(trainer, 1)
    finally:
        MLPTask.scale = 1.0
    grads = torch.cat([p.grad.flatten() for p in trainer.model.parameters()])
    assert float(torch.linalg.vector_norm(grads)) == pytest.approx(0.5, rel=1e-4)
    assert trainer.storage.latest()["grad_norm"][0] < 1e4  # unscaled norm was logged
    assert trainer.scaler.get_scale() == 2.0**12  # finite gradients: the step was taken


def test_bf16_autocast_runs_the_forward_in_bf16_on_cpu(tmp_path: Path) -> None:
    fp32 = make_trainer(tmp_path / "fp32", "data.batch_size=8")
    bf16 = make_trainer(tmp_path / "bf16", "data.batch_size=8", "train.amp=bf16")
    run_steps(fp32, 1)
    run_steps(bf16, 1)
    assert fp32.task.activations[0].dtype == torch.float32
    assert bf16.task.activations[0].dtype == torch.bfloat16
    loss = bf16.storage.latest()["mse"][0]
    assert torch.isfinite(torch.tensor(loss)) and loss > 0
    # bf16 keeps ~3 significant digits: close to, but not bit-equal with, the fp32 loss.
    assert loss == pytest.approx(fp32.storage.latest()["mse"][0], rel=0.05)
    # Master weights and their gradients stay float32.
    assert all(p.dtype == torch.float32 for p in bf16.model.parameters())


@pytest.mark.parametrize("native", [False, True])
def test_bf16_on_a_cpu_without_native_bf16_warns_and_still_runs_bf16(
    native: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(precision, "native_bf16", lambda device: native)
    with caplog.at_level(logging.WARNING, logger="pointforge"):
        trainer = make_trainer(tmp_path, "data.batch_size=8", "train.amp=bf16")
    assert ("train.amp=bf16 on a CPU without native bf16" in caplog.text) is (not native)
    run_steps(trainer, 1)
    assert trainer.task.activations[0].dtype == torch.bfloat16  # what was asked is done


def test_fp16_needs_cuda(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"train\.amp=fp16 needs CUDA"):
        make_trainer(tmp_path, "train.amp=fp16")


def test_nan_in_a_later_micro_batch_stops_before_the_optimizer_step(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, "data.batch_size=4", "solver.accumulate_steps=3")
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.task.nan_at_call = 2
    with pytest.raises(NonFiniteLossError, match=r"loss is inf at iteration 1 \(micro-batch 2/3\)"):
        run_steps(trainer, 1)
    for b, p in zip(before, trainer.model.parameters(), strict=True):
        assert torch.equal(b, p)
