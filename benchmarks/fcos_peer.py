"""torchvision's FCOS with a ResNet-18 FPN from scratch, as a peer of CenterNet-R18.

Shared by benchmarks/bench_detection_vs_fcos.py and benchmarks/bench_detection_peers.py: the
model builder, one training loop over the detection task's own loader, and scoring through
the detection task's COCO evaluator (faster-coco-eval, original image pixels).

Why FCOS: FCOS (Tian et al. 2019) is the established anchor-free detector torchvision ships;
with a ResNet-18 FPN backbone, BatchNorm and no pretrained weights it is the same class of
model as CenterNet-R18 trained from scratch.

Batches are the detection task's (docs/detection.md): ``image`` float32 ``(B, 3, H, W)`` RGB
in [0, 1] letterboxed to ``data.image_size``, ``boxes`` a list of ``(K_i, 4)`` xyxy in those
pixels, ``labels`` a list of ``(K_i,)`` contiguous class indices.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torchvision.models import resnet18
from torchvision.models.detection import FCOS
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

from pointforge.engine.evaluator import inference_on_dataset


def fcos_r18(num_classes: int, size: tuple[int, int], score_thresh: float = 0.05) -> FCOS:
    """torchvision's ``fcos_resnet50_fpn`` recipe with a ResNet-18: trainable BatchNorm (no
    pretrained weights, so not frozen), all 5 stages trained, P3-P5 + P6/P7 from P5 (FCOS
    paper §3.2), and the transform fixed to the benchmark's input size (no resize: the loader
    already letterboxes to it). Detections scoring below ``score_thresh`` are dropped (0.05 is
    the usual COCO evaluation threshold, e.g. detectron2's FCOS), at most 100 per image."""
    backbone = _resnet_fpn_extractor(
        resnet18(weights=None, norm_layer=torch.nn.BatchNorm2d),
        trainable_layers=5,
        returned_layers=[2, 3, 4],
        extra_blocks=LastLevelP6P7(256, 256),
    )
    return FCOS(
        backbone,
        num_classes,
        min_size=min(size),
        max_size=max(size),
        score_thresh=score_thresh,
        detections_per_img=100,
    )


def train_fcos(
    model: FCOS,
    loader: Iterator[dict[str, Any]],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    iters: int,
    amp: bool,
    clip_grad_norm: float | None,
    device: torch.device | str = "cpu",
    log: Callable[[str], None] = print,
) -> tuple[list[float], list[float]]:
    """``iters`` steps over ``loader`` (one scheduler step per iteration, bf16 autocast when
    ``amp``); returns every iteration's total loss and wall seconds (loading included). A
    non-finite loss stops the run with its iteration, as the engine's trainer does."""
    device = torch.device(device)
    model.to(device).train()
    totals: list[float] = []
    seconds: list[float] = []
    for it in range(iters):
        t0 = time.perf_counter()
        batch = next(loader)
        images = [im.to(device) for im in batch["image"]]
        targets = [
            {"boxes": b.float().to(device), "labels": lab.to(device)}
            for b, lab in zip(batch["boxes"], batch["labels"])
        ]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            losses = model(images, targets)
        total = sum(v.float() for v in losses.values())
        value = float(total.detach())
        if not math.isfinite(value):
            raise FloatingPointError(f"FCOS loss is {value} at iteration {it + 1}")
        totals.append(value)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
        optimizer.step()
        scheduler.step()
        seconds.append(time.perf_counter() - t0)
        if (it + 1) % 10 == 0 or it + 1 == iters:
            parts = " ".join(f"{k} {float(v.detach()):.3f}" for k, v in losses.items())
            log(f"fcos it {it + 1}/{iters}: {parts}")
    return totals, seconds


def fcos_predict(model: FCOS, sample: dict[str, Any]) -> dict[str, torch.Tensor]:
    """One image's FCOS detections as the COCO evaluator takes them: ``(1, N, ·)`` tensors,
    boxes in the letterboxed input's pixels (the evaluator maps them back with the sample's
    ``scale`` and ``orig_size``)."""
    device = next(model.parameters()).device
    det = model([im.to(device) for im in sample["image"]])[0]
    return {k: det[k][None].cpu() for k in ("boxes", "scores", "labels")}


def evaluate_fcos(task: Any, model: FCOS) -> dict[str, float]:
    """FCOS detections on the task's ``val`` split → the detection task's own COCO evaluator,
    through the engine's evaluation loop, one image at a time."""
    val = task.build_dataset("val")
    samples = (task.collate([val[i]]) for i in range(len(val)))
    with torch.inference_mode():
        return inference_on_dataset(model, samples, fcos_predict, task.build_evaluator(None))
