"""Grad-CAM (Selvaraju et al., 2017): where in the image a classifier looks for a class.

For a target layer with activations ``A`` ``(K, h, w)`` and the class score ``y_c`` (the logit,
before softmax), the channel weights are the spatially averaged gradients
``α_k = mean_{h,w} ∂y_c/∂A_k`` and the map is ``ReLU(Σ_k α_k A_k)`` ``(h, w)``, bilinearly
upsampled to the input size and scaled to [0, 1]. The default target is the last convolutional
block (``layer4`` in ResNets): deep enough to be class-specific, still spatial.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pointforge.engine.inspect import capture


@dataclass
class GradCAM:
    """Result for one image: ``cam`` ``(H, W)`` float32 in [0, 1] at input resolution."""

    cam: np.ndarray
    class_index: int
    score: float
    target_layer: str


def default_target_layer(model: nn.Module) -> str:
    """``layer4`` when the model has one (ResNets), else the last top-level child holding a
    convolution (the last conv block of a plain CNN)."""
    children = dict(model.named_children())
    if "layer4" in children:
        return "layer4"
    with_conv = [
        name
        for name, child in children.items()
        if any(isinstance(m, nn.modules.conv._ConvNd) for m in child.modules())
    ]
    if not with_conv:
        raise ValueError(
            f"{type(model).__name__} has no convolutional block for Grad-CAM; "
            "name one with --target-layer"
        )
    return with_conv[-1]


def _logits(output: object) -> torch.Tensor:
    if isinstance(output, dict):
        if "logits" not in output:
            raise ValueError(f"model output dict has no 'logits' (keys: {sorted(output)})")
        output = output["logits"]
    if not isinstance(output, torch.Tensor) or output.ndim != 2:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output)
        raise ValueError(f"Grad-CAM needs (1, num_classes) class scores, got {shape}")
    return output


def grad_cam(
    model: nn.Module,
    image: torch.Tensor,
    target_layer: str | None = None,
    class_index: int | None = None,
) -> GradCAM:
    """Grad-CAM of ``image`` ``(1, C, H, W)`` (already preprocessed) for ``class_index``.

    ``class_index=None`` explains the top-scoring class. The model's train/eval mode and its
    parameter gradients are left as they were.
    """
    if image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(f"grad_cam expects one image (1, C, H, W), got {tuple(image.shape)}")
    layer = target_layer or default_target_layer(model)
    # Differentiate w.r.t. a grad-requiring copy of the input (not via backward): the path to it
    # runs through the target layer, whose output hook records the gradient, and the
    # parameters' .grad stay untouched.
    image = image.detach().requires_grad_(True)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad(), capture(model, features=[layer], grads=[layer]) as rec:
            logits = _logits(model(image))
            num_classes = logits.shape[1]
            idx = int(logits[0].argmax()) if class_index is None else class_index
            if not 0 <= idx < num_classes:
                raise ValueError(f"class index {idx} out of range for {num_classes} classes")
            score = logits[0, idx]
            torch.autograd.grad(score, image)
    finally:
        model.train(was_training)
    acts, grads = rec.features[layer], rec.grads.get(layer)
    if grads is None or acts.ndim != 4:
        raise ValueError(
            f"target layer '{layer}' gives {tuple(acts.shape)} activations; Grad-CAM needs a "
            "(1, K, h, w) feature map that the class score depends on"
        )
    weights = grads.float().mean(dim=(2, 3), keepdim=True)  # (1, K, 1, 1)
    cam = F.relu((weights * acts.float()).sum(dim=1, keepdim=True))  # (1, 1, h, w)
    cam = F.interpolate(cam, size=image.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    peak = float(cam.max())
    cam = cam / peak if peak > 0 else cam
    return GradCAM(cam.cpu().numpy().astype(np.float32), idx, float(score.detach()), layer)


def overlay_cam(image: np.ndarray, cam: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a JET-coloured ``cam`` ``(h, w)`` in [0, 1] over ``image`` (grey or BGR uint8).

    The map is resized to the image; returns ``(H, W, 3)`` uint8 BGR (red = high).
    """
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected (H, W) grey or (H, W, 3) BGR image, got {image.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    h, w = image.shape[:2]
    cam = cv2.resize(
        np.clip(cam, 0.0, 1.0).astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR
    )
    heat = cv2.applyColorMap(np.round(cam * 255).astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.addWeighted(heat, alpha, image, 1.0 - alpha, 0.0)
