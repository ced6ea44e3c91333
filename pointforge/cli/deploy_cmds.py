"""``pointforge export-onnx``: write a keypoint model as ONNX and check it with onnxruntime.

Registers itself (:func:`add_parsers`) so ``main.py`` needs one line; the work is in
:mod:`pointforge.export.onnx`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

# Mirrors of pointforge.export.onnx.DEFAULT_OPSET / EXPORTERS (a test keeps them equal):
# importing that module here would load torch for every ``pointforge --help``.
DEFAULT_OPSET = 18
EXPORTERS = ("dynamo", "torchscript")

# The second input size a dynamic export is verified at (batch 2), to show H, W and the batch
# really are free; the export size itself is always checked first.


def add_parsers(sub: Any) -> None:
    """Add the ``export-onnx`` subparser to ``sub`` (argparse subparsers)."""
    p = sub.add_parser(
        "export-onnx",
        help="export a model to ONNX (verified with onnxruntime)",
        description="Write --weights (any task, read from the checkpoint) as an ONNX graph. "
        "Keypoint models: input 'image' (B, 1, H, W) float32 grey in [0, 1]; outputs 'heatmap' "
        "(B, H, W) and, for SuperPoint, 'descriptors' (B, D, H/8, W/8) L2-normalised; NMS and "
        "top-k stay outside the graph. Detection: the network's heatmap/size/offset maps "
        "(decoding outside). Re-ID: unit-norm embeddings. With onnxruntime installed the "
        "file is checked against PyTorch on random images and the max abs differences printed.",
    )
    p.add_argument(
        "--weights",
        default=None,
        help="checkpoint or MagicLeap-v1 state dict (default: the shipped weights, "
        "pointforge/weights/superpoint.pth)",
    )
    p.add_argument("--out", required=True, help="output .onnx file (written atomically)")
    p.add_argument(
        "--height",
        type=int,
        default=None,
        help="input height (default: the task's: 480 for keypoint models, multiple of 8; the "
        "training size for detection and re-ID)",
    )
    p.add_argument("--width", type=int, default=None, help="input width (default: the task's)")
    p.add_argument(
        "--dynamic",
        action="store_true",
        help="symbolic batch, height and width (H, W still multiples of 8, >= 16); "
        "--height/--width are then only the example size",
    )
    p.add_argument(
        "--opset",
        type=int,
        default=None,
        help=f"ONNX opset (default {DEFAULT_OPSET}, or what the model needs; the dynamo "
        "exporter needs >= 18)",
    )
    p.add_argument(
        "--exporter",
        choices=EXPORTERS,
        default="dynamo",
        help="torch exporter: dynamo (torch.export based, default) or torchscript (legacy "
        "tracer, for opset < 18)",
    )
    p.add_argument(
        "--no-verify", action="store_true", help="skip the onnxruntime comparison with PyTorch"
    )
    p.set_defaults(func=cmd_export_onnx)


def cmd_export_onnx(args: argparse.Namespace) -> int:
    """Export the weights of any task: the task is read from the checkpoint (a bare keypoint
    state dict is recognised by its keys) and its ``export_onnx`` does the work."""
    from pointforge import DEFAULT_WEIGHTS
    from pointforge.export.request import OnnxExportRequest
    from pointforge.predictor import load_model

    weights = Path(args.weights) if args.weights else DEFAULT_WEIGHTS
    model, cfg, task = load_model(weights)
    request = OnnxExportRequest(
        model=model.eval(),
        cfg=cfg,
        path=Path(args.out),
        height=args.height,
        width=args.width,
        dynamic=args.dynamic,
        opset=args.opset,
        exporter=args.exporter,
        verify=not args.no_verify,
    )
    lines = task.export_onnx(request)
    # A bare state dict has no config: it was recognised as a keypoint network by its keys.
    origin = f"task {cfg.task}" if cfg is not None else "keypoint weights, no stored config"
    print(f"{weights} ({origin}):")
    print("\n".join(lines))
    return 0
