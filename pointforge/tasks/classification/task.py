"""The ``classification`` task: a torchvision ResNet trained with label-smoothed cross-entropy.

It proves the engine is task-agnostic: the Trainer, hooks, checkpoints and exact resume are
the ones MagicPoint uses; only the methods below are classification-specific.
Batches are ``{"image": float (B, C, H, W), "label": int64 (B,)}``; evaluation runs the
held-out "val" split (never trained on) and returns ``top1``, ``top5``, ... as fractions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

import pointforge.data.datasets.digits
import pointforge.data.datasets.image_folder
import pointforge.models.resnet  # noqa: F401  (registers the datasets and models)
from pointforge.config.compose import own_keys
from pointforge.config.schema import Config
from pointforge.data.transforms.classification import build_classification_transform
from pointforge.engine.evaluator import Evaluator
from pointforge.evaluation.classification import ClassificationMeter
from pointforge.registry import DATASETS, TASKS
from pointforge.tasks.base import Task
from pointforge.tasks.classification.options import ClassificationOptions, check_classification


class ClassificationEvaluator(Evaluator):
    """Stores each sample's logits and label; scores the whole split once (top-k, mean
    per-class accuracy, cross-entropy), so the result is the same on any number of ranks."""

    def __init__(
        self, classes: list[str], topk: tuple[int, ...], output_dir: Path | None = None
    ) -> None:
        super().__init__()
        self.classes = classes
        self.topk = topk
        self.output_dir = output_dir

    def process(self, inputs: dict[str, Any], outputs: Any) -> None:
        logits = outputs.detach().float().cpu()  # (B, num_classes)
        self.predictions.extend(zip(logits, inputs["label"].cpu(), strict=True))

    def evaluate(self) -> dict[str, float]:
        meter = ClassificationMeter(len(self.classes), self.topk)
        if self.predictions:
            logits, labels = zip(*self.predictions, strict=True)
            meter.update(torch.stack(logits), torch.stack(labels))
        if self.output_dir is not None:
            out = Path(self.output_dir) / "eval" / "confusion.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            payload = {"classes": self.classes, "confusion": meter.confusion.tolist()}
            out.write_text(json.dumps(payload) + "\n")
        return meter.compute()


@TASKS.register("classification")
class ClassificationTask(Task):
    """Single-label classification; datasets must expose ``classes`` and yield image + label."""

    options = ClassificationOptions
    default_dataset = "digits"
    default_model = "resnet18"

    def __init__(self, cfg: Config, device: torch.device) -> None:
        super().__init__(cfg, device)
        c = cfg.classification
        self.criterion = nn.CrossEntropyLoss(label_smoothing=c.label_smoothing)

    @classmethod
    def check_config(cls, cfg: Config) -> None:
        check_classification(cfg)

    # -- data ----------------------------------------------------------------------------------
    def make_dataset(self, split: str) -> Dataset:
        """The ``split`` ("train" or "val") dataset with its transform (cached by
        :meth:`~pointforge.tasks.base.Task.build_dataset`)."""
        d = self.cfg.data
        size = (d.image_size[0], d.image_size[1])
        transform = build_classification_transform(
            self.cfg.classification, size, train=split == "train"
        )
        kwargs = {k: v for k, v in own_keys(d).items() if k != "image_size"}
        if d.name is None:
            raise ValueError("config key 'data.name' is null (load_config sets the task's default)")
        try:
            ds = DATASETS.build(d.name, split=split, transform=transform, **kwargs)
        except TypeError as exc:
            raise ValueError(
                f"config key 'data.name': dataset '{d.name}' is not a classification "
                f"dataset (use digits or image_folder): {exc}"
            ) from None
        if not isinstance(getattr(ds, "classes", None), list):
            raise ValueError(
                f"config key 'data.name': dataset '{d.name}' has no class list, so it is not "
                "a classification dataset (use digits or image_folder)"
            )
        if len(ds) == 0:
            raise ValueError(f"dataset '{d.name}' has no images in its {split!r} split")
        return ds

    @property
    def classes(self) -> list[str]:
        return list(self.build_dataset("train").classes)  # type: ignore[attr-defined]

    # -- Task API ------------------------------------------------------------------------------
    def model_kwargs(self) -> dict[str, Any]:
        return {
            "num_classes": len(self.classes),
            "in_channels": self.cfg.classification.in_channels,
        }

    def build_model(self) -> nn.Module:
        try:
            return super().build_model()
        except TypeError as exc:  # a registered model that takes no num_classes/in_channels
            raise ValueError(
                f"config key 'model.name': model '{self.cfg.model.name}' is not a classifier "
                f"(use resnet18, resnet34 or resnet50): {exc}"
            ) from None

    def training_step(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        logits = model(self.model_input(batch["image"]))  # (B, num_classes)
        # The loss in float32 even under autocast (the Trainer's AMP contract).
        return {"loss_cls": self.criterion(logits.float(), batch["label"])}

    def predict_batch(self, model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        return model(self.model_input(batch["image"]))

    def build_evaluator(self, output_dir: Path | None) -> Evaluator:
        """Writes ``output_dir/eval/confusion.json`` (classes × true × predicted counts)."""
        return ClassificationEvaluator(
            self.classes, tuple(self.cfg.classification.topk), output_dir
        )

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        """The deterministic eval transform (resize, channel policy, mean/std) of one grey or
        BGR uint8 image: ``(1, in_channels, h, w)``."""
        if image.ndim == 2:
            chw = torch.from_numpy(image)[None]  # (1, H, W)
        else:
            rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            chw = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))  # (3, H, W)
        height, width = (int(v) for v in self.cfg.data.image_size)
        transform = build_classification_transform(
            self.cfg.classification, (height, width), train=False
        )
        return transform(chw)[None]

    @classmethod
    def build_predictor(
        cls, model: nn.Module, cfg: Config | None, device: str | torch.device, **options: Any
    ) -> ClassificationPredictor:
        if cfg is None:
            raise ValueError("a classification predictor needs a checkpoint with its config")
        return ClassificationPredictor(model, cfg, device)


class ClassificationPredictor:
    """``pred(image)`` → ``{"label": int, "scores": float32 (num_classes,)}`` (softmax) for a
    grey or BGR uint8 image, preprocessed exactly as evaluation does."""

    def __init__(self, model: nn.Module, cfg: Config, device: str | torch.device) -> None:
        from pointforge.engine.launch import resolve_device

        self.device = resolve_device(str(device))
        self.model = model.to(self.device).eval()
        self.task = ClassificationTask(cfg, self.device)

    @torch.inference_mode()
    def __call__(self, image: np.ndarray) -> dict[str, Any]:
        x = self.task.preprocess(image).to(self.device)
        scores = torch.softmax(self.model(x).float(), dim=1)[0].cpu().numpy()
        return {"label": int(scores.argmax()), "scores": scores}
