"""``pointforge summary`` and ``pointforge explain``: look inside a configured model.

Kept apart from :mod:`pointforge.cli.commands` so that the inspection tools register their own
subcommands (:func:`add_parsers`) and ``main.py`` only needs one line for them.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from pointforge.config.loader import load_config
from pointforge.config.schema import Config


def add_parsers(sub: Any) -> None:
    """Add the ``summary`` and ``explain`` subparsers to ``sub`` (argparse subparsers)."""
    p = sub.add_parser(
        "summary",
        help="print the model's layers, output shapes, parameters and FLOPs",
        description="Build the model of CONFIG and print one row per layer (name, type, "
        "output shape, parameters, FLOPs) for one input of size H W (default: "
        "data.image_size; channels from the model's first convolution), then the total and "
        "trainable parameter counts and the FLOPs (torch FlopCounterMode, multiply-add = 2).",
    )
    p.add_argument("config", help="YAML config file")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides")
    p.add_argument(
        "--input-size",
        nargs=2,
        type=int,
        metavar=("H", "W"),
        help="input height and width (default: data.image_size)",
    )
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser(
        "explain",
        help="Grad-CAM heatmap of a classifier's decision on one image",
        description="Load --weights into the model of CONFIG, classify IMAGE and write the "
        "Grad-CAM map of the chosen class (default: the predicted one) overlaid on the image "
        "as a PNG.",
    )
    p.add_argument("config", help="YAML config file")
    p.add_argument("image", metavar="IMAGE", help="image file (any OpenCV-readable format)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides")
    p.add_argument("--weights", required=True, help="checkpoint or state dict to explain")
    p.add_argument("--out", required=True, help="output PNG (e.g. cam.png)")
    p.add_argument(
        "--target-layer",
        default=None,
        help="module name whose activations are weighted (default: layer4, or the last conv block)",
    )
    p.add_argument(
        "--class",
        dest="class_index",
        type=int,
        default=None,
        metavar="IDX",
        help="class to explain (default: the top-scoring class)",
    )
    p.add_argument("--alpha", type=float, default=0.5, help="heatmap opacity in [0, 1]")
    p.set_defaults(func=cmd_explain)


def _build_model(cfg: Config) -> tuple[Any, nn.Module]:
    from pointforge.engine.run import build_task

    task = build_task(cfg)
    return task, task.build_model()


def cmd_summary(args: argparse.Namespace) -> int:
    from pointforge.models.summary import input_channels, summarize

    cfg = load_config(args.config, list(args.overrides))
    _, model = _build_model(cfg)
    height, width = args.input_size or cfg.data.image_size
    if height <= 0 or width <= 0:
        raise ValueError(f"--input-size must be positive, got {height} {width}")
    summary = summarize(model, (1, input_channels(model), int(height), int(width)))
    print(summary.table())
    return 0


def image_to_input(task: Any, cfg: Config, model: nn.Module, image: np.ndarray) -> torch.Tensor:
    """BGR uint8 ``(H, W, 3)`` → the model's input ``(1, C, h, w)``.

    A task that defines ``preprocess(image_bgr) -> (1, C, h, w)`` (its eval transform, e.g. with
    mean/std normalisation) is used as is. Otherwise the image is resized to
    ``data.image_size``, converted to grey or RGB to match the first convolution and scaled to
    [0, 1], which is what the keypoint models take.
    """
    preprocess = getattr(task, "preprocess", None)
    if callable(preprocess):
        x = preprocess(image)
    else:
        from pointforge.models.summary import input_channels

        channels = input_channels(model)
        height, width = cfg.data.image_size
        resized = cv2.resize(image, (int(width), int(height)), interpolation=cv2.INTER_AREA)
        if channels == 1:
            arr = cv2.cvtColor(resized, cv2.COLOR_BGR2GRAY)[None]
        elif channels == 3:
            arr = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB).transpose(2, 0, 1)
        else:
            raise ValueError(f"cannot make a {channels}-channel input from an image file")
        x = torch.from_numpy(np.ascontiguousarray(arr)).float().div(255.0)[None]
    param = next(model.parameters())
    return x.to(device=param.device, dtype=param.dtype)


def cmd_explain(args: argparse.Namespace) -> int:
    from pointforge.explain import grad_cam, overlay_cam
    from pointforge.models.loading import load_weights
    from pointforge.visualization import save_png

    cfg = load_config(args.config, list(args.overrides))
    # The explained weights come from --weights only (strict policy), not model.weights.
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, weights=None))
    task, model = _build_model(cfg)
    load_weights(model, args.weights)
    image = cv2.imread(args.image, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read image {args.image}")
    x = image_to_input(task, cfg, model, image)  # (1, C, h, w)
    result = grad_cam(model, x, args.target_layer, args.class_index)
    out = save_png(Path(args.out), overlay_cam(image, result.cam, args.alpha))
    print(
        f"{args.image}: class {result.class_index} (score {result.score:.4f}), "
        f"Grad-CAM at '{result.target_layer}'; wrote {out}"
    )
    return 0
