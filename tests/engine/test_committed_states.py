"""The committed long-run states (``training_state/*``) resume exactly under the current code.

Those checkpoints were written before configs were composed per task (their stored configs
and ``config.yaml`` hold every family's sections). A later session must still be able to
``--resume`` them: resuming for two iterations in one go and in two resumes of one iteration
each must give bitwise-equal weights, optimiser state and iteration counts.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from pointforge.config import load_config
from pointforge.engine import run
from pointforge.engine.checkpoint import load_checkpoint
from pointforge.engine.precision import native_bf16

ROOT = Path(__file__).resolve().parents[2]
STATE = ROOT / "training_state" / "magicpoint_shapes"


def copy_state(dst: Path) -> int:
    (dst / "checkpoints").mkdir(parents=True)
    shutil.copy(STATE / "checkpoints" / "last.pth", dst / "checkpoints" / "last.pth")
    shutil.copy(STATE / "config.yaml", dst / "config.yaml")
    return int(load_checkpoint(dst / "checkpoints" / "last.pth")["iteration"])


def resume_to(out: Path, max_iter: int) -> None:
    cfg = load_config(
        ROOT / "configs" / "magicpoint_shapes_cpu.yaml",
        [
            f"output_dir={out}",
            f"solver.max_iter={max_iter}",
            "data.batch_size=64",  # the committed run's batch (fixes the sampler position)
            "data.num_workers=0",
            "device=cpu",
            "train.checkpoint_period=1",
            "train.eval_period=0",
            "eval.num_images=2",
            "eval.num_visualize=0",
            "eval.baselines=[]",
            # The state was trained with bf16 autocast on a CPU with AVX-512 BF16. Where bf16
            # is emulated (AVX2-only CPUs) one step takes ~80 s instead of ~10 s in float32,
            # so there the resume runs in float32: what is compared, resumed in one go against
            # resumed twice, is then computed the same way on both sides.
            f"train.amp={'bf16' if native_bf16('cpu') else 'off'}",
        ],
    )
    run.train(cfg, resume=True)


@pytest.mark.skipif(not (STATE / "checkpoints" / "last.pth").is_file(), reason="no state")
def test_committed_magicpoint_state_resumes_exactly(tmp_path: Path) -> None:
    start = copy_state(tmp_path / "once")
    assert copy_state(tmp_path / "twice") == start
    resume_to(tmp_path / "once", start + 2)
    resume_to(tmp_path / "twice", start + 1)
    resume_to(tmp_path / "twice", start + 2)
    a = load_checkpoint(tmp_path / "once" / "checkpoints" / "final.pth")
    b = load_checkpoint(tmp_path / "twice" / "checkpoints" / "final.pth")
    assert a["iteration"] == b["iteration"] == start + 2
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert all(torch.equal(sa[i]["exp_avg"], sb[i]["exp_avg"]) for i in sa)
    # The weights moved: two real optimiser steps were taken from the committed state.
    start_w = load_checkpoint(STATE / "checkpoints" / "last.pth")["model"]
    assert any(not torch.equal(start_w[k], a["model"][k]) for k in start_w)
