"""COCOEvaluator: same figures as pycocotools on a small hand-made set; no-detection case."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from pointforge.tasks.detection.coco_eval import COCOEvaluator


def _ground_truth() -> dict:
    """4 images, 3 categories (ids 1, 3, 7: not contiguous), small/medium/large boxes."""
    boxes = {  # image_id: [(category_id, x, y, w, h)]
        1: [(1, 10, 10, 20, 20), (3, 100, 120, 150, 140)],  # small, large
        2: [
            (7, 40, 40, 60, 50),
            (1, 200, 30, 12, 16),
            (1, 5, 200, 90, 110),
        ],  # medium, small, large
        3: [(3, 60, 60, 45, 40)],  # medium
        4: [(7, 0, 0, 120, 100), (3, 150, 150, 25, 25)],  # large, small
    }
    images = [{"id": i, "width": 320, "height": 240, "file_name": f"{i}.jpg"} for i in boxes]
    anns = []
    for image_id, objs in boxes.items():
        for cat, x, y, w, h in objs:
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": image_id,
                    "category_id": cat,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
    cats = [{"id": 1, "name": "cat"}, {"id": 3, "name": "dog"}, {"id": 7, "name": "bird"}]
    return {"images": images, "annotations": anns, "categories": cats}


def _detections(gt: dict) -> tuple[dict, dict]:
    """Perturbed copies of most GT boxes, one miss, one false positive, a low-score duplicate.

    Boxes are given in network-input pixels at scale (sx, sy) = (0.5, 0.5) so that
    ``process`` has to map them back.
    """
    rng = np.random.default_rng(0)
    cat_to_label = {1: 0, 3: 1, 7: 2}
    per_image: dict[int, list[tuple[list[float], float, int]]] = {i: [] for i in range(1, 5)}
    for ann in gt["annotations"]:
        if ann["id"] == 4:  # the 12×16 box of image 2 is missed
            continue
        x, y, w, h = ann["bbox"]
        jitter = rng.uniform(-0.15, 0.15, size=4) * np.array([w, h, w, h])
        box = [x + jitter[0], y + jitter[1], x + w + jitter[2], y + h + jitter[3]]
        per_image[ann["image_id"]].append(
            (box, float(rng.uniform(0.3, 0.95)), cat_to_label[ann["category_id"]])
        )
    per_image[3].append(([250.0, 10.0, 300.0, 70.0], 0.9, 0))  # false positive
    per_image[1].append(([12.0, 8.0, 33.0, 31.0], 0.2, 0))  # duplicate of the small cat
    per_image[4].append(([0.0, 0.0, 100.0, 100.0], 0.6, 1))  # right place, wrong class
    k = max(len(v) for v in per_image.values())
    boxes = torch.zeros(4, k, 4)
    scores = torch.zeros(4, k)
    labels = torch.zeros(4, k, dtype=torch.int64)
    for row, image_id in enumerate(sorted(per_image)):
        for j, (box, score, label) in enumerate(per_image[image_id]):
            boxes[row, j] = torch.tensor(box) * 0.5
            scores[row, j], labels[row, j] = score, label
        # Padding rows: zero-score, zero-size boxes, as decode's top-K may produce.
    inputs = {
        "image_id": torch.tensor(sorted(per_image)),
        "scale": torch.full((4, 2), 0.5),
        "orig_size": torch.tensor([[240, 320]] * 4),
    }
    return inputs, {"boxes": boxes, "scores": scores, "labels": labels}


def _pycocotools_stats(gt: dict, results: list[dict]) -> tuple[np.ndarray, np.ndarray, list]:
    coco_mod = pytest.importorskip(
        "pycocotools.coco", reason="pycocotools (test-only reference) is not installed"
    )
    from pycocotools.cocoeval import COCOeval

    coco = coco_mod.COCO()
    coco.dataset = copy.deepcopy(gt)
    coco.createIndex()
    dt = coco.loadRes(results)
    ev = COCOeval(coco, dt, "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return np.asarray(ev.stats), ev.eval["precision"], ev.params.catIds


def test_matches_pycocotools() -> None:
    gt = _ground_truth()
    inputs, outputs = _detections(gt)
    ev = COCOEvaluator(gt)
    # Split over two "ranks" in reverse order: the result must not depend on it.
    ev.process({k: v[2:] for k, v in inputs.items()}, {k: v[2:] for k, v in outputs.items()})
    ev.process({k: v[:2] for k, v in inputs.items()}, {k: v[:2] for k, v in outputs.items()})
    got = ev.evaluate()
    stats, precision, cat_ids = _pycocotools_stats(gt, ev._results())
    for key, ref in zip(("AP", "AP50", "AP75", "APs", "APm", "APl"), stats[:6]):
        assert got[f"bbox/{key}"] == pytest.approx(ref, abs=1e-9), key
    for name, cat in (("cat", 1), ("dog", 3), ("bird", 7)):
        p = precision[:, :, cat_ids.index(cat), 0, -1]
        assert got[f"bbox/AP-{name}"] == pytest.approx(p[p > -1].mean(), abs=1e-9), name
    # Not trivial: the miss, the false positive and the wrong class keep AP below 1.
    assert 0.2 < got["bbox/AP"] < 0.95
    assert got["bbox/AP50"] > got["bbox/AP75"]


def test_boxes_mapped_back_to_original_pixels() -> None:
    gt = _ground_truth()
    inputs, outputs = _detections(gt)
    ev = COCOEvaluator(gt)
    ev.process(inputs, outputs)
    first = next(p for p in ev.predictions if p["image_id"] == 3)
    assert first["boxes"].dtype == np.float32
    # The false positive of image 3, given at half scale, is back at 250..300 × 10..70.
    fp = first["boxes"][first["scores"].argmax()]
    np.testing.assert_allclose(fp, [250, 10, 300, 70], atol=1e-4)
    assert set(first["category_ids"].tolist()) <= {1, 3, 7}


def test_no_detections() -> None:
    gt = _ground_truth()
    ev = COCOEvaluator(gt)
    metrics = ev.evaluate()
    assert metrics["bbox/AP"] == 0.0 and metrics["bbox/APl"] == 0.0
    assert metrics["bbox/AP-bird"] == 0.0
    ev.process(
        {"image_id": [1]},
        {
            "boxes": torch.zeros(1, 0, 4),
            "scores": torch.zeros(1, 0),
            "labels": torch.zeros(1, 0, dtype=torch.int64),
        },
    )
    assert ev.evaluate()["bbox/AP"] == 0.0


def test_unknown_image_id_is_named() -> None:
    ev = COCOEvaluator(_ground_truth())
    ev.process(
        {"image_id": [99]},
        {
            "boxes": torch.ones(1, 1, 4),
            "scores": torch.ones(1, 1),
            "labels": torch.zeros(1, 1, dtype=torch.int64),
        },
    )
    with pytest.raises(ValueError, match="image_id 99"):
        ev.evaluate()


def test_class_without_ground_truth_is_nan() -> None:
    gt = _ground_truth()
    gt["categories"].append({"id": 9, "name": "fish"})
    inputs, outputs = _detections(gt)
    ev = COCOEvaluator(gt)
    ev.process(inputs, outputs)
    assert math.isnan(ev.evaluate()["bbox/AP-fish"])


def test_annotation_id_zero_is_not_a_false_positive() -> None:
    """COCOeval reads a match with annotation id 0 as "unmatched"; the chess json starts at 0.

    Exact detections of every box must score AP 1 whatever the ids are.
    """
    gt = _ground_truth()
    for ann in gt["annotations"]:
        ann["id"] -= 1  # ids 0..N-1
    cat_to_label = {1: 0, 3: 1, 7: 2}
    ids = sorted({a["image_id"] for a in gt["annotations"]})
    per_image = [[a for a in gt["annotations"] if a["image_id"] == i] for i in ids]
    k = max(len(a) for a in per_image)
    boxes = torch.zeros(len(ids), k, 4)
    scores = torch.zeros(len(ids), k)
    labels = torch.zeros(len(ids), k, dtype=torch.int64)
    for row, anns in enumerate(per_image):
        for col, ann in enumerate(anns):
            x, y, w, h = ann["bbox"]
            boxes[row, col] = torch.tensor([x, y, x + w, y + h], dtype=torch.float32)
            scores[row, col] = 0.9
            labels[row, col] = cat_to_label[ann["category_id"]]
    ev = COCOEvaluator(gt)
    ev.process({"image_id": ids}, {"boxes": boxes, "scores": scores, "labels": labels})
    metrics = ev.evaluate()
    assert metrics["bbox/AP"] == pytest.approx(1.0)
    assert metrics["bbox/AP-cat"] == pytest.approx(1.0)  # the class of annotation 0
    assert gt["annotations"][0]["id"] == 0  # the caller's dict is left as it was
