"""Weight-loading policy: formats, reinit of mismatched heads, named errors, one summary table."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from pointforge.config import load_config
from pointforge.config.validate import ConfigError
from pointforge.engine.run import build_task
from pointforge.models.loading import WeightsError, fit_state_dict, load_weights, read_state_dict
from pointforge.models.superpoint import magicpoint, superpoint


def tiny_classifier(num_classes: int) -> nn.Sequential:
    """(B, 3, 8, 8) → conv → flatten → linear head with ``num_classes`` outputs."""
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 64, num_classes)
    )


def clone_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("layout", ["checkpoint", "plain", "ddp", "state_dict"])
def test_formats_load_exactly(tmp_path: Path, layout: str) -> None:
    torch.manual_seed(0)
    src = tiny_classifier(10)
    state = src.state_dict()
    if layout == "checkpoint":
        obj: dict = {"model": state, "iteration": 7}
    elif layout == "ddp":
        obj = {f"module.{k}": v for k, v in state.items()}
    elif layout == "state_dict":  # a training script's checkpoint
        obj = {"state_dict": state, "epoch": 90}
    else:
        obj = dict(state)
    torch.save(obj, tmp_path / "w.pth")
    dst = tiny_classifier(10)
    report = load_weights(dst, tmp_path / "w.pth")
    assert sorted(report.loaded) == sorted(state)
    assert not (report.missing or report.unexpected or report.mismatched)
    for k, v in dst.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_mismatched_head_is_an_error_unless_reinit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    torch.manual_seed(0)
    src = tiny_classifier(10)
    torch.save({"model": src.state_dict()}, tmp_path / "ten.pth")
    dst = tiny_classifier(5)
    before = clone_state(dst)
    with pytest.raises(WeightsError, match=r"ten\.pth.*shape-mismatched 2\.weight"):
        load_weights(dst, tmp_path / "ten.pth")
    # A refused load leaves the model untouched.
    assert all(torch.equal(v, before[k]) for k, v in dst.state_dict().items())

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pointforge"):
        report = load_weights(dst, tmp_path / "ten.pth", reinit=[r"2\."])
    assert sorted(report.reinitialized) == ["2.bias", "2.weight"]
    assert report.mismatched["2.weight"] == ((10, 256), (5, 256))
    after = dst.state_dict()
    assert torch.equal(after["0.weight"], src.state_dict()["0.weight"])  # backbone loaded
    assert torch.equal(after["2.weight"], before["2.weight"])  # head keeps its fresh init
    tables = [r.getMessage() for r in caplog.records if "weights" in r.getMessage()]
    assert len(tables) == 1  # one summary, not a warning per key
    assert re.search(r"loaded +2\n", tables[0]) and re.search(r"kept fresh init +2 ", tables[0])


def test_missing_and_unexpected_keys_are_named(tmp_path: Path) -> None:
    state = tiny_classifier(3).state_dict()
    del state["2.bias"]
    state["extra.weight"] = torch.zeros(2)
    with pytest.raises(WeightsError, match=r"missing 2\.bias.*unexpected extra\.weight"):
        fit_state_dict(tiny_classifier(3), state, "x.pth")
    report = fit_state_dict(
        tiny_classifier(3), state, "x.pth", reinit=[r"2\.bias"], allow_unexpected=["extra"]
    )
    assert report.reinitialized == ["2.bias"] and report.ignored == ["extra.weight"]


def test_long_key_lists_are_truncated() -> None:
    model = nn.Sequential(*[nn.Linear(2, 2) for _ in range(12)])
    with pytest.raises(WeightsError, match=r"\(\+16 more\)"):
        fit_state_dict(model, {}, "empty.pth")


def test_bad_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.pth"):
        read_state_dict(tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"\x00junk")
    with pytest.raises(WeightsError, match=r"junk\.pth"):
        read_state_dict(tmp_path / "junk.pth")
    torch.save({"model": [1, 2]}, tmp_path / "list.pth")
    with pytest.raises(WeightsError, match=r"list\.pth holds no state dict"):
        read_state_dict(tmp_path / "list.pth")


def test_magicpoint_task_loads_superpoint_weights_but_not_foreign_ones(tmp_path: Path) -> None:
    torch.manual_seed(1)
    sp = superpoint()
    torch.save({"model": sp.state_dict()}, tmp_path / "sp.pth")
    cfg = load_config(
        None, ["task=magicpoint", f"model.weights={tmp_path / 'sp.pth'}", "device=cpu"]
    )
    model = build_task(cfg).build_model()
    assert torch.equal(model.state_dict()["convPb.weight"], sp.state_dict()["convPb.weight"])

    state = magicpoint().state_dict()
    state["convPb.weight"] = torch.zeros(10, 256, 1, 1)
    state["convPb.bias"] = torch.zeros(10)
    torch.save(state, tmp_path / "ten_cells.pth")
    cfg = load_config(
        None, ["task=magicpoint", f"model.weights={tmp_path / 'ten_cells.pth'}", "device=cpu"]
    )
    with pytest.raises(WeightsError, match=r"ten_cells\.pth.*convPb\.weight"):
        build_task(cfg).build_model()
    cfg = load_config(
        None,
        [
            "task=magicpoint",
            f"model.weights={tmp_path / 'ten_cells.pth'}",
            "device=cpu",
            "model.load.reinit_mismatched=['convPb\\.']",
        ],
    )
    model = build_task(cfg).build_model()
    assert model.state_dict()["convPb.weight"].shape == (65, 256, 1, 1)


def test_invalid_reinit_regex_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"model\.load\.reinit_mismatched\[1\]"):
        load_config(None, ["task=magicpoint", "model.load.reinit_mismatched=['fc', 'fc[']"])


class _Hostile:
    """Unpickling this would run a shell command (it must never happen)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        import os

        return (os.system, (f"touch {self.marker}",))


def test_hostile_pickle_is_refused_for_safety_not_called_corrupt(tmp_path: Path) -> None:
    """Issue 11.8: a pickle naming os.system was refused (good) but called "corrupt,
    truncated or not a torch file"; it must say it holds non-tensor objects, refused."""
    from pointforge.engine.checkpoint import CheckpointError, load_checkpoint

    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "extra": _Hostile(marker)}, path)
    want = r"evil\.pth: it holds objects that are not tensors \(posix\.system\), refused for safety"
    with pytest.raises(WeightsError, match=want):
        read_state_dict(path)
    with pytest.raises(CheckpointError, match=want):
        load_checkpoint(path)
    assert not marker.exists()
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x80\x02 not a pickle")
    with pytest.raises(WeightsError, match=r"junk\.pth: corrupt, truncated or not a torch file"):
        read_state_dict(junk)
