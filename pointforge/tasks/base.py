"""The Task contract: everything task-specific the engine, the CLI and the API need.

Why: the Trainer must know nothing about keypoints, boxes or identities, and neither may the
config core, the CLI or ``load_predictor``. A Task owns its config sections (``options``),
how its model is built, its data pipeline (dataset, collate, batch sampler), how a batch
becomes named losses, its extra hooks, its evaluator, its predictor and how a prediction is
drawn. Adding a task family means adding a folder with a Task (``docs/adding_a_task.md``);
everything here has a default so a task overrides only what differs.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from pointforge.config.schema import Config
from pointforge.data.loader import (
    build_eval_loader,
    build_train_loader,
    collate,
    default_batch_sampler,
)
from pointforge.engine import comm
from pointforge.engine.evaluator import Evaluator, inference_on_dataset
from pointforge.export.request import OnnxExportRequest
from pointforge.models.build import build_model

if TYPE_CHECKING:
    from pointforge.engine.hooks import HookBase
    from pointforge.engine.trainer import Trainer


class Task(abc.ABC):
    """Base class. Subclasses are registered in :data:`pointforge.registry.TASKS`.

    Class attributes:
        options: a frozen dataclass whose fields are this task's top-level config sections
            (e.g. ``descriptor_loss``), reached as ``cfg.<section>``; ``None``: no sections.
        default_dataset / default_model: ``data.name`` / ``model.name`` when the config
            leaves them null.
    """

    options: ClassVar[type | None] = None
    default_dataset: ClassVar[str | None] = None
    default_model: ClassVar[str | None] = None

    def __init__(self, cfg: Config, device: torch.device) -> None:
        self.cfg = cfg
        self.device = device
        # Built splits by name (:meth:`_cached_split`): one dataset object per split and task.
        self._datasets: dict[str, Dataset] = {}

    # -- config --------------------------------------------------------------------------------
    @classmethod
    def check_config(cls, cfg: Config) -> None:
        """Value checks of this task's sections and of the data/model keys it relies on
        (shape rules such as "sides divisible by 8" belong here); raise ``ConfigError``
        naming the key (``pointforge.config.validate.need``). Default: nothing to check."""
        return None

    @classmethod
    def resolve_config(cls, cfg: Config) -> Config:
        """Fill this task's "None means inherit" defaults once, at load time."""
        return cfg

    # -- model ---------------------------------------------------------------------------------
    def model_kwargs(self) -> dict[str, Any]:
        """Arguments the model factory needs from the task (e.g. ``num_classes``)."""
        return {}

    def build_model(self) -> nn.Module:
        """A fresh model with ``model.weights`` fitted, on ``self.device``."""
        return build_model(self.cfg, self.device, **self.model_kwargs())

    # -- data ----------------------------------------------------------------------------------
    @property
    def pin_memory(self) -> bool:
        """``data.pin_memory``, where null means: pin when training on CUDA."""
        pin = self.cfg.data.pin_memory
        return pin if pin is not None else self.device.type == "cuda"

    def build_dataset(self, split: str) -> Dataset:
        """The ``split`` ("train", "val") dataset, built once by :meth:`make_dataset` and then
        returned as the same object: the loader, the evaluator and task properties (e.g. the
        class list read from "train") share one dataset instead of re-reading annotations.
        A task whose splits take extra arguments (the keypoint tasks' ``**overrides``) or must
        be fresh on each call overrides this method itself instead of :meth:`make_dataset`."""
        return self._cached_split(split, self.make_dataset)

    def make_dataset(self, split: str) -> Dataset:
        """Build the ``split`` dataset afresh (called by :meth:`build_dataset`, which caches
        it); raise for a split the task does not have. Tasks that train or use the default
        :meth:`evaluate` override this."""
        raise NotImplementedError(f"task '{self.cfg.task}' defines no '{split}' dataset")

    def _cached_split(self, name: str, build: Callable[[str], Dataset]) -> Dataset:
        """``build(name)`` on the first call for ``name``, the stored result afterwards. Why one
        helper: every task caches its splits the same way, and a task with more splits than
        "train"/"val" (re-ID's query and gallery) reuses it under their names. A failed build
        stores nothing, so the same call raises the same error again."""
        if name not in self._datasets:
            self._datasets[name] = build(name)
        return self._datasets[name]

    def collate(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Samples → batch: equal-shaped tensors are stacked, ragged ones kept as lists."""
        return collate(samples)

    def batch_sampler(
        self, dataset: Dataset, start_iter: int, rank: int, world_size: int
    ) -> Iterable[list[tuple[int, int]]]:
        """This rank's share of each global training batch, from batch ``start_iter`` on, as
        ``(global stream position, dataset index)`` pairs. It must be a pure function of the
        seed and the batch number (exact resume, DDP = single process). Default: seeded
        per-epoch permutations, ranks interleaved (:func:`default_batch_sampler`)."""
        return default_batch_sampler(
            len(dataset),  # type: ignore[arg-type]
            self.cfg.data.batch_size,
            self.cfg.seed,
            start_iter,
            rank,
            world_size,
        )

    def build_train_loader(self, start_iter: int) -> Iterator[dict[str, Any]]:
        """Endless batch iterator positioned at batch ``start_iter`` (exact resume)."""
        dataset = self.build_dataset("train")
        d = self.cfg.data
        return build_train_loader(
            dataset,
            batch_size=d.batch_size,
            num_workers=d.num_workers or 0,
            seed=self.cfg.seed,
            start_iter=start_iter,
            pin_memory=self.pin_memory,
            collate_fn=self.collate,
            batch_sampler=self.batch_sampler(
                dataset, start_iter, comm.get_rank(), comm.get_world_size()
            ),
        )

    @abc.abstractmethod
    def training_step(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Named scalar losses for one batch (already on the device); the Trainer sums them."""

    # -- hooks ---------------------------------------------------------------------------------
    def extra_hooks(self, trainer: Trainer) -> list[HookBase]:
        """Hooks this task adds to the engine's (run after the checkpointer and evaluation)."""
        return []

    # -- evaluation ----------------------------------------------------------------------------
    def build_evaluator(self, output_dir: Path | None) -> Evaluator:
        """The evaluator of :meth:`evaluate`; ``output_dir`` receives artefacts (rank 0)."""
        raise NotImplementedError(f"task '{self.cfg.task}' has no evaluator")

    def predict_batch(self, model: nn.Module, batch: dict[str, Any]) -> Any:
        """Model outputs of an evaluation batch (default: ``model(batch["image"])``, any shape:
        tasks whose input is an image batch call :meth:`model_input` themselves)."""
        return model(batch["image"].to(self.device, non_blocking=True))

    def model_input(self, images: torch.Tensor) -> torch.Tensor:
        """``images (B, C, H, W)`` as the model takes them: on ``self.device`` (a no-op for
        training batches, which the trainer has moved) and channels_last when
        ``train.channels_last`` converted the model (models/build.py)."""
        images = images.to(self.device, non_blocking=True)
        if self.cfg.train.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    @property
    def eval_batch_size(self) -> int:
        """Images per forward in evaluation (default: ``data.batch_size``)."""
        return int(self.cfg.data.batch_size)

    def evaluate(self, model: nn.Module, output_dir: Path | None = None) -> dict[str, float]:
        """Metrics of ``model`` on the "val" split: each rank runs its shard, the evaluator's
        stored predictions are gathered to rank 0 and scored once (``docs/evaluation.md``)."""
        evaluator = self.build_evaluator(output_dir)
        loader = build_eval_loader(
            self.build_dataset("val"),
            batch_size=self.eval_batch_size,
            num_workers=self.cfg.data.num_workers or 0,
            collate_fn=self.collate,
            pin_memory=self.pin_memory,
        )
        return inference_on_dataset(
            model, loader, self.predict_batch, evaluator, self.cfg.train.progress_bar
        )

    @classmethod
    def format_metrics(cls, metrics: dict[str, float]) -> str:
        """How ``pointforge train``/``eval`` print the metrics (default: one per line)."""
        return "\n".join(f"{k}: {v:.4f}" for k, v in metrics.items())

    # -- deployment ----------------------------------------------------------------------------
    @classmethod
    def build_predictor(
        cls, model: nn.Module, cfg: Config | None, device: str | torch.device, **options: Any
    ) -> Callable[..., Any]:
        """The object ``pointforge.load_predictor`` returns for a checkpoint of this task.
        ``cfg`` is the checkpoint's stored config (``None`` for a foreign state dict)."""
        raise NotImplementedError(f"task {cls.__name__} has no predictor")

    @classmethod
    def export_onnx(cls, request: OnnxExportRequest) -> list[str]:
        """Write ``request.model`` as ONNX to ``request.path`` (``pointforge export-onnx``)
        and, with ``request.verify``, check it against PyTorch with onnxruntime; returns the
        lines to print. ``request.height``/``width`` None mean the task's own input size.
        One request value rather than loose parameters, so overrides and the CLI do not repeat
        the option list (:mod:`pointforge.export.request`)."""
        raise NotImplementedError(f"task {cls.__name__} has no ONNX export")

    @classmethod
    def predictor_options(cls) -> tuple[str, ...]:
        """The keyword options :meth:`build_predictor` takes (``load_predictor(**options)``)."""
        return ()

    @classmethod
    def predictor_model(
        cls, cfg: Config | None, state: dict[str, torch.Tensor]
    ) -> nn.Module | None:
        """The network for ``state`` when :meth:`build_predictor` needs one built from the
        weights alone; ``None`` means: build ``cfg``'s model with the shared helper."""
        return None

    @classmethod
    def claims_state_dict(cls, state: dict[str, torch.Tensor]) -> bool:
        """Whether a bare state dict without a stored config (e.g. weights converted from
        another project) is this task's, so ``load_predictor`` can route it here."""
        return False

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        """A grey ``(H, W)`` or BGR ``(H, W, 3)`` uint8 image → the model's input
        ``(1, C, h, w)``, as evaluation feeds it (used by ``summary``/``explain``)."""
        raise NotImplementedError(f"task '{self.cfg.task}' does not preprocess single images")

    @classmethod
    def draw(cls, image: np.ndarray, prediction: dict[str, Any]) -> np.ndarray:
        """A BGR picture of ``prediction`` on ``image`` (what ``pointforge detect`` writes)."""
        raise NotImplementedError(f"task {cls.__name__} does not draw its predictions")
