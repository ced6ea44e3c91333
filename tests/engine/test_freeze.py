"""Freezing parameters by name pattern (``model.freeze``)."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from pointforge.config import ConfigError, load_config
from pointforge.engine import run
from pointforge.engine.freeze import freeze_by_patterns
from pointforge.engine.trainer import Trainer

from .conftest import bn_overrides


def train_steps(trainer: Trainer, steps: int) -> None:
    data = trainer.task.build_train_loader(0)
    trainer.model.train()
    for _ in range(steps):
        trainer.run_step(data)
        trainer.iter += 1


def test_frozen_layers_do_not_change_and_frozen_bn_keeps_its_stats(
    tmp_path: Path, bn_trainer: Callable[..., Trainer]
) -> None:
    trainer = bn_trainer(tmp_path, r"model.freeze=['^0\.', '^1\.']")
    assert trainer.frozen == ["0.weight", "0.bias", "1.weight", "1.bias"]
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    train_steps(trainer, 3)
    model = trainer.model
    after = model.state_dict()
    # Frozen: weights, BN affine and BN running stats untouched; BN stays in eval mode.
    for key in ("0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var"):
        assert torch.equal(before[key], after[key]), key
    assert model.training and not model[1].training and model[4].training
    # Not frozen: trained weights and a BN that keeps tracking statistics.
    for key in ("3.weight", "6.weight", "4.weight", "4.running_mean"):
        assert not torch.equal(before[key], after[key]), key
    assert all(not p.requires_grad for p in model[1].parameters())


def test_frozen_bn_stays_in_eval_mode_through_copies_and_pickling(
    tmp_path: Path, bn_trainer: Callable[..., Trainer]
) -> None:
    model = bn_trainer(tmp_path, r"model.freeze=['^1\.']").model
    clone = copy.deepcopy(model)
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    for m in (model, clone, loaded):
        m.train()
        assert m.training and m[4].training and not m[1].training
        m.eval()
        assert not m[4].training
    # The copy's BN is pinned on the copy itself, not on the original.
    clone.train()
    clone[1].running_mean.zero_()
    clone(torch.randn(4, 4))
    assert torch.equal(clone[1].running_mean, torch.zeros(8))


def test_bn_with_some_trainable_params_is_not_pinned(
    tmp_path: Path, bn_trainer: Callable[..., Trainer]
) -> None:
    model = bn_trainer(tmp_path, r"model.freeze=['^1\.weight$']").model
    model.train()
    assert model[1].training and model[1].bias.requires_grad


def test_a_pattern_matching_nothing_is_an_error(
    tmp_path: Path, bn_trainer: Callable[..., Trainer]
) -> None:
    with pytest.raises(ValueError, match=r"model\.freeze.*\^layer1.*match no parameter"):
        bn_trainer(tmp_path, r"model.freeze=['^layer1\.', '^0\.']")
    with pytest.raises(ConfigError, match=r"model\.freeze\[1\]' is not a valid regex"):
        load_config(None, ["task=magicpoint", 'model.freeze=["^0", "(("]'])
    assert freeze_by_patterns(torch.nn.Linear(2, 2), []) == []


def test_resuming_with_other_frozen_layers_is_refused_by_name(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run.train(load_config(None, bn_overrides(out, "solver.max_iter=2")))
    changed = bn_overrides(out, "solver.max_iter=4", r"model.freeze=['^0\.']")
    with pytest.raises(ValueError, match=r"parameter groups changed.*keep model\.freeze"):
        run.train(load_config(None, changed), resume=True)
