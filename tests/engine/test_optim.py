"""Optimiser parameter groups (weight-decay rules, frozen parameters) and the LR curve."""

from __future__ import annotations

import itertools
import logging
import math

import pytest
import torch
from torch import nn

from pointforge.config.schema import SolverConfig
from pointforge.engine.freeze import freeze_by_patterns
from pointforge.engine.optim import build_lr_scheduler, build_optimizer, lr_factor, param_groups


def net() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3),  # 0: weight, bias
        nn.BatchNorm2d(8),  # 1: norm weight, norm bias
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, bias=False),  # 3: weight only
        nn.GroupNorm(2, 8),  # 4
        nn.Flatten(),
        nn.Linear(8, 4),  # 6: weight, bias
        nn.LayerNorm(4),  # 7
    )


def decay_of(groups: list[dict], name: str) -> float:
    (decay,) = [g["weight_decay"] for g in groups if name in g["names"]]
    return decay


def test_norm_and_bias_get_their_own_weight_decay() -> None:
    cfg = SolverConfig(weight_decay=1e-4, weight_decay_norm=0.0, weight_decay_bias=1e-5)
    groups = param_groups(net(), cfg)
    assert len(groups) == 3
    for name in ("1.weight", "1.bias", "4.weight", "4.bias", "7.weight", "7.bias"):
        assert decay_of(groups, name) == 0.0, name
    for name in ("0.bias", "6.bias"):
        assert decay_of(groups, name) == 1e-5, name
    for name in ("0.weight", "3.weight", "6.weight"):
        assert decay_of(groups, name) == 1e-4, name
    # Every trainable parameter is in exactly one group.
    names = [n for g in groups for n in g["names"]]
    assert sorted(names) == sorted(n for n, _ in net().named_parameters())


def test_default_decay_rules_keep_one_group_in_parameter_order() -> None:
    """null = same as weight_decay, so old single-group optimiser checkpoints still load."""
    model = net()
    (group,) = param_groups(model, SolverConfig(weight_decay=1e-4))
    assert group["weight_decay"] == 1e-4
    assert [id(p) for p in group["params"]] == [id(p) for p in model.parameters()]


def test_optimizer_applies_the_group_decay() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    cfg = SolverConfig(optimizer="sgd", lr=0.1, momentum=0.0, weight_decay=0.5, weight_decay_norm=0)
    opt = build_optimizer(model, cfg)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # only weight decay moves the weights
    before = [p.detach().clone() for p in model.parameters()]
    opt.step()
    lin_w, lin_b, bn_w, bn_b = model.parameters()
    torch.testing.assert_close(lin_w, before[0] * (1 - 0.1 * 0.5))
    torch.testing.assert_close(lin_b, before[1] * (1 - 0.1 * 0.5))
    assert torch.equal(bn_w, before[2]) and torch.equal(bn_b, before[3])


def test_frozen_parameters_are_left_out_of_the_optimizer() -> None:
    model = net()
    frozen = freeze_by_patterns(model, [r"^0\.", r"^1\."])
    assert frozen == ["0.weight", "0.bias", "1.weight", "1.bias"]
    opt = build_optimizer(model, SolverConfig())
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    for name, p in model.named_parameters():
        assert (id(p) in in_opt) == (name not in frozen), name
    freeze_by_patterns(model, ["."])  # everything
    with pytest.raises(ValueError, match="no trainable parameters"):
        build_optimizer(model, SolverConfig())


def test_warmup_then_multistep_lr_curve() -> None:
    cfg = SolverConfig(
        lr=0.1,
        lr_schedule="multistep",
        steps=(20, 30),
        gamma=0.1,
        warmup_iters=10,
        warmup_factor=0.001,
        max_iter=40,
    )
    expected = {0: 0.001, 5: 0.5005, 9: 0.9001, 10: 1.0, 19: 1.0, 20: 0.1, 29: 0.1, 30: 0.01}
    for it, factor in expected.items():
        assert lr_factor(it, cfg) == pytest.approx(factor), it
    # The scheduler the Trainer steps once per iteration yields exactly these LRs.
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = build_lr_scheduler(opt, cfg)
    seen = []
    for _ in range(31):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    for it, factor in expected.items():
        assert seen[it] == pytest.approx(0.1 * factor), it


def test_cosine_lr_curve_with_warmup() -> None:
    cfg = SolverConfig(lr_schedule="cosine", max_iter=100, warmup_iters=4, warmup_factor=0.0)
    assert lr_factor(0, cfg) == 0.0
    assert lr_factor(2, cfg) == pytest.approx(0.5 * 0.5 * (1 + math.cos(math.pi * 0.02)))
    assert lr_factor(25, cfg) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))  # 0.8536
    assert lr_factor(50, cfg) == pytest.approx(0.5)
    assert lr_factor(100, cfg) == pytest.approx(0.0)
    assert lr_factor(150, cfg) == pytest.approx(0.0)  # clamped past max_iter
    values = [lr_factor(i, cfg) for i in range(4, 101)]
    assert all(a >= b for a, b in itertools.pairwise(values))  # monotone decay


def test_lr_follows_the_batch_sqrt_for_adam_linear_for_sgd() -> None:
    model = nn.Linear(3, 1)
    adam = SolverConfig(optimizer="adam", lr=1e-3, reference_batch_size=8)
    assert build_optimizer(model, adam, 32).param_groups[0]["lr"] == pytest.approx(2e-3)
    assert build_optimizer(model, adam, 2).param_groups[0]["lr"] == pytest.approx(5e-4)
    sgd = SolverConfig(optimizer="sgd", lr=0.1, reference_batch_size=256)
    assert build_optimizer(model, sgd, 64).param_groups[0]["lr"] == pytest.approx(0.025)
    # Accumulation counts: 16 x 2 micro-batches is an effective batch of 32.
    acc = SolverConfig(optimizer="sgd", lr=0.1, reference_batch_size=8, accumulate_steps=2)
    assert build_optimizer(model, acc, 16).param_groups[0]["lr"] == pytest.approx(0.4)
    off = SolverConfig(optimizer="adam", lr=1e-3, reference_batch_size=8, scale_lr=False)
    assert build_optimizer(model, off, 32).param_groups[0]["lr"] == 1e-3
    unset = SolverConfig(optimizer="adam", lr=1e-3)
    assert build_optimizer(model, unset, 32).param_groups[0]["lr"] == 1e-3


def test_lr_scaling_is_logged_once_naming_the_rule(caplog: pytest.LogCaptureFixture) -> None:
    cfg = SolverConfig(optimizer="adam", lr=1e-3, reference_batch_size=8)
    with caplog.at_level(logging.INFO, logger="pointforge"):
        build_optimizer(nn.Linear(3, 1), cfg, 32)
    lines = [r.getMessage() for r in caplog.records if "reference_batch_size" in r.getMessage()]
    assert len(lines) == 1
    assert "effective batch is 32" in lines[0] and "square-root rule for adam" in lines[0]
    assert "to 0.002" in lines[0] and "solver.scale_lr=false" in lines[0]
