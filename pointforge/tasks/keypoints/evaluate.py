"""Detector evaluation on the frozen Synthetic Shapes test sets (docs/evaluation.md).

The clean and noisy test sets are a pure function of a fixed seed, so every machine scores on
the same images. Classical baselines (FAST, Harris, Shi-Tomasi) do not change during training,
so they are computed once per evaluator and cached.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from pointforge.config.schema import Config
from pointforge.data.transforms.photometric import PhotometricConfig
from pointforge.evaluation.baselines import classical_keypoints_batch
from pointforge.evaluation.keypoints import detection_ap
from pointforge.models.loading import read_state_dict
from pointforge.registry import DATASETS
from pointforge.tasks.keypoints.postprocess import extract_keypoints, logits_to_heatmap
from pointforge.visualization import draw_keypoints, make_grid, save_png

log = logging.getLogger("pointforge")

# The test split's seed is part of the protocol, independent of the training seed.
TEST_SEED = 0
Detections = list[tuple[np.ndarray, np.ndarray]]


class ShapesDetectionEvaluator:
    """Pooled AP at ``cfg.eval.distance`` px and localisation error, clean and noisy."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self._sets: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
        self._baselines: dict[str, float] = {}
        self._reference: nn.Module | None = None

    def reference_model(self, device: torch.device) -> nn.Module | None:
        """``eval.reference_weights`` as a detector-only network (loaded once), or ``None``."""
        path = self.cfg.eval.reference_weights
        if path is None:
            return None
        if self._reference is None:
            from pointforge.tasks.keypoints.predictor import build_model_for_state_dict

            self._reference = build_model_for_state_dict(read_state_dict(path)).to(device).eval()
        return self._reference

    @property
    def reference_name(self) -> str:
        return Path(self.cfg.eval.reference_weights or "reference").stem

    @property
    def variants(self) -> list[str]:
        return ["clean", "noisy"] if self.cfg.eval.noisy else ["clean"]

    def test_set(self, variant: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """``(images (H, W) uint8, points (K, 2) float32 (x, y))`` of the clean/noisy test set."""
        if variant not in self._sets:
            if self.cfg.data.name is None:
                raise ValueError(
                    "config key 'data.name' is null (load_config sets the task's default)"
                )
            ds = DATASETS.build(
                self.cfg.data.name,
                split="test",
                size=self.cfg.eval.num_images,
                image_size=tuple(self.cfg.data.image_size),
                seed=TEST_SEED,
                photometric=PhotometricConfig() if variant == "noisy" else None,
                homographic=None,
            )
            raw = [
                ds.raw(i)
                for i in tqdm(
                    range(len(ds)), desc=f"test set ({variant})", leave=False, disable=None
                )
            ]
            self._sets[variant] = ([r[0] for r in raw], [r[1] for r in raw])
        return self._sets[variant]

    @torch.inference_mode()
    def predict(
        self,
        model: nn.Module,
        images: list[np.ndarray],
        device: torch.device,
        threshold: float | None = None,
    ) -> Detections:
        """Run ``model`` on uint8 images in batches; keypoints (x, y) and scores per image."""
        ev = self.cfg.eval
        out: Detections = []
        bs = ev.batch_size or 32
        for start in range(0, len(images), bs):
            chunk = np.stack(images[start : start + bs])[:, None]  # (B, 1, H, W)
            x = torch.from_numpy(chunk).to(device=device, dtype=torch.float32).div_(255.0)
            heat = logits_to_heatmap(model(x)["logits"].float())
            for kpts, scores in extract_keypoints(
                heat,
                threshold=ev.detection_threshold if threshold is None else threshold,
                border=ev.border,
                top_k=ev.max_keypoints,
                nms_radius=ev.nms_radius,
            ):
                out.append((kpts.cpu().numpy(), scores.cpu().numpy()))
        return out

    def baselines(self, variant: str) -> dict[str, float]:
        ev = self.cfg.eval
        images, gts = self.test_set(variant)
        results: dict[str, float] = {}
        for method in ev.baselines:
            key = f"{variant}/{method}"
            if f"{key}/ap" not in self._baselines:
                dets = classical_keypoints_batch(
                    images,
                    method,
                    max_keypoints=ev.max_keypoints or 1000,
                    nms_radius=ev.nms_radius,
                    border=ev.border,
                )
                m = detection_ap(dets, gts, distance=ev.distance)
                self._baselines[f"{key}/ap"] = m["ap"]
                self._baselines[f"{key}/loc_error"] = m["loc_error"]
            results[f"{key}/ap"] = self._baselines[f"{key}/ap"]
            results[f"{key}/loc_error"] = self._baselines[f"{key}/loc_error"]
        return results

    def evaluate(
        self, model: nn.Module, device: torch.device, output_dir: Path | None = None
    ) -> dict[str, float]:
        results: dict[str, float] = {}
        reference = self.reference_model(device)
        for variant in self.variants:
            images, gts = self.test_set(variant)
            m = detection_ap(self.predict(model, images, device), gts, self.cfg.eval.distance)
            results[f"{variant}/ap"] = m["ap"]
            results[f"{variant}/loc_error"] = m["loc_error"]
            # The share of ground-truth points found at all at eval.detection_threshold: the
            # ceiling of the AP, which tells a missed corner from a badly ranked one.
            results[f"{variant}/recall"] = m["recall"]
            if reference is not None:
                key = f"{variant}/{self.reference_name}"
                if f"{key}/ap" not in self._baselines:  # fixed weights: scored once
                    dets = self.predict(reference, images, device)
                    r = detection_ap(dets, gts, self.cfg.eval.distance)
                    self._baselines[f"{key}/ap"] = r["ap"]
                    self._baselines[f"{key}/loc_error"] = r["loc_error"]
                results[f"{key}/ap"] = self._baselines[f"{key}/ap"]
                results[f"{key}/loc_error"] = self._baselines[f"{key}/loc_error"]
            results.update(self.baselines(variant))
        if output_dir is not None and self.cfg.eval.num_visualize > 0:
            self.visualize(model, device, Path(output_dir) / "eval" / "detections.png")
        return results

    def visualize(self, model: nn.Module, device: torch.device, path: Path) -> None:
        """Grid of test images: predictions (green, at the deployment threshold) and GT (red),
        one row per variant; with ``eval.reference_weights`` a row of the reference's below."""
        n = self.cfg.eval.num_visualize
        models = [model]
        reference = self.reference_model(device)
        if reference is not None:
            models.append(reference)
        panels = []
        for variant in self.variants:
            images, gts = self.test_set(variant)
            for net in models:
                dets = self.predict(
                    net, images[:n], device, threshold=self.cfg.detection.detection_threshold
                )
                panels += [
                    draw_keypoints(img, k, scale=2, ground_truth=gt)
                    for img, (k, _), gt in zip(images[:n], dets, gts[:n])
                ]
        save_png(path, make_grid(panels, cols=n))
        rows = "model" + (f", then {self.reference_name}" if reference is not None else "")
        log.info("wrote %s (rows per variant: %s)", path, rows)
