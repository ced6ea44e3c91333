from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pointforge.config import ConfigError, dump_config, load_config

MP = ["task=magicpoint"]
ROOT = Path(__file__).resolve().parents[2]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_yaml_and_overrides_compose(tmp_path: Path) -> None:
    write(tmp_path / "base.yaml", "task: magicpoint\nsolver:\n  lr: 0.01\n  max_iter: 100\n")
    child = write(tmp_path / "child.yaml", "_base_: base.yaml\nsolver:\n  max_iter: 7\n")
    cfg = load_config(child, ["data.batch_size=3", "solver.steps=[2, 5]"])
    assert cfg.solver.lr == 0.01  # from base
    assert cfg.solver.max_iter == 7  # child wins
    assert cfg.data.batch_size == 3 and cfg.solver.steps == (2, 5)  # overrides
    assert cfg.solver.betas == (0.9, 0.999)  # schema default
    assert cfg.output_dir == str(Path("runs") / "child")  # None resolved once
    assert cfg.data.num_workers is not None and cfg.eval.batch_size == 3


def test_config_is_frozen() -> None:
    cfg = load_config(None, MP)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.solver.lr = 1.0  # type: ignore[misc]


def test_unknown_key_suggests_closest(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"unknown config key 'solver.lrr'.*Did you mean 'solver.lr'"
    ):
        load_config(None, [*MP, "solver.lrr=0.1"])
    path = write(tmp_path / "c.yaml", "task: magicpoint\ntrian:\n  log_period: 3\n")
    with pytest.raises(ConfigError, match="Did you mean 'train'"):
        load_config(path)


def test_type_mismatch_names_key_and_type() -> None:
    with pytest.raises(ConfigError, match=r"'solver.lr' expects float, got str"):
        load_config(None, [*MP, "solver.lr=fast"])
    with pytest.raises(ConfigError, match=r"'data.batch_size' expects int, got float"):
        load_config(None, [*MP, "data.batch_size=2.5"])
    with pytest.raises(ConfigError, match=r"'deterministic' expects bool"):
        load_config(None, [*MP, "deterministic=1"])


def test_string_is_never_taken_for_a_list() -> None:
    with pytest.raises(ConfigError, match=r"'solver.steps' expects list of int or float, got str"):
        load_config(None, [*MP, "solver.steps=abc"])
    with pytest.raises(ConfigError, match=r"'eval.baselines' expects list of str, got str"):
        load_config(None, [*MP, "eval.baselines=harris"])


def test_choices_and_values_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"solver.optimizer.*one of.*Did you mean 'adam'"):
        load_config(None, [*MP, "solver.optimizer=adan"])
    with pytest.raises(ConfigError, match=r"data.image_size.*multiples of 8"):
        load_config(None, [*MP, "data.image_size=[120, 161]"])


def test_bare_off_means_the_choice_not_a_boolean(tmp_path: Path) -> None:
    """YAML 1.1 reads `off` as false; for a key whose choices include "off" that is the choice
    (`train.amp=off`), on the command line and in a file. Elsewhere a bool stays an error."""
    assert load_config(None, ["task=magicpoint", "train.amp=off"]).train.amp == "off"
    path = tmp_path / "c.yaml"
    path.write_text("task: magicpoint\ntrain:\n  amp: off\n")
    assert load_config(path, []).train.amp == "off"
    with pytest.raises(ConfigError, match=r"train\.amp.*got bool"):
        load_config(None, ["task=magicpoint", "train.amp=true"])
    with pytest.raises(ConfigError, match=r"solver\.optimizer.*got bool"):
        load_config(None, ["task=magicpoint", "solver.optimizer=off"])


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file not found: .*nope\.yaml"):
        load_config(tmp_path / "nope.yaml")
    bad = write(tmp_path / "bad.yaml", "solver: [unclosed\n")
    with pytest.raises(ConfigError, match=r"cannot parse YAML config .*bad\.yaml"):
        load_config(bad)
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(None, [*MP, "solver.lr"])


def test_dump_round_trips(tmp_path: Path) -> None:
    cfg = load_config(None, [*MP, "solver.lr=0.5", "data.primitives=[star, cube]"])
    path = write(tmp_path / "dumped.yaml", dump_config(cfg))
    assert load_config(path) == cfg


def test_shipped_configs_validate() -> None:
    root = ROOT / "configs"
    full = load_config(root / "magicpoint_shapes.yaml")
    assert full.data.batch_size == 64 and full.solver.lr == 1e-3 and full.solver.max_iter == 50000
    quick = load_config(root / "magicpoint_shapes_quick.yaml")
    assert quick.solver.max_iter < 1000 and quick.solver.lr == full.solver.lr


def test_task_is_required_and_named() -> None:
    with pytest.raises(ConfigError, match=r"'task' is required.*magicpoint"):
        load_config(None, ["solver.lr=0.1"])
    with pytest.raises(
        ConfigError, match=r"config key 'task': unknown task 'magicpont'.*magicpoint"
    ):
        load_config(None, ["task=magicpont"])
    with pytest.raises(ConfigError, match=r"config key 'data.name': unknown dataset 'digts'"):
        load_config(None, ["task=classification", "data.name=digts"])


