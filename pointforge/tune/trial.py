"""One trial of a sweep: an ordinary ``pointforge train`` run in its own folder.

A trial is ``train(load_config(CONFIG, base overrides + drawn values + output_dir + the
tune_report hook), resume=True)``. ``resume=True`` always: a trial that Ray restarts after a
failure continues exactly from ``<trial dir>/checkpoints/last.pth`` (docs/architecture.md,
exact resume), and a first start finds no checkpoint and starts from iteration 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pointforge.tune.hook import HOOK_NAME, ITERATION, Reporter, reporting_to
from pointforge.tune.space import to_overrides


@dataclass(frozen=True)
class TrialSpec:
    """What every trial shares: the config file, fixed overrides and the sweep folder."""

    config: str  # absolute path of the base config (trials run in other working directories)
    overrides: tuple[str, ...]  # KEY=VALUE applied before the drawn values
    sweep_dir: str  # absolute; trial folders are <sweep_dir>/trials/<trial id>


def trial_dir(spec: TrialSpec, trial_id: str) -> Path:
    return Path(spec.sweep_dir) / "trials" / trial_id


def trial_overrides(spec: TrialSpec, values: dict[str, Any], out: Path) -> list[str]:
    """The overrides of one trial: the sweep's, the drawn ``values``, its folder and the hook
    (appended to any ``train.hooks`` the config already names)."""
    from pointforge.config.loader import load_config

    base = load_config(spec.config, [*spec.overrides, *to_overrides(values)])
    hooks = [h for h in base.train.hooks if h != HOOK_NAME] + [HOOK_NAME]
    return [
        *spec.overrides,
        *to_overrides(values),
        f"output_dir={out}",
        f"train.hooks=[{', '.join(hooks)}]",
    ]


def run_trial(
    spec: TrialSpec, values: dict[str, Any], trial_id: str, report: Reporter
) -> dict[str, float]:
    """Train (or resume) the trial ``trial_id`` with config ``values``; every evaluation is
    passed to ``report``. Returns the final metrics."""
    from pointforge.config.loader import load_config
    from pointforge.engine.run import train

    out = trial_dir(spec, trial_id)
    cfg = load_config(spec.config, trial_overrides(spec, values, out))
    reports: list[dict[str, float]] = []

    def forward(metrics: dict[str, float]) -> None:
        reports.append(metrics)
        report(metrics)

    with reporting_to(forward):
        final = train(cfg, resume=True)
    if not reports and final:
        # Restarted after its final checkpoint: train() returned the saved final metrics
        # without evaluating again; the sweep still needs them.
        report({**final, ITERATION: float(cfg.solver.max_iter)})
    return final


def ray_trainable(values: dict[str, Any], spec: TrialSpec) -> None:
    """The function trainable Ray runs (``tune.with_parameters(ray_trainable, spec=...)``)."""
    from pointforge.tune.ray_support import import_tune

    tune = import_tune()
    run_trial(spec, values, tune.get_context().get_trial_id(), lambda m: tune.report(m))
