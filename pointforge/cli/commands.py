"""Subcommand bodies. Each parses nothing itself: it gets argparse's namespace and calls the
library, so everything here is also reachable from Python."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pointforge.config.loader import dump_config, load_config
from pointforge.engine.checkpoint import run_weights


def _load(args: argparse.Namespace, output_dir: str | None = None):
    overrides = list(args.overrides)
    if output_dir:
        overrides.append(f"output_dir={output_dir}")
    return load_config(args.config, overrides)


def cmd_config(args: argparse.Namespace) -> int:
    print(dump_config(_load(args)), end="")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from pointforge.engine.launch import launcher_env
    from pointforge.engine.run import train
    from pointforge.registry import TASKS

    cfg = _load(args, args.output_dir)
    metrics = train(cfg, resume=args.resume, overwrite=args.overwrite)
    if metrics and launcher_env()[0] == 0:  # under torchrun only global rank 0 reports
        print(TASKS.get(cfg.task).format_metrics(metrics))
        print(f"run directory: {cfg.output_dir}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate ``--weights``. Under torchrun every rank evaluates its shard of the set and the
    task's evaluator gathers the predictions to rank 0, which alone prints and writes."""
    from pointforge.engine import comm
    from pointforge.engine.launch import distributed, resolve_device

    cfg = _load(args)
    weights = run_weights(args.weights)  # a run's folder: its best.pth, else final.pth
    if not weights.is_file():
        raise FileNotFoundError(f"weights file not found: {weights}")
    # The evaluated weights come from --weights, fitted under the strict loading policy.
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, weights=str(weights)))
    with distributed(resolve_device(cfg.device), cfg.train.ddp.backend):
        target: Path | None = None
        if comm.is_main_process():
            run_dir = Path(args.output_dir) if args.output_dir else default_eval_root(cfg, weights)
            target = eval_destination(run_dir, weights, args.overwrite)
        target = comm.broadcast(target)  # rank 0's choice, on every rank
        if target is None:
            raise RuntimeError("rank 0 chose no evaluation directory")
        metrics = _evaluate_into(cfg, target, weights)
    if metrics is not None:
        print(metrics[0])
        print(f"wrote {metrics[1] / 'metrics.json'}")
    return 0


def _evaluate_into(cfg: Any, target: Path, weights: Path) -> tuple[str, Path] | None:
    """Evaluate on every rank; rank 0 moves the artefacts to ``target`` and returns the table.

    Artefacts are written into a staging folder and moved into place when complete, so a
    failed evaluation leaves nothing half-written and never replaces earlier results."""
    from pointforge.engine import comm
    from pointforge.engine.checkpoint import atomic_write_text
    from pointforge.engine.run import build_task

    task = build_task(cfg)
    model = task.build_model()
    main = comm.is_main_process()
    staging = Path(tempfile.mkdtemp(prefix=".eval_", dir=target.parent)) if main else None
    try:
        metrics = task.evaluate(model, staging)
        if staging is None:
            return None
        produced = staging / "eval"
        produced.mkdir(exist_ok=True)
        payload = {"weights": str(weights), "metrics": metrics}
        atomic_write_text(json.dumps(payload, indent=2) + "\n", produced / "metrics.json")
        if target.exists():  # --overwrite
            shutil.rmtree(target)
        produced.rename(target)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return task.format_metrics(metrics), target


def default_eval_root(cfg: Any, weights: Path) -> Path:
    """Where ``eval`` writes without ``--output-dir``: the run the weights belong to
    (``RUN/checkpoints/X.pth`` → ``RUN``), else the config's ``output_dir``."""
    parent = weights.resolve().parent
    if parent.name == "checkpoints" and (parent.parent / "config.yaml").is_file():
        return parent.parent
    return Path(cfg.output_dir)


def eval_destination(run_dir: Path, weights: Path, overwrite: bool) -> Path:
    """``run_dir/eval`` when free (or with ``--overwrite``), else ``run_dir/eval_<weights
    stem>`` beside it; refused when that is taken too, so no result is replaced silently."""
    run_dir.mkdir(parents=True, exist_ok=True)
    first = run_dir / "eval"
    if overwrite or not (first / "metrics.json").exists():
        return first
    beside = run_dir / f"eval_{weights.stem}"
    if (beside / "metrics.json").exists():
        raise FileExistsError(
            f"{first} and {beside} already hold evaluation results; pass --output-dir "
            "elsewhere or --overwrite to replace eval/"
        )
    print(f"{first / 'metrics.json'} exists (kept); writing to {beside}")
    return beside


def cmd_data_photos(args: argparse.Namespace) -> int:
    from pointforge.data.sample_photos import write_photo_split

    paths = write_photo_split(args.out, args.split, with_crops=args.crops)
    print(f"wrote {len(paths)} {args.split} photos to {args.out}")
    return 0


def cmd_data_photo_set(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from pointforge.data.photo_set import assemble_photo_set

    copies: dict[str, Path] = {}
    for item in args.source:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--source expects NAME=PATH, got {item!r}")
        if not Path(path).exists():
            raise FileNotFoundError(f"--source {name}: {path} does not exist")
        copies[name] = Path(path)
    records = assemble_photo_set(
        Path(args.out),
        copies,
        args.split,
        progress=lambda items, name: tqdm(items, desc=name, unit="photo"),
    )
    print(
        f"wrote {len(records)} {args.split} photos to {args.out} "
        "(provenance: sources.json, SOURCES.md)"
    )
    return 0


def cmd_data_shapes(args: argparse.Namespace) -> int:
    from pointforge.data.shapes.dump import dump_shapes

    if args.num <= 0:
        raise ValueError(f"--num must be > 0, got {args.num}")
    dump_shapes(
        args.out,
        split=args.split,
        num=args.num,
        seed=args.seed,
        noise=args.noise,
        workers=args.workers,
        overwrite=args.overwrite,
    )
    print(
        f"wrote {args.num} images to {Path(args.out) / 'images'} and points to "
        f"{Path(args.out) / 'points'}"
    )
    return 0


def cmd_data_shapes_detection(args: argparse.Namespace) -> int:
    from pointforge.tasks.detection.data.shapes import dump_shapes_coco

    if args.num <= 0:
        raise ValueError(f"--num must be > 0, got {args.num}")
    json_path = Path(args.out) / f"{args.split}.json"
    if json_path.exists() and not args.overwrite:
        raise FileExistsError(
            f"{json_path} exists; pass --overwrite to replace the {args.split} dump"
        )
    paths = dump_shapes_coco(args.out, split=args.split, num=args.num, seed=args.seed)
    print(f"wrote {args.num} images to {paths.images} and their boxes to {paths.json}")
    return 0


def cmd_data_chess(args: argparse.Namespace) -> int:
    from pointforge.tasks.detection.data.chess_prepare import prepare_chess

    out = Path(args.out)
    splits = prepare_chess(Path(args.source), out, args.max_side, args.quality, args.overwrite)
    print(f"wrote {sum(s.images for s in splits)} photos to {out} (train with data.root={out})")
    return 0