# Sections each shipped config must show, and sections of other families it must not.
OWN_SECTIONS = {
    "magicpoint_shapes.yaml": ({"detection", "eval", "adaptation"}, {"classification"}),
    "resnet_digits.yaml": ({"classification"}, {"detection", "eval", "descriptor_loss"}),
    "superpoint_train.yaml": ({"descriptor_loss", "homography_eval"}, {"classification", "eval"}),
    "eval_homography.yaml": ({"homography_eval", "detection"}, {"classification", "adaptation"}),
    "export_labels.yaml": ({"adaptation"}, {"classification", "descriptor_loss"}),
    "centernet_coco.yaml": ({"centernet"}, {"reid", "classification", "descriptor_loss"}),
    "reid_market.yaml": ({"reid"}, {"centernet", "classification", "detection"}),
    "centerfusion_synthetic.yaml": ({"centerfusion"}, {"reid", "classification"}),
}


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "configs").glob("*.yaml")))
def test_each_shipped_config_shows_only_its_own_sections(name: str) -> None:
    import yaml

    # Configs for data the user brings name it on the command line (the contract's overrides).
    user_data = {"reid_market.yaml": ["data.root=/data/Market-1501-v15.09.15"]}
    cfg = load_config(ROOT / "configs" / name, user_data.get(name, []))
    shown = set(yaml.safe_load(dump_config(cfg)))
    core = {"task", "imports", "seed", "deterministic", "device", "output_dir", "model"}
    assert core | {"data", "solver", "train"} <= shown
    own, foreign = OWN_SECTIONS.get(name, (set(), set()))
    assert own <= shown and not foreign & shown, (name, shown)
    data_keys = set(yaml.safe_load(dump_config(cfg))["data"])
    if cfg.task == "classification":
        assert "primitives" not in data_keys and "labels" not in data_keys


def test_task_owned_and_dataset_owned_typos_get_did_you_mean() -> None:
    with pytest.raises(ConfigError, match=r"'classification.label_smothing'.*Did you mean"):
        load_config(None, ["task=classification", "classification.label_smothing=0.2"])
    with pytest.raises(ConfigError, match=r"'descriptor_loss.lambda_dd'.*Did you mean"):
        load_config(ROOT / "configs" / "superpoint_train.yaml", ["descriptor_loss.lambda_dd=1"])
    with pytest.raises(ConfigError, match=r"'data.primitves'.*Did you mean 'data.primitives'"):
        load_config(None, [*MP, "data.primitves=[star]"])
    # Another family's section is not a key of this run.
    with pytest.raises(ConfigError, match=r"unknown config key 'classification'"):
        load_config(None, [*MP, "classification.in_channels=1"])
    # A dataset's key is not accepted with another dataset.
    with pytest.raises(ConfigError, match=r"unknown config key 'data.primitives'"):
        load_config(None, ["task=classification", "data.primitives=[star]"])


def test_yaml_problems_name_the_file(tmp_path: Path) -> None:
    empty = write(tmp_path / "empty.yaml", "# nothing but a comment\n")
    with pytest.raises(ConfigError, match=r"empty\.yaml is empty"):
        load_config(empty)
    dup = write(
        tmp_path / "dup.yaml", "task: magicpoint\nsolver:\n  lr: 1\nsolver:\n  max_iter: 3\n"
    )
    with pytest.raises(ConfigError, match=r"duplicate key 'solver' in .*dup\.yaml line 4"):
        load_config(dup)
    child = write(tmp_path / "child.yaml", "_base_: missing_base.yaml\ntask: magicpoint\n")
    with pytest.raises(ConfigError, match=r"missing_base\.yaml \(named as _base_ by .*child\.yaml"):
        load_config(child)
    bad = write(tmp_path / "syntax.yaml", "task: magicpoint\nsolver: {lr: 1\n")
    with pytest.raises(ConfigError, match=r"syntax\.yaml"):
        load_config(bad)


def test_stored_config_of_an_older_version_loads_leniently() -> None:
    """Checkpoints made before task-owned sections stored every family's sections."""
    from pointforge.config.loader import config_from_stored
    from pointforge.config.validate import to_dict

    stored = to_dict(load_config(None, MP))
    stored["classification"] = {"in_channels": 3}
    stored["data"]["val_fraction"] = 0.2
    with pytest.raises(ConfigError):
        load_config(None, [*MP, "classification.in_channels=3"])
    cfg = config_from_stored(stored)
    assert cfg.task == "magicpoint" and not hasattr(cfg, "classification")


def test_config_pickles_across_processes() -> None:
    import pickle

    cfg = load_config(ROOT / "configs" / "resnet_digits.yaml")
    assert pickle.loads(pickle.dumps(cfg)) == cfg
