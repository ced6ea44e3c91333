"""The Ray Tune driver of ``pointforge tune``: trials on a local Ray or on a cluster.

Ray does the scheduling (no scheduler of our own): trials are function trainables
(:func:`~pointforge.tune.trial.ray_trainable`) with ``cpus_per_trial`` CPUs (and GPUs) each, the
random search draws ``num_trials`` points of the space, and ASHA (Li et al., "A System for
Massively Parallel Hyperparameter Tuning", MLSys 2020) stops trials whose metric is in the
bottom ``1 - 1/reduction_factor`` of those that reached the same rung. Rungs are in training
iterations (the ``iteration`` reported with each evaluation), starting at ``grace_period``.
A failed trial is restarted by Ray up to ``max_failures`` times and resumes from its own
checkpoints; a sweep whose driver died continues with ``resume=True`` (``Tuner.restore``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pointforge
from pointforge.tune.hook import ITERATION
from pointforge.tune.ray_support import import_tune
from pointforge.tune.results import TrialRow
from pointforge.tune.space import Param, to_ray
from pointforge.tune.trial import TrialSpec, ray_trainable, trial_dir

log = logging.getLogger("pointforge")
RAY_DIR = "ray"  # Ray's own experiment state, under the sweep folder
EXPERIMENT = "sweep"


@dataclass(frozen=True)
class SweepOptions:
    """Options of one sweep (the ``pointforge tune`` flags)."""

    metric: str
    mode: str = field(default="max", metadata={"choices": ("max", "min")})
    num_trials: int = 4
    scheduler: str = field(default="asha", metadata={"choices": ("asha", "fifo")})
    # ASHA's first rung, in training iterations; None = train.eval_period (the first
    # evaluation; a rung before it would have no metric to compare).
    grace_period: int | None = None
    # ASHA keeps the best 1/reduction_factor at each rung; 4 is Ray's default (the ASHA paper
    # uses 3 and 4 in its experiments).
    reduction_factor: float = 4.0
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_failures: int = 2  # restarts of a failed trial (each resumes from its checkpoint)
    address: str | None = None  # join this Ray cluster; None = start a local Ray
    num_cpus: int | None = 2  # CPUs of a local Ray (ignored with address)
    seed: int | None = 0  # seed of the random search (None: a new draw each sweep)
    resume: bool = False


def _scheduler(tune: Any, opts: SweepOptions, max_iter: int, eval_period: int) -> Any:
    if opts.scheduler == "fifo":
        return None  # Ray's default FIFO scheduler: every trial runs to the end
    if opts.scheduler != "asha":
        raise ValueError(f"--scheduler must be asha or fifo, got {opts.scheduler!r}")
    grace = opts.grace_period if opts.grace_period is not None else max(eval_period, 1)
    if not 0 < grace <= max_iter:
        raise ValueError(f"--grace-period must be in [1, solver.max_iter={max_iter}], got {grace}")
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr=ITERATION,
        max_t=max_iter,
        grace_period=grace,
        reduction_factor=opts.reduction_factor,
    )


def _init_ray(opts: SweepOptions) -> bool:
    """Connect to Ray; True when this call started it (the caller shuts it down)."""
    import ray

    if ray.is_initialized():
        return False
    if opts.address:
        ray.init(address=opts.address, log_to_driver=False)
        return True
    # A local Ray's workers import pointforge from the folder the driver uses (a checkout
    # need not be installed); on a cluster, pointforge must be installed on every node.
    package_root = str(Path(pointforge.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    ray.init(
        num_cpus=opts.num_cpus,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": path}},
    )
    return True


def run_sweep(
    config: str | Path,
    overrides: list[str],
    space: list[Param],
    sweep_dir: str | Path,
    opts: SweepOptions,
) -> list[TrialRow]:
    """Run the sweep; returns one :class:`TrialRow` per trial (in trial order)."""
    from pointforge.config.loader import load_config

    tune = import_tune()
    config = str(Path(config).resolve())
    sweep = Path(sweep_dir).resolve()
    base = load_config(config, overrides)  # a bad config fails here, not in every trial
    if opts.num_trials < 1:
        raise ValueError(f"--trials must be >= 1, got {opts.num_trials}")
    ray_dir = sweep / RAY_DIR
    if (ray_dir / EXPERIMENT).exists() and not opts.resume:
        raise FileExistsError(
            f"{sweep} already holds a sweep; pass --resume to continue it, or choose another "
            "--output-dir"
        )
    spec = TrialSpec(config, tuple(overrides), str(sweep))
    started = _init_ray(opts)
    try:
        # with_parameters puts spec into Ray's object store: after ray.init.
        trainable = tune.with_resources(
            tune.with_parameters(ray_trainable, spec=spec),
            {"cpu": opts.cpus_per_trial, "gpu": opts.gpus_per_trial},
        )
        grid = _fit(tune, trainable, space, ray_dir, opts, base)
    finally:
        if started:
            import ray

            ray.shutdown()
    rows = []
    for result in grid:
        history = result.metrics_dataframe
        reports = [] if history is None else history.to_dict("records")
        trial_id = str(result.metrics.get("trial_id") or Path(result.path).name)
        rows.append(
            TrialRow(
                trial_id=trial_id,
                values={p.key: result.config[p.key] for p in space},
                metric=result.metrics.get(opts.metric),
                iteration=int(result.metrics.get(ITERATION, 0) or 0),
                max_iter=base.solver.max_iter,
                reports=len(reports),
                error=None if result.error is None else str(result.error).splitlines()[0],
                run_dir=str(trial_dir(spec, trial_id)),
            )
        )
    return sorted(rows, key=lambda r: r.trial_id)


def _fit(
    tune: Any, trainable: Any, space: list[Param], ray_dir: Path, opts: SweepOptions, base: Any
) -> Any:
    """A new Tuner (or the restored one with ``resume``), fitted: Ray's ResultGrid."""
    if opts.resume and tune.Tuner.can_restore(str(ray_dir / EXPERIMENT)):
        tuner = tune.Tuner.restore(
            str(ray_dir / EXPERIMENT), trainable, resume_unfinished=True, resume_errored=True
        )
    else:
        from ray.tune.search.basic_variant import BasicVariantGenerator

        tuner = tune.Tuner(
            trainable,
            param_space=to_ray(space),
            tune_config=tune.TuneConfig(
                metric=opts.metric,
                mode=opts.mode,
                num_samples=opts.num_trials,
                scheduler=_scheduler(tune, opts, base.solver.max_iter, base.train.eval_period),
                search_alg=BasicVariantGenerator(random_state=opts.seed),
                reuse_actors=True,  # one worker process per slot: torch is imported once
            ),
            run_config=tune.RunConfig(
                name=EXPERIMENT,
                storage_path=str(ray_dir),
                failure_config=tune.FailureConfig(max_failures=opts.max_failures),
                verbose=0,
            ),
        )
    return tuner.fit()
