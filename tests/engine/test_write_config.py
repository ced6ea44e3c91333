"""``write_config`` on resume: user changes are warnings; keys a newer schema added are not."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from pointforge.config import load_config
from pointforge.engine.run import write_config


def test_resume_reports_changed_and_new_keys(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = load_config(None, ["task=magicpoint", "device=cpu", f"output_dir={tmp_path}"])
    write_config(cfg, tmp_path)
    old = yaml.safe_load((tmp_path / "config.yaml").read_text())
    del old["train"]["ema"]  # as written by a version without EMA
    old["solver"]["lr"] = 0.5
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(old))
    with caplog.at_level(logging.INFO, logger="pointforge"):
        write_config(cfg, tmp_path)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert warnings == [f"config changed on resume: solver.lr: 0.5 -> {cfg.solver.lr!r}"]
    assert any("train.ema.decay" in m and "train.ema.enabled" in m for m in infos)
    rewritten = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert rewritten["train"]["ema"]["decay"] == cfg.train.ema.decay  # the file is current again
