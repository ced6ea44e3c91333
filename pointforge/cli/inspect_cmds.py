"""``pointforge summary`` and ``pointforge explain``: look inside a configured model.

Kept apart from :mod:`pointforge.cli.commands` so that the inspection tools register their own
subcommands (:func:`add_parsers`) and ``main.py`` only needs one line for them.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pointforge.cli.args import add_config_args

if TYPE_CHECKING:  # heavy modules are imported by the commands, so `--help` stays fast
    import numpy as np
    import torch
    from torch import nn

    from pointforge.config.schema import Config

# Images whose shorter side is below this are enlarged (nearest) for the Grad-CAM PNG.
MIN_PNG_SIDE = 128


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
    add_config_args(p)
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
        f"as a PNG (images smaller than {MIN_PNG_SIDE} px are enlarged by an integer factor).",
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
    from pointforge.config.loader import load_config
    from pointforge.models.summary import input_channels, summarize

    cfg = load_config(args.config, list(args.overrides))
    _, model = _build_model(cfg)
    height, width = args.input_size or getattr(cfg.data, "image_size", (0, 0))
    if height <= 0 or width <= 0:
        raise ValueError(f"--input-size must be positive, got {height} {width}")
    summary = summarize(model, (1, input_channels(model), int(height), int(width)))
    print(summary.table())
    return 0


def image_to_input(task: Any, cfg: Config, model: nn.Module, image: np.ndarray) -> torch.Tensor:
    """Grey ``(H, W)`` or BGR ``(H, W, 3)`` uint8 → the model's input ``(1, C, h, w)``.

    The task's own :meth:`~pointforge.tasks.base.Task.preprocess` when it has one (what its
    evaluation feeds the network); otherwise resize to ``data.image_size``, grey or RGB to
    match the first convolution, scaled to [0, 1].
    """
    import cv2
    import numpy as np
    import torch
    import torch.nn.functional as F

    try:
        preprocess = getattr(task, "preprocess", None)
        if preprocess is None:
            raise NotImplementedError
        x = preprocess(image)
    except NotImplementedError:
        from pointforge.models.summary import input_channels

        if image.ndim == 2:
            chw = torch.from_numpy(image)[None]  # (1, H, W)
        else:
            rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            chw = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))  # (3, H, W)
        channels = input_channels(model)
        if channels not in (1, 3):
            raise ValueError(f"cannot make a {channels}-channel input from an image file") from None
        if channels == 1 and chw.shape[0] == 3:
            chw = torch.from_numpy(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))[None]
        elif channels == 3 and chw.shape[0] == 1:
            chw = chw.expand(3, -1, -1)
        height, width = (int(v) for v in cfg.data.image_size)
        x = F.interpolate(
            chw[None].float(), size=(height, width), mode="bilinear", antialias=True
        ).div(255.0)
    param = next(model.parameters())
    return x.to(device=param.device, dtype=param.dtype)


def read_image(path: str) -> np.ndarray:
    """Grey ``(H, W)`` or BGR ``(H, W, 3)`` uint8 from an image file (alpha dropped)."""
    import cv2
    import numpy as np

    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"cannot read image {path}")
    if image.dtype != np.uint8:
        raise ValueError(f"image {path} has dtype {image.dtype}; expected 8-bit")
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    return image


def cmd_explain(args: argparse.Namespace) -> int:
    import cv2

    from pointforge.config.loader import load_config
    from pointforge.explain import grad_cam, overlay_cam
    from pointforge.models.loading import load_weights
    from pointforge.visualization import save_png

    cfg = load_config(args.config, list(args.overrides))
    # The explained weights come from --weights only (strict policy), not model.weights.
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, weights=None))
    task, model = _build_model(cfg)
    load_weights(model, args.weights)
    image = read_image(args.image)
    x = image_to_input(task, cfg, model, image)  # (1, C, h, w)
    result = grad_cam(model, x, args.target_layer, args.class_index)
    # Tiny inputs (8x8 digits) are enlarged by an integer factor so the PNG is readable; the
    # cam is resized to the enlarged image by overlay_cam.
    factor = -(-MIN_PNG_SIDE // min(image.shape[:2]))
    if factor > 1:
        image = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)
    out = save_png(Path(args.out), overlay_cam(image, result.cam, args.alpha))
    print(
        f"{args.image}: class {result.class_index} (score {result.score:.4f}), "
        f"Grad-CAM at '{result.target_layer}'; wrote {out}"
    )
    return 0
