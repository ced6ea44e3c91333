"""NMS families: time of each variant and its ratio to torchvision ``nms`` in the same run.

Input (fixed seed): ``--boxes`` detections clustered around ``--centres`` objects in a
1333×800 image, as a detector's pre-NMS output looks: object sizes log-uniform in [16, 256] px,
each detection's centre jittered by N(0, (0.1·size)²) and its width/height scaled by
exp(N(0, 0.1²)); scores uniform in [0, 1); for the class-aware variants ``--classes`` random
class ids. Every variant gets the same tensors on the same device.

Each figure is the median over ``--repeats`` runs (after one warm-up) of one call's wall time,
with a device synchronisation after the call on CUDA; the variants are interleaved run by run
so that background load hits them alike. The ratio column is time ÷ the median time of
torchvision ``nms`` measured in this run. Also printed: the number of boxes each keeps.

    python benchmarks/bench_nms.py [--boxes 10000] [--centres 500] [--classes 10]
        [--repeats 5] [--threshold 0.5] [--device auto] [--threads 1]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import torch

from pointforge import ops

IMAGE = (1333.0, 800.0)  # (w, h), COCO-style test scale


def make_boxes(
    n: int, centres: int, classes: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``boxes (n, 4)`` xyxy float32, ``scores (n,)``, ``idxs (n,)`` int64 (seed 0)."""
    g = torch.Generator().manual_seed(0)
    size = torch.empty(centres, 1).uniform_(math.log(16), math.log(256), generator=g).exp()
    aspect = torch.exp(torch.randn(centres, 1, generator=g) * 0.3)
    wh_obj = torch.cat([size * aspect.sqrt(), size / aspect.sqrt()], dim=1)
    xy_obj = torch.rand(centres, 2, generator=g) * torch.tensor(IMAGE)
    obj = torch.randint(centres, (n,), generator=g)
    xy = xy_obj[obj] + torch.randn(n, 2, generator=g) * 0.1 * wh_obj[obj]
    wh = wh_obj[obj] * torch.exp(torch.randn(n, 2, generator=g) * 0.1)
    boxes = torch.cat([xy - wh / 2, xy + wh / 2], dim=1)
    scores = torch.rand(n, generator=g)
    idxs = torch.randint(classes, (n,), generator=g)
    return boxes.to(device), scores.to(device), idxs.to(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--boxes", type=int, default=10000)
    parser.add_argument("--centres", type=int, default=500)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threshold", type=float, default=0.5, help="hard/DIoU/weighted IoU thr")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (CPU)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    boxes, scores, idxs = make_boxes(args.boxes, args.centres, args.classes, device)
    thr = args.threshold

    def first(out: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return out[0] if isinstance(out, tuple) else out

    variants: dict[str, Callable[[], torch.Tensor | tuple[torch.Tensor, torch.Tensor]]] = {
        "torchvision nms": lambda: ops.nms(boxes, scores, thr),
        "diou_nms": lambda: ops.diou_nms(boxes, scores, thr),
        "weighted_nms": lambda: ops.weighted_nms(boxes, scores, thr),
        # Soft-NMS with the paper's parameters (Nt=0.3, sigma=0.5, score threshold 0.001).
        "soft_nms linear": lambda: ops.soft_nms(boxes, scores, method="linear"),
        "soft_nms gaussian": lambda: ops.soft_nms(boxes, scores, method="gaussian"),
        "torchvision batched_nms": lambda: ops.batched_nms(boxes, scores, idxs, thr),
        "batched_diou_nms": lambda: ops.batched_diou_nms(boxes, scores, idxs, thr),
        "batched_weighted_nms": lambda: ops.batched_weighted_nms(boxes, scores, idxs, thr),
        "batched_soft_nms linear": lambda: ops.batched_soft_nms(boxes, scores, idxs),
        "batched_soft_nms gaussian": lambda: ops.batched_soft_nms(
            boxes, scores, idxs, method="gaussian"
        ),
    }

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    kept = {name: first(fn()).numel() for name, fn in variants.items()}  # warm-up
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, fn in variants.items():
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t0)

    base = statistics.median(times["torchvision nms"])
    print(
        f"{args.boxes} boxes around {args.centres} centres, {args.classes} classes, "
        f"IoU thr {thr}, device {device}, threads {args.threads}, median of {args.repeats}"
    )
    print(f"{'variant':28s} {'ms':>10s} {'÷ tv nms':>9s} {'kept':>6s}")
    for name in variants:
        med = statistics.median(times[name])
        print(f"{name:28s} {med * 1e3:10.2f} {med / base:9.1f} {kept[name]:6d}")


if __name__ == "__main__":
    main()
