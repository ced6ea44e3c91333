"""``pointforge`` command line: parse arguments, call the library, report errors in one line.

Set ``POINTFORGE_DEBUG=1`` to get full tracebacks instead of one-line errors.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from pointforge import __version__
from pointforge.cli import (
    deploy_cmds,
    export_cmds,
    inspect_cmds,
    keypoint_cmds,
    launch,
    reid_cmds,
    tune_cmds,
)
from pointforge.cli.args import add_config_args
from pointforge.data.photo_set import photo_set_help


class _Lazy:
    """``commands.<name>`` imported when the command runs, not when the parser is built:
    :mod:`pointforge.cli.commands` imports the config loader, hence torch and every task."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, args: argparse.Namespace) -> int:
        from pointforge.cli import commands

        return getattr(commands, self.name)(args)


class _LazyCommands:
    def __getattr__(self, name: str) -> _Lazy:
        return _Lazy(name)


commands = _LazyCommands()

EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    KeyError,
    FileNotFoundError,
    RuntimeError,
    FloatingPointError,
    OSError,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pointforge",
        description="Train, evaluate and deploy 'everything as points' vision models.",
    )
    parser.add_argument("--version", action="version", version=f"pointforge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "train",
        help="train a model from a config",
        description="Train from CONFIG into --output-dir (default: "
        "runs/<config stem>). Writes config.yaml, metrics.jsonl, tb/, "
        "checkpoints/ and eval/metrics.json.",
    )
    add_config_args(p)
    p.add_argument("--output-dir", help="run directory (overrides output_dir in the config)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue exactly from <output-dir>/checkpoints/last.pth",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing run in --output-dir (its checkpoints are deleted)",
    )
    p.set_defaults(func=commands.cmd_train)
    launch.add_parser(sub)  # train on several processes/nodes

    p = sub.add_parser(
        "eval",
        help="evaluate weights and print a metrics table",
        description="Evaluate --weights with the evaluation protocol of CONFIG; "
        "prints a table and writes <output-dir>/eval/metrics.json.",
    )
    add_config_args(p)
    p.add_argument(
        "--weights",
        required=True,
        help="a pointforge checkpoint (.pth), a MagicLeap-v1 state dict, or a run's folder "
        "(RUN: its checkpoints/best.pth when the run kept one with train.best_metric, else "
        "checkpoints/final.pth)",
    )
    p.add_argument(
        "--output-dir",
        help="folder that receives eval/ (default: the run the weights belong to, "
        "RUN/checkpoints/X.pth -> RUN, else the config's output_dir); when eval/metrics.json "
        "exists there, results go to eval_<weights stem>/ beside it",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing eval/ in that folder"
    )
    p.set_defaults(func=commands.cmd_eval)

    p = sub.add_parser(
        "config",
        help="print the resolved, validated config",
        description="Print CONFIG after _base_ merging, overrides, validation "
        "and default resolution, as YAML.",
    )
    add_config_args(p)
    p.set_defaults(func=commands.cmd_config)

    p = sub.add_parser("data", help="dataset utilities")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="DATASET")
    s = dsub.add_parser(
        "shapes",
        help="dump Synthetic Shapes to disk",
        description="Write DIR/images/NNNNNN.png (uint8 grey) and "
        "DIR/points/NNNNNN.npy (float32 (K, 2) corners as (x, y) pixels, pixel "
        "centres at integer coordinates). The same seed gives the same files.",
    )
    s.add_argument("--out", required=True, help="output directory")
    s.add_argument("--split", default="test", choices=["train", "val", "test"])
    s.add_argument("--num", type=int, default=1000, help="number of images (default 1000)")
    s.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    s.add_argument(
        "--noise",
        action="store_true",
        help="apply the default photometric augmentation (the noisy test set)",
    )
    s.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    s.add_argument("--overwrite", action="store_true", help="allow a non-empty --out")
    s.set_defaults(func=commands.cmd_data_shapes)
    s = dsub.add_parser(
        "photos",
        help="write the bundled scikit-image/scikit-learn photos as PNGs",
        description="Write the real photos that ship with scikit-image and scikit-learn "
        "(no download) as grey PNGs into DIR: the offline image folder for export-labels and "
        "SuperPoint training. Split train holds all but the 5 benchmark photos kept for "
        "evaluation (val); --crops adds five fixed 2/3-size crops of each photo.",
    )
    s.add_argument("--out", required=True, help="output directory (created)")
    s.add_argument("--split", default="train", choices=["train", "val", "all"])
    s.add_argument("--crops", action="store_true", help="also write 5 crops per photo")
    s.set_defaults(func=commands.cmd_data_photos)
    s = dsub.add_parser(
        "photo-set",
        help="assemble the openly licensed photo set from local copies of its sources",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write the grey PNGs of the SuperPoint photo set (several hundred "
        "distinct scenes under CC BY 4.0, CC0 and MIT) into DIR, read from a checkout or a bare "
        "git directory of each source repository (nothing is downloaded), with sources.json "
        "(origin, licence and SHA-256 of every photo) and SOURCES.md (attributions). Split "
        "train is what homographic adaptation labels and SuperPoint trains on; split val is "
        "held out for the homography benchmark at 480x640. Sources:\n\n" + photo_set_help(),
    )
    s.add_argument("--out", required=True, help="output directory (created)")
    s.add_argument("--split", default="train", choices=["train", "val"])
    s.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="local copy of a source (repeat for each source of the split)",
    )
    s.set_defaults(func=commands.cmd_data_photo_set)
    s = dsub.add_parser(
        "shapes-detection",
        help="dump the built-in shapes detection set as COCO json + PNGs",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Write DIR/<split>.json (COCO format: images, annotations with xywh boxes, "
        "categories) and DIR/<split>/<id>.png for the procedural shapes detection set that "
        "configs/centernet_shapes.yaml trains on; the same seed gives the same files. Train on "
        "the dump like on any COCO data: data.name=coco data.train.json=DIR/train.json "
        "data.train.images=DIR/train ...",
    )
    s.add_argument("--out", required=True, help="output directory")
    s.add_argument("--split", default="val", choices=["train", "val"])
    s.add_argument("--num", type=int, default=200, help="number of images")
    s.add_argument("--seed", type=int, default=0, help="dataset seed")
    s.add_argument("--overwrite", action="store_true", help="replace an existing dump of split")
    s.set_defaults(func=commands.cmd_data_shapes_detection)
    s = dsub.add_parser(
        "chess",
        help="build the chess detection set from a clone of its public repository",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Write DIR/{train,valid,test}/ (downscaled JPEGs and a rescaled "
        "_annotations.coco.json each) from a checkout or bare git directory of "
        "github.com/jsansao/ChessPiecesv23 (CC0; nothing is downloaded). The 12 coloured piece "
        "classes are kept, the ids and split too. Train on it with data.name=chess "
        "data.root=DIR (configs/centernet_chess.yaml reads ../shared/data/chess).",
    )
    s.add_argument("--source", required=True, help="clone of the source repository")
    s.add_argument("--out", required=True, help="output directory (created)")
    s.add_argument("--max-side", type=int, default=384, help="longest photo side, pixels")
    s.add_argument("--quality", type=int, default=80, help="JPEG quality")
    s.add_argument("--overwrite", action="store_true", help="replace splits already in --out")
    s.set_defaults(func=commands.cmd_data_chess)

    inspect_cmds.add_parsers(sub)  # summary, explain
    keypoint_cmds.add_parsers(sub)  # detect, convert magicleap, match
    export_cmds.add_parsers(sub)  # export-labels (homographic adaptation)
    deploy_cmds.add_parsers(sub)  # export-onnx
    tune_cmds.add_parsers(sub)  # tune (Ray Tune sweeps)
    reid_cmds.add_parsers(sub)  # retrieve (re-ID)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    # Overrides may come after options (``train CFG --resume a.b=1``): collect the leftovers.
    args, extra = parser.parse_known_args(argv)
    bad = [e for e in extra if e.startswith("-") or "=" not in e]
    if bad or (extra and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except EXPECTED_ERRORS as exc:
        if os.environ.get("POINTFORGE_DEBUG"):
            raise
        # One line, always: a library message spanning lines is joined (the promise of the
        # README, tested over every command in tests/cli/test_error_lines.py).
        msg = " ".join(str(exc).split()) or type(exc).__name__
        print(f"pointforge {args.command}: error: {type(exc).__name__}: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"pointforge {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
