"""The ``classification`` task: a torchvision ResNet trained with label-smoothed cross-entropy.

It proves the engine is task-agnostic: the Trainer, hooks, checkpoints and exact resume are
the ones MagicPoint uses; only the four Task methods below are classification-specific.
Batches are ``{"image": float (B, C, H, W), "label": int64 (B,)}``; evaluation runs the
held-out "val" split (never trained on) and returns ``top1``, ``top5``, ... as fractions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

import pointforge.data.datasets.digits
import pointforge.data.datasets.image_folder
import pointforge.models.resnet  # noqa: F401  (registers the datasets and models)
from pointforge.config.schema import Config
from pointforge.data.loader import collate
from pointforge.data.transforms.classification import build_classification_transform
from pointforge.evaluation.classification import ClassificationMeter
from pointforge.models.loading import load_weights
from pointforge.registry import DATASETS, MODELS, TASKS
from pointforge.tasks.base import Task


@TASKS.register("classification")
class ClassificationTask(Task):
    """Single-label classification; datasets must expose ``classes`` and yield image + label."""

    def __init__(self, cfg: Config, device: torch.device) -> None:
        super().__init__(cfg, device)
        c = cfg.classification
        self.criterion = nn.CrossEntropyLoss(label_smoothing=c.label_smoothing)
        self._datasets: dict[str, Dataset] = {}

    # -- data ----------------------------------------------------------------------------------
    def dataset(self, split: str) -> Dataset:
        """The ``split`` ("train" or "val") dataset with its transform (built once, cached)."""
        if split not in self._datasets:
            d = self.cfg.data
            size = (d.image_size[0], d.image_size[1])
            transform = build_classification_transform(
                self.cfg.classification, size, train=split == "train"
            )
            try:
                ds = DATASETS.build(
                    d.name,
                    root=d.root,
                    split=split,
                    val_fraction=d.val_fraction,
                    split_seed=d.split_seed,
                    transform=transform,
                )
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
            if len(ds) == 0:  # type: ignore[arg-type]
                raise ValueError(f"dataset '{d.name}' has no images in its {split!r} split")
            self._datasets[split] = ds
        return self._datasets[split]

    @property
    def classes(self) -> list[str]:
        return list(self.dataset("train").classes)  # type: ignore[attr-defined]

    # -- Task API ------------------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        m = self.cfg.model
        try:
            model: nn.Module = MODELS.build(
                m.name,
                num_classes=len(self.classes),
                in_channels=self.cfg.classification.in_channels,
                small_input=m.small_input,
            )
        except TypeError as exc:
            raise ValueError(
                f"config key 'model.name': model '{m.name}' is not a classifier "
                f"(use resnet18, resnet34 or resnet50): {exc}"
            ) from None
        if m.weights:
            load_weights(model, m.weights, reinit=m.load.reinit_mismatched)
        model = model.to(self.device)
        if self.cfg.train.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def build_train_loader(self, start_iter: int) -> Iterator[dict[str, Any]]:
        return self.endless_loader(self.dataset("train"), start_iter)

    def _images(self, batch: dict[str, Any]) -> torch.Tensor:
        images: torch.Tensor = batch["image"]  # (B, C, H, W)
        if self.cfg.train.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def training_step(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        logits = model(self._images(batch))  # (B, num_classes)
        # The loss in float32 even under autocast (the Trainer's AMP contract).
        return {"loss_cls": self.criterion(logits.float(), batch["label"])}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, output_dir: Path | None = None) -> dict[str, float]:
        """Top-k accuracy, mean per-class accuracy and cross-entropy on the "val" split.

        Writes ``output_dir/eval/confusion.json`` (classes and the true × predicted counts).
        """
        dataset = self.dataset("val")
        loader = DataLoader(
            dataset,
            batch_size=self.cfg.eval.batch_size or self.cfg.data.batch_size,
            shuffle=False,
            num_workers=self.cfg.data.num_workers or 0,
            collate_fn=collate,
            pin_memory=self.pin_memory,
        )
        meter = ClassificationMeter(len(self.classes), self.cfg.classification.topk)
        was_training = model.training
        model.eval()
        try:
            for batch in loader:
                images = self._images(batch).to(self.device, non_blocking=True)
                meter.update(model(images), batch["label"].to(self.device))
        finally:
            model.train(was_training)
        if output_dir is not None:
            out = Path(output_dir) / "eval" / "confusion.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            payload = {"classes": self.classes, "confusion": meter.confusion.tolist()}
            out.write_text(json.dumps(payload) + "\n")
        return meter.compute()
