"""``data.name`` switched on the command line drops the file's keys the new dataset lacks."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pointforge.config import load_config
from pointforge.config.validate import ConfigError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
EVAL = CONFIGS / "eval_homography.yaml"


def test_switch_to_hpatches_drops_generated_pair_keys(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        cfg = load_config(EVAL, ["data.name=hpatches", "data.path=/somewhere"])
    assert cfg.data.name == "hpatches" and cfg.data.path == "/somewhere"
    assert cfg.data.image_size == (240, 320)  # a key both datasets have is kept
    assert "data.homographic, data.photometric" in caplog.text
    assert "'homography_pairs'" in caplog.text and str(EVAL) in caplog.text


def test_a_typo_on_the_command_line_still_fails() -> None:
    with pytest.raises(ConfigError, match=r"unknown config key 'data.homografic'"):
        load_config(EVAL, ["data.name=hpatches", "data.homografic.max_angle=1"])


def test_a_left_behind_key_given_on_the_command_line_fails() -> None:
    with pytest.raises(ConfigError, match=r"unknown config key 'data.homographic'"):
        load_config(EVAL, ["data.name=hpatches", "data.homographic.max_angle=1"])


def test_without_a_switch_an_unknown_file_key_fails(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("task: homography_eval\ndata:\n  name: hpatches\n  homographic: {}\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'data.homographic'"):
        load_config(path, ["data.path=/x"])


def test_same_name_on_the_command_line_drops_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        cfg = load_config(EVAL, ["data.name=homography_pairs"])
    assert cfg.data.homographic.max_angle == pytest.approx(0.5235987755982988)
    assert "dropped" not in caplog.text
