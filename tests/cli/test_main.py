"""``pointforge --version`` and the cheap start-up of ``pointforge --help``."""

from __future__ import annotations

import subprocess
import sys

import pytest

import pointforge
from pointforge.cli.main import main


def test_version(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"pointforge {pointforge.__version__}"


def test_building_the_parser_imports_no_command_body() -> None:
    """The subcommand modules this branch owns load neither torch nor the config loader, and
    main.py imports :mod:`pointforge.cli.commands` only when a command runs. (What is left of
    ``--help``'s start-up time is inspect_cmds' top-level torch import.)"""
    code = (
        "import sys\n"
        "import pointforge.cli.keypoint_cmds, pointforge.cli.deploy_cmds\n"
        "import pointforge.cli.export_cmds, pointforge.cli.launch\n"
        "heavy = [m for m in ('torch', 'cv2', 'pointforge.config') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "import pointforge.cli.main\n"
        "pointforge.cli.main.build_parser()\n"
        "assert 'pointforge.cli.commands' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_lazy_command_still_runs(capsys: pytest.CaptureFixture) -> None:
    assert main(["config", "nope.yaml"]) == 2  # reaches commands.cmd_config through the shim
    assert "nope.yaml" in capsys.readouterr().err


def test_deploy_cmds_mirrors_the_exporter_constants() -> None:
    from pointforge.cli import deploy_cmds
    from pointforge.export import onnx

    assert (deploy_cmds.DEFAULT_OPSET, deploy_cmds.EXPORTERS) == (
        onnx.DEFAULT_OPSET,
        onnx.EXPORTERS,
    )
