"""COCO box AP of CenterNet detections with faster-coco-eval.

Why faster-coco-eval: it is a C++ re-implementation of pycocotools' ``COCOeval`` with the same
API and the same numbers (checked against pycocotools in
tests/tasks/detection/test_coco_eval.py) that evaluates the 5000 COCO val images several times
faster (benchmarks/bench_detection.py).

Protocol (the engine's evaluator interface, detectron2 style): ``reset()``;
``process(inputs, outputs)`` on every rank for every batch stores plain per-image records on
the CPU in :attr:`COCOEvaluator.predictions`; the engine gathers all ranks' lists to rank 0
and calls ``evaluate()`` once. The result depends only on the set of records, not on how they
were split or ordered.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from pointforge.tasks.detection.decode import boxes_to_original

logger = logging.getLogger(__name__)

SUMMARY_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")  # COCOeval.stats[0:6] order


def _import_faster_coco_eval():
    try:
        from faster_coco_eval import COCO, COCOeval_faster
    except ImportError:
        raise RuntimeError(
            "COCO evaluation needs faster-coco-eval: pip install faster-coco-eval"
        ) from None
    return COCO, COCOeval_faster


class COCOEvaluator:
    """Box AP of detections against a COCO-format ground truth.

    ``coco_gt``: the annotation dict (``images``, ``annotations``, ``categories``; a COCO
    ``instances_*.json`` loaded with ``json.load``). Contiguous class index i corresponds to
    the i-th category in increasing id order (the usual contiguous mapping; pass
    ``category_ids`` to use another order). ``max_dets``: detections kept per image, by score
    (COCO's limit is 100).

    ``process(inputs, outputs)``: ``outputs`` is :func:`~pointforge.tasks.detection.decode.
    decode`'s dict (``boxes (B, K, 4)``, ``scores (B, K)``, ``labels (B, K)``); ``inputs`` has
    ``image_id`` (B ints: the ground truth's image ids) and, when the boxes are in network
    input pixels, ``scale`` ``(B, 2)`` = (sx, sy) and ``orig_size`` ``(B, 2)`` = (H, W) of the
    original images (see :func:`~pointforge.tasks.detection.decode.boxes_to_original`).
    Without ``scale`` the boxes are taken to be in original pixels already.
    """

    def __init__(
        self,
        coco_gt: Mapping[str, Any],
        category_ids: Sequence[int] | None = None,
        max_dets: int = 100,
    ) -> None:
        for key in ("images", "annotations", "categories"):
            if key not in coco_gt:
                raise ValueError(f"COCO ground truth has no '{key}' list")
        self.coco_gt = copy.deepcopy(dict(coco_gt))
        # COCOeval marks a matched detection with its ground truth's annotation id and reads 0
        # as "unmatched", so a detection matched to an annotation with id 0 counts as a false
        # positive (the chess set's json starts its ids at 0). The ids mean nothing else to
        # box AP, so they are renumbered 1..N on this private copy.
        for number, ann in enumerate(self.coco_gt["annotations"], start=1):
            ann["id"] = number
        cats = sorted(self.coco_gt["categories"], key=lambda c: c["id"])
        names = {c["id"]: str(c.get("name", c["id"])) for c in cats}
        self.category_ids = list(category_ids) if category_ids is not None else list(names)
        unknown = [c for c in self.category_ids if c not in names]
        if unknown:
            raise ValueError(f"category_ids {unknown} are not in the ground truth's categories")
        self.class_names = [names[c] for c in self.category_ids]
        self.image_ids = {int(im["id"]) for im in self.coco_gt["images"]}
        self.max_dets = max_dets
        self.predictions: list[dict[str, Any]] = []

    def reset(self) -> None:
        self.predictions = []

    def process(self, inputs: Mapping[str, Any], outputs: Mapping[str, torch.Tensor]) -> None:
        boxes = outputs["boxes"].detach()
        if "scale" in inputs:
            boxes = boxes_to_original(boxes, inputs["scale"], inputs["orig_size"])
        scores, labels = outputs["scores"].detach(), outputs["labels"].detach()
        ids = inputs["image_id"]
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        if len(ids) != boxes.shape[0]:
            raise ValueError(f"{len(ids)} image ids for a batch of {boxes.shape[0]} outputs")
        for i, image_id in enumerate(ids):
            order = scores[i].argsort(descending=True)[: self.max_dets]
            self.predictions.append(
                {
                    "image_id": int(image_id),
                    "boxes": boxes[i, order].float().cpu().numpy(),
                    "scores": scores[i, order].float().cpu().numpy(),
                    "category_ids": np.asarray(self.category_ids, dtype=np.int64)[
                        labels[i, order].cpu().numpy()
                    ],
                }
            )

    def _results(self) -> list[dict[str, Any]]:
        """COCO result records (xywh boxes), one image's records once even if processed twice."""
        seen: set[int] = set()
        out: list[dict[str, Any]] = []
        duplicates = 0
        for pred in sorted(self.predictions, key=lambda p: p["image_id"]):
            image_id = pred["image_id"]
            if image_id not in self.image_ids:
                raise ValueError(
                    f"prediction for image_id {image_id}, which the ground truth lacks"
                )
            if image_id in seen:  # a distributed sampler may pad the last batch with repeats
                duplicates += 1
                continue
            seen.add(image_id)
            for box, score, cat in zip(pred["boxes"], pred["scores"], pred["category_ids"]):
                x1, y1, x2, y2 = (float(v) for v in box)
                out.append(
                    {
                        "image_id": image_id,
                        "category_id": int(cat),
                        "bbox": [x1, y1, x2 - x1, y2 - y1],
                        "score": float(score),
                    }
                )
        if duplicates:
            logger.info("COCO evaluation: %d repeated image predictions ignored", duplicates)
        return out

    def evaluate(self) -> dict[str, float]:
        """``bbox/AP``, ``AP50``, ``AP75``, ``APs``, ``APm``, ``APl`` and ``bbox/AP-<class>``.

        Fractions in [0, 1]; NaN where COCO has nothing to measure (no ground truth of that
        size range or class). With no detection at all every AP is 0 where there is ground
        truth.
        """
        coco_cls, eval_cls = _import_faster_coco_eval()
        results = self._results()
        gt = coco_cls(self.coco_gt, use_deepcopy=True)
        if not results:
            return self._no_detections(gt)
        dt = gt.loadRes(results)
        ev = eval_cls(gt, dt, iouType="bbox", print_function=logger.debug)
        ev.params.maxDets = [1, 10, self.max_dets]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        metrics = {
            f"bbox/{k}": _fraction(v) for k, v in zip(SUMMARY_KEYS, ev.stats[: len(SUMMARY_KEYS)])
        }
        precision = np.asarray(ev.eval["precision"])  # (IoU, recall, class, area, maxDets)
        cat_index = {c: k for k, c in enumerate(ev.params.catIds)}
        for name, cat in zip(self.class_names, self.category_ids):
            if cat not in cat_index:
                metrics[f"bbox/AP-{name}"] = float("nan")
                continue
            p = precision[:, :, cat_index[cat], 0, -1]
            p = p[p > -1]
            metrics[f"bbox/AP-{name}"] = float(p.mean()) if p.size else float("nan")
        return metrics

    def _no_detections(self, gt) -> dict[str, float]:
        """All APs 0 (NaN where the class or size range has no ground truth)."""
        areas = {"APs": (0, 32**2), "APm": (32**2, 96**2), "APl": (96**2, float("inf"))}
        anns = [a for a in self.coco_gt["annotations"] if not a.get("iscrowd", 0)]
        has_gt = bool(anns)
        metrics = {f"bbox/{k}": 0.0 if has_gt else float("nan") for k in ("AP", "AP50", "AP75")}
        for key, (lo, hi) in areas.items():
            inside = any(lo <= _area(a) < hi for a in anns)
            metrics[f"bbox/{key}"] = 0.0 if inside else float("nan")
        gt_cats = {a["category_id"] for a in anns}
        for name, cat in zip(self.class_names, self.category_ids):
            metrics[f"bbox/AP-{name}"] = 0.0 if cat in gt_cats else float("nan")
        return metrics


def _area(ann: Mapping[str, Any]) -> float:
    """Area COCOeval ranges by: the annotation's ``area``, else its box's."""
    if "area" in ann:
        return float(ann["area"])
    return float(ann["bbox"][2] * ann["bbox"][3])


def _fraction(v: float) -> float:
    """COCOeval writes -1 where nothing is measurable; report that as NaN."""
    return float("nan") if v < 0 else float(v)
