"""torchvision ResNet state dicts for the ``model.backbone_weights`` tests of detection and
fusion (both build CenterNet's backbone, so they share these helpers)."""

from __future__ import annotations

from collections.abc import Callable

import torch

# torchvision ResNet child → index in CenterNet.backbone (conv1, bn1, relu, maxpool, layer1-4).
STAGE_INDEX = {"conv1": 0, "bn1": 1, "layer1": 4, "layer2": 5, "layer3": 6, "layer4": 7}


def perturbed_state(builder: Callable[..., torch.nn.Module], seed: int) -> dict[str, torch.Tensor]:
    """A torchvision ResNet's state dict with every tensor changed (random BN statistics and
    affines too), so equality after loading cannot come from a fresh initialisation."""
    torch.manual_seed(seed)
    state = builder(weights=None).state_dict()
    out = {k: torch.randn_like(v) if v.is_floating_point() else v + 7 for k, v in state.items()}
    for key in out:
        if key.endswith("running_var"):  # a variance must stay positive
            out[key] = torch.rand_like(out[key]) + 0.5
    return out


def backbone_key(torchvision_key: str) -> str:
    """``layer2.0.conv1.weight`` → ``backbone.5.0.conv1.weight``."""
    child, rest = torchvision_key.split(".", 1)
    return f"backbone.{STAGE_INDEX[child]}.{rest}"
