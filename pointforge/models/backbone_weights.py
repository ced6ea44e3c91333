"""``model.backbone_weights``: a torchvision ResNet state dict the user brought, fitted to the
ResNet a model is built on (re-ID, CenterNet, CenterFusion).

Why a separate helper on top of :mod:`pointforge.models.loading`: the file is torchvision's
own (``resnet18-f37072fd.pth`` and the like, keys ``conv1.weight`` … ``layer4.*``, ``fc.*``),
not one of our checkpoints, so it is fitted to the torchvision ``ResNet`` object *before* a
model takes its stages apart, and its ImageNet classifier (``fc.*``) is expected to be unused.
Everything else follows the loading policy (every key classified, one table logged, any key
that does not load is an error naming the file); only the advice in the error differs, because
``model.load.reinit_mismatched`` is for ``model.weights``. Nothing is ever downloaded.

Order with ``model.weights`` (docs/detection.md): the backbone file is applied while the model
is constructed; a full checkpoint in ``model.weights`` is fitted afterwards and overwrites it.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn
from torchvision.models.resnet import Bottleneck, ResNet

from pointforge.models.loading import LoadReport, fit_state_dict, read_state_dict

KEY = "model.backbone_weights"
# torchvision's ImageNet classifier: present in its files, never part of a backbone.
CLASSIFIER = r"fc\."
# BatchNorm's step counter (only read when momentum is None, which no ResNet uses). Files saved
# before PyTorch 0.4.1, such as torchvision's ImageNet-v1 ResNets, lack it; the model keeps its
# own (0), as BatchNorm's own loading of such files does.
BN_COUNTER = r"(.*\.)?num_batches_tracked$"


class ResNetBackbone(nn.Module):
    """The children of a torchvision ``ResNet`` except ``fc``, under their own names, so the
    state dict keys are torchvision's (``layer1.0.conv1.weight``) and loading into the trunk
    loads into the shared modules of the ResNet."""

    def __init__(self, resnet: ResNet) -> None:
        super().__init__()
        for name, child in resnet.named_children():
            if name != "fc":
                self.add_module(name, child)


def resnet_depth(resnet: ResNet) -> int:
    """18 / 34 / 50 / 101 / 152 from the block type and the blocks per stage."""
    blocks = sum(
        len(layer) for layer in (resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4)
    )
    per_block = 3 if isinstance(resnet.layer1[0], Bottleneck) else 2  # convs per block
    return blocks * per_block + 2  # + the stem conv and the classifier


def load_backbone_weights(resnet: ResNet, path: str | Path, key: str = KEY) -> LoadReport:
    """Fit the torchvision ResNet state dict at ``path`` into ``resnet`` (in place).

    ``fc.*`` keys in the file are ignored and an absent BatchNorm ``num_batches_tracked`` keeps
    the model's; a missing, unexpected or shape-mismatched key of any other layer is a
    :class:`~pointforge.models.loading.WeightsError` naming ``path``, ``key`` and the keys,
    e.g. a ResNet-34 file for a ResNet-18 model. A path that is not a file is a
    ``FileNotFoundError`` naming ``key``. Returns the load report (logged once as a table).
    """
    path = Path(path)
    depth = resnet_depth(resnet)
    if not path.is_file():
        raise FileNotFoundError(
            f"{key}: file not found: {path} (a torchvision ResNet-{depth} state dict such as "
            f"resnet{depth}-*.pth from ~/.cache/torch/hub/checkpoints; nothing is downloaded)"
        )
    state = read_state_dict(path)
    hint = (
        f" ({key} must be a torchvision ResNet-{depth} state dict, the depth of model.depth "
        "or of the model's name)"
    )
    return fit_state_dict(
        ResNetBackbone(resnet),
        state,
        f"{path} ({key}, torchvision ResNet-{depth})",
        reinit=(BN_COUNTER,),
        allow_unexpected=(CLASSIFIER,),
        hint=hint,
    )
