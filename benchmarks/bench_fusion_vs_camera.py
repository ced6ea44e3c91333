"""Radar-camera fusion vs the camera-only baseline on held-out synthetic scenes.

Both arms get the same number of iterations, following CenterFusion's own recipe (its
``experiments/train.sh`` loads a trained camera-only CenterNet, ``--load_model
centernet_baseline_e170.pth``, and trains the fusion network from there):

1. the camera-only model (``model.radar=false``) trains ``--iters / 2`` iterations; that
   checkpoint is kept as ``DIR/camera_half.pth``;
2. **camera arm**: the same run resumed to ``--iters`` (the cosine schedule restarts from its
   middle: the learning rate jumps to half and decays to 0);
3. **fusion arm**: ``model.radar=true`` initialised from ``camera_half.pth`` (the radar-reading
   heads start fresh), trained ``--iters / 2`` iterations from half the learning rate down to 0.

Both are evaluated with the nuScenes metrics on the held-out val scenes; the rows and fusion −
camera are printed. CenterFusion's claim to check: radar depth and radial velocity lower the
translation (mATE) and velocity (mAVE) errors.

    python benchmarks/bench_fusion_vs_camera.py [--iters 150] [--out DIR] [KEY=VALUE ...]
    python benchmarks/bench_fusion_vs_camera.py --arm camera --iters 4000 --out DIR   # then,
    python benchmarks/bench_fusion_vs_camera.py --arm fusion --iters 4000 --out DIR   # in parallel
    python benchmarks/bench_fusion_vs_camera.py --report DIR [DIR ...]   # rows of finished runs

The default budget (150 iterations of 4 images at 96 × 160, the ``SMALL`` overrides below) is a
smoke-sized comparison that runs in minutes on a CPU. The README's figures: ``--iters 4000``
with ``seed=0``, ``seed=1`` and ``seed=2``, ``--arm fusion`` started once ``camera_half.pth``
existed, ``OMP_NUM_THREADS=1`` (two OpenMP threads per process on a shared 2-core machine were
~10× slower per step), then ``--report`` over the three folders.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from pointforge.config.loader import load_config
from pointforge.engine.run import train

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "centerfusion_synthetic.yaml"
COLUMNS = ("nds", "mAP", "mATE", "mASE", "mAOE", "mAVE", "mAAE")
# A CPU-sized version of the synthetic config: 96 x 160 images (focal scaled with them),
# 2-5 objects within 30 m, a quarter-width neck, backbone shortcuts (docs/detection.md), 2,000
# held-out scenes (with 100, two camera-only seeds differed by 0.06 m in mATE; with 2,000 by
# 0.02 m).
SMALL = [
    "data.image_size=[96,160]",
    "data.focal=126.64",
    "data.val_size=2000",
    "data.num_objects=[2,5]",
    "data.depth_range=[6,30]",
    "model.neck_channels=[64,32,32]",
    "model.head_conv=32",
    "model.skip_connections=true",
    "data.batch_size=4",
    "data.num_workers=0",
    "solver.lr=0.001",
    "solver.warmup_iters=50",
    "train.eval_period=0",
    "train.log_period=10",
    "train.progress_bar=false",
]


# Heads that read radar features: absent from a camera checkpoint or shaped for fewer input
# channels there, so the fusion arm starts them fresh (model.load.reinit_mismatched).
RADAR_HEADS = "[depth_sec,rot_sec,velocity,attribute,depth_res]"
HALF_CHECKPOINT = "camera_half.pth"


def run(
    out: Path, radar: bool, iters: int, extra: list[str], resume: bool = False
) -> dict[str, float]:
    overrides = [
        *SMALL,
        f"solver.max_iter={iters}",
        f"train.checkpoint_period={max(iters // 8, 1)}",
        f"model.radar={'true' if radar else 'false'}",
        f"output_dir={out}",
        *extra,
    ]
    return train(load_config(CONFIG, overrides), resume=resume)


def camera_arm(out: Path, iters: int, extra: list[str]) -> dict[str, float]:
    """Steps 1 and 2 of the module docstring; returns the camera arm's metrics."""
    half, run_dir = out / HALF_CHECKPOINT, out / "radar_false"
    if not half.is_file():
        run(run_dir, False, iters // 2, extra)
        shutil.copyfile(run_dir / "checkpoints" / "final.pth", half)
    return run(run_dir, False, iters, extra, resume=True)


def fusion_arm(out: Path, iters: int, extra: list[str]) -> dict[str, float]:
    """Step 3 of the module docstring; returns the fusion arm's metrics."""
    half = out / HALF_CHECKPOINT
    if not half.is_file():
        raise SystemExit(f"{half} is missing: run --arm camera with the same --out first")
    lr = float(load_config(CONFIG, [*SMALL, *extra]).solver.lr)
    init = [f"model.weights={half}", f"model.load.reinit_mismatched={RADAR_HEADS}",
            f"solver.lr={lr / 2}", "solver.warmup_iters=0"]  # fmt: skip
    return run(out / "radar_true", True, iters // 2, [*init, *extra])


def report(camera: dict[str, float], fusion: dict[str, float]) -> str:
    head = f"{'':10s}" + "".join(f"{c:>8s}" for c in COLUMNS)
    rows = [head]
    for name, m in (("camera", camera), ("fusion", fusion)):
        rows.append(f"{name:10s}" + "".join(f"{m[c]:8.3f}" for c in COLUMNS))
    rows.append(f"{'delta':10s}" + "".join(f"{fusion[c] - camera[c]:+8.3f}" for c in COLUMNS))
    return "\n".join(rows)


def read(run_dir: Path) -> dict[str, float]:
    return json.loads((run_dir / "eval" / "metrics.json").read_text())["metrics"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=150)
    ap.add_argument("--out", type=Path, default=None, help="run folder (default: a temp dir)")
    ap.add_argument("--report", type=Path, nargs="+", default=None, metavar="DIR",
                    help="only print the rows of DIR/radar_false and DIR/radar_true; several "
                         "DIRs (e.g. one per seed) also print the mean of each column")  # fmt: skip
    ap.add_argument(
        "--arm",
        choices=("both", "camera", "fusion"),
        default="both",
        help="train one arm only (camera first: fusion starts from its half-way checkpoint)",
    )
    ap.add_argument("overrides", nargs="*", help="extra config KEY=VALUE for both runs")
    args = ap.parse_args()
    if args.report is not None:
        pairs = [(read(d / "radar_false"), read(d / "radar_true")) for d in args.report]
        for d, (camera, fusion) in zip(args.report, pairs, strict=True):
            print(f"{d}\n{report(camera, fusion)}\n")
        if len(pairs) > 1:
            n = len(pairs)
            mean = [{c: sum(p[i][c] for p in pairs) / n for c in COLUMNS} for i in (0, 1)]
            print(f"mean of {n} runs\n{report(mean[0], mean[1])}")
        return
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_fusion_"))
    out.mkdir(parents=True, exist_ok=True)
    if args.arm != "both":
        arm = camera_arm if args.arm == "camera" else fusion_arm
        arm(out, args.iters, args.overrides)
        print(f"{args.arm} arm trained in {out}; --report {out} once both arms are there")
        return
    camera = camera_arm(out, args.iters, args.overrides)
    fusion = fusion_arm(out, args.iters, args.overrides)
    print(f"{args.iters} iterations each, evaluated on held-out scenes; runs in {out}")
    print(report(camera, fusion))


if __name__ == "__main__":
    main()
