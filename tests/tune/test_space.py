"""Search-space files: parsing, errors that name the key, overrides the config loader reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from pointforge.config.loader import load_config
from pointforge.tune.space import Param, SpaceError, load_space, parse_space, to_overrides


def test_parse_keeps_order_and_kinds(tmp_path: Path) -> None:
    path = tmp_path / "space.yaml"
    path.write_text(
        "solver.lr: {loguniform: [1.0e-4, 0.3]}\n"
        "solver.momentum: {uniform: [0.8, 0.99]}\n"
        "classification.label_smoothing: {choice: [0.0, 0.1]}\n"
        "data.batch_size: {randint: [16, 129]}\n"
    )
    assert load_space(path) == [
        Param("solver.lr", "loguniform", (1e-4, 0.3)),
        Param("solver.momentum", "uniform", (0.8, 0.99)),
        Param("classification.label_smoothing", "choice", (0.0, 0.1)),
        Param("data.batch_size", "randint", (16, 129)),
    ]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"solver.lr": {"loguniform": [0.0, 1.0]}}, "'solver.lr': loguniform needs low > 0"),
        ({"solver.lr": {"uniform": [0.3, 0.1]}}, "'solver.lr': uniform needs low < high"),
        ({"solver.lr": {"normal": [0, 1]}}, "'solver.lr': expected one of"),
        ({"data.batch_size": {"randint": [1.5, 9]}}, "randint takes integers"),
        ({"seed": {"choice": [1, 2]}}, "set by the sweep"),
        ({"solver.lr": {"choice": []}}, "non-empty list"),
        ([], "non-empty mapping"),
    ],
)
def test_bad_spaces_name_the_key(data: object, match: str) -> None:
    with pytest.raises(SpaceError, match=match):
        parse_space(data, "space.yaml")


def test_overrides_reach_the_config_with_their_types() -> None:
    values = {"solver.lr": 1e-6, "solver.momentum": 0.85, "data.batch_size": 48}
    overrides = to_overrides({**values, "classification.topk": [1, 3]})
    assert overrides[0] == "solver.lr=1.0e-06"  # YAML 1.1 reads "1e-06" as a string
    cfg = load_config("configs/resnet_digits.yaml", overrides)
    assert (cfg.solver.lr, cfg.solver.momentum, cfg.data.batch_size) == (1e-6, 0.85, 48)
    assert cfg.classification.topk == (1, 3)
