"""``data.image_size`` is the re-ID input size; ``reid.input.height/width`` still map to it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pointforge.config import load_config
from pointforge.config.loader import config_from_stored
from pointforge.config.validate import ConfigError
from pointforge.engine.checkpoint import load_checkpoint
from pointforge.tasks.reid.options import transform_params

ROOT = Path(__file__).resolve().parents[3]
SYNTHETIC = ROOT / "configs" / "reid_synthetic.yaml"
SHIPPED = ROOT / "pointforge" / "weights" / "reid_synthetic.pth"


def test_image_size_sets_the_transform_and_clears_the_old_keys() -> None:
    cfg = load_config(SYNTHETIC, ["data.image_size=[48,24]", "device=cpu"])
    assert cfg.data.image_size == (48, 24)
    assert (cfg.reid.input.height, cfg.reid.input.width) == (None, None)
    params = transform_params(cfg)
    assert (params.height, params.width) == (48, 24)


def test_deprecated_keys_map_with_a_warning_naming_the_new_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        cfg = load_config(
            SYNTHETIC, ["data.image_size=null", "reid.input.height=96", "reid.input.width=48"]
        )
    assert cfg.data.image_size == (96, 48)
    assert "'reid.input.height/width' is deprecated: use 'data.image_size'" in caplog.text


def test_disagreeing_old_and_new_keys_are_refused_naming_both() -> None:
    with pytest.raises(ConfigError, match=r"reid.input.height/width.*data.image_size.*disagree"):
        load_config(SYNTHETIC, ["data.image_size=[64,32]", "reid.input.height=128"])


def test_one_old_side_takes_the_other_from_image_size() -> None:
    cfg = load_config(SYNTHETIC, ["reid.input.height=64"])  # the file gives [64, 32]
    assert cfg.data.image_size == (64, 32)


def test_size_below_16_names_data_image_size() -> None:
    with pytest.raises(ConfigError, match=r"data\.image_size"):
        load_config(SYNTHETIC, ["data.image_size=[8,32]"])


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped re-ID weights")
def test_config_stored_with_the_old_keys_loads_with_its_size() -> None:
    stored = load_checkpoint(SHIPPED)["config"]
    assert stored["reid"]["input"]["height"] == 64 and "image_size" not in stored["data"]
    cfg = config_from_stored(stored)
    assert cfg.data.image_size == (64, 32)
    assert transform_params(cfg).width == 32
