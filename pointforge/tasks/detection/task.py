"""The ``centernet`` task: 2D detection with CenterNet ("Objects as Points", Zhou et al. 2019).

It wires the family's building blocks into the engine: a detection dataset (``coco``, ``voc``,
``yolo``, ``shapes_detection``, ``chess`` or one made with ``register_coco``) built from its
``data.*`` keys, Gaussian targets and the focal/L1 losses, device-side decoding, COCO box AP
(faster-coco-eval) gathered over ranks, and the predictor of ``load_predictor``.

Batches (``collate``): ``image`` float32 ``(B, 3, H, W)`` in [0, 1], ``boxes`` a list of B
``(K_i, 4)`` xyxy tensors in input pixels, ``labels`` a list of B ``(K_i,)`` int64 class
indices, ``image_id`` ``(B,)``, ``scale`` ``(B, 2)``, ``orig_size`` ``(B, 2)``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

import pointforge.tasks.detection.data  # noqa: F401  (registers the detection datasets)
from pointforge.config.compose import own_keys
from pointforge.config.schema import Config
from pointforge.data.loader import collate
from pointforge.data.repeat_factor import repeat_factor_batch_sampler
from pointforge.engine.evaluator import Evaluator
from pointforge.export.request import OnnxExportRequest
from pointforge.models.build import build_model
from pointforge.models.loading import WeightsError
from pointforge.registry import DATASETS, TASKS
from pointforge.tasks.base import Task
from pointforge.tasks.detection.coco_eval import SUMMARY_KEYS, COCOEvaluator
from pointforge.tasks.detection.data.base import DetectionDataset
from pointforge.tasks.detection.data.transforms import LetterboxTransform
from pointforge.tasks.detection.decode import detect
from pointforge.tasks.detection.losses import centernet_losses
from pointforge.tasks.detection.model import CenterNet
from pointforge.tasks.detection.options import (
    CenterNetOptions,
    check_centernet,
    loss_params,
    predictor_params,
    target_params,
)
from pointforge.tasks.detection.predictor import DetectionPredictor
from pointforge.tasks.detection.repeat_factors import (
    check_repeat_threshold,
    dataset_repeat_factors,
    summary,
    threshold_of,
)
from pointforge.tasks.detection.targets import build_targets
from pointforge.tasks.detection.visualize import draw_detections

log = logging.getLogger(__name__)

# The key whose first dimension is the number of classes (the heatmap head's last 1×1 conv).
HEATMAP_HEAD = "heatmap.2.weight"
# Buffers that hold the categories: always refitted from the dataset, so a checkpoint of
# another class count only fails on the heatmap head (the key a user must reinitialise).
CATEGORY_BUFFERS = ("category_ids$", "class_name_bytes$")
COCO_MAX_DETS = 100  # COCO's maxDets, the detections per image AP is computed over


class BoxAPEvaluator(COCOEvaluator, Evaluator):
    """:class:`COCOEvaluator` with the engine's gather (process → gather → evaluate)."""


