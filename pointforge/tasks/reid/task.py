"""The ``reid`` task: FastReID's BoT baseline on the engine (``docs/reid.md``).

Batches are P identities × K images (:class:`PKBatchSampler`, replacing the engine's default
sampler, so exact resume and DDP sharding hold: every rank draws its P/world identities of
global batch ``it`` from ``(seed, it)`` alone). ``training_step`` sums the label-smoothed
cross-entropy on the post-BNNeck logits and the batch-hard triplet loss on the pre-BNNeck
feature (Luo et al. 2019, §3.6). Evaluation embeds the query + gallery set (each rank its
shard), gathers the embeddings to rank 0 and ranks the whole set once: ``reid/rank1``,
``reid/rank5``, ``reid/rank10``, ``reid/mAP``, ``reid/mINP`` (and ``reid_rerank/...`` with
``reid.eval.rerank``). The predictor turns crops into unit-norm embeddings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

import pointforge.tasks.reid.datasets
import pointforge.tasks.reid.model  # noqa: F401  (registers the models)
from pointforge.config.compose import own_keys
from pointforge.config.schema import Config
from pointforge.engine.evaluator import Evaluator
from pointforge.export.request import OnnxExportRequest
from pointforge.registry import DATASETS, TASKS
from pointforge.tasks.base import Task
from pointforge.tasks.reid.data.image_set import QueryGallerySet
from pointforge.tasks.reid.data.sampler import PKBatchSampler
from pointforge.tasks.reid.data.transforms import build_reid_transform
from pointforge.tasks.reid.datasets import REID_DATASETS
from pointforge.tasks.reid.evaluator import ReIDEvaluator
from pointforge.tasks.reid.losses import batch_hard_triplet, cross_entropy_label_smooth
from pointforge.tasks.reid.options import (
    ReIDOptions,
    check_reid,
    resolve_reid,
    transform_params,
)
from pointforge.tasks.reid.predictor import ReIDPredictor, crop_to_input
from pointforge.tasks.reid.retrieval import draw_strip


@TASKS.register("reid")
class ReIDTask(Task):
    """Person / vehicle re-identification with a BNNeck ResNet (see the module docstring)."""

    options = ReIDOptions
    default_dataset = "synthetic_reid"
    default_model = "reid_resnet18"

    @classmethod
    def resolve_config(cls, cfg: Config) -> Config:
        return resolve_reid(cfg)

    @classmethod
    def check_config(cls, cfg: Config) -> None:
        check_reid(cfg)

    # -- data ----------------------------------------------------------------------------------
    def split(self, name: str) -> Dataset:
        """Split ``train``, ``query`` or ``gallery`` of ``data.name`` with its transform
        (augmented for train), built once (cached by the base Task under its name, so
        ``split("train")`` and ``build_dataset("train")`` are the same object)."""
        return self._cached_split(name, self._read_split)

    def _read_split(self, name: str) -> Dataset:
        """Read split ``name`` afresh (see :meth:`split`)."""
        d = self.cfg.data
        transform = build_reid_transform(transform_params(self.cfg), train=name == "train")
        try:
            ds = DATASETS.build(str(d.name), split=name, transform=transform, **own_keys(d))
        except TypeError as exc:
            raise ValueError(
                f"config key 'data.name': dataset '{d.name}' is not a re-ID dataset (use "
                f"one of {', '.join(REID_DATASETS)}): {exc}"
            ) from None
        if not hasattr(ds, "pids") or not hasattr(ds, "camids"):
            raise ValueError(
                f"config key 'data.name': dataset '{d.name}' has no identities (.pids / "
                f".camids); use one of {', '.join(REID_DATASETS)}"
            )
        return ds

    def make_dataset(self, split: str) -> Dataset:
        """``train`` (augmented), or ``val``: the queries followed by the gallery."""
        if split == "train":
            return self._read_split("train")
        if split == "val":
            return QueryGallerySet(self.split("query"), self.split("gallery"))
        raise ValueError(f"re-ID datasets have splits 'train' and 'val', got {split!r}")

    def batch_sampler(
        self, dataset: Dataset, start_iter: int, rank: int, world_size: int
    ) -> Iterable[list[tuple[int, int]]]:
        """P×K batches: rank ``rank`` gets P/world_size whole identities of global batch
        ``it`` (the triplet loss is computed per rank), a pure function of ``(seed, it)``."""
        r = self.cfg.reid
        pids = getattr(dataset, "pids", None)
        if pids is None:
            raise ValueError("the P×K sampler needs a dataset with .pids (a re-ID dataset)")
        return PKBatchSampler(pids, r.p, r.k, self.cfg.seed, start_iter, rank, world_size)

    # -- model ---------------------------------------------------------------------------------
    def model_kwargs(self) -> dict[str, Any]:
        """``num_classes``: the training identities (the classifier's outputs)."""
        return {"num_classes": int(self.split("train").num_classes)}  # type: ignore[attr-defined]

    @classmethod
    def model_kwargs_from_state(cls, cfg: Config, state: dict[str, torch.Tensor]) -> dict[str, Any]:
        """``num_classes`` from the classifier's ``(num_classes, D)`` weight, so loading a
        checkpoint does not need its training data (``load_predictor``)."""
        keys = [k for k in state if k.endswith("classifier.weight")]
        if len(keys) != 1:
            raise ValueError(
                f"a re-ID checkpoint holds one 'classifier.weight' tensor, found {keys or 'none'}"
            )
        return {"num_classes": int(state[keys[0]].shape[0])}

    def training_step(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """``loss_ce`` (logits after the BNNeck) + ``loss_triplet`` (features before it)."""
        r = self.cfg.reid
        out = model(self.model_input(batch["image"]))
        pids = batch["pid"]
        losses: dict[str, torch.Tensor] = {}
        if r.ce_weight > 0:
            ce = cross_entropy_label_smooth(out["logits"], pids, r.label_smoothing)
            losses["loss_ce"] = r.ce_weight * ce
        if r.triplet_weight > 0:
            tri = batch_hard_triplet(out["features"], pids, r.triplet_margin, r.soft_margin)
            losses["loss_triplet"] = r.triplet_weight * tri
        return losses

    # -- evaluation ----------------------------------------------------------------------------
    @property
    def eval_batch_size(self) -> int:
        return int(self.cfg.reid.eval_batch_size or self.cfg.data.batch_size)

    def predict_batch(self, model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        """Eval-mode embeddings ``(B, D)`` (post-BNNeck, not normalised: the evaluator's
        metric decides)."""
        out: torch.Tensor = model(self.model_input(batch["image"]))
        return out

    def build_evaluator(self, output_dir: Path | None) -> Evaluator:
        return ReIDEvaluator(self.cfg.reid.eval)

    # -- deployment ----------------------------------------------------------------------------
    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        """A BGR (or grey) ``uint8`` crop → ``(1, 3, H, W)``, as evaluation feeds it."""
        return crop_to_input(image, transform_params(self.cfg))[None]

    @classmethod
    def build_predictor(
        cls, model: nn.Module, cfg: Config | None, device: str | torch.device, **options: Any
    ) -> Callable[..., Any]:
        """:class:`ReIDPredictor`; option ``batch_size``: crops per forward (64)."""
        from pointforge.engine.launch import resolve_device

        unknown = sorted(set(options) - set(cls.predictor_options()))
        if unknown:
            raise TypeError(
                f"load_predictor() got unknown option(s) {unknown} for a re-ID checkpoint; "
                f"options are: {', '.join(cls.predictor_options())}"
            )
        if cfg is None:
            raise ValueError("a re-ID predictor needs a pointforge checkpoint with its config")
        batch_size = int(options.get("batch_size", 64))
        return ReIDPredictor(model, transform_params(cfg), resolve_device(str(device)), batch_size)

    @classmethod
    def export_onnx(cls, request: OnnxExportRequest) -> list[str]:
        """The embedding network (unit-norm output, dynamic batch) at the training input size
        unless given; always verified with onnxruntime (it is part of the export)."""
        from pointforge.tasks.reid.onnx_export import OPSET, export_reid_onnx

        size = transform_params(request.cfg) if request.cfg is not None else None
        h = request.height or (size.height if size is not None else 256)
        w = request.width or (size.width if size is not None else 128)
        diff = export_reid_onnx(request.model, request.path, h, w, opset=request.opset or OPSET)
        return [
            f"wrote {request.path} (embedding network, dynamic batch x 3 x {h} x {w})",
            f"verified with onnxruntime: max |ONNX - PyTorch| {diff:.2g}",
        ]

    @classmethod
    def predictor_options(cls) -> tuple[str, ...]:
        """The keyword options of :meth:`build_predictor` (``load_predictor(**options)``)."""
        return ("batch_size",)

    @classmethod
    def draw(cls, image: np.ndarray, prediction: dict[str, Any]) -> np.ndarray:
        """The retrieval strip of ``prediction`` (a :func:`~pointforge.tasks.reid.retrieval.
        rank_gallery` result: ``gallery_images``, ``distances``, ``correct``) for query
        ``image``: query, then the ranked gallery, framed green / red when identities are known.
        """
        missing = [k for k in ("gallery_images", "distances", "correct") if k not in prediction]
        if missing:
            raise ValueError(
                f"ReIDTask.draw takes a retrieval result; the prediction lacks {missing} "
                "(embeddings alone have no picture; use pointforge.tasks.reid.retrieval)"
            )
        return draw_strip(
            image, prediction["gallery_images"], prediction["distances"], prediction["correct"]
        )
