"""CenterNet-R18 (pointforge) vs. torchvision's FCOS (ResNet-18 FPN) on the chess photos.

Why this peer: FCOS (Tian et al. 2019) is the established anchor-free detector that torchvision
ships; with a ResNet-18 FPN backbone, BatchNorm and no pretrained weights it is the same class
of model as CenterNet-R18 trained from scratch. Both get the same budget on CPU: the same
training images in the same order with the same augmentation (the engine's loader over the
``chess`` dataset of configs/centernet_chess.yaml), the same iterations, batch, input size,
optimiser (Adam, warmup + cosine, clip 35) and bf16 autocast; both are scored by the same
COCO evaluator (faster-coco-eval) on the ``valid`` split, in original photo pixels. The photos
are read from ``../shared/data/chess`` beside the repository (``--data`` for another folder made
by ``pointforge data chess``; docs/detection.md).

    python benchmarks/bench_detection_vs_fcos.py                          # the issue's reference
    python benchmarks/bench_detection_vs_fcos.py --iters 300 --size 192 256   # a smaller budget
    python benchmarks/bench_detection_vs_fcos.py --model fcos ...   # one side (results are
                                                                    # kept in --out and joined)

CenterNet trains through ``pointforge.engine.run.train`` (the pipeline users run); FCOS through
the plain loop of benchmarks/fcos_peer.py over the same loader. Prints AP and AP50 side by
side, with wall times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch
from fcos_peer import evaluate_fcos, fcos_r18, train_fcos

from pointforge.config.loader import load_config
from pointforge.engine.checkpoint import atomic_save
from pointforge.engine.launch import seed_everything
from pointforge.engine.optim import build_lr_scheduler, build_optimizer
from pointforge.engine.run import build_task, train

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "centernet_chess.yaml"
CHESS = ROOT.parent / "shared" / "data" / "chess"
KEYS = ("bbox/AP", "bbox/AP50")


def chess_config(args: argparse.Namespace, out: Path) -> Any:
    """configs/centernet_chess.yaml with the benchmark's budget."""
    warmup = max(1, min(50, args.iters // 10))
    return load_config(
        CONFIG,
        [
            f"solver.max_iter={args.iters}",
            f"solver.warmup_iters={warmup}",
            f"data.batch_size={args.batch}",
            f"data.image_size=[{args.size[0]},{args.size[1]}]",
            f"data.num_workers={args.workers}",
            f"seed={args.seed}",
            "device=cpu",
            "train.eval_period=0",
            f"train.checkpoint_period={max(1, args.iters // 10)}",
            f"output_dir={out}",
            f"data.root={args.data}",
            *args.set,
        ],
    )


def run_centernet(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    cfg = chess_config(args, out / "centernet")
    start = time.perf_counter()
    metrics = train(cfg, overwrite=True)
    return {"metrics": metrics, "wall_s": time.perf_counter() - start}


def run_fcos(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """FCOS trained over the very loader and schedule the CenterNet run uses."""
    cfg = chess_config(args, out / "fcos")
    seed_everything(cfg.seed, cfg.deterministic)
    task = build_task(cfg, torch.device("cpu"))
    num_classes = len(task.categories)
    model = fcos_r18(num_classes, tuple(cfg.data.image_size))
    optimizer = build_optimizer(model, cfg.solver)
    scheduler = build_lr_scheduler(optimizer, cfg.solver)
    loader = task.build_train_loader(0)
    amp = cfg.train.amp == "bf16"
    start = time.perf_counter()
    train_fcos(
        model,
        loader,
        optimizer,
        scheduler,
        cfg.solver.max_iter,
        amp,
        cfg.solver.clip_grad_norm,
        log=lambda line: print(line, flush=True),
    )
    train_s = time.perf_counter() - start
    # Kept so that the FCOS side can be re-scored without retraining (e.g. after an
    # evaluator fix): torch.load(..., weights_only=True) + fcos_r18(...).load_state_dict.
    (out / "fcos").mkdir(parents=True, exist_ok=True)
    atomic_save(model.state_dict(), out / "fcos" / "model.pth")
    metrics = evaluate_fcos(task, model)
    return {"metrics": metrics, "wall_s": time.perf_counter() - start, "train_s": train_s}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iters", type=int, default=600, help="training iterations (both)")
    p.add_argument("--batch", type=int, default=8, help="images per iteration (both)")
    p.add_argument(
        "--size", type=int, nargs=2, default=(256, 320), metavar=("H", "W"), help="input size"
    )
    p.add_argument("--model", choices=("both", "centernet", "fcos"), default="both")
    p.add_argument("--workers", type=int, default=1, help="loader workers")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", type=Path, default=CHESS, help="the chess folder (data.root)")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_detection_vs_fcos")
    p.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="extra config overrides for both arms (e.g. model.skip_connections=false)",
    )
    args = p.parse_args()
    budget = f"{args.iters}it_b{args.batch}_{args.size[0]}x{args.size[1]}_s{args.seed}"
    out = args.out / budget
    out.mkdir(parents=True, exist_ok=True)
    runners = {"centernet": run_centernet, "fcos": run_fcos}
    for name in ("centernet", "fcos") if args.model == "both" else (args.model,):
        result = runners[name](args, out)
        result.update(
            budget=budget,
            threads=torch.get_num_threads(),
            omp_num_threads=os.environ.get("OMP_NUM_THREADS"),
            cpu=platform.processor() or platform.machine(),
            cores=os.cpu_count(),
        )
        (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        print(f"{name}: {json.dumps({k: result['metrics'][k] for k in KEYS})}", flush=True)
    found = {n: out / f"{n}.json" for n in runners if (out / f"{n}.json").is_file()}
    if len(found) < 2:
        print(f"results kept in {out}; run the other model with the same budget to compare")
        return
    res = {n: json.loads(f.read_text()) for n, f in found.items()}
    print(f"\nchess valid, {args.iters} iterations, batch {args.batch}, input {args.size}, CPU")
    print(f"{'model':<22}{'AP':>8}{'AP50':>8}{'wall min':>10}")
    for name, label in (
        ("centernet", "pointforge CenterNet-R18"),
        ("fcos", "torchvision FCOS-R18"),
    ):
        m = res[name]["metrics"]
        print(
            f"{label:<22}{m['bbox/AP']:8.3f}{m['bbox/AP50']:8.3f}{res[name]['wall_s'] / 60:10.1f}"
        )
    c, f = res["centernet"]["metrics"], res["fcos"]["metrics"]
    for key in KEYS:
        ratio = f"{c[key] / f[key]:.2f}" if f[key] > 0 else "n/a (FCOS at 0)"
        print(f"{key} CenterNet / FCOS: {ratio}")


if __name__ == "__main__":
    main()
