"""export-labels under torchrun: 2 gloo ranks on CPU give the single-process export byte for
byte; a rank SIGKILLed mid-export leaves only whole shards and ``--resume`` (with another
number of processes) completes the export to the same bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pointforge import MAGICPOINT_WEIGHTS
from pointforge.cli.launch import torchrun_args
from pointforge.cli.main import build_parser, main
from pointforge.config import load_config
from pointforge.data.datasets.photo_folder import write_sample_photos
from pointforge.data.label_shards import LabelStore, read_manifest, shard_name
from pointforge.tasks.keypoints.export_labels import export_labels

ROOT = Path(__file__).resolve().parents[3]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(ROOT)}
OVERRIDES = [
    "device=cpu",
    "data.image_size=[48,64]",
    "adaptation.num_homographies=2",
    "adaptation.shard_size=1",
    "adaptation.images_per_batch=1",
]
PHOTOS = ["astronaut", "camera", "coins", "moon", "text"]  # 5 shards: ranks get 3 and 2
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node"]

# Run by torchrun: rank 1 is SIGKILLed right after committing its first shard (a real kill,
# no cleanup); torchrun then tears rank 0 down wherever it is.
KILLER = """
import os, signal, sys
import pointforge.tasks.keypoints.export_labels as ex
from pointforge.cli.main import main

real = ex.write_shard_part

def write_then_die(*args):
    real(*args)
    if os.environ["RANK"] == "1":
        os.kill(os.getpid(), signal.SIGKILL)

ex.write_shard_part = write_then_die
sys.exit(main(sys.argv[1:]))
"""


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def run(cmd: list[str], expect_ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert (proc.returncode == 0) == expect_ok, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    write_sample_photos(folder, PHOTOS)
    return folder


@pytest.fixture(scope="module")
def reference(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("ref") / "labels"
    cfg = load_config("configs/export_labels.yaml", OVERRIDES)
    export_labels(cfg, MAGICPOINT_WEIGHTS, photos, out, progress=False)
    return files(out)


def test_two_ranks_equal_one_process_byte_for_byte(photos, reference, tmp_path):
    out = tmp_path / "labels"
    args = ["export-labels", "configs/export_labels.yaml", *OVERRIDES]
    proc = run(
        [*TORCHRUN, "2", "-m", "pointforge", *args, "--images", str(photos), "--out", str(out)]
    )
    assert proc.stdout.count("labelled 5 of 5 images") == 1  # rank 0 alone reports
    got = files(out)
    assert sorted(got) == sorted(reference) == sorted([*map(shard_name, range(5)), "manifest.json"])
    assert got == reference
    # The check can fail: one shard's labels differ from another's.
    assert reference[shard_name(0)] != reference[shard_name(1)]


def test_killed_rank_leaves_whole_shards_and_resume_completes(photos, reference, tmp_path, capsys):
    out = tmp_path / "labels"
    script = tmp_path / "kill_rank1.py"
    script.write_text(KILLER)
    args = ["export-labels", "configs/export_labels.yaml", *OVERRIDES]
    run([*TORCHRUN, "2", str(script), *args, "--images", str(photos), "--out", str(out)], False)

    # Every committed part stands for a whole shard equal to the reference; nothing is listed
    # in the manifest yet (rank 0 merges at the end), and rank 1's shards 3 are not done.
    assert read_manifest(out)["shards"] == {} and not read_manifest(out)["complete"]
    parts = sorted(p.name for p in out.glob("shard_*.part.json"))
    assert "shard_00001.part.json" in parts and "shard_00003.part.json" not in parts
    for part in parts:
        name = json.loads((out / part).read_text())["file"]
        assert (out / name).read_bytes() == reference[name]

    # Resume in one process (another number of ranks; in-process saves a torch start-up).
    rc = main([*args, "--images", str(photos), "--out", str(out), "--resume"])
    assert rc == 0 and f"already done {len(parts)}" in capsys.readouterr().out
    assert files(out) == reference
    store = LabelStore(out)
    assert store.complete and len(store) == 5 and sum(len(lab.keypoints) for lab in store) > 0


def test_launch_runs_export_labels_under_torchrun():
    def argv(*extra: str) -> list[str]:
        return torchrun_args(build_parser().parse_args(["launch", "c.yaml", "seed=1", *extra]))

    got = argv("--nproc", "2", "--command", "export-labels", "--images", "im", "--out", "o")
    assert got == [
        *("--nproc-per-node", "2", "--nnodes", "1", "--standalone", "-m", "pointforge"),
        *("export-labels", "c.yaml", "seed=1", "--out", "o", "--images", "im"),
    ]
    with pytest.raises(ValueError, match="needs --out"):
        argv("--nproc", "2", "--command", "export-labels")
    with pytest.raises(ValueError, match="belong to --command export-labels"):
        argv("--nproc", "2", "--out", "o")
