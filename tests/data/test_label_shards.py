"""Label shard store: round trip, refusal of a non-empty dir, resume checks, temp cleanup."""

from __future__ import annotations

import numpy as np
import pytest

from pointforge.data.label_shards import (
    ImageLabels,
    LabelShardWriter,
    LabelStore,
    LabelStoreError,
)


def _labels(path: str, n: int, seed: int) -> ImageLabels:
    rng = np.random.default_rng(seed)
    kpts = rng.uniform(0, 60, (n, 2)).astype(np.float32)
    return ImageLabels(
        path, kpts, rng.random(n).astype(np.float32), (48, 64), (96, 128), (0.5, 0.5)
    )


def test_round_trip_with_empty_images_and_skips(tmp_path):
    out = tmp_path / "labels"
    w = LabelShardWriter(out, {"k": 1}, shard_size=2, num_images=3)
    assert w.num_shards == 2 and list(w.shard_range(1)) == [2]
    first = [_labels("a.png", 5, 0), _labels("sub/b.png", 0, 1)]
    w.write_shard(0, first, skipped=[])
    w.write_shard(1, [], skipped=["c.jpg"])
    store = LabelStore(out)
    assert store.complete and len(store) == 2 and store.skipped == ["c.jpg"]
    assert store.paths() == ["a.png", "sub/b.png"] and "c.jpg" not in store
    for ref, got in zip(first, store, strict=True):
        np.testing.assert_array_equal(got.keypoints, ref.keypoints)
        np.testing.assert_array_equal(got.scores, ref.scores)
        assert (got.size, got.orig_size, got.scale) == ((48, 64), (96, 128), (0.5, 0.5))
    assert store["sub/b.png"].keypoints.shape == (0, 2)
    with pytest.raises(KeyError, match=r"nope\.png"):
        store["nope.png"]
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json",
        "shard_00000.npz",
        "shard_00001.npz",
    ]


def test_non_empty_dir_needs_resume_and_same_settings(tmp_path):
    (tmp_path / "other.txt").write_text("x")
    with pytest.raises(LabelStoreError, match="not empty; pass --resume"):
        LabelShardWriter(tmp_path, {}, 2, 2)
    with pytest.raises(LabelStoreError, match=r"no manifest\.json"):
        LabelShardWriter(tmp_path, {}, 2, 2, resume=True)
    out = tmp_path / "labels"
    w = LabelShardWriter(out, {"weights": "x"}, 2, 4)
    w.write_shard(0, [_labels("a.png", 3, 0), _labels("b.png", 2, 1)], [])
    with pytest.raises(LabelStoreError, match="another 'settings'"):
        LabelShardWriter(out, {"weights": "y"}, 2, 4, resume=True)
    # Only the changed keys are named, not two whole settings dicts (issue 11.8).
    many = {"weights": "x", "adaptation": {"num_homographies": 100, "nms_radius": 4, "border": 4}}
    other = tmp_path / "other_labels"
    LabelShardWriter(other, many, 2, 4)
    changed = {**many, "adaptation": {**many["adaptation"], "num_homographies": 50}}
    with pytest.raises(LabelStoreError) as info:
        LabelShardWriter(other, changed, 2, 4, resume=True)
    assert "adaptation.num_homographies: 100 -> 50" in str(info.value)
    assert "nms_radius" not in str(info.value)
    (out / ".shard_00001.npz.abc123.tmp").write_bytes(b"half a shard")  # a killed write
    resumed = LabelShardWriter(out, {"weights": "x"}, 2, 4, resume=True)
    assert resumed.done(0) and not resumed.done(1)
    assert not list(out.glob(".*.tmp"))
    assert not LabelStore(out).complete and len(LabelStore(out)) == 2
