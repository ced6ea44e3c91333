"""A trial is an ordinary training run: its evaluations go to the reporter, and a trial that
crashed (as Ray would restart it) resumes from its own checkpoint to the very weights and
metrics of an uninterrupted trial. No Ray needed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pointforge.engine.checkpoint import load_checkpoint
from pointforge.tune.trial import TrialSpec, run_trial

TINY = (
    *("device=cpu", "data.num_workers=0", "data.batch_size=16", "data.image_size=[8,8]"),
    *("data.val_fraction=0.05", "classification.augment=none", "solver.max_iter=4"),
    *("solver.warmup_iters=0", "train.eval_period=1", "train.checkpoint_period=2"),
    *("train.log_period=1", "train.progress_bar=false"),
)


class Crash(Exception):
    pass


def test_trial_reports_each_evaluation_and_resumes_exactly(tmp_path: Path) -> None:
    spec = TrialSpec(str(Path("configs/resnet_digits.yaml").resolve()), TINY, str(tmp_path))
    values = {"solver.lr": 0.05}
    ref: list[dict[str, float]] = []
    final = run_trial(spec, values, "ref", ref.append)
    assert [r["iteration"] for r in ref] == [1, 2, 3, 4]
    assert ref[-1] == {**final, "iteration": 4.0}

    seen: list[dict[str, float]] = []

    def die_at_3(metrics: dict[str, float]) -> None:
        seen.append(metrics)
        if metrics["iteration"] == 3:
            raise Crash  # the trial dies after its checkpoint at iteration 2

    with pytest.raises(Crash):
        run_trial(spec, values, "crashed", die_at_3)
    restarted: list[dict[str, float]] = []
    assert run_trial(spec, values, "crashed", restarted.append) == final
    assert [r["iteration"] for r in restarted] == [3, 4] and restarted == ref[2:]
    a = load_checkpoint(tmp_path / "trials/ref/checkpoints/final.pth")["model"]
    b = load_checkpoint(tmp_path / "trials/crashed/checkpoints/final.pth")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)

    # Restarted after it finished: the saved final metrics are reported once more.
    again: list[dict[str, float]] = []
    assert run_trial(spec, values, "ref", again.append) == final
    assert again == [{**final, "iteration": 4.0}]
