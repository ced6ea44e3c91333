"""export_labels end to end on real photos: shards, resume after an interruption, skip policy."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pointforge import MAGICPOINT_WEIGHTS
from pointforge.config import load_config
from pointforge.data.datasets.homography_pairs import SKIMAGE_PHOTOS
from pointforge.data.datasets.photo_folder import write_sample_photos
from pointforge.data.label_shards import LabelShardWriter, LabelStore
from pointforge.tasks.keypoints.export_labels import export_labels

OVERRIDES = [
    "task=magicpoint",
    "data.name=photo_folder",
    "device=cpu",
    "data.image_size=[64,80]",
    "adaptation.num_homographies=3",
    "adaptation.shard_size=2",
    "adaptation.images_per_batch=2",
    # 64x80 photos are tiny for the detector: a low threshold keeps labels on every photo.
    "adaptation.detection_threshold=0.005",
]


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    write_sample_photos(folder, ["camera", "coins", "astronaut"])
    return folder


@pytest.fixture(scope="module")
def reference(photo_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "labels"
    summary = export_labels(
        load_config(None, OVERRIDES), MAGICPOINT_WEIGHTS, photo_dir, out, progress=False
    )
    assert summary == {
        "images": 3,
        "labelled": 3,
        "skipped": 0,
        "shards_written": 2,
        "shards_resumed": 0,
    }
    return LabelStore(out)


def test_export_writes_every_image_once(reference):
    assert reference.complete
    assert reference.paths() == ["astronaut.png", "camera.png", "coins.png"]
    for lab in reference:
        assert len(lab.keypoints) > 0 and lab.size == (64, 80)
        assert (lab.keypoints >= 4).all() and (lab.keypoints[:, 0] <= 75).all()  # border 4
        assert (lab.scores > 0.005).all() and (np.diff(lab.scores) <= 0).all()


def test_resume_after_interruption_gives_same_labels(photo_dir, reference, tmp_path, monkeypatch):
    out = tmp_path / "labels"
    real_write = LabelShardWriter.write_shard

    def write_then_die(self, shard, labels, skipped):
        real_write(self, shard, labels, skipped)
        raise KeyboardInterrupt  # killed right after the first shard was committed

    monkeypatch.setattr(LabelShardWriter, "write_shard", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        export_labels(
            load_config(None, OVERRIDES), MAGICPOINT_WEIGHTS, photo_dir, out, progress=False
        )
    monkeypatch.setattr(LabelShardWriter, "write_shard", real_write)
    assert len(LabelStore(out)) == 2 and not LabelStore(out).complete
    with pytest.raises(ValueError, match="--resume"):
        export_labels(
            load_config(None, OVERRIDES), MAGICPOINT_WEIGHTS, photo_dir, out, progress=False
        )
    # A resume may change the batch sizes: they do not change the labels.
    cfg = load_config(
        None, [*OVERRIDES, "adaptation.images_per_batch=1", "adaptation.forward_batch=1"]
    )
    summary = export_labels(cfg, MAGICPOINT_WEIGHTS, photo_dir, out, resume=True, progress=False)
    assert (summary["shards_resumed"], summary["shards_written"]) == (1, 1)
    store = LabelStore(out)
    assert store.complete and store.paths() == ["astronaut.png", "camera.png", "coins.png"]
    for got in store:
        want = reference[got.path]
        np.testing.assert_allclose(got.keypoints, want.keypoints)
        np.testing.assert_allclose(got.scores, want.scores, rtol=1e-4)


def test_skip_policy_records_the_bad_file(photo_dir, tmp_path):
    folder = tmp_path / "photos"
    write_sample_photos(folder, ["camera"])
    (folder / "zz_broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    # A real photo cut short: OpenCV decodes it (lower part grey), so it used to be labelled.
    jpeg = cv2.imencode(".jpg", cv2.imread(str(folder / "camera.png")))[1].tobytes()
    (folder / "zz_truncated.jpg").write_bytes(jpeg[: len(jpeg) * 2 // 5])
    cfg = load_config(None, [*OVERRIDES, "data.on_bad_image=skip"])
    summary = export_labels(cfg, MAGICPOINT_WEIGHTS, folder, tmp_path / "out", progress=False)
    assert (summary["labelled"], summary["skipped"]) == (1, 2)
    store = LabelStore(tmp_path / "out")
    assert store.complete and store.paths() == ["camera.png"]
    assert store.skipped == ["zz_broken.jpg", "zz_truncated.jpg"]
    with pytest.raises(ValueError, match=r"zz_broken\.jpg"):
        export_labels(load_config(None, OVERRIDES), MAGICPOINT_WEIGHTS, folder, tmp_path / "o2")


def test_sigkill_mid_export_then_resume_matches_uninterrupted(tmp_path):
    """A real ``kill -9`` of the CLI while it writes shards; ``--resume`` must finish with
    exactly the labels of an uninterrupted export, each image once."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    folder = tmp_path / "photos"
    write_sample_photos(folder, SKIMAGE_PHOTOS[:8])  # one shard each below
    overrides = [*OVERRIDES, "adaptation.num_homographies=8", "adaptation.shard_size=1"]
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "pointforge", "export-labels", "configs/export_labels.yaml"]
    cmd += [*overrides, "--images", str(folder), "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            done = len(json.loads((out / "manifest.json").read_text())["shards"])
        except (OSError, ValueError):
            done = 0
        if done >= 2:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the export finished before it could be killed"
    assert 2 <= len(LabelStore(out)) < 8
    cfg = load_config(None, overrides)
    export_labels(cfg, MAGICPOINT_WEIGHTS, folder, out, resume=True, progress=False)
    export_labels(cfg, MAGICPOINT_WEIGHTS, folder, tmp_path / "ref", progress=False)
    got, want = LabelStore(out), LabelStore(tmp_path / "ref")
    assert got.complete and got.paths() == want.paths() and len(set(got.paths())) == 8
    assert not list(out.glob(".*.tmp"))
    for lab in want:
        np.testing.assert_allclose(got[lab.path].keypoints, lab.keypoints)
        np.testing.assert_allclose(got[lab.path].scores, lab.scores, rtol=1e-4)


def test_second_round_labels_come_from_superpoint_detector_only(photo_dir, reference, tmp_path):
    """The paper's second adaptation round: ``--weights`` may be a SuperPoint. Its labels must
    be those of its detector alone (descriptor head dropped gives the same labels), recorded
    under the SuperPoint's hash, and differ from the first round's MagicPoint labels."""
    import hashlib
    import json

    import torch

    from pointforge import SUPERPOINT_WEIGHTS
    from pointforge.models.loading import read_state_dict

    state = read_state_dict(SUPERPOINT_WEIGHTS)
    assert any(k.startswith("convD") for k in state)  # a real descriptor head is loaded
    detector_only = tmp_path / "detector_only.pth"
    torch.save({k: v for k, v in state.items() if not k.startswith("convD")}, detector_only)
    runs = {}
    for name, weights in [("superpoint", SUPERPOINT_WEIGHTS), ("detector", detector_only)]:
        export_labels(load_config(None, OVERRIDES), weights, photo_dir, tmp_path / name)
        runs[name] = LabelStore(tmp_path / name)
    manifest = json.loads((tmp_path / "superpoint" / "manifest.json").read_text())
    sha = hashlib.sha256(SUPERPOINT_WEIGHTS.read_bytes()).hexdigest()
    assert manifest["settings"]["weights_sha256"] == sha
    differs = False
    for lab in runs["superpoint"]:
        np.testing.assert_allclose(lab.keypoints, runs["detector"][lab.path].keypoints)
        np.testing.assert_allclose(lab.scores, runs["detector"][lab.path].scores, rtol=1e-4)
        first = reference[lab.path]
        differs |= len(first.keypoints) != len(lab.keypoints) or not np.allclose(
            first.keypoints, lab.keypoints
        )
    assert differs, "SuperPoint labels equal the MagicPoint's: the --weights were not used"
