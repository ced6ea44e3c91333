"""``OnnxExportRequest``: one immutable value the CLI builds without loading torch."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from torch import nn

from pointforge.export.request import OnnxExportRequest


def test_defaults_are_the_export_onnx_command_defaults_and_the_request_is_frozen() -> None:
    request = OnnxExportRequest(nn.Identity(), None, Path("m.onnx"), None, None)
    assert (request.dynamic, request.opset, request.exporter, request.verify) == (
        False,
        None,
        "dynamo",
        True,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.opset = 17  # type: ignore[misc]


def test_importing_the_request_loads_neither_torch_nor_the_config() -> None:
    code = (
        "import sys\n"
        "import pointforge.export.request\n"
        "heavy = [m for m in ('torch', 'pointforge.config') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
