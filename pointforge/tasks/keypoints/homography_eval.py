"""Evaluation-only task: score keypoint weights on a homography benchmark (docs/evaluation.md).

Why a task: ``pointforge eval CONFIG --weights CKPT`` builds the config's task, loads the
weights into ``task.build_model()`` and calls ``task.evaluate``; registering the benchmark as
the task ``homography_eval`` plugs it into that path (and into the registries' "did you mean")
without a special case in the CLI. It has no training step.

Data: ``data.name=hpatches`` (``data.path`` = the HPatches folder) or
``data.name=homography_pairs`` (``data.path`` = any image folder, null = scikit-image's sample
photos), both resized to ``data.image_size`` with per-image factors applied to H.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import pointforge.models.superpoint  # noqa: F401  (registers the models)
from pointforge.config.schema import Config
from pointforge.data.datasets.homography_pairs import GeneratedPairs
from pointforge.data.datasets.hpatches import HPatches
from pointforge.evaluation.extractors import Extractor, OpenCVExtractor
from pointforge.evaluation.homography import PairSet, run_benchmark, summarize_all
from pointforge.evaluation.report import format_tables, write_report
from pointforge.registry import TASKS
from pointforge.tasks.keypoints.magicpoint import (
    DESCRIPTOR_KEYS,
    KeypointTask,
    build_keypoint_model,
)
from pointforge.tasks.keypoints.options import HomographyEvalOptions, check_homography_eval
from pointforge.tasks.keypoints.predictor import KeypointPredictor

EVAL_ONLY = "task 'homography_eval' is evaluation-only; run `pointforge eval CONFIG --weights CKPT`"


@TASKS.register("homography_eval")
class HomographyEvalTask(KeypointTask):
    """Repeatability, MLE, homography accuracy/AUC, NN mAP and matching score of the given
    weights next to OpenCV SIFT, ORB and Shi-Tomasi+SIFT, per split and overall."""

    options = HomographyEvalOptions
    default_dataset = "homography_pairs"

    @classmethod
    def check_config(cls, cfg: Config) -> None:
        super().check_config(cfg)
        check_homography_eval(cfg)

    def build_model(self) -> nn.Module:
        """The network named by ``model.name`` (``magicpoint`` detector-only, ``superpoint``
        with descriptors) with ``model.weights`` (``pointforge eval`` sets them from
        ``--weights``); a detector-only model ignores a descriptor head in the weights."""
        return build_keypoint_model(self.cfg, self.device, allow_unexpected=DESCRIPTOR_KEYS)

    def build_train_loader(self, start_iter: int) -> Iterator[dict[str, Any]]:
        raise ValueError(EVAL_ONLY)

    def training_step(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        raise ValueError(EVAL_ONLY)

    def build_pairs(self) -> PairSet:
        """The benchmark's pairs (a dataset of :class:`HomographyPair`)."""
        d, he = self.cfg.data, self.cfg.homography_eval
        if d.name == "hpatches":
            if d.path is None:
                raise ValueError("config key 'data.path' must name the HPatches folder")
            return HPatches(d.path, image_size=d.image_size)
        if d.name == "homography_pairs":
            return GeneratedPairs(
                d.path,
                image_size=d.image_size,
                pairs_per_image=he.pairs_per_image,
                seed=self.cfg.seed,
                homographic=d.homographic,
                photometric=d.photometric,
            )
        raise ValueError(
            f"config key 'data.name': task homography_eval needs hpatches or homography_pairs, "
            f"got '{d.name}'"
        )

    def extractors(self, model: nn.Module) -> dict[str, Extractor]:
        """``homography_eval.methods`` → extractors; ``pointforge`` is ``model`` with the
        ``detection`` settings."""
        det = self.cfg.detection
        top = max(self.cfg.homography_eval.match_keypoints, self.cfg.homography_eval.rep_keypoints)
        out: dict[str, Extractor] = {}
        for method in self.cfg.homography_eval.methods:
            if method == "pointforge":
                out[method] = KeypointPredictor(
                    model, device=self.device, **det.predictor_options()
                )
            else:
                out[method] = OpenCVExtractor(
                    method,
                    max_keypoints=top,
                    nms_radius=det.nms_radius,
                    opencv_nms=self.cfg.homography_eval.opencv_nms,
                )
        return out

    def evaluate(self, model: nn.Module, output_dir: Path | None = None) -> dict[str, float]:
        he = self.cfg.homography_eval
        pairs = self.build_pairs()
        records = run_benchmark(
            pairs, self.extractors(model), he, progress=self.cfg.train.progress_bar
        )
        metrics = summarize_all(records, he)
        if output_dir is not None:
            # Example matches: evenly spread over the viewpoint pairs (the harder ones).
            splits = [r.split for r in next(iter(records.values()))]
            pool = [i for i, s in enumerate(splits) if s in ("v", "viewpoint")] or list(
                range(len(splits))
            )
            n = min(he.num_visualize, len(pool))
            picks = [pool[int(j)] for j in np.linspace(0, len(pool) - 1, n)] if n else []
            info = {
                "task": "homography_eval",
                "data": self.cfg.data.name,
                "data.path": self.cfg.data.path or "scikit-image sample photos",
                "image_size": list(self.cfg.data.image_size),
                "pairs": len(pairs),
                "weights": self.cfg.model.weights or "(loaded by the caller)",
            }
            write_report(output_dir, metrics, records, [(i, pairs[i]) for i in picks], info)
        return metrics

    @classmethod
    def format_metrics(cls, metrics: dict[str, float]) -> str:
        """Terminal table: methods side by side, one block per split ("n/a" = not defined)."""
        return format_tables(metrics)
