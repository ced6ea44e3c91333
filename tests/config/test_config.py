from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pointforge.config import ConfigError, dump_config, load_config


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_yaml_and_overrides_compose(tmp_path: Path) -> None:
    write(tmp_path / "base.yaml", "solver:\n  lr: 0.01\n  max_iter: 100\n")
    child = write(tmp_path / "child.yaml", "_base_: base.yaml\nsolver:\n  max_iter: 7\n")
    cfg = load_config(child, ["data.batch_size=3", "solver.steps=[2, 5]"])
    assert cfg.solver.lr == 0.01  # from base
    assert cfg.solver.max_iter == 7  # child wins
    assert cfg.data.batch_size == 3 and cfg.solver.steps == (2, 5)  # overrides
    assert cfg.solver.betas == (0.9, 0.999)  # schema default
    assert cfg.output_dir == str(Path("runs") / "child")  # None resolved once
    assert cfg.data.num_workers is not None and cfg.eval.batch_size == 3


def test_config_is_frozen() -> None:
    cfg = load_config(None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.solver.lr = 1.0  # type: ignore[misc]


def test_unknown_key_suggests_closest(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"unknown config key 'solver.lrr'.*Did you mean 'solver.lr'"
    ):
        load_config(None, ["solver.lrr=0.1"])
    path = write(tmp_path / "c.yaml", "trian:\n  log_period: 3\n")
    with pytest.raises(ConfigError, match="Did you mean 'train'"):
        load_config(path)


def test_type_mismatch_names_key_and_type() -> None:
    with pytest.raises(ConfigError, match=r"'solver.lr' expects float, got str"):
        load_config(None, ["solver.lr=fast"])
    with pytest.raises(ConfigError, match=r"'data.batch_size' expects int, got float"):
        load_config(None, ["data.batch_size=2.5"])
    with pytest.raises(ConfigError, match=r"'deterministic' expects bool"):
        load_config(None, ["deterministic=1"])


def test_string_is_never_taken_for_a_list() -> None:
    with pytest.raises(ConfigError, match=r"'solver.steps' expects list of int, got str"):
        load_config(None, ["solver.steps=abc"])
    with pytest.raises(ConfigError, match=r"'eval.baselines' expects list of str, got str"):
        load_config(None, ["eval.baselines=harris"])


def test_choices_and_values_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"solver.optimizer.*one of.*Did you mean 'adam'"):
        load_config(None, ["solver.optimizer=adan"])
    with pytest.raises(ConfigError, match=r"data.image_size.*multiples of 8"):
        load_config(None, ["data.image_size=[120, 161]"])


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file not found: .*nope\.yaml"):
        load_config(tmp_path / "nope.yaml")
    bad = write(tmp_path / "bad.yaml", "solver: [unclosed\n")
    with pytest.raises(ConfigError, match=r"cannot parse YAML config .*bad\.yaml"):
        load_config(bad)
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(None, ["solver.lr"])


def test_dump_round_trips(tmp_path: Path) -> None:
    cfg = load_config(None, ["solver.lr=0.5", "data.primitives=[star, cube]"])
    path = write(tmp_path / "dumped.yaml", dump_config(cfg))
    assert load_config(path) == cfg


def test_shipped_configs_validate() -> None:
    root = Path(__file__).resolve().parents[2] / "configs"
    full = load_config(root / "magicpoint_shapes.yaml")
    assert full.data.batch_size == 64 and full.solver.lr == 1e-3 and full.solver.max_iter == 50000
    quick = load_config(root / "magicpoint_shapes_quick.yaml")
    assert quick.solver.max_iter < 1000 and quick.solver.lr == full.solver.lr
