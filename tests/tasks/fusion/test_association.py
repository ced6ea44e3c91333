"""Frustum association on a hand-built scene: one object, radar points inside and outside its
frustum and its 2D box, one that only its pillar brings into the box, and a padded row."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from pointforge.tasks.fusion.association import (
    AssociationParams,
    associate,
    depth_half_extent,
    pillar_boxes,
    radar_feature_maps,
)

K = torch.tensor([[[100.0, 0, 80], [0, 100.0, 48], [0, 0, 1]]])  # (1, 3, 3)
BOX = torch.tensor([[[60.0, 28, 100, 68]]])  # centre (80, 48), 40 x 40 px
DEPTH, DELTA = torch.tensor([[10.0]]), torch.tensor([[1.5]])  # frustum depth (8.5, 11.5)


def radar_row(x: float, y: float, z: float, vx: float = 0.0, vz: float = 0.0) -> list[float]:
    return [x, y, z, vx, 0.0, vz, 0.0, 0.0, 0.0]


POINTS = [
    radar_row(0.0, 1.0, 10.8, 1.0, 1.0),  # 0: in box and frustum
    radar_row(0.5, 1.0, 9.0, 2.0, -1.0),  # 1: in box and frustum, nearer
    radar_row(0.0, 1.0, 8.0, 5.0, 5.0),  # 2: in the box, in front of the frustum (8 < 8.5)
    radar_row(5.0, 1.0, 8.7, 6.0, 6.0),  # 3: in depth range, right of the box (u ~ 137 px)
    # 4: projects below the box (v = 48 + 100 * 2.6 / 8.6 = 78 > 68) but its 1.5 m pillar
    # reaches up to v = 48 + 100 * 1.1 / 8.6 = 61: the nearest valid return (8.6 > 8.5).
    radar_row(-0.5, 2.6, 8.6, 3.0, -2.0),
    radar_row(0.0, 1.0, 8.55, 9.0, 9.0),  # 5: padding (masked out), would be nearest
]
RADAR = torch.tensor([POINTS])
MASK = torch.tensor([[True, True, True, True, True, False]])
OBJ = torch.tensor([[True]])


def test_pillar_box_projects_the_fixed_height_pillar() -> None:
    box = pillar_boxes(RADAR, K, AssociationParams())[0, 4]
    # Corners x -0.5 ± 0.1, y from 2.6 - 1.5 up to 2.6, z 8.6 ± 0.1; extreme pixels at the
    # nearest depth 8.5 for the far-from-centre sides, 8.7 for the near-to-centre ones.
    assert box.tolist() == pytest.approx(
        [80 - 100 * 0.6 / 8.5, 48 + 100 * 1.1 / 8.7, 80 - 100 * 0.4 / 8.7, 48 + 100 * 2.6 / 8.5],
        abs=1e-3,
    )


def test_closest_point_inside_the_frustum_and_pillar_is_picked() -> None:
    p = AssociationParams()
    index, found = associate(BOX, DEPTH, DELTA, OBJ, RADAR, MASK, pillar_boxes(RADAR, K, p))
    assert found.tolist() == [[True]] and index.tolist() == [[4]]
    # A (nearly) flat pillar leaves point 4 below the box: the next nearest, point 1, wins.
    flat = dataclasses.replace(p, pillar_height=1e-3)
    index, found = associate(BOX, DEPTH, DELTA, OBJ, RADAR, MASK, pillar_boxes(RADAR, K, flat))
    assert index.tolist() == [[1]]
    # A frustum too shallow for any return: nothing found.
    _, found = associate(BOX, DEPTH, torch.tensor([[0.1]]), OBJ, RADAR, MASK,
                         pillar_boxes(RADAR, K, p))  # fmt: skip
    assert found.tolist() == [[False]]


def test_depth_and_velocity_written_into_the_scaled_box_only() -> None:
    p = AssociationParams()
    maps = radar_feature_maps(BOX, DEPTH, DELTA, OBJ, RADAR, MASK, K, (24, 40), 4, p)
    assert maps.shape == (1, 3, 24, 40)
    # 0.3 x the 40 px box around (80, 48): x, y in [74, 86] px -> cells 18..21 and 10..13.
    region = torch.zeros(24, 40, dtype=torch.bool)
    region[10:14, 18:22] = True
    expected = torch.tensor([8.6 / 60.0, 3.0, -2.0])
    for c in range(3):
        assert torch.allclose(maps[0, c][region], expected[c].expand(16))
        assert not maps[0, c][~region].any()


def test_overlapping_regions_keep_the_nearer_object_and_unmatched_objects_write_nothing() -> None:
    boxes = torch.tensor([[[60.0, 28, 100, 68], [64.0, 32, 104, 72], [0.0, 0, 20, 20]]])
    depth = torch.tensor([[10.0, 20.0, 10.0]])
    delta = torch.tensor([[1.5, 1.5, 1.5]])
    far = radar_row(0.3, 1.0, 20.5, 7.0, 7.0)  # in the second box, at depth 20.5
    radar = torch.tensor([[*POINTS[:5], far]])
    mask = torch.ones(1, 6, dtype=torch.bool)
    obj = torch.ones(1, 3, dtype=torch.bool)
    maps = radar_feature_maps(boxes, depth, delta, obj, radar, mask, K, (24, 40), 4,
                              AssociationParams())  # fmt: skip
    # The second box's region (x 78..90 px -> cells 19..22, y 46..58 -> 11..14) overlaps the
    # first one's; shared cells hold the nearer (8.6 m) return, the rest the 20.5 m one.
    assert maps[0, 0, 11, 19] == pytest.approx(8.6 / 60)
    assert maps[0, 0, 14, 22] == pytest.approx(20.5 / 60) and maps[0, 1, 14, 22] == 7.0
    assert not maps[0, :, :5, :5].any()  # the third object has no return


def test_depth_half_extent_of_a_rotated_box() -> None:
    size = torch.tensor([[2.0, 4.0, 1.5]])  # w, l, h
    assert depth_half_extent(size, torch.tensor([0.0])).item() == pytest.approx(1.0)
    assert depth_half_extent(size, torch.tensor([torch.pi / 2])).item() == pytest.approx(2.0)
