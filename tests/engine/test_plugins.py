"""A task family from user code, outside the package, through the whole engine.

``tests/fixtures/plugins/median_regression.py`` defines a task with its own config section, a
dataset with its own ``data.*`` keys and a model with its own ``model.*`` keys; a config loads
it with ``imports:``. Through the CLI it trains, is SIGKILLed mid-run and resumed to weights
bitwise equal to an uninterrupted run, and is evaluated under 2 gloo ranks with a median (not
a mean of per-rank values) equal to the single-process one. Nothing under ``pointforge/`` knows
this task.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pointforge.cli.main import main as cli_main
from pointforge.engine.checkpoint import load_checkpoint
from pointforge.registry import DATASETS, MODELS, load_plugins

PLUGIN = Path(__file__).resolve().parents[1] / "fixtures" / "plugins" / "median_regression.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def write_config(path: Path, max_iter: int = 40, delay: float = 0.0) -> Path:
    path.write_text(
        f"imports: [{PLUGIN}]\n"
        "task: plugin_median_regression\n"
        "device: cpu\n"
        "data: {batch_size: 8, num_workers: 0, num_val: 37, noise: 0.3}\n"
        "model: {hidden: 6}\n"
        f"solver: {{lr: 0.02, max_iter: {max_iter}}}\n"
        "train: {checkpoint_period: 4, eval_period: 0, log_period: 4, progress_bar: false}\n"
        f"regression: {{loss_weight: 1.0, step_delay: {delay}}}\n"
    )
    return path


def pointforge(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pointforge", *args]
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_plugin_config_sections_are_its_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "plugin.yaml")
    assert cli_main(["config", str(config)]) == 0
    shown = capsys.readouterr().out
    assert "regression:\n  loss_weight: 1.0" in shown and "num_val: 37" in shown
    assert "hidden: 6" in shown and "classification" not in shown and "detection" not in shown
    assert cli_main(["config", str(config), "regression.los_weight=2"]) == 2
    assert "Did you mean 'regression.loss_weight'" in capsys.readouterr().err
    assert cli_main(["config", str(config), "data.nosie=2"]) == 2
    assert "Did you mean 'data.noise'" in capsys.readouterr().err
    assert cli_main(["config", str(config), "regression.loss_weight=-1"]) == 2
    assert "'regression.loss_weight' must be > 0" in capsys.readouterr().err


def test_plugin_trains_killed_resumes_exactly_and_gathers_a_median_over_ranks(
    tmp_path: Path,
) -> None:
    ref = tmp_path / "ref"
    pointforge("train", str(write_config(tmp_path / "ref.yaml")), "--output-dir", str(ref))

    # The same run, SIGKILLed once it has written a checkpoint, then resumed.
    killed = tmp_path / "killed"
    slow = write_config(tmp_path / "slow.yaml", delay=0.1)
    cmd = [sys.executable, "-m", "pointforge", "train", str(slow), "--output-dir", str(killed)]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = killed / "checkpoints" / "last.pth"
    deadline = time.monotonic() + 120
    while not last.is_file() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    at_kill = int(load_checkpoint(last)["iteration"])
    assert 0 < at_kill < 40, at_kill
    pointforge(
        "train", str(slow), "--output-dir", str(killed), "--resume", "regression.step_delay=0"
    )
    a = load_checkpoint(ref / "checkpoints/final.pth")["model"]
    b = load_checkpoint(killed / "checkpoints/final.pth")["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    # Evaluation: one process, then 2 gloo ranks that each see half of the 37 samples.
    weights = str(ref / "checkpoints/final.pth")
    one = tmp_path / "eval_one"
    pointforge("eval", str(slow), "--weights", weights, "--output-dir", str(one))
    two = tmp_path / "eval_two"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    evaluate = ["-m", "pointforge", "eval", str(slow), "--weights", weights]
    proc2 = subprocess.run(
        [*torchrun, "--nproc-per-node", "2", *evaluate, "--output-dir", str(two)],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc2.returncode == 0, proc2.stdout[-3000:] + proc2.stderr[-3000:]
    m1 = json.loads((one / "eval/metrics.json").read_text())["metrics"]
    m2 = json.loads((two / "eval/metrics.json").read_text())["metrics"]
    assert m1["count"] == m2["count"] == 37
    assert m2["median_abs_error"] == m1["median_abs_error"]

    # The check can fail: the mean of the two shards' medians is another number.
    load_plugins([str(PLUGIN)])  # the same file, for its dataset and model
    model = MODELS.build("plugin_mlp", hidden=6)
    model.load_state_dict(a)
    data = DATASETS.build("plugin_noisy_line", "val", 64, 37, 0.3)
    with torch.no_grad():
        errors = (model(data.x) - data.y).abs()[:, 0]
    assert float(errors.median()) == pytest.approx(m1["median_abs_error"], abs=1e-6)
    shard_mean = (float(errors[0::2].median()) + float(errors[1::2].median())) / 2
    assert abs(shard_mean - m1["median_abs_error"]) > 1e-4
