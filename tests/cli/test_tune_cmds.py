"""``pointforge tune`` without Ray: one line naming the extra, before any work is done."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

from pointforge.cli import tune_cmds
from pointforge.cli.main import EXPECTED_ERRORS


def test_tune_without_ray_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # "import ray.tune" now raises ImportError
    monkeypatch.setitem(sys.modules, "ray.tune", None)
    parser = argparse.ArgumentParser()
    tune_cmds.add_parsers(parser.add_subparsers(dest="command"))
    out = tmp_path / "sweep"
    args = parser.parse_args(
        [
            "tune",
            "configs/resnet_digits.yaml",
            "--space",
            "missing.yaml",
            "--metric",
            "top1",
            "--output-dir",
            str(out),
        ]
    )
    with pytest.raises(EXPECTED_ERRORS) as exc:
        args.func(args)
    message = str(exc.value)
    assert "pip install 'pointforge[ray]'" in message and "\n" not in message
    assert not out.exists()
