"""The documented user-data command (CenterNet-R18) vs. two peers, on two real data sets.

Models, all from scratch (no pretrained weights) on the CPU:

* ``centernet``: exactly what docs/detection.md tells a user to run on their own data:
  configs/centernet_coco.yaml through ``pointforge.engine.run.train``, with only ``data.*``
  overrides (the set's paths; ``data.name=voc`` for the VOC set), the budget
  (``solver.max_iter``, ``data.batch_size``, ``data.image_size``) and bookkeeping
  (``output_dir``, ``device``, ``train.progress_bar``, ``train.log_period=1`` for the
  per-iteration times, ``train.eval_period=0``: evaluated once, at the end). Its solver recipe
  is the config's own, whatever it is on the day.
* ``fcos``: torchvision's FCOS with a ResNet-18 FPN (benchmarks/fcos_peer.py), trained over the
  centernet arm's own loader (same images, order, augmentation, letterbox size). Its recipe
  (``--fcos-recipe``), one of two, both with bf16 autocast where the CPU runs bf16 natively
  (torchvision's FCOS reference trains with ``--amp``), fp32 elsewhere:

  - ``adam`` (default): Adam lr 1e-3, linear warmup from 1 % over 1/12 of the budget, cosine to
    0, gradient-norm clip 35: the CenterNet chess recipe of configs/centernet_chess.yaml (and,
    at batch 8, of centernet_coco.yaml's budget-following solver), with which FCOS-R18 reached
    AP 0.414 in 600 x 8 (docs/benchmarks.md).
  - ``sgd``: torchvision's detection reference (references/detection/train.py): SGD momentum
    0.9, weight decay 1e-4, lr 0.01 at batch 16 scaled linearly to the batch, linear warmup from
    0.001 over one epoch (at most 1000 iterations), lr x0.1 at 16/26 and 22/26 of the budget
    (its 26-epoch schedule), no clipping.

  Which one: both were run at a small budget on chess (80 its x 8 at 256x320, 1 thread each,
  side by side; ``FCOS_RECIPE_CHECK``). At 80 iterations neither has learnt to detect yet
  (valid AP 0.0013 vs 0.0018, noise), but ``adam`` ends with the lower training loss (mean of
  the last 8 iterations 1.94 vs 2.17, the same FCOS losses in both) and has a measured 600 x 8
  result (AP 0.414), so ``adam`` is the default. ``--fcos-recipe sgd`` runs the other.
* ``yolo``: Ultralytics YOLOv8n from ``yolov8n.yaml`` with Ultralytics' own default recipe
  (benchmarks/yolo_peer.py; the ``bench`` extra). Batch ``--batch``, ``imgsz`` = the long side
  of ``--size`` (Ultralytics trains on square letterboxed mosaics, so 320 x 320 against the
  others' 256 x 320), and ``round(iters * batch / n_train)`` epochs, so that it sees as many
  images as the others. fp32: Ultralytics runs AMP only on CUDA (``amp=False`` also skips its
  AMP check download). Its default nominal batch 64 makes it step the optimiser every 64/batch
  batches.

Scoring: all three by pointforge's COCO evaluator (faster-coco-eval,
pointforge/tasks/detection/coco_eval.py) on the same held-out images and ground truth, in
original image pixels, at most 100 detections per image (CenterNet: its top-100 peaks; FCOS
and YOLO: score threshold 0.001, as Ultralytics' val uses).

Sets (from ``../shared/data`` beside the repository; an absent one is skipped with a reason):
``chess`` (COCO json: train -> valid, the test split printed too) and ``cards`` (Pascal VOC:
train -> test).

    python benchmarks/bench_detection_peers.py                         # the full run
    python benchmarks/bench_detection_peers.py --iters 4 --batch 2     # a smoke test
    python benchmarks/bench_detection_peers.py --only yolo --sets cards

Each finished (set, model, budget) row is appended to ``<--out>/results.json`` at once; a row
already there is not run again (``--redo`` reruns it), so an interrupted run resumes and
separate runs join.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from fcos_peer import evaluate_fcos, fcos_r18, train_fcos

from pointforge.config.loader import load_config
from pointforge.engine.checkpoint import atomic_save, atomic_write_text
from pointforge.engine.launch import seed_everything
from pointforge.engine.precision import native_bf16
from pointforge.engine.run import build_task, train

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"
CONFIG = ROOT / "configs" / "centernet_coco.yaml"
MODELS = ("centernet", "fcos", "yolo")
KEYS = ("bbox/AP", "bbox/AP50", "bbox/AP75")
# The FCOS recipe check (module docstring): chess, 80 its x 8, 256x320, 2026-12, AMD EPYC 2 cores,
# `--only fcos --sets chess --iters 80 --threads 1 --workers 1 --fcos-recipe adam|sgd`.
FCOS_RECIPE_CHECK = {
    "adam": {"valid_AP": 0.0013, "valid_AP50": 0.0054, "loss_last_10pct": 1.936},
    "sgd": {"valid_AP": 0.0018, "valid_AP50": 0.0075, "loss_last_10pct": 2.167},
}


@dataclass(frozen=True)
class DataSet:
    """A real set and the ``data.*`` overrides that point centernet_coco.yaml at it."""

    name: str
    root: Path
    kind: str  # "coco": <split>/_annotations.coco.json + images beside it; "voc"
    train: str
    val: str
    test: str | None = None  # a second held-out split, scored and printed too

    def missing(self) -> str | None:
        """Why the set cannot be used here, or None."""
        need = [self.root / s / "_annotations.coco.json" for s in (self.train, self.val)]
        if self.kind == "voc":
            need = [self.root / "ImageSets" / "Main" / f"{s}.txt" for s in (self.train, self.val)]
        absent = [str(p) for p in need if not p.is_file()]
        return f"{', '.join(absent)} not found" if absent else None

    def overrides(self, val: str | None = None) -> list[str]:
        val = val or self.val
        root = self.root.resolve()
        if self.kind == "voc":
            return [
                "data.name=voc",
                f"data.train.root={root}",
                f"data.train.split={self.train}",
                f"data.val.root={root}",
                f"data.val.split={val}",
            ]
        return [
            f"data.train.json={root / self.train / '_annotations.coco.json'}",
            f"data.train.images={root / self.train}",
            f"data.val.json={root / val / '_annotations.coco.json'}",
            f"data.val.images={root / val}",
        ]


SETS = {
    "chess": DataSet("chess", DATA / "chess", "coco", "train", "valid", "test"),
    "cards": DataSet("cards", DATA / "cards_voc", "voc", "train", "test"),
}


def user_config(
    args: argparse.Namespace, ds: DataSet, out: Path, val: str | None = None, extra: tuple = ()
) -> Any:
    """The documented command's config: centernet_coco.yaml + data.* + budget + bookkeeping
    (``val``: another held-out split; ``extra``: e.g. ``model.weights`` to score a run)."""
    workers = [] if args.workers is None else [f"data.num_workers={args.workers}"]
    return load_config(
        CONFIG,
        [
            *ds.overrides(val),
            *workers,
            f"solver.max_iter={args.iters}",
            f"data.batch_size={args.batch}",
            f"data.image_size=[{args.size[0]},{args.size[1]}]",
            f"output_dir={out}",
            f"device={args.device}",
            "train.progress_bar=false",
            "train.log_period=1",
            "train.eval_period=0",
            *extra,
        ],
    )


def held_out_task(
    args: argparse.Namespace, ds: DataSet, out: Path, split: str, weights: Path | None = None
) -> Any:
    """The detection task with ``split`` as its val set (whose ground truth the scorer uses)."""
    extra = (f"model.weights={weights}",) if weights is not None else ()
    return build_task(user_config(args, ds, out, split, extra), torch.device(args.device))


def iteration_times(metrics_jsonl: Path) -> list[float]:
    """Per-iteration step times the engine logged (``time`` in metrics.jsonl, log_period 1)."""
    times = []
    for line in metrics_jsonl.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if "time" in rec:
            times.append(float(rec["time"]))
    return times


def median_after_first(times: list[float]) -> float:
    """Median step time without the first (warm-up) step; NaN with fewer than two steps."""
    rest = sorted(times[1:])
    return rest[len(rest) // 2] if rest else math.nan


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def run_centernet(args: argparse.Namespace, ds: DataSet, out: Path) -> dict[str, Any]:
    cfg = user_config(args, ds, out)
    start = time.perf_counter()
    metrics = train(cfg, overwrite=True)
    train_s = time.perf_counter() - start
    row: dict[str, Any] = {
        "metrics": metrics,
        "train_s": train_s,
        "s_per_iter": median_after_first(iteration_times(out / "metrics.jsonl")),
        "images_seen": args.iters * args.batch,
        "budget": f"{args.iters} its x {args.batch}",
    }
    if ds.test:
        task = held_out_task(args, ds, out, ds.test, out / "checkpoints" / "final.pth")
        row["test_metrics"] = task.evaluate(task.build_model())
    row["wall_s"] = time.perf_counter() - start
    return row


def fcos_optim(
    recipe: str, model: torch.nn.Module, iters: int, batch: int, epoch_iters: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler, float | None]:
    """``(optimizer, per-iteration scheduler, clip norm)`` of an FCOS recipe (module docstring)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if recipe == "adam":
        warmup = max(1, round(iters / 12))
        opt: torch.optim.Optimizer = torch.optim.Adam(params, lr=1e-3)

        def adam_factor(it: int) -> float:
            if it < warmup:
                return 0.01 + 0.99 * it / warmup
            return 0.5 * (1 + math.cos(math.pi * (it - warmup) / max(1, iters - warmup)))

        return opt, torch.optim.lr_scheduler.LambdaLR(opt, adam_factor), 35.0
    lr = 0.01 * batch / 16
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=1e-4)
    warmup = max(1, min(1000, epoch_iters - 1))
    steps = (round(iters * 16 / 26), round(iters * 22 / 26))

    def sgd_factor(it: int) -> float:
        warm = 0.001 + 0.999 * it / warmup if it < warmup else 1.0
        return warm * 0.1 ** sum(it >= s for s in steps)

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, sgd_factor), None


