"""MagicPoint: the SuperPoint detector trained on Synthetic Shapes.

The task glues the generic engine to keypoint pieces: the dataset yields images, ragged
ground-truth points and valid masks; ``training_step`` turns points into 65-class cell labels
on the device (so the random "one keypoint per cell" choice uses the checkpointed torch RNG)
and returns the detector cross-entropy. Evaluation follows ``docs/evaluation.md``.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import pointforge.data.datasets.photo_folder
import pointforge.data.datasets.synthetic_shapes
import pointforge.models.superpoint  # noqa: F401  (registers the datasets and models)
from pointforge.config.compose import own_keys, replace_section
from pointforge.config.schema import Config
from pointforge.data.loader import collate
from pointforge.evaluation.report import format_method_table
from pointforge.export.request import OnnxExportRequest
from pointforge.models.build import build_model
from pointforge.models.loading import WeightsError, read_state_dict
from pointforge.models.superpoint import model_overrides_for
from pointforge.registry import DATASETS, TASKS
from pointforge.tasks.base import Task
from pointforge.tasks.keypoints.evaluate import ShapesDetectionEvaluator
from pointforge.tasks.keypoints.labels import (
    keypoint_map_to_labels,
    points_to_keypoint_map,
    valid_mask_to_cells,
)
from pointforge.tasks.keypoints.losses import detector_loss
from pointforge.tasks.keypoints.options import (
    MagicPointOptions,
    check_adaptation,
    check_detection,
    check_image_size,
)
from pointforge.tasks.keypoints.predictor import KeypointPredictor, build_model_for_state_dict
from pointforge.visualization import draw_keypoints

# Descriptor-head parameter names (MagicLeap v1 convD*, our optional bnD*).
DESCRIPTOR_KEYS = (r"convD", r"bnD")


# Ragged per-image keypoint lists: never stacked, even when two images have as many points.
POINT_KEYS = ("points", "warped_points")


def build_keypoint_model(cfg: Config, device: torch.device, **kwargs: Any) -> nn.Module:
    """:func:`build_model`, whose weights error also names the ``model.*`` overrides that fit
    the checkpoint (``model.name=superpoint_lite`` for the shipped Lite weights, say)."""
    try:
        return build_model(cfg, device, **kwargs)
    except WeightsError as exc:
        weights = cfg.model.weights
        try:
            fix = model_overrides_for(read_state_dict(weights)) if weights else None
        except Exception:  # unreadable: the original error already says so
            fix = None
        current = {"model.name": cfg.model.name}
        current |= {f"model.{k}": str(v).lower() for k, v in own_keys(cfg.model).items()}
        if fix is None or all(current.get(k) == v for k, v in _pairs(fix)):
            raise
        raise WeightsError(f"{exc}; these weights fit {fix}") from exc


def _pairs(overrides: str) -> list[tuple[str, str]]:
    return [tuple(t.split("=", 1)) for t in overrides.split()]  # type: ignore[misc]


class KeypointTask(Task):
    """What every keypoint task shares: the SuperPoint family of models, ragged point
    collation, the ×8 shape rule, and the keypoint predictor (``load_predictor``)."""

    default_model: ClassVar[str | None] = "magicpoint"

    @classmethod
    def check_config(cls, cfg: Config) -> None:
        check_image_size(cfg)
        check_detection(cfg)

    def collate(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return collate(samples, as_list=POINT_KEYS)

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        """Grey ``(1, 1, h, w)`` in [0, 1] at ``data.image_size`` (what evaluation feeds)."""
        grey = KeypointPredictor.to_grey(image)
        height, width = (int(v) for v in self.cfg.data.image_size)
        x = torch.from_numpy(grey)[None, None].float()
        return F.interpolate(x, size=(height, width), mode="bilinear", antialias=True) / 255.0

    @classmethod
    def build_predictor(
        cls, model: nn.Module, cfg: Config | None, device: str | torch.device, **options: Any
    ) -> KeypointPredictor:
        """A :class:`KeypointPredictor`; ``options`` override the stored ``detection.*``."""
        from pointforge.predictor import check_options

        check_options(KeypointPredictor, options, skip=("model", "device"))
        if cfg is not None and hasattr(cfg, "detection"):
            options = {**cfg.detection.predictor_options(), **options}
        return KeypointPredictor(model, device=device, **options)

    @classmethod
    def export_onnx(cls, request: OnnxExportRequest) -> list[str]:
        """Grey ``(B, 1, H, W)`` in → heatmap (and descriptors); 480×640 unless given, and
        ``request.dynamic`` makes batch, H and W symbolic (:mod:`.onnx_cmd`)."""
        from pointforge.tasks.keypoints.onnx_cmd import export_keypoint_onnx

        return export_keypoint_onnx(request)

    @classmethod
    def predictor_options(cls) -> tuple[str, ...]:
        names = inspect.signature(KeypointPredictor).parameters
        return tuple(n for n in names if n not in ("model", "device"))

    @classmethod
    def predictor_model(cls, cfg: Config | None, state: dict[str, torch.Tensor]) -> nn.Module:
        """The SuperPoint variant the weights themselves describe (descriptor head, BN)."""
        return build_model_for_state_dict(state)

    @classmethod
    def claims_state_dict(cls, state: dict[str, torch.Tensor]) -> bool:
        """MagicLeap-v1-named weights (``conv1a`` ... ``convPb``) are keypoint models."""
        return "conv1a.weight" in state and "convPb.weight" in state

    @classmethod
    def draw(cls, image: np.ndarray, prediction: dict[str, Any]) -> np.ndarray:
        return draw_keypoints(image, prediction["keypoints"])


@TASKS.register("magicpoint")
class MagicPointTask(KeypointTask):
    """Detector-only training on procedurally generated Synthetic Shapes."""

    options = MagicPointOptions
    default_dataset = "synthetic_shapes"

    def __init__(self, cfg: Config, device: torch.device) -> None:
        super().__init__(cfg, device)
        self._evaluator: ShapesDetectionEvaluator | None = None

    @classmethod
    def check_config(cls, cfg: Config) -> None:
        super().check_config(cfg)
        check_adaptation(cfg)

    @classmethod
    def resolve_config(cls, cfg: Config) -> Config:
        """``eval.batch_size: null`` → ``data.batch_size``."""
        if cfg.eval.batch_size is not None:
            return cfg
        ev = dataclasses.replace(cfg.eval, batch_size=cfg.data.batch_size)
        return replace_section(cfg, eval=ev)

    def build_model(self) -> nn.Module:
        # A detector-only model may start from full SuperPoint weights: it ignores the
        # descriptor head (convDa/convDb and their BatchNorms); anything else must fit.
        return build_keypoint_model(self.cfg, self.device, allow_unexpected=DESCRIPTOR_KEYS)

    def build_dataset(self, split: str, **overrides: Any) -> torch.utils.data.Dataset:
        d = self.cfg.data
        if d.name != "synthetic_shapes":
            raise ValueError(
                f"config key 'data.name': task magicpoint trains on synthetic_shapes, got "
                f"'{d.name}' (photo_folder is the input of `pointforge export-labels`)"
            )
        kwargs: dict[str, Any] = {
            "split": split,
            "image_size": tuple(d.image_size),
            "seed": self.cfg.seed,
            "primitives": d.primitives,
            "photometric": d.photometric if d.photometric.enabled else None,
            "homographic": d.homographic if d.homographic.enabled else None,
        }
        kwargs.update(overrides)
        return DATASETS.build(d.name, **kwargs)

    def training_step(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        images = self.model_input(batch["image"])  # (B, 1, H, W)
        height, width = images.shape[-2:]
        out = model(images)
        kmap = points_to_keypoint_map(batch["points"], height, width)  # (B, H, W)
        labels = keypoint_map_to_labels(kmap)  # (B, H/8, W/8), dustbin = 64
        valid = valid_mask_to_cells(batch["valid_mask"])  # (B, H/8, W/8)
        return {"loss_det": detector_loss(out["logits"], labels, valid)}

    @property
    def evaluator(self) -> ShapesDetectionEvaluator:
        if self._evaluator is None:
            self._evaluator = ShapesDetectionEvaluator(self.cfg)
        return self._evaluator

    def evaluate(self, model: nn.Module, output_dir: Path | None = None) -> dict[str, float]:
        """Pooled AP on the frozen test sets. Every rank scores the whole (small, procedural)
        test set, so the result is the single-process one without gathering."""
        was_training = model.training
        model.eval()
        try:
            return self.evaluator.evaluate(model, self.device, output_dir)
        finally:
            model.train(was_training)

    @classmethod
    def format_metrics(cls, metrics: dict[str, float]) -> str:
        return format_method_table(metrics)
