"""CenterNet: predictor overhead over the bare network (target ≤ 1.10) and COCO eval speed.

1. Predictor ÷ forward, at 512 × 512 on the CPU, timed in this run on the same real photos
   (scikit-image colour samples), interleaved photo by photo so background load hits both
   alike; each figure is the median over ``--repeats`` of the mean per photo:

   * forward: ``model(x)`` under ``inference_mode`` on a ready ``(1, 3, 512, 512)`` tensor;
   * predictor: ``CenterNetPredictor(photo)`` on the uint8 photo — letterbox resize on the
     device, forward, sigmoid, 3×3 max-pool peaks, top-100, boxes back to photo pixels, copy
     to NumPy.

   The model is ``centernet_resnet18`` with 80 classes (COCO), random weights (timing does
   not depend on them).

2. COCO box evaluation of the same synthetic detections (``--images`` images with 1–15 ground
   truth boxes in 80 categories, 100 detections each: jittered copies of the ground truth and
   random boxes) with faster-coco-eval and with pycocotools: load results, evaluate,
   accumulate, summarize. The APs of both are printed too (they must agree).

    python benchmarks/bench_detection.py [--photos 3] [--repeats 3] [--threads 1]
        [--images 500]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import statistics
import time

import numpy as np
import torch
from skimage import data as skdata

from pointforge.tasks.detection.model import centernet_resnet18
from pointforge.tasks.detection.predictor import CenterNetPredictor, PredictorParams

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "coins")
SIZE = 512


def load_photos(n: int) -> list[np.ndarray]:
    """The first ``n`` scikit-image colour photos as uint8 RGB (H, W, 3), original sizes."""
    out = []
    for name in PHOTOS[:n]:
        img = getattr(skdata, name)()
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        out.append(np.ascontiguousarray(img[..., :3]))
    return out


def bench_predictor(photos: int, repeats: int) -> None:
    model = centernet_resnet18(80).eval()
    pred = CenterNetPredictor(model, "cpu", PredictorParams(input_size=SIZE))
    images = load_photos(photos)
    x = torch.rand(1, 3, SIZE, SIZE)
    with torch.inference_mode():
        model(x)
    pred(images[0])  # warm-up
    fwd_runs, pred_runs = [], []
    for _ in range(repeats):
        t_fwd = t_pred = 0.0
        for image in images:
            t0 = time.perf_counter()
            with torch.inference_mode():
                model(x)
            t1 = time.perf_counter()
            pred(image)
            t2 = time.perf_counter()
            t_fwd += t1 - t0
            t_pred += t2 - t1
        fwd_runs.append(t_fwd / len(images))
        pred_runs.append(t_pred / len(images))
    fwd, full = statistics.median(fwd_runs), statistics.median(pred_runs)
    shapes = ", ".join(f"{im.shape[1]}×{im.shape[0]}" for im in images)
    print(f"predictor vs forward at {SIZE}×{SIZE}, CPU, {torch.get_num_threads()} thread(s)")
    print(f"  photos: {shapes}; median of {repeats} repeats")
    print(f"  forward   {fwd * 1e3:8.1f} ms/photo")
    print(f"  predictor {full * 1e3:8.1f} ms/photo")
    print(f"  ratio predictor / forward = {full / fwd:.3f}  (target <= 1.10)")


def synthetic_coco(images: int, seed: int = 0) -> tuple[dict, list[dict]]:
    """COCO ground truth and 100 detections per image (jittered GT + random boxes)."""
    rng = np.random.default_rng(seed)
    gt = {
        "images": [{"id": i, "width": 640, "height": 480} for i in range(1, images + 1)],
        "annotations": [],
        "categories": [{"id": c, "name": f"c{c}"} for c in range(1, 81)],
    }
    dets = []
    for image_id in range(1, images + 1):
        n = int(rng.integers(1, 16))
        wh = rng.uniform(8, 300, size=(n, 2))
        xy = rng.uniform(0, 1, size=(n, 2)) * (np.array([640, 480]) - wh)
        cats = rng.integers(1, 81, size=n)
        matched = 0
        for (x, y), (w, h), c in zip(xy, wh, cats):
            gt["annotations"].append(
                {
                    "id": len(gt["annotations"]) + 1,
                    "image_id": image_id,
                    "category_id": int(c),
                    "bbox": [float(x), float(y), float(w), float(h)],
                    "area": float(w * h),
                    "iscrowd": 0,
                }
            )
            if rng.random() < 0.9:  # 10% missed
                j = rng.normal(0, 0.1, size=4) * np.array([w, h, w, h])
                box = [x + j[0], y + j[1], max(1.0, w + j[2]), max(1.0, h + j[3])]
                dets.append(_det(image_id, int(c), box, rng.uniform(0.3, 1.0)))
                matched += 1
        for _ in range(100 - matched):
            w, h = rng.uniform(4, 200, size=2)
            x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
            dets.append(_det(image_id, int(rng.integers(1, 81)), [x, y, w, h], rng.uniform(0, 0.5)))
    return gt, dets


def _det(image_id: int, cat: int, box: list[float], score: float) -> dict:
    return {
        "image_id": image_id,
        "category_id": cat,
        "bbox": [float(v) for v in box],
        "score": float(score),
    }


def _run_faster(gt: dict, dets: list[dict]) -> np.ndarray:
    from faster_coco_eval import COCO, COCOeval_faster

    coco = COCO(copy.deepcopy(gt))
    ev = COCOeval_faster(coco, coco.loadRes(copy.deepcopy(dets)), iouType="bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return np.asarray(ev.stats[:6])


def _run_pycocotools(gt: dict, dets: list[dict]) -> np.ndarray:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(copy.deepcopy(dets)), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats[:6])


def bench_coco(images: int) -> None:
    gt, dets = synthetic_coco(images)
    print(f"COCO bbox evaluation: {images} images, {len(gt['annotations'])} GT, {len(dets)} dets")
    t0 = time.perf_counter()
    fast = _run_faster(gt, dets)
    t1 = time.perf_counter()
    try:
        ref = _run_pycocotools(gt, dets)
    except ImportError:
        print(f"  faster-coco-eval {t1 - t0:7.2f} s; pycocotools not installed, no ratio")
        return
    t2 = time.perf_counter()
    print(f"  faster-coco-eval {t1 - t0:7.2f} s   AP/AP50/AP75/s/m/l {np.round(fast, 4).tolist()}")
    print(f"  pycocotools      {t2 - t1:7.2f} s   AP/AP50/AP75/s/m/l {np.round(ref, 4).tolist()}")
    print(
        f"  ratio pycocotools / faster-coco-eval = {(t2 - t1) / (t1 - t0):.1f}x; "
        f"max |AP diff| = {np.abs(fast - ref).max():.2e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--images", type=int, default=500)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bench_predictor(args.photos, args.repeats)
    bench_coco(args.images)


if __name__ == "__main__":
    main()
