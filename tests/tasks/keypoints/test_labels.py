from __future__ import annotations

import torch
import torch.nn.functional as F

from pointforge.tasks.keypoints.labels import (
    DUSTBIN,
    keypoint_map_to_labels,
    points_to_keypoint_map,
    valid_mask_to_cells,
)


def test_single_point_lands_in_the_right_cell_and_class() -> None:
    kmap = points_to_keypoint_map([torch.tensor([[10.2, 3.7]])], 16, 24)
    assert kmap.sum() == 1 and kmap[0, 4, 10] == 1  # rounded to (x=10, y=4)
    labels = keypoint_map_to_labels(kmap)
    assert labels.shape == (1, 2, 3)
    # cell (row 0, col 1); inside it dy = 4, dx = 2 → class 4 * 8 + 2 = 34
    assert labels[0, 0, 1] == 34
    assert (labels == DUSTBIN).sum() == 5  # every other cell is empty


def test_points_outside_are_dropped_and_batches_are_separate() -> None:
    pts = [torch.tensor([[-1.0, 2.0], [30.0, 2.0], [1.0, 1.0]]), torch.zeros(0, 2)]
    kmap = points_to_keypoint_map(pts, 8, 16)
    assert kmap[0].sum() == 1 and kmap[0, 1, 1] == 1 and kmap[1].sum() == 0


def test_two_points_in_one_cell_pick_either_at_random() -> None:
    kmap = points_to_keypoint_map([torch.tensor([[1.0, 1.0], [5.0, 6.0]])], 8, 8)
    seen = {
        int(keypoint_map_to_labels(kmap, torch.Generator().manual_seed(s))[0, 0, 0])
        for s in range(40)
    }
    assert seen == {1 * 8 + 1, 6 * 8 + 5}


def test_labels_round_trip_through_pixel_shuffle() -> None:
    g = torch.Generator().manual_seed(0)
    # one point per cell at a random position, some cells empty
    kmap = torch.zeros(2, 24, 32)
    for b in range(2):
        for i in range(3):
            for j in range(4):
                if torch.rand(1, generator=g) < 0.7:
                    dy, dx = torch.randint(0, 8, (2,), generator=g).tolist()
                    kmap[b, 8 * i + dy, 8 * j + dx] = 1
    labels = keypoint_map_to_labels(kmap)
    onehot = F.one_hot(labels, 65).permute(0, 3, 1, 2).float()[:, :64]
    assert torch.equal(F.pixel_shuffle(onehot, 8)[:, 0], kmap)


def test_cell_valid_only_if_all_pixels_valid() -> None:
    mask = torch.ones(1, 1, 16, 16)
    mask[0, 0, 15, 0] = 0  # one invalid pixel in the bottom-left cell
    cells = valid_mask_to_cells(mask)
    assert cells.tolist() == [[[True, True], [False, True]]]