def run_fcos(args: argparse.Namespace, ds: DataSet, out: Path) -> dict[str, Any]:
    """FCOS over the centernet arm's loader, with its own recipe; scored on val (and test)."""
    cfg = user_config(args, ds, out)
    seed_everything(cfg.seed, cfg.deterministic)
    device = torch.device(args.device)
    task = build_task(cfg, device)
    model = fcos_r18(len(task.categories), tuple(cfg.data.image_size), score_thresh=0.001)
    epoch_iters = max(1, len(task.build_dataset("train")) // args.batch)
    optimizer, scheduler, clip = fcos_optim(
        args.fcos_recipe, model, args.iters, args.batch, epoch_iters
    )
    amp = native_bf16(device)
    start = time.perf_counter()
    losses, seconds = train_fcos(
        model,
        task.build_train_loader(0),
        optimizer,
        scheduler,
        args.iters,
        amp,
        clip,
        device,
        log=lambda line: print(line, flush=True),
    )
    train_s = time.perf_counter() - start
    out.mkdir(parents=True, exist_ok=True)
    atomic_save(model.state_dict(), out / "model.pth")  # re-score without retraining
    row: dict[str, Any] = {
        "metrics": evaluate_fcos(task, model),
        "train_s": train_s,
        "s_per_iter": median_after_first(seconds),
        "images_seen": args.iters * args.batch,
        "budget": f"{args.iters} its x {args.batch}",
        "recipe": args.fcos_recipe,
        "bf16": amp,
        "loss_last_10pct": _mean(losses[-max(1, len(losses) // 10) :]),
    }
    if ds.test:
        row["test_metrics"] = evaluate_fcos(held_out_task(args, ds, out, ds.test, None), model)
    row["wall_s"] = time.perf_counter() - start
    return row


def run_yolo(args: argparse.Namespace, ds: DataSet, out: Path) -> dict[str, Any]:
    """YOLOv8n on a YOLO copy of the same records; scored by the same evaluator."""
    import yolo_peer

    yolo = yolo_peer.import_offline(out / "ultralytics_config", args.threads)
    cfg = user_config(args, ds, out)
    task = build_task(cfg, torch.device("cpu"))
    splits = {"train": task.build_dataset("train"), "val": task.build_dataset("val")}
    test_task = held_out_task(args, ds, out, ds.test, None) if ds.test else None
    if test_task is not None:
        splits["test"] = test_task.build_dataset("val")
    data_yaml = yolo_peer.write_yolo_folder(out / "yolo_data", splits)
    n_train = len(splits["train"])
    epochs, fraction = yolo_peer.matched_epochs(args.iters, args.batch, n_train)
    imgsz = max(args.size)
    device = "cpu" if args.device == "cpu" else args.device.removeprefix("cuda:")
    start = time.perf_counter()
    trained = yolo_peer.train_yolo(
        yolo,
        data_yaml,
        out / "ultralytics",
        epochs,
        fraction,
        args.batch,
        imgsz,
        cfg.data.num_workers or 0,
        device,
        cfg.seed,
    )
    torch.set_num_threads(args.threads)
    used = round(n_train * fraction)
    row: dict[str, Any] = {
        "metrics": yolo_peer.evaluate_yolo(yolo, trained["weights"], splits["val"], imgsz, device),
        "train_s": trained["train_s"],
        "s_per_iter": median_after_first(trained["batch_times"]),
        "images_seen": epochs * used,
        "budget": f"{epochs} epochs x {used} images, batch {args.batch}",
        "imgsz": imgsz,
    }
    if "test" in splits:
        row["test_metrics"] = yolo_peer.evaluate_yolo(
            yolo, trained["weights"], splits["test"], imgsz, device
        )
    row["wall_s"] = time.perf_counter() - start
    row["network_attempts"] = list(yolo_peer.NETWORK_ATTEMPTS)
    return row


RUNNERS = {"centernet": run_centernet, "fcos": run_fcos, "yolo": run_yolo}


def host() -> dict[str, Any]:
    """CPU model and the flags that decide bf16 speed, torch version and threads."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "avx2": "avx2" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def row_key(row: dict[str, Any]) -> tuple:
    return (row["set"], row["model"], row["iters"], row["batch"], tuple(row["size"]), row["tag"])


def load_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = json.loads(path.read_text())
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a JSON list of result rows")
    return rows


def cell(metrics: dict[str, float] | None, key: str) -> str:
    v = (metrics or {}).get(key, math.nan)
    return "–" if math.isnan(v) else f"{v:.3f}"


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one row per (set, model, budget); test columns where the set has a test split."""
    head = (
        "| set | model | AP | AP50 | AP75 | test AP | test AP50 | images seen | s/it | wall min |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        m, t = r["metrics"], r.get("test_metrics")
        name = f"{r['model']} ({r['tag']})" if r["tag"] else r["model"]
        lines.append(
            f"| {r['set']} ({r['val']}) | {name} | {cell(m, 'bbox/AP')} | "
            f"{cell(m, 'bbox/AP50')} | {cell(m, 'bbox/AP75')} | {cell(t, 'bbox/AP')} | "
            f"{cell(t, 'bbox/AP50')} | {r['budget']} = {r['images_seen']} | "
            f"{r['s_per_iter']:.2f} | {r['wall_s'] / 60:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iters", type=int, default=600, help="training iterations")
    p.add_argument("--batch", type=int, default=8, help="images per iteration")
    p.add_argument("--size", type=int, nargs=2, default=(256, 320), metavar=("H", "W"))
    p.add_argument("--only", choices=MODELS, action="append", help="run only this model")
    p.add_argument("--sets", nargs="+", choices=tuple(SETS), default=list(SETS))
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch CPU threads")
    p.add_argument("--workers", type=int, default=None, help="data.num_workers (config default)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--fcos-recipe", choices=("adam", "sgd"), default="adam")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_detection_peers")
    p.add_argument("--redo", action="store_true", help="rerun rows already in the results")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    results = args.out / "results.json"
    rows = load_rows(results)
    budget = f"{args.iters}it_b{args.batch}_{args.size[0]}x{args.size[1]}"
    for name in args.sets:
        ds = SETS[name]
        why = ds.missing()
        if why:
            print(f"skipping set {name}: {why}", flush=True)
            continue
        for model in args.only or MODELS:
            tag = args.fcos_recipe if model == "fcos" else ""
            key = (name, model, args.iters, args.batch, tuple(args.size), tag)
            if not args.redo and any(row_key(r) == key for r in rows):
                print(f"{name}/{model}: already in {results} (--redo to rerun)", flush=True)
                continue
            run_dir = args.out / budget / name / (f"{model}_{tag}" if tag else model)
            print(f"== {name} / {model} ({budget}) -> {run_dir}", flush=True)
            torch.set_num_threads(args.threads)
            row = RUNNERS[model](args, ds, run_dir)
            row.update(
                set=name,
                model=model,
                tag=tag,
                val=ds.val,
                test=ds.test,
                iters=args.iters,
                batch=args.batch,
                size=list(args.size),
                host=host(),
            )
            rows = [r for r in load_rows(results) if row_key(r) != key] + [row]
            results.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(json.dumps(rows, indent=1) + "\n", results)
            print(f"{name}/{model}: {json.dumps({k: row['metrics'][k] for k in KEYS})}")
    info = host()
    print(
        f"\nCPU {info['cpu']} ({info['cores']} cores; avx2 {info['avx2']}, avx512_bf16 "
        f"{info['avx512_bf16']}, amx_bf16 {info['amx_bf16']}); torch {info['torch']}, "
        f"{args.threads} threads; results in {results}\n"
    )
    print(table([r for r in rows if r["set"] in args.sets]))


if __name__ == "__main__":
    main()
