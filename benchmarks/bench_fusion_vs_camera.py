"""Radar-camera fusion vs the camera-only baseline on held-out synthetic scenes.

Trains ``configs/centerfusion_synthetic.yaml`` twice with the same budget, seed and data —
``model.radar=true`` (CenterFusion) and ``model.radar=false`` (the same network without radar
maps and secondary heads) — evaluates both on the held-out val scenes with the nuScenes
metrics and prints both rows and fusion − camera. CenterFusion's claim to check: radar depth
and radial velocity lower the translation (mATE) and velocity (mAVE) errors.

    python benchmarks/bench_fusion_vs_camera.py [--iters 150] [--out DIR] [KEY=VALUE ...]
    python benchmarks/bench_fusion_vs_camera.py --report DIR [DIR ...]   # rows of finished runs

The default budget (150 iterations of 4 images at 96 × 160, the ``SMALL`` overrides below) is a
smoke-sized comparison that runs in minutes on a CPU. The figures in the README came from
these overrides plus ``model.skip_connections=true``, each arm trained on its own
(``--arm camera`` and ``--arm fusion`` side by side, ``--iters 2000``), then resumed
(``pointforge train DIR/radar_*/config.yaml solver.max_iter=4000 output_dir=DIR/radar_*
--resume``; the cosine schedule restarts from its middle), both arms alike; run with
``OMP_NUM_THREADS=1``: on a shared 2-core machine two OpenMP threads per process were ~10x
slower per step. ``--report DIR`` prints the rows of such a pair of runs.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from pointforge.config.loader import load_config
from pointforge.engine.run import train

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "centerfusion_synthetic.yaml"
COLUMNS = ("nds", "mAP", "mATE", "mASE", "mAOE", "mAVE", "mAAE")
# A CPU-sized version of the synthetic config: 96 x 160 images (focal scaled with them),
# 2-5 objects within 30 m, a quarter-width neck, 100 held-out scenes.
SMALL = [
    "data.image_size=[96,160]",
    "data.focal=126.64",
    "data.val_size=100",
    "data.num_objects=[2,5]",
    "data.depth_range=[6,30]",
    "model.neck_channels=[64,32,32]",
    "model.head_conv=32",
    "data.batch_size=4",
    "data.num_workers=0",
    "solver.lr=0.001",
    "solver.warmup_iters=50",
    "train.eval_period=0",
    "train.log_period=10",
    "train.progress_bar=false",
]


def run(out: Path, radar: bool, iters: int, extra: list[str]) -> dict[str, float]:
    overrides = [
        *SMALL,
        f"solver.max_iter={iters}",
        f"train.checkpoint_period={max(iters // 4, 1)}",
        f"model.radar={'true' if radar else 'false'}",
        f"output_dir={out}",
        *extra,
    ]
    return train(load_config(CONFIG, overrides))


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
        help="train one arm only (run the other with the same --out, then --report DIR)",
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
    if args.arm != "both":
        radar = args.arm == "fusion"
        run(out / f"radar_{'true' if radar else 'false'}", radar, args.iters, args.overrides)
        print(f"{args.arm} arm trained in {out}; --report {out} once both arms are there")
        return
    camera = run(out / "radar_false", False, args.iters, args.overrides)
    fusion = run(out / "radar_true", True, args.iters, args.overrides)
    print(f"{args.iters} iterations each, evaluated on held-out scenes; runs in {out}")
    print(report(camera, fusion))


if __name__ == "__main__":
    main()
