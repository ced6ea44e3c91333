"""``pointforge export-labels``: homographic adaptation of an image folder (docs/cli.md).

Registers itself (:func:`add_parsers`) so ``main.py`` needs one line; the work is in
:mod:`pointforge.tasks.keypoints.export_labels`.
"""

from __future__ import annotations

import argparse
from typing import Any

from pointforge.cli.args import add_config_args


def add_parsers(sub: Any) -> None:
    """Add the ``export-labels`` subparser to ``sub`` (argparse subparsers)."""
    p = sub.add_parser(
        "export-labels",
        help="label an image folder by homographic adaptation",
        description="Run the detector of --weights on every photo under --images "
        "(.jpg/.jpeg/.png/.ppm/.bmp, recursive, grey, resized to data.image_size) under "
        "adaptation.num_homographies random homographies, average the un-warped heatmaps "
        "and write keypoint labels to --out as shards (shard_NNNNN.npz + manifest.json). "
        "A non-empty --out is refused unless --resume, which skips completed shards. "
        "Several processes or nodes: 'torchrun --nproc-per-node N [--nnodes ...] -m pointforge "
        "export-labels ...' or 'pointforge launch --nproc N --command export-labels ...' (each "
        "rank labels its share of the shards; --out must be on a filesystem all nodes share).",
    )
    add_config_args(p, example="adaptation.num_homographies=50")
    p.add_argument(
        "--weights",
        default=None,
        help="detector checkpoint or MagicLeap-v1 state dict (default: the shipped MagicPoint, "
        "pointforge/weights/magicpoint_shapes.pth)",
    )
    p.add_argument("--images", default=None, help="image folder (default: data.root)")
    p.add_argument("--out", required=True, help="output label directory")
    p.add_argument("--resume", action="store_true", help="continue an interrupted export in --out")
    p.set_defaults(func=cmd_export_labels)


def cmd_export_labels(args: argparse.Namespace) -> int:
    from pointforge import MAGICPOINT_WEIGHTS
    from pointforge.config.loader import load_config
    from pointforge.engine.launch import launcher_env
    from pointforge.tasks.keypoints.export_labels import export_labels

    cfg = load_config(args.config, list(args.overrides))
    images = args.images or cfg.data.root
    if images is None:
        raise ValueError("no image folder: pass --images DIR (or set data.root)")
    weights = args.weights or MAGICPOINT_WEIGHTS
    summary = export_labels(cfg, weights, images, args.out, resume=args.resume)
    if launcher_env()[0] != 0:  # under torchrun only global rank 0 reports
        return 0
    print(
        f"labelled {summary['labelled']} of {summary['images']} images "
        f"(skipped {summary['skipped']}); shards written {summary['shards_written']}, "
        f"already done {summary['shards_resumed']}; labels in {args.out}"
    )
    return 0
