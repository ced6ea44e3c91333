from __future__ import annotations

import numpy as np
import torch

from pointforge.tasks.reid.data.synthetic import SyntheticReID, SyntheticReIDParams

PARAMS = SyntheticReIDParams(num_train_ids=5, num_test_ids=4, num_cameras=3, images_per_camera=2)


def test_items_are_deterministic() -> None:
    a, b = SyntheticReID("gallery", PARAMS), SyntheticReID("gallery", PARAMS)
    for i in (0, 7, len(a) - 1):
        assert torch.equal(a[i]["image"], b[i]["image"])
    assert not torch.equal(a[0]["image"], a[1]["image"])  # two instances of one identity
    other = SyntheticReID("gallery", SyntheticReIDParams(**{**PARAMS.__dict__, "seed": 1}))
    assert not torch.equal(a[0]["image"], other[0]["image"])
    item = a[3]
    assert item["image"].shape == (3, 128, 64) and item["image"].dtype == torch.float32
    assert item["pid"].dtype == torch.int64 and item["index"] == 3


def test_identities_and_cameras() -> None:
    train, query, gallery = (SyntheticReID(s, PARAMS) for s in ("train", "query", "gallery"))
    assert len(train) == 5 * 3 * 2 and len(query) == 4 * 3 and len(gallery) == 4 * 3 * 2
    assert sorted(set(train.pids.tolist())) == list(range(5))  # contiguous labels
    assert train.num_classes == 5
    test_ids = set(query.pids.tolist())
    assert test_ids == set(gallery.pids.tolist()) == {6, 7, 8, 9}
    assert not test_ids & {p + 1 for p in train.pids.tolist()}  # disjoint original ids
    for pid, cam in zip(query.pids, query.camids):  # a match in another camera exists
        assert np.any((gallery.pids == pid) & (gallery.camids != cam))
    # query images are not copies of gallery images
    assert not any(torch.equal(query[0]["image"], gallery[j]["image"]) for j in range(6))
