"""Copy a trained run's weights into the package as the default detector, with provenance.

    python tools/ship_weights.py RUN_DIR [--checkpoint last.pth] [--name magicpoint_shapes]
        [--hardware "2-core AMD EPYC CPU, bf16 autocast"] [--wall-time-h 1.6] [--with-config]
        [--dtype float16]

Writes ``pointforge/weights/<name>.pth`` (model state dict, float32 unless ``--dtype``,
loadable with ``torch.load(weights_only=True)``) and ``<name>.json`` recording the config,
iterations, hardware, wall time and the run's latest evaluation metrics. ``--with-config``
also stores the run's config in the ``.pth`` (what ``load_predictor`` reads to find the task,
e.g. CenterNet); ``--dtype float16`` halves the file (loading casts back to the model's
float32; evaluate the shipped file to record its own metrics).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import torch

from pointforge.engine.checkpoint import atomic_save, load_checkpoint

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "pointforge" / "weights"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--checkpoint", default="last.pth")
    ap.add_argument("--name", default="magicpoint_shapes")
    ap.add_argument("--hardware", required=True)
    ap.add_argument("--wall-time-h", type=float, default=None)
    ap.add_argument(
        "--metrics",
        type=Path,
        default=None,
        help="eval metrics.json to record (default: RUN_DIR/eval/metrics.json)",
    )
    ap.add_argument(
        "--with-config",
        action="store_true",
        help="store the run config in the .pth too (load_predictor routes by its task)",
    )
    ap.add_argument("--dtype", choices=("float32", "float16"), default="float32")
    args = ap.parse_args()
    ckpt = load_checkpoint(args.run_dir / "checkpoints" / args.checkpoint)
    dtype = getattr(torch, args.dtype)
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    out = WEIGHTS_DIR / f"{args.name}.pth"
    payload = {"model": state, "iteration": ckpt["iteration"], "format_version": 1}
    if args.with_config:
        payload["config"] = ckpt["config"]
    atomic_save(payload, out)
    metrics_path = args.metrics or args.run_dir / "eval" / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else None
    info = {
        "file": out.name,
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "size_bytes": out.stat().st_size,
        "parameters": sum(v.numel() for v in state.values()),
        "iterations": ckpt["iteration"],
        "images_seen": ckpt["iteration"] * ckpt["config"]["data"]["batch_size"],
        "hardware": args.hardware,
        "wall_time_hours": args.wall_time_h,
        "evaluation": metrics,
        "config": ckpt["config"],
    }
    (WEIGHTS_DIR / f"{args.name}.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB) and {args.name}.json")
    torch.load(out, weights_only=True)  # prove it loads the safe way


if __name__ == "__main__":
    main()