@TASKS.register("centernet")
class CenterNetTask(Task):
    """CenterNet on any detection dataset; see the module docstring."""

    options = CenterNetOptions
    default_dataset = "shapes_detection"
    default_model = "centernet_resnet18"

    def __init__(self, cfg: Config, device: torch.device) -> None:
        super().__init__(cfg, device)
        self.targets = target_params(cfg)
        self.losses = loss_params(cfg)

    @classmethod
    def check_config(cls, cfg: Config) -> None:
        check_centernet(cfg)
        check_repeat_threshold(cfg)

    # -- data ----------------------------------------------------------------------------------
    def make_dataset(self, split: str) -> Dataset:
        """The ``split`` ("train"/"val") of ``data.name`` built from its ``data.*`` keys
        (cached by :meth:`~pointforge.tasks.base.Task.build_dataset`). Detection datasets are
        registered with a params dataclass and a factory ``(params, split)``, as
        :mod:`pointforge.tasks.detection.data` does."""
        d = self.cfg.data
        if d.name is None:
            raise ValueError("config key 'data.name' is null")
        params_cls = DATASETS.params(d.name)
        factory = DATASETS.get(d.name)
        if params_cls is None:
            raise ValueError(
                f"config key 'data.name': dataset '{d.name}' declares no parameters, so it "
                "is not a detection dataset (use coco, voc, yolo, shapes_detection, chess "
                "or one registered with register_coco)"
            )
        try:
            ds = factory(params_cls(**own_keys(d)), split=split)
        except TypeError as exc:
            raise ValueError(
                f"config key 'data.name': dataset '{d.name}' is not a detection dataset "
                f"(its factory does not take (params, split)): {exc}"
            ) from None
        if not isinstance(ds, DetectionDataset):
            raise ValueError(
                f"config key 'data.name': dataset '{d.name}' gives {type(ds).__name__}, "
                "not a DetectionDataset (use coco, voc, yolo, shapes_detection or chess)"
            )
        if len(ds) == 0:
            raise ValueError(f"dataset '{d.name}' has no images in its {split!r} split")
        return ds

    @property
    def categories(self) -> list[tuple[int, str]]:
        """``(dataset category id, name)`` per class index, from the training split."""
        return list(self.build_dataset("train").categories)  # type: ignore[attr-defined]

    def collate(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return collate(samples, as_list=("boxes", "labels"))

    def batch_sampler(
        self, dataset: Dataset, start_iter: int, rank: int, world_size: int
    ) -> Iterable[list[tuple[int, int]]]:
        """The default seeded shuffle, or with ``data.repeat_threshold`` set, repeat-factor
        sampling of rare classes (:mod:`.repeat_factors`; ``docs/detection.md``): still a pure
        function of ``(seed, batch number)``, so resume and DDP sharding stay exact."""
        t = threshold_of(self.cfg)
        if t is None:
            return super().batch_sampler(dataset, start_iter, rank, world_size)
        if not isinstance(dataset, DetectionDataset):
            raise ValueError("config key 'data.repeat_threshold' needs a detection dataset")
        factors = dataset_repeat_factors(dataset, t)
        log.info(summary(factors, dataset.class_names, self.cfg.data.batch_size))
        return repeat_factor_batch_sampler(
            factors.image, self.cfg.data.batch_size, self.cfg.seed, start_iter, rank, world_size
        )

    # -- model ---------------------------------------------------------------------------------
    def model_kwargs(self) -> dict[str, Any]:
        return {"num_classes": len(self.categories)}

    @classmethod
    def model_kwargs_from_state(cls, cfg: Config, state: dict[str, torch.Tensor]) -> dict[str, Any]:
        """``num_classes`` from the heatmap head of the weights (``load_predictor`` then needs
        no dataset: the categories are buffers of the model)."""
        if HEATMAP_HEAD not in state:
            raise WeightsError(
                f"CenterNet weights lack '{HEATMAP_HEAD}' (the heatmap head), so their number "
                "of classes is unknown; pass a checkpoint of task centernet"
            )
        return {"num_classes": int(state[HEATMAP_HEAD].shape[0])}

    def build_model(self) -> nn.Module:
        """The model with ``model.weights`` fitted and the training split's categories set.

        With weights of another class count the load error names ``heatmap.2.*`` (the
        heatmap head); ``model.load.reinit_mismatched: ['heatmap\\.2\\.']`` fine-tunes from
        them with a fresh head."""
        model = build_model(self.cfg, self.device, reinit=CATEGORY_BUFFERS, **self.model_kwargs())
        assert isinstance(model, CenterNet)
        if self.cfg.model.weights:
            held = model.categories
            if [c for c, _ in held] != [c for c, _ in self.categories]:
                log.warning(
                    "model.weights %s were trained on categories %s; the dataset's are %s",
                    self.cfg.model.weights,
                    held,
                    self.categories,
                )
        model.set_categories(self.categories)
        return model

    # -- training ------------------------------------------------------------------------------
    def training_step(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        images = self.model_input(batch["image"])
        outputs = model(images)
        targets = build_targets(
            batch["boxes"],
            batch["labels"],
            outputs["heatmap"].shape[1],
            (int(images.shape[-2]), int(images.shape[-1])),
            self.targets,
        )
        return centernet_losses(outputs, targets, self.losses)

    # -- evaluation ----------------------------------------------------------------------------
    def build_evaluator(self, output_dir: Path | None) -> Evaluator:
        """COCO box AP on the val split's own ground truth (its original pixels)."""
        val = self.build_dataset("val")
        assert isinstance(val, DetectionDataset)
        if list(val.categories) != self.categories:
            raise ValueError(
                f"dataset '{self.cfg.data.name}': the val split's categories {val.categories} "
                f"differ from the train split's {self.categories}; both must declare the same"
            )
        return BoxAPEvaluator(
            val.coco_ground_truth(), [c for c, _ in val.categories], COCO_MAX_DETS
        )

    def predict_batch(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Top-K detections in network-input pixels, decoded on the device."""
        c = self.cfg.centernet
        return detect(model, self.model_input(batch["image"]), k=c.topk, flip_test=c.flip_test)

    @classmethod
    def format_metrics(cls, metrics: dict[str, float]) -> str:
        """The six COCO summary numbers as a row, then one row per class (NaN: no GT)."""

        def cell(v: float) -> str:
            return "   nan" if math.isnan(v) else f"{v:6.3f}"

        head = " ".join(f"{k:>6}" for k in SUMMARY_KEYS)
        row = " ".join(cell(metrics.get(f"bbox/{k}", math.nan)) for k in SUMMARY_KEYS)
        lines = [f"bbox   {head}", f"       {row}"]
        per_class = {
            k[len("bbox/AP-") :]: v for k, v in metrics.items() if k.startswith("bbox/AP-")
        }
        if per_class:
            width = max(len(n) for n in per_class)
            lines.append("per-class AP:")
            lines += [f"  {n:<{width}} {cell(v)}" for n, v in per_class.items()]
        rest = {k: v for k, v in metrics.items() if not k.startswith("bbox/")}
        lines += [f"{k}: {v:.4f}" for k, v in rest.items()]
        return "\n".join(lines)

    # -- deployment ----------------------------------------------------------------------------
    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        """A grey or BGR uint8 image letterboxed as evaluation does: ``(1, 3, H, W)``."""
        rgb = DetectionPredictor._rgb(image, 0)
        chw = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))
        size = (int(self.cfg.data.image_size[0]), int(self.cfg.data.image_size[1]))
        empty = torch.zeros(0, 4)
        return LetterboxTransform(size)(chw, empty, torch.zeros(0, dtype=torch.int64))["image"][
            None
        ]

    @classmethod
    def build_predictor(
        cls, model: nn.Module, cfg: Config | None, device: str | torch.device, **options: Any
    ) -> DetectionPredictor:
        """:class:`DetectionPredictor` with ``centernet.*`` of the stored config, overridden
        by ``options`` (``input_size``, ``topk``, ``score_threshold``, ``flip_test``)."""
        from pointforge.engine.launch import resolve_device

        if cfg is None:
            raise ValueError("a CenterNet predictor needs a checkpoint with its stored config")
        if not isinstance(model, CenterNet):
            raise TypeError(f"expected a CenterNet, got {type(model).__name__}")
        params = predictor_params(cfg, **options)
        return DetectionPredictor(model, resolve_device(str(device)), params, model.categories)

    @classmethod
    def predictor_options(cls) -> tuple[str, ...]:
        return ("input_size", "topk", "score_threshold", "flip_test")

    @classmethod
    def export_onnx(cls, request: OnnxExportRequest) -> list[str]:
        """The network (sigmoid heatmap, size and offset maps; decoding stays outside) at a
        fixed size, the training size unless given; verified with onnxruntime. A deformable
        model needs opset 19 (``DeformConv``); lower opsets are refused by name."""
        from pointforge.tasks.detection.onnx_export import export_centernet_onnx

        model, cfg = request.model, request.cfg
        if not isinstance(model, CenterNet):
            raise TypeError(f"expected a CenterNet, got {type(model).__name__}")
        if request.dynamic:
            raise ValueError("detection exports are fixed-size; drop --dynamic")
        size = cfg.data.image_size if cfg is not None else (512, 512)
        h, w = request.height or int(size[0]), request.width or int(size[1])
        diffs = export_centernet_onnx(model, request.path, h, w, opset=request.opset)
        shown = ", ".join(f"{k} {v:.2g}" for k, v in diffs.items())
        return [
            f"wrote {request.path} (CenterNet heatmap/wh/offset maps, fixed 1x3x{h}x{w})",
            f"verified with onnxruntime: max |ONNX - PyTorch| {shown}",
        ]

    @classmethod
    def draw(cls, image: np.ndarray, prediction: dict[str, Any]) -> np.ndarray:
        return draw_detections(image, prediction)
