"""Numbers as users write them (YAML 1.2 exponent floats) and schedules that follow max_iter."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pointforge.config import load_config
from pointforge.config.budget import resolve_budget
from pointforge.config.loader import load_yaml
from pointforge.config.schema import SolverConfig
from pointforge.config.validate import ConfigError, from_dict
from pointforge.config.yaml_io import parse_yaml
from pointforge.engine.optim import lr_factor

ROOT = Path(__file__).resolve().parents[2]
MP = ["task=magicpoint"]


@pytest.mark.parametrize(
    ("text", "value"),
    [("5e-4", 5e-4), ("1e-3", 1e-3), ("1E6", 1e6), ("-2.5e+3", -2500.0), (".5e-2", 5e-3)],
)
def test_exponent_numbers_are_floats(text: str, value: float) -> None:
    parsed = parse_yaml(text)
    assert isinstance(parsed, float) and parsed == value


def test_ints_stay_ints_and_quoted_text_stays_text() -> None:
    assert parse_yaml("600") == 600 and isinstance(parse_yaml("600"), int)
    assert parse_yaml("'5e-4'") == "5e-4"
    assert parse_yaml("1e") == "1e" and parse_yaml("e5") == "e5"


def test_float_keys_take_exponent_numbers_on_the_command_line_and_in_files(
    tmp_path: Path,
) -> None:
    cfg = load_config(ROOT / "configs/magicpoint_shapes.yaml", ["solver.lr=5e-4"])
    assert cfg.solver.lr == 5e-4
    cfg = load_config(None, [*MP, "solver.lr=1E-3", "solver.clip_grad_norm=1e1"])
    assert cfg.solver.lr == 1e-3 and cfg.solver.clip_grad_norm == 10.0
    path = tmp_path / "c.yaml"
    path.write_text("task: magicpoint\nsolver:\n  lr: 5e-4\n  max_iter: 600\n")
    cfg = load_config(path)
    assert cfg.solver.lr == 5e-4 and cfg.solver.max_iter == 600


def test_a_real_string_for_a_float_key_still_fails_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"'solver.lr' expects float, got str \('fast'\)"):
        load_config(None, [*MP, "solver.lr=fast"])
    with pytest.raises(ConfigError, match=r"'solver.lr' expects float, got str \('5e-4'\)"):
        load_config(None, [*MP, "solver.lr='5e-4'"])  # quoted: the user asked for text


def test_fractional_steps_and_warmup_follow_max_iter() -> None:
    over = ["solver.lr_schedule=multistep", "solver.steps=[0.64,0.86]", "solver.warmup_iters=0.08"]
    short = load_config(None, [*MP, *over, "solver.max_iter=600"]).solver
    assert short.steps == (384, 516) and short.warmup_iters == 48
    long = load_config(None, [*MP, *over, "solver.max_iter=517000"]).solver
    assert long.steps == (330880, 444620) and long.warmup_iters == 41360
    # The schedule the optimiser sees: two drops inside the 600-iteration run.
    assert lr_factor(383, short) == 1.0
    assert lr_factor(384, short) == pytest.approx(0.1)
    assert lr_factor(599, short) == pytest.approx(0.01)
    # Absolute iterations keep working unchanged.
    absolute = load_config(None, [*MP, "solver.steps=[100,200]", "solver.max_iter=300"]).solver
    assert absolute.steps == (100, 200)


def test_fractions_must_lie_in_unit_interval_and_steps_increase() -> None:
    with pytest.raises(ConfigError, match=r"'solver.steps\[1\]' is 1.5: .*fraction"):
        load_config(None, [*MP, "solver.steps=[0.5,1.5]"])
    with pytest.raises(ConfigError, match=r"'solver.steps' must be increasing"):
        load_config(None, [*MP, "solver.steps=[0.8,0.5]"])
    with pytest.raises(ConfigError, match=r"'solver.warmup_iters' is 2.0"):
        load_config(None, [*MP, "solver.warmup_iters=2.0"])


def test_milestones_or_warmup_beyond_the_run_warn_naming_the_keys(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="pointforge"):
        load_config(
            ROOT / "configs/centernet_chess.yaml",
            [
                "solver.lr_schedule=multistep",
                "solver.steps=[332000,443000]",
                "solver.warmup_iters=2000",
                "solver.max_iter=600",
            ],
        )
    text = caplog.text
    assert "solver.steps [332000, 443000] are at or beyond solver.max_iter=600" in text
    assert "solver.warmup_iters=2000 is at or beyond solver.max_iter=600" in text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pointforge"):
        load_config(ROOT / "configs/centernet_chess.yaml", ["solver.max_iter=600"])
    assert "at or beyond" not in caplog.text


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "configs").glob("*.yaml")))
def test_shipped_configs_schedules_fit_a_short_budget(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Every shipped recipe follows the budget: at 600 iterations no milestone or warm-up
    lies beyond the run (what a user's first short run on their own data gets). Only the
    solver section is resolved, so configs whose data a user brings are checked too."""
    data = load_yaml(ROOT / "configs" / name)
    solver = from_dict(SolverConfig, {**data.get("solver", {}), "max_iter": 600}, "solver.")
    with caplog.at_level(logging.WARNING, logger="pointforge"):
        resolved = resolve_budget(solver)
    assert "at or beyond solver.max_iter" not in caplog.text, caplog.text
    assert all(0 < s < 600 for s in resolved.steps) and resolved.warmup_iters < 600
