"""Sweep outputs from plain rows: table, best trial (complete runs only), plot, best config."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from pointforge.config.loader import load_config
from pointforge.tune.results import TrialRow, best_row, plot, write_best_config, write_table


def rows(tmp_path: Path) -> list[TrialRow]:
    def row(i: int, lr: float, metric: float | None, it: int, err: str | None = None) -> TrialRow:
        return TrialRow(
            f"t{i}",
            {"solver.lr": lr, "opt": "sgd"},
            metric,
            it,
            8,
            it,
            err,
            str(tmp_path / f"t{i}"),
        )

    # t1 has the highest metric but was stopped early: not the best complete run.
    return [
        row(0, 0.1, 0.8, 8),
        row(1, 0.05, 0.9, 4),
        row(2, 1e-6, 0.7, 8),
        row(3, 1, None, 0, "boom"),
    ]


def test_table_and_best(tmp_path: Path) -> None:
    r = rows(tmp_path)
    text = write_table(r, "top1", tmp_path / "results.csv")
    got = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert [g["status"] for g in got] == ["done", "stopped", "done", "error"]
    assert got[1]["top1"] == "0.9" and got[3]["top1"] == ""
    assert text.splitlines()[0].split() == [
        "trial",
        "solver.lr",
        "opt",
        "top1",
        "iteration",
        "status",
        "run_dir",
    ]
    assert best_row(r, "max").trial_id == "t0" and best_row(r, "min").trial_id == "t2"
    with pytest.raises(RuntimeError, match="no trial"):
        best_row([r[1], r[3]], "max")
    plot(r, "top1", tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes()[:4] == b"\x89PNG"


def test_best_config_drops_output_dir_and_the_sweep_hook(tmp_path: Path) -> None:
    run = tmp_path / "t0"
    run.mkdir()
    cfg = load_config("configs/resnet_digits.yaml", [f"output_dir={run}", "solver.lr=0.07"])
    from pointforge.config.loader import dump_config

    (run / "config.yaml").write_text(
        dump_config(cfg).replace("hooks: []", "hooks:\n  - tune_report")
    )
    assert "tune_report" in (run / "config.yaml").read_text()
    row = TrialRow("t0", {"solver.lr": 0.07}, 0.9, 8, 8, 8, None, str(run))
    write_best_config(row, tmp_path / "best.yaml")
    data = yaml.safe_load((tmp_path / "best.yaml").read_text())
    assert "output_dir" not in data and data["train"]["hooks"] == []
    again = load_config(tmp_path / "best.yaml")
    assert again.solver.lr == 0.07 and again.train.hooks == ()
