"""``pointforge tune``: hyperparameter sweeps on Ray Tune (docs/cli.md).

Registers itself (:func:`add_parsers`) so ``main.py`` needs one line; the work is in
:mod:`pointforge.tune`. Ray is imported only when the command runs, and its absence is one
line naming the extra to install.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pointforge.cli.args import add_config_args

TABLE = "results.csv"
PLOT = "metric_vs_params.png"
BEST = "best_config.yaml"


def add_parsers(sub: Any) -> None:
    """Add the ``tune`` subparser to ``sub`` (argparse subparsers)."""
    p = sub.add_parser(
        "tune",
        help="hyperparameter sweep on Ray Tune (ASHA early stopping)",
        description="Train --trials runs of CONFIG with config keys drawn from --space (YAML: "
        "'solver.lr: {loguniform: [1e-4, 0.3]}', uniform, choice, randint), each an ordinary "
        "training run in OUTPUT_DIR/trials/<id> that resumes from its checkpoints when Ray "
        "restarts it. Every periodic evaluation reports the metrics to Ray, so ASHA stops bad "
        "trials early. Writes OUTPUT_DIR/results.csv, metric_vs_params.png and "
        "best_config.yaml (runs with 'pointforge train' as is). Starts a local Ray, or joins a "
        "cluster with --address. Needs the extra: pip install 'pointforge[ray]'.",
    )
    add_config_args(p, example="solver.max_iter=500 train.eval_period=50")
    p.add_argument("--space", required=True, help="search-space YAML (dotted keys → ranges)")
    p.add_argument("--trials", type=int, default=8, help="number of trials (default 8)")
    p.add_argument("--metric", required=True, help="evaluation metric to optimise, e.g. top1")
    p.add_argument("--mode", default="max", choices=("max", "min"), help="default max")
    p.add_argument("--scheduler", default="asha", choices=("asha", "fifo"), help="default asha")
    p.add_argument(
        "--grace-period",
        type=int,
        default=None,
        help="ASHA: iterations before a trial can be stopped (default train.eval_period)",
    )
    p.add_argument(
        "--reduction-factor", type=float, default=4.0, help="ASHA: keep 1/this per rung (4)"
    )
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="default 1")
    p.add_argument("--gpus-per-trial", type=float, default=0.0, help="default 0")
    p.add_argument("--max-failures", type=int, default=2, help="restarts of a failed trial (2)")
    p.add_argument(
        "--address",
        default=None,
        help="join a running Ray cluster (e.g. ray://head:10001 or auto); default: local Ray",
    )
    p.add_argument(
        "--num-cpus",
        type=int,
        default=2,
        help="CPUs of the local Ray (default 2; not with --address)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random search (default 0)")
    p.add_argument("--output-dir", default=None, help="sweep folder (default runs/tune_<stem>)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted sweep")
    p.set_defaults(func=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    from pointforge.tune.ray_support import import_tune

    import_tune()  # before any work: without Ray, one line naming the extra
    from pointforge.tune.results import best_row, plot, write_best_config, write_table
    from pointforge.tune.space import load_space
    from pointforge.tune.sweep import SweepOptions, run_sweep

    space = load_space(args.space)
    out = Path(args.output_dir or Path("runs") / f"tune_{Path(args.config).stem}")
    opts = SweepOptions(
        metric=args.metric,
        mode=args.mode,
        num_trials=args.trials,
        scheduler=args.scheduler,
        grace_period=args.grace_period,
        reduction_factor=args.reduction_factor,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        max_failures=args.max_failures,
        address=args.address,
        num_cpus=None if args.address else args.num_cpus,
        seed=args.seed,
        resume=args.resume,
    )
    rows = run_sweep(args.config, list(args.overrides), space, out, opts)
    print(write_table(rows, args.metric, out / TABLE))
    plot(rows, args.metric, out / PLOT)
    stopped = sum(r.status == "stopped" for r in rows)
    failed = sum(r.status == "error" for r in rows)
    print(f"{len(rows)} trials: {stopped} stopped early, {failed} failed")
    best = best_row(rows, args.mode)
    write_best_config(best, out / BEST)
    print(f"best trial {best.trial_id}: {args.metric} = {best.metric:.4f}")
    print(f"wrote {out / TABLE}, {out / PLOT}, {out / BEST}")
    return 0
