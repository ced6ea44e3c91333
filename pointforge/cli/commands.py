"""Subcommand bodies. Each parses nothing itself: it gets argparse's namespace and calls the
library, so everything here is also reachable from Python."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from pointforge.config.loader import dump_config, load_config


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

    cfg = _load(args, args.output_dir)
    metrics = train(cfg, resume=args.resume, overwrite=args.overwrite)
    if metrics and launcher_env()[0] == 0:  # under torchrun only global rank 0 reports
        print(format_metrics_table(metrics))
        print(f"run directory: {cfg.output_dir}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from pointforge.engine.run import build_task
    from pointforge.tasks.keypoints.predictor import load_state_dict_from_file

    cfg = _load(args, args.output_dir)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, weights=None))
    task = build_task(cfg)
    model = task.build_model()
    state = load_state_dict_from_file(args.weights)
    model.load_state_dict(state, strict=True)
    metrics = task.evaluate(model, Path(cfg.output_dir))
    # A task may lay out its own table (homography_eval: methods side by side per split).
    print(getattr(task, "format_metrics", format_metrics_table)(metrics))
    out = Path(cfg.output_dir) / "eval" / "metrics.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"weights": str(args.weights), "metrics": metrics}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


def format_metrics_table(metrics: dict[str, float]) -> str:
    """Render ``{"clean/ap": .., "clean/harris/ap": .., ...}`` as a methods × columns table.

    Keys are ``<variant>/<metric>`` for the model and ``<variant>/<method>/<metric>`` for
    baselines; anything else is listed below the table.
    """
    rows: dict[str, dict[str, float]] = {}
    columns: list[str] = []
    other: dict[str, float] = {}
    for key, value in metrics.items():
        parts = key.split("/")
        if len(parts) == 2:
            method, col = "model", f"{parts[0]} {parts[1]}"
        elif len(parts) == 3:
            method, col = parts[1], f"{parts[0]} {parts[2]}"
        else:
            other[key] = value
            continue
        rows.setdefault(method, {})[col] = value
        if col not in columns:
            columns.append(col)
    if not rows:  # flat metrics (e.g. classification top1/top5): one "name: value" per line
        return "\n".join(f"{k}: {v:.4f}" for k, v in other.items())
    width = max([len(c) for c in columns] + [8])
    head = f"{'method':<10}" + "".join(f"{c:>{width + 2}}" for c in columns)
    lines = [head, "-" * len(head)]
    for method, vals in rows.items():
        cells = "".join(
            f"{vals[c]:>{width + 2}.4f}" if c in vals else f"{'-':>{width + 2}}" for c in columns
        )
        lines.append(f"{method:<10}{cells}")
    lines += [f"{k}: {v:.4f}" for k, v in other.items()]
    return "\n".join(lines)


def cmd_data_photos(args: argparse.Namespace) -> int:
    from pointforge.data.sample_photos import write_photo_split

    paths = write_photo_split(args.out, args.split, with_crops=args.crops)
    print(f"wrote {len(paths)} {args.split} photos to {args.out}")
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


def cmd_detect(args: argparse.Namespace) -> int:
    import cv2

    from pointforge import load_predictor
    from pointforge.visualization import draw_keypoints, save_png

    pred = load_predictor(
        args.weights,
        device=args.device,
        max_keypoints=args.max_keypoints,
        detection_threshold=args.threshold,
        nms_radius=args.nms_radius,
        border=args.border,
    )
    arrays: dict[str, np.ndarray] = {}
    for path in args.images:
        image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if image is None:
            raise ValueError(f"cannot read image {path}")
        if image.ndim == 3 and image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        if image.dtype != np.uint8:
            raise ValueError(f"image {path} has dtype {image.dtype}; expected 8-bit")
        out = pred(image)
        stem = Path(path).stem
        if stem in {k.split("/")[0] for k in arrays}:
            stem = str(Path(path)).replace("/", "_")
        arrays[f"{stem}/keypoints"] = out["keypoints"]
        arrays[f"{stem}/scores"] = out["scores"]
        if out["descriptors"] is not None:
            arrays[f"{stem}/descriptors"] = out["descriptors"]
        print(f"{path}: {len(out['keypoints'])} keypoints")
        if args.draw:
            save_png(Path(args.draw) / f"{stem}.png", draw_keypoints(image, out["keypoints"]))
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out_path, **arrays)
    print(f"wrote {out_path}")
    return 0
