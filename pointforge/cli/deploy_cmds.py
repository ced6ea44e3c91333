"""``pointforge export-onnx``: write a keypoint model as ONNX and check it with onnxruntime.

Registers itself (:func:`add_parsers`) so ``main.py`` needs one line; the work is in
:mod:`pointforge.export.onnx`.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path
from typing import Any

# Mirrors of pointforge.export.onnx.DEFAULT_OPSET / EXPORTERS (a test keeps them equal):
# importing that module here would load torch for every ``pointforge --help``.
DEFAULT_OPSET = 18
EXPORTERS = ("dynamo", "torchscript")

# The second input size a dynamic export is verified at (batch 2), to show H, W and the batch
# really are free; the export size itself is always checked first.
SECOND_SIZE = (240, 320)


def add_parsers(sub: Any) -> None:
    """Add the ``export-onnx`` subparser to ``sub`` (argparse subparsers)."""
    p = sub.add_parser(
        "export-onnx",
        help="export a keypoint model to ONNX (verified with onnxruntime)",
        description="Write --weights as an ONNX graph: input 'image' (B, 1, H, W) float32 grey "
        "in [0, 1]; outputs 'heatmap' (B, H, W) keypoint probability and, for SuperPoint "
        "weights, 'descriptors' (B, D, H/8, W/8) L2-normalised. NMS and top-k stay outside the "
        "graph (their output sizes depend on the image). With onnxruntime installed the file "
        "is checked against PyTorch on random images and the max abs differences printed.",
    )
    p.add_argument(
        "--weights",
        default=None,
        help="checkpoint or MagicLeap-v1 state dict (default: the shipped weights, "
        "pointforge/weights/superpoint.pth)",
    )
    p.add_argument("--out", required=True, help="output .onnx file (written atomically)")
    p.add_argument("--height", type=int, default=480, help="input height, multiple of 8 (480)")
    p.add_argument("--width", type=int, default=640, help="input width, multiple of 8 (640)")
    p.add_argument(
        "--dynamic",
        action="store_true",
        help="symbolic batch, height and width (H, W still multiples of 8, >= 16); "
        "--height/--width are then only the example size",
    )
    p.add_argument(
        "--opset",
        type=int,
        default=DEFAULT_OPSET,
        help=f"ONNX opset (default {DEFAULT_OPSET}; the dynamo exporter needs >= 18)",
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
    import torch

    from pointforge import DEFAULT_WEIGHTS
    from pointforge.export.onnx import check_size, export_onnx, verify_onnx
    from pointforge.tasks.keypoints.predictor import (
        build_model_for_state_dict,
        load_state_dict_from_file,
    )

    check_size(args.height, args.width)  # before loading anything
    weights = Path(args.weights) if args.weights else DEFAULT_WEIGHTS
    model = build_model_for_state_dict(load_state_dict_from_file(weights))
    start = time.perf_counter()
    out = export_onnx(
        model,
        args.out,
        args.height,
        args.width,
        dynamic=args.dynamic,
        opset=args.opset,
        exporter=args.exporter,
    )
    kind = "dynamic batch/H/W" if args.dynamic else f"fixed 1x1x{args.height}x{args.width}"
    print(
        f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {kind}, opset {args.opset}, "
        f"{args.exporter} exporter) from {weights} in {time.perf_counter() - start:.1f} s"
    )
    if args.no_verify:
        return 0
    if importlib.util.find_spec("onnxruntime") is None:
        print("onnxruntime is not installed: verification skipped (pip install 'pointforge[onnx]')")
        return 0
    sizes = [(1, args.height, args.width)]
    if args.dynamic:
        second = SECOND_SIZE if (args.height, args.width) != SECOND_SIZE else (480, 640)
        sizes.append((2, *second))
    gen = torch.Generator().manual_seed(0)
    for b, h, w in sizes:
        diffs = verify_onnx(out, model, torch.rand(b, 1, h, w, generator=gen))
        shown = ", ".join(f"{name} {diff:.2g}" for name, diff in diffs.items())
        print(f"verified with onnxruntime at {b}x1x{h}x{w}: max |ONNX - PyTorch| {shown}")
    return 0
