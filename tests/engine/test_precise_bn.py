"""PreciseBN: running statistics become true averages; the hook keeps runs exactly resumable."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from pointforge.config import load_config
from pointforge.engine import run
from pointforge.engine.checkpoint import load_checkpoint
from pointforge.engine.freeze import freeze_by_patterns
from pointforge.engine.precise_bn import recompute_bn_stats
from pointforge.engine.trainer import Trainer

from .conftest import BNTask, ShiftedPoints, bn_mlp, bn_overrides


def batches(n: int, size: int = 8) -> list[torch.Tensor]:
    x = ShiftedPoints().x
    return [x[i * size : (i + 1) * size] for i in range(n)]


def test_running_stats_are_the_true_mean_over_the_batches() -> None:
    torch.manual_seed(0)
    model = bn_mlp().eval()
    seen: dict[int, list[torch.Tensor]] = {1: [], 4: []}
    for i in seen:
        model[i].register_forward_pre_hook(lambda m, args, i=i: seen[i].append(args[0].clone()))
    used = recompute_bn_stats(model, model, batches(5), num_iter=3)
    assert used == 3 and len(seen[1]) == 3  # stops after num_iter of the 5 batches
    for i, inputs in seen.items():
        bn = model[i]
        features = torch.cat(inputs)  # (24, 8): the BN inputs of all 3 batches
        torch.testing.assert_close(bn.running_mean, features.mean(0), rtol=0, atol=1e-5)
        # The variance is the mean of the per-batch unbiased variances (as in detectron2).
        per_batch_var = torch.stack([x.var(0, unbiased=True) for x in inputs]).mean(0)
        torch.testing.assert_close(bn.running_var, per_batch_var, rtol=1e-5, atol=1e-5)
        assert bn.momentum == 0.1  # restored
    assert not model.training  # mode restored
    # Far from the defaults (0, 1): the inputs have mean 2, std 3.
    assert model[1].running_mean.abs().max() > 0.5


def test_momentum_running_stats_differ_from_the_true_mean() -> None:
    """Control: plain training-mode forwards (momentum 0.1) do *not* give the true mean."""
    torch.manual_seed(0)
    model = bn_mlp().train()
    with torch.no_grad():
        for x in batches(3):
            model(x)
    true_mean = model[0](torch.cat(batches(3))).mean(0)
    assert not torch.allclose(model[1].running_mean, true_mean, atol=1e-3)


def test_frozen_bn_is_left_alone_and_short_data_is_an_error() -> None:
    model = bn_mlp()
    freeze_by_patterns(model, [r"^1\."])
    frozen_stats = model[1].running_mean.clone()
    recompute_bn_stats(model, model, batches(2), num_iter=2)
    assert torch.equal(model[1].running_mean, frozen_stats)
    assert not torch.equal(model[4].running_mean, torch.zeros(8))
    with pytest.raises(ValueError, match="PreciseBN needs 5 batches but the data gave only 2"):
        recompute_bn_stats(model, model, batches(2), num_iter=5)
    assert recompute_bn_stats(nn.Linear(4, 1), nn.Linear(4, 1), batches(1), 1) == 0


def test_hook_recomputes_stats_before_the_final_eval(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = load_config(
        None, bn_overrides(out, "train.precise_bn.enabled=true", "train.precise_bn.num_iter=4")
    )
    metrics = run.train(cfg)
    final = load_checkpoint(out / "checkpoints/final.pth")
    model = bn_mlp()
    model.load_state_dict(final["model"])
    # Recompute by hand from the same batches the hook uses (where training would continue).
    task = BNTask(cfg, torch.device("cpu"))
    expected = bn_mlp()
    expected.load_state_dict(final["model"])
    data = task.build_train_loader(cfg.solver.max_iter)
    recompute_bn_stats(expected, lambda b: task.training_step(expected, b), data, 4)
    for key in ("1.running_mean", "1.running_var", "4.running_mean", "4.running_var"):
        torch.testing.assert_close(final["model"][key], expected.state_dict()[key])
    assert metrics == task.evaluate(model)


def test_exact_resume_with_ema_precise_bn_accumulation_and_freeze(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    features = [
        "train.ema.enabled=true",
        "train.ema.tau=2",
        "train.precise_bn.enabled=true",
        "train.precise_bn.num_iter=2",
        "solver.accumulate_steps=2",
        r"model.freeze=['^0\.']",
        "solver.weight_decay=0.01",
        "solver.weight_decay_norm=0",
    ]

    def cfg(name: str):
        return load_config(None, bn_overrides(tmp_path / name, *features))

    run.train(cfg("a"))
    original = Trainer.run_step

    def run_step(self: Trainer, data) -> None:
        if self.iter == 4:
            raise KeyboardInterrupt("simulated kill")
        original(self, data)

    with monkeypatch.context() as m:
        m.setattr(Trainer, "run_step", run_step)
        with pytest.raises(KeyboardInterrupt):
            run.train(cfg("b"))
    assert load_checkpoint(tmp_path / "b/checkpoints/last.pth")["iteration"] == 4
    run.train(cfg("b"), resume=True)
    a = load_checkpoint(tmp_path / "a/checkpoints/final.pth")
    b = load_checkpoint(tmp_path / "b/checkpoints/final.pth")
    for part in ("model", "ema"):
        sa = a[part] if part == "model" else a[part]["model"]
        sb = b[part] if part == "model" else b[part]["model"]
        for k in sa:
            assert torch.equal(sa[k], sb[k]), (part, k)
    assert a["ema"]["updates"] == b["ema"]["updates"] == 6
    assert b["sampler"]["accumulate_steps"] == 2
    # Resuming with another accumulation would shift the data stream: refused by name.
    with pytest.raises(ValueError, match=r"solver\.accumulate_steps=2, config now says 3"):
        run.train(
            load_config(
                None,
                bn_overrides(
                    tmp_path / "b", *features, "solver.max_iter=8", "solver.accumulate_steps=3"
                ),
            ),
            resume=True,
        )
