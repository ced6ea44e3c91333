"""Model summary: parameter totals, per-layer shapes and FLOPs against hand computations."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pointforge.models.summary import human, input_channels, summarize
from pointforge.models.superpoint import magicpoint


def test_magicpoint_summary_matches_hand_counts() -> None:
    s = summarize(magicpoint(), (1, 1, 120, 160))
    assert s.total_params == 939_905 == s.trainable_params
    rows = {r.name: r for r in s.rows}
    assert list(rows) == [
        "conv1a", "conv1b", "conv2a", "conv2b", "conv3a", "conv3b", "conv4a", "conv4b",
        "convPa", "convPb",
    ]  # fmt: skip
    # conv1a: 3x3, 1 -> 64 channels at full resolution; a multiply-add counts as 2 FLOPs.
    assert rows["conv1a"].flops == 2 * 1 * 64 * 3 * 3 * 120 * 160 == 22_118_400
    # conv4a after three 2x2 pools: 128 -> 128 at 15 x 20.
    assert rows["conv4a"].flops == 2 * 128 * 128 * 9 * 15 * 20
    assert rows["conv4a"].output_shape == (1, 128, 15, 20)
    assert rows["convPb"].output_shape == (1, 65, 15, 20)
    assert rows["conv1a"].params == 64 * 9 + 64
    assert s.flops == sum(r.flops for r in s.rows)
    text = s.table()
    assert "total params 939,905" in text and "FLOPs 3,040,204,800" in text


def test_shared_and_frozen_parameters_and_mode_restored() -> None:
    lin = nn.Linear(4, 4)
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Flatten(2), nn.BatchNorm1d(4), lin)
    net.add_module("again", lin)  # registered twice, counted once
    net[0].weight.requires_grad_(False)
    net.train()
    running = net[2].running_mean.clone()
    s = summarize(net, (2, 3, 2, 2))
    assert s.total_params == 16 + 8 + 20
    assert s.trainable_params == s.total_params - 12
    assert net.training and torch.equal(net[2].running_mean, running)
    assert {r.name: r.output_shape for r in s.rows}["3"] == (2, 4, 4)
    assert {r.name: r.calls for r in s.rows}["3"] == 2  # the shared Linear ran twice
    assert "3 (x2)" in s.table()


class WithSpareHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.spare = nn.Linear(2, 2)  # never called in forward

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": self.conv(x)}


def test_uncalled_modules_and_dict_outputs() -> None:
    s = summarize(WithSpareHead(), (1, 1, 5, 5))
    rows = {r.name: r for r in s.rows}
    assert rows["conv"].output_shape == (1, 2, 3, 3) and rows["spare"].output_shape is None
    assert rows["conv"].flops == 2 * 1 * 2 * 9 * 3 * 3 and rows["spare"].flops == 0
    assert "(not called)" in s.table()


def test_input_channels_and_human() -> None:
    assert input_channels(magicpoint()) == 1
    assert input_channels(nn.Sequential(nn.ReLU(), nn.Conv2d(3, 8, 3))) == 3
    with pytest.raises(ValueError, match="no convolution"):
        input_channels(nn.Linear(2, 2))
    assert human(3_040_204_800) == "3.04G" and human(512) == "512"
