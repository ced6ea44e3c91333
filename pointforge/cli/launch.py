"""``pointforge launch``: ``pointforge train`` (or ``export-labels``) on several processes via
torch's elastic launcher.

Why torch's launcher rather than our own process spawning: ``torch.distributed.run`` (the
module behind ``torchrun``) already does rendezvous across nodes, sets ``RANK`` /
``WORLD_SIZE`` / ``LOCAL_RANK`` / ``MASTER_*``, forwards signals and tears the whole job down
when one worker fails. This subcommand only translates our flags into its arguments and runs
``python -m pointforge train ...`` under it, so ``pointforge launch --nproc 2 CFG`` and
``torchrun --nproc-per-node 2 -m pointforge train CFG`` are the same job; ``--command
export-labels`` runs ``pointforge export-labels`` the same way.
"""

from __future__ import annotations

import argparse
from typing import Any

from pointforge.cli.args import add_config_args


def add_parser(sub: Any) -> None:
    """Register the ``launch`` subcommand on ``sub`` (the subparsers of ``pointforge``)."""
    p = sub.add_parser(
        "launch",
        help="train with DDP on several processes / GPUs / nodes (torchrun)",
        description="Run 'pointforge train CONFIG ...' on --nproc processes per node with "
        "torch.distributed.run. data.batch_size is the global batch, split evenly over all "
        "processes; only rank 0 writes the output directory. One node: 'pointforge launch "
        "--nproc 4 CFG'. Several nodes: run the same command on every node with --nnodes, "
        "--node-rank and --master-addr/--master-port of node 0 (static rendezvous), or with "
        "--rdzv-endpoint HOST:PORT and a shared --rdzv-id (elastic c10d rendezvous). "
        "'--command export-labels --images DIR --out DIR' runs export-labels instead (each "
        "rank labels its share of the shards).",
    )
    add_config_args(p)
    p.add_argument("--nproc", type=int, required=True, help="processes per node (one per GPU)")
    p.add_argument("--nnodes", default="1", help="number of nodes, or MIN:MAX (default 1)")
    p.add_argument("--node-rank", type=int, default=0, help="rank of this node (default 0)")
    p.add_argument("--master-addr", default=None, help="address of node 0 (static rendezvous)")
    p.add_argument("--master-port", type=int, default=None, help="free port on node 0")
    p.add_argument("--rdzv-endpoint", default=None, help="HOST:PORT of a c10d rendezvous")
    p.add_argument("--rdzv-id", default="pointforge", help="job id shared by all nodes")
    p.add_argument("--rdzv-backend", default="c10d", help="rendezvous backend (default c10d)")
    p.add_argument("--output-dir", help="run directory (overrides output_dir in the config)")
    p.add_argument("--resume", action="store_true", help="continue from checkpoints/last.pth")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run")
    p.add_argument(
        "--command",
        dest="launched",  # "command" is where main() keeps the subcommand's name
        default="train",
        choices=("train", "export-labels"),
        help="what to run on every process (default train)",
    )
    exp = p.add_argument_group("export-labels (with --command export-labels)")
    exp.add_argument("--weights", default=None, help="detector weights (default: MagicPoint)")
    exp.add_argument("--images", default=None, help="image folder (default: data.root)")
    exp.add_argument("--out", default=None, help="output label directory")
    p.set_defaults(func=cmd_launch)


def torchrun_args(args: argparse.Namespace) -> list[str]:
    """The ``torch.distributed.run`` argument list for ``args`` (launch's namespace).

    One node with no address given uses ``--standalone`` (torchrun picks a free port); an
    explicit ``--rdzv-endpoint`` selects elastic rendezvous; otherwise static rendezvous on
    ``--master-addr:--master-port`` with this node's ``--node-rank``.
    """
    if args.nproc < 1:
        raise ValueError(f"--nproc must be >= 1, got {args.nproc}")
    out = ["--nproc-per-node", str(args.nproc), "--nnodes", str(args.nnodes)]
    single_node = str(args.nnodes) == "1"
    if args.rdzv_endpoint:
        out += [
            "--rdzv-backend",
            args.rdzv_backend,
            "--rdzv-endpoint",
            args.rdzv_endpoint,
            "--rdzv-id",
            args.rdzv_id,
        ]
    elif single_node and args.master_addr is None and args.master_port is None:
        out += ["--standalone"]
    else:
        if not single_node and args.master_addr is None:
            raise ValueError("--nnodes > 1 needs --master-addr (node 0) or --rdzv-endpoint")
        out += [
            "--node-rank",
            str(args.node_rank),
            "--master-addr",
            args.master_addr or "127.0.0.1",
            "--master-port",
            str(args.master_port if args.master_port is not None else 29500),
        ]
    return [*out, "-m", "pointforge", *command_args(args)]


def command_args(args: argparse.Namespace) -> list[str]:
    """``pointforge`` arguments every process runs: ``train ...`` or ``export-labels ...``."""
    if getattr(args, "launched", "train") == "export-labels":
        if args.out is None or args.output_dir or args.overwrite:
            raise ValueError(
                "--command export-labels needs --out DIR (and takes no --output-dir/--overwrite)"
            )
        out = ["export-labels", args.config, *args.overrides, "--out", args.out]
        if args.weights:
            out += ["--weights", args.weights]
        if args.images:
            out += ["--images", args.images]
        return out + (["--resume"] if args.resume else [])
    if any(getattr(args, k, None) for k in ("out", "images", "weights")):
        raise ValueError("--out/--images/--weights belong to --command export-labels")
    out = ["train", args.config, *args.overrides]
    if args.output_dir:
        out += ["--output-dir", args.output_dir]
    out += [flag for flag, on in (("--resume", args.resume), ("--overwrite", args.overwrite)) if on]
    return out


def cmd_launch(args: argparse.Namespace) -> int:
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun_main

    from pointforge.config.loader import load_config

    argv = torchrun_args(args)
    load_config(args.config, list(args.overrides))  # a bad config fails here, not N times
    try:
        torchrun_main(argv)
    except ChildFailedError as exc:  # the workers' tracebacks were already printed
        rank, failure = exc.get_first_failure()
        what = getattr(args, "launched", "train")
        raise RuntimeError(
            f"{what} process rank {rank} failed with exit code {failure.exitcode}"
        ) from None
    return 0
