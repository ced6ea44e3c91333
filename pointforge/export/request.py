"""What ``pointforge export-onnx`` asks a task to export, as one value.

Why: :meth:`pointforge.tasks.base.Task.export_onnx` is overridden by every task family that
exports (keypoints, detection, re-ID) and called by the CLI; with nine loose parameters each
override repeated the whole signature and each new option meant editing all of them. A frozen
dataclass keeps the signature ``export_onnx(request)`` stable: adding an option is one field
here with its default, and overrides read only the fields they use.

The module imports nothing at run time (the types are for checkers only), so the CLI can build
a request without loading torch and the Task base can import it without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from pointforge.config.schema import Config


@dataclass(frozen=True)
class OnnxExportRequest:
    """One ONNX export: which network, where to, at which input size, how.

    Fields:
        model: the network in eval mode, as ``pointforge.predictor.load_model`` returns it.
        cfg: the checkpoint's stored config; ``None`` for a foreign state dict (e.g. the
            MagicLeap-v1 SuperPoint weights), so tasks fall back to their own defaults.
        path: the ``.onnx`` file to write (tasks write it atomically).
        height / width: the input size; ``None`` means the task's own (keypoints 480×640,
            detection and re-ID the training size of ``cfg``).
        dynamic: symbolic batch, height and width where the task supports it (keypoints);
            tasks with fixed-size graphs refuse it by name.
        opset: the ONNX opset; ``None`` means the task's default (or what the model needs).
        exporter: ``"dynamo"`` (torch.export based) or ``"torchscript"`` (legacy tracer, for
            opsets below 18); see ``pointforge.export.onnx.EXPORTERS``.
        verify: compare the written graph with PyTorch through onnxruntime; tasks for which the
            check is part of the export (detection, re-ID) always verify.
    """

    model: nn.Module
    cfg: Config | None
    path: Path
    height: int | None
    width: int | None
    dynamic: bool = False
    opset: int | None = None
    exporter: str = "dynamo"
    verify: bool = True
