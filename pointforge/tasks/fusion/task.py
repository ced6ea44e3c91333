"""Task ``centerfusion``: radar-camera 3D detection (CenterFusion) on the synthetic scenes or
nuScenes, evaluated with the nuScenes detection metrics.

Batches come from :func:`~pointforge.tasks.fusion.data.tensors.collate_fusion`. Training
associates radar with the ground-truth boxes (CenterFusion §IV-D); evaluation decodes each
image's top-K peaks into 3D boxes, moves them to the global frame with the sample's
transforms and scores the whole split at once with
:func:`~pointforge.tasks.fusion.nusc_metrics.evaluate_nusc` (``docs/evaluation.md``: gathered
before scoring, so the numbers do not depend on the number of ranks). With an output dir it
writes ``eval/results_nusc.json`` and ``eval/ground_truth_nusc.json`` (the devkit's submission
format) and, for the first ``draw_samples`` samples, ``eval/bev_<i>.png`` and
``eval/image3d_<i>.png``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from pointforge.config.compose import own_keys
from pointforge.config.schema import Config
from pointforge.engine.evaluator import Evaluator
from pointforge.registry import DATASETS, TASKS
from pointforge.tasks.base import Task
from pointforge.tasks.detection.model import OUTPUT_STRIDE
from pointforge.tasks.fusion.data import tensors  # noqa: F401  (registers the datasets)
from pointforge.tasks.fusion.data.sample import empty_boxes, resize_sample, sample_gt_boxes
from pointforge.tasks.fusion.data.tensors import collate_fusion
from pointforge.tasks.fusion.draw import (
    GT_COLOUR,
    PRED_COLOUR,
    draw_bev,
    draw_projected_boxes,
)
from pointforge.tasks.fusion.losses import fusion_losses
from pointforge.tasks.fusion.model import CenterFusion
from pointforge.tasks.fusion.nusc_json import write_ground_truth, write_results
from pointforge.tasks.fusion.nusc_metrics import DETECTION_NAMES, TP_OUTPUT_NAMES, evaluate_nusc
from pointforge.tasks.fusion.options import CenterFusionOptions, check_centerfusion
from pointforge.tasks.fusion.postprocess import (
    attribute_name,
    camera_boxes,
    detect_3d,
    to_global_boxes,
)
from pointforge.tasks.fusion.targets import build_fusion_targets

log = logging.getLogger("pointforge")
NUM_CLASSES = len(DETECTION_NAMES)


def _uses_radar(model: nn.Module) -> bool:
    inner: Any = getattr(model, "module", model)  # the model inside DDP
    return bool(inner.fusion.radar)


class NuscEvaluator(Evaluator):
    """Stores each sample's global-frame predictions and ground truth; scores the whole set
    once. Result keys: ``nds``, ``mAP``, ``mATE``, ``mASE``, ``mAOE``, ``mAVE``, ``mAAE`` and
    ``AP/<class>`` for the classes present in the ground truth."""

    def __init__(
        self,
        output_dir: Path | None,
        use_radar: bool,
        draw_samples: int = 1,
        draw_threshold: float = 0.3,
    ) -> None:
        super().__init__()
        self.output_dir = output_dir
        self.use_radar = use_radar
        self.draw_samples = draw_samples
        self.draw_threshold = draw_threshold

    def process(self, inputs: dict[str, Any], outputs: Any) -> None:
        for i, det in enumerate(outputs):
            token = inputs["sample_token"][i]
            index = int(inputs["index"][i])
            boxes = {k: v.cpu().numpy() for k, v in inputs["boxes"][i].items()}
            gt = sample_gt_boxes({"boxes": boxes, "sample_token": token})
            pred = to_global_boxes(
                det,
                inputs["cam_to_ego"][i].cpu().numpy(),
                inputs["ego_to_global"][i].cpu().numpy(),
                token,
            )
            drawing = None
            if index < self.draw_samples:
                rgb = (inputs["image"][i].float().cpu().numpy() * 255).round().astype(np.uint8)
                keep = det["score"] >= self.draw_threshold
                drawing = {
                    "image": np.ascontiguousarray(rgb.transpose(1, 2, 0)[..., ::-1]),
                    "intrinsics": inputs["intrinsics"][i].cpu().numpy().astype(np.float64),
                    "radar": inputs["radar"][i][inputs["radar_mask"][i]].cpu().numpy(),
                    "gt": camera_boxes(boxes),
                    "pred": {k: det[k][keep] for k in ("center", "size", "rot_y", "label")},
                }
            self.predictions.append((index, token, pred, gt, drawing))

    def evaluate(self) -> dict[str, float]:
        items = sorted(self.predictions, key=lambda t: t[0])
        gt = [b for it in items for b in it[3]]
        with_gt = {it[1] for it in items if it[3]}
        preds = [b for it in items if it[1] in with_gt for b in it[2]]
        dropped = sum(len(it[2]) for it in items if it[1] not in with_gt)
        if dropped:
            # evaluate_nusc refuses samples without ground truth; their boxes are logged here.
            log.warning(
                "nuScenes eval: %d predictions in %d samples without ground truth not scored",
                dropped,
                len(items) - len(with_gt),
            )
        metrics = evaluate_nusc(gt, preds)
        keep = {"nds", "mAP", *TP_OUTPUT_NAMES.values()}
        out = {k: v for k, v in metrics.items() if k in keep}
        out |= {k: v for k, v in metrics.items() if k.startswith("AP/") and "@" not in k}
        if self.output_dir is not None:
            folder = Path(self.output_dir) / "eval"
            tokens = [it[1] for it in items]
            write_results(folder, [b for it in items for b in it[2]], sample_tokens=tokens,
                          use_radar=self.use_radar)  # fmt: skip
            write_ground_truth(folder, gt, sample_tokens=tokens, use_radar=self.use_radar)
            for index, _, _, _, drawing in items:
                if drawing is not None:
                    write_drawings(folder, index, drawing)
        return out


def write_drawings(folder: Path, index: int, d: dict[str, Any]) -> None:
    """``bev_<index>.png`` and ``image3d_<index>.png`` of one evaluated sample."""
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / f"bev_{index}.png"), draw_bev(d["gt"], d["pred"], d["radar"]))
    img = draw_projected_boxes(d["image"], d["intrinsics"], d["gt"], GT_COLOUR)
    img = draw_projected_boxes(img, d["intrinsics"], d["pred"], PRED_COLOUR)
    cv2.imwrite(str(folder / f"image3d_{index}.png"), img)


@TASKS.register("centerfusion")
class CenterFusionTask(Task):
    """CenterFusion (``model.radar: true``) or its camera-only baseline (``false``)."""

    options = CenterFusionOptions
    default_dataset = "synthetic_radar_camera"
    default_model = "centerfusion"

    @classmethod
    def check_config(cls, cfg: Config) -> None:
        check_centerfusion(cfg)

    # -- data ----------------------------------------------------------------------------------
    def make_dataset(self, split: str) -> Dataset:
        """The ``split`` of ``data.name`` from its ``data.*`` keys (cached by
        :meth:`~pointforge.tasks.base.Task.build_dataset`)."""
        d = self.cfg.data
        if d.name is None:
            raise ValueError("config key 'data.name' is null")
        return DATASETS.build(d.name, split=split, **own_keys(d))

    def collate(self, samples: Any) -> dict[str, Any]:
        return collate_fusion(samples)

    # -- model ---------------------------------------------------------------------------------
    def model_kwargs(self) -> dict[str, Any]:
        return {"num_classes": NUM_CLASSES}

    @classmethod
    def model_kwargs_from_state(cls, cfg: Config, state: dict[str, torch.Tensor]) -> dict[str, Any]:
        return {"num_classes": int(state["heatmap.2.weight"].shape[0])}

    def training_step(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        images = self.model_input(batch["image"])
        c = self.cfg.centerfusion
        targets = build_fusion_targets(
            batch["boxes"],
            batch["intrinsics"],
            (int(images.shape[-2]), int(images.shape[-1])),
            NUM_CLASSES,
            c.targets,
        )
        outputs = model(
            images, batch["radar"], batch["radar_mask"], batch["intrinsics"], gt=targets["gt"]
        )
        return fusion_losses(outputs, targets, c.loss)

    # -- evaluation ----------------------------------------------------------------------------
    def predict_batch(self, model: nn.Module, batch: dict[str, Any]) -> Any:
        dev = self.device
        k = batch["intrinsics"].to(dev)
        out = model(
            self.model_input(batch["image"]), batch["radar"].to(dev), batch["radar_mask"].to(dev), k
        )
        c = self.cfg.centerfusion
        return detect_3d(out, k, OUTPUT_STRIDE, c.topk, c.score_threshold)

    def build_evaluator(self, output_dir: Path | None) -> Evaluator:
        c = self.cfg.centerfusion
        radar = bool(getattr(self.cfg.model, "radar", True))
        return NuscEvaluator(output_dir, radar, c.draw_samples, c.draw_threshold)

    # -- deployment ----------------------------------------------------------------------------
    @classmethod
    def build_predictor(
        cls, model: nn.Module, cfg: Config | None, device: str | torch.device, **options: Any
    ) -> FusionPredictor:
        if cfg is None:
            raise ValueError("a centerfusion predictor needs a checkpoint with its config")
        return FusionPredictor(model, cfg, device, **options)

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        """A BGR uint8 image resized to ``data.image_size`` → ``(1, 3, h, w)`` in [0, 1]."""
        h, w = (int(v) for v in self.cfg.data.image_size)
        img = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        return (
            torch.from_numpy(np.ascontiguousarray(img[..., ::-1].transpose(2, 0, 1)))[None].float()
            / 255.0
        )

    @classmethod
    def draw(cls, image: np.ndarray, prediction: dict[str, Any]) -> np.ndarray:
        """The predicted 3D boxes projected on ``image`` (needs ``prediction["intrinsics"]``)."""
        return draw_projected_boxes(image, prediction["intrinsics"], prediction, PRED_COLOUR)


class FusionPredictor:
    """``pred(image, radar=None, intrinsics=K, cam_to_ego=None, ego_to_global=None)`` → a dict
    of the detections scoring ≥ ``score_threshold`` (default 0.3, CenterFusion's vis_thresh).

    ``image``: BGR uint8 (H, W, 3); ``radar``: (N, 9) camera-frame rows of
    :data:`~pointforge.tasks.fusion.data.sample.RADAR_COLUMNS` (needed by a fusion model);
    ``intrinsics`` (3, 3) of that image. The image is resized to the training size and the
    intrinsics scaled to match. Returns camera-frame arrays ``center`` (D, 3), ``size`` (D, 3)
    (w, l, h), ``rot_y`` (D,) (the yaw about the camera's y axis), ``velocity`` (D, 3),
    ``score``, ``label``, plus ``classes`` (names), ``attributes`` (names), ``box2d`` in the
    original image's pixels and ``intrinsics``; with both transforms also ``global`` (a list of
    :class:`~pointforge.tasks.fusion.nusc_metrics.NuscBox`)."""

    def __init__(
        self,
        model: nn.Module,
        cfg: Config,
        device: str | torch.device,
        score_threshold: float = 0.3,
    ) -> None:
        from pointforge.engine.launch import resolve_device

        self.device = resolve_device(str(device))
        self.model = model.to(self.device).eval()
        self.cfg = cfg
        self.size = tuple(int(v) for v in cfg.data.image_size)
        self.score_threshold = score_threshold
        self.radar = _uses_radar(model)

    @torch.inference_mode()
    def __call__(
        self,
        image: np.ndarray,
        radar: np.ndarray | None = None,
        intrinsics: np.ndarray | None = None,
        cam_to_ego: np.ndarray | None = None,
        ego_to_global: np.ndarray | None = None,
    ) -> dict[str, Any]:
        if intrinsics is None:
            raise ValueError("FusionPredictor needs the camera intrinsics (3, 3)")
        if self.radar and radar is None:
            raise ValueError("this is a fusion checkpoint (model.radar: true): pass radar points")
        radar = np.zeros((0, 9), np.float32) if radar is None else np.asarray(radar, np.float32)
        if radar.ndim != 2 or radar.shape[1] < 6:
            raise ValueError(f"radar must be (N, 9) camera-frame rows, got {radar.shape}")
        sample = {"image": image, "intrinsics": np.asarray(intrinsics, np.float64),
                  "boxes": empty_boxes()}  # fmt: skip
        small = resize_sample(sample, self.size)  # type: ignore[arg-type]
        x = torch.from_numpy(np.ascontiguousarray(small["image"][..., ::-1].transpose(2, 0, 1)))
        x = x[None].float().to(self.device) / 255.0
        k = torch.as_tensor(small["intrinsics"], dtype=torch.float32, device=self.device)[None]
        r = torch.zeros(1, max(len(radar), 1), 9, device=self.device)
        r[0, : len(radar), : radar.shape[1]] = torch.from_numpy(radar).to(self.device)
        mask = torch.zeros(1, r.shape[1], dtype=torch.bool, device=self.device)
        mask[0, : len(radar)] = True
        out = self.model(x, r, mask, k)
        det = detect_3d(out, k, OUTPUT_STRIDE, 100, self.score_threshold)[0]
        sy, sx = self.size[0] / image.shape[0], self.size[1] / image.shape[1]
        b = det["box2d"].astype(np.float64)
        b[:, 0::2] = (b[:, 0::2] + 0.5) / sx - 0.5
        b[:, 1::2] = (b[:, 1::2] + 0.5) / sy - 0.5
        result: dict[str, Any] = {
            **{k_: det[k_] for k_ in ("center", "size", "rot_y", "velocity", "score", "label")},
            "box2d": b.astype(np.float32),
            "classes": [DETECTION_NAMES[int(i)] for i in det["label"]],
            "attributes": [
                attribute_name(int(i), a) for i, a in zip(det["label"], det["attribute"])
            ],
            "intrinsics": np.asarray(intrinsics, np.float64),
        }
        if cam_to_ego is not None and ego_to_global is not None:
            result["global"] = to_global_boxes(det, cam_to_ego, ego_to_global, "prediction")
        return result


__all__ = ["CenterFusion", "CenterFusionTask", "FusionPredictor", "NuscEvaluator"]
