"""MagicPoint training step ÷ bare forward + backward (docs/benchmarks.md target ≤ 1.25).

Both are timed in the same run on the same pre-generated batch, so the ratio isolates what the
engine and the task add on top of the network: label building (space-to-depth, random cell
choice), the masked cross-entropy, the finiteness check, the optimiser step and the hooks.
Data loading runs in worker processes and is measured by ``bench_shapes_data.py``.

    python benchmarks/bench_train_step.py [--batch 16] [--iters 5] [--device auto] [KEY=VALUE ...]

``KEY=VALUE`` config overrides measure the cost of a training switch, e.g.
``train.ema.enabled=true`` or ``solver.clip_grad_norm=1.0`` (``solver.accumulate_steps=N``
makes one step N micro-batches, so compare it with N times the bare time).
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time

import torch

from pointforge.config import load_config
from pointforge.data.loader import collate, move_to_device
from pointforge.engine.hooks import IterationTimer, LRScheduler
from pointforge.engine.run import build_task
from pointforge.engine.trainer import Trainer


def timed(fn, iters: int, device: torch.device) -> float:
    fn()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / iters


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(
            None,
            [
                "task=magicpoint",
                f"data.batch_size={args.batch}",
                f"device={args.device}",
                "data.num_workers=0",
                f"output_dir={tmp}",
                *args.overrides,
            ],
        )
        task = build_task(cfg)
        trainer = Trainer(task, cfg, tmp)
        trainer.register_hooks([IterationTimer(), LRScheduler()])
        ds = task.build_dataset("train")
        batch = move_to_device(collate([ds[i] for i in range(args.batch)]), task.device)
        model = trainer.model

        # The bare pass runs under the same precision and memory format as the step, so the
        # ratio prices the engine (loss, labels, optimiser, hooks), not a train.amp switch.
        image = batch["image"]
        if cfg.train.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        amp = trainer.amp_dtype

        def bare() -> None:
            model.zero_grad(set_to_none=True)
            with torch.autocast(
                task.device.type, dtype=amp or torch.float32, enabled=amp is not None
            ):
                out = model(image)["logits"]
            out.float().mean().backward()

        def step() -> None:
            for h in trainer.hooks:
                h.before_step()
            trainer.run_step(itertools.repeat(batch))
            trainer.iter += 1
            for h in trainer.hooks:
                h.after_step()

        t_bare = timed(bare, args.iters, task.device)
        t_step = timed(step, args.iters, task.device)
        t_bare2 = timed(bare, args.iters, task.device)  # re-measure: these machines are noisy
        t_bare = min(t_bare, t_bare2)
    print(
        f"device {task.device}, batch {args.batch}x1x{cfg.data.image_size[0]}x"
        f"{cfg.data.image_size[1]}, {torch.get_num_threads()} threads"
    )
    print(f"bare forward+backward: {t_bare * 1e3:8.1f} ms")
    print(f"full training step:    {t_step * 1e3:8.1f} ms")
    print(f"ratio step / bare:     {t_step / t_bare:8.3f}   (target <= 1.25)")


if __name__ == "__main__":
    main()
