"""Descriptor hinge loss: correspondences on hand-built warps, value vs a naive loop, chunking."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pointforge.tasks.keypoints.descriptor_loss import (
    cell_centres,
    correspondences,
    descriptor_loss,
)
from pointforge.tasks.keypoints.options import DescriptorLossConfig


def translation(tx: float, ty: float) -> torch.Tensor:
    return torch.tensor([[1.0, 0, tx], [0, 1, ty], [0, 0, 1]])


def test_cell_centres_are_the_middle_of_each_8x8_block() -> None:
    c = cell_centres(2, 3)
    assert c.shape == (6, 2)
    assert c[0].tolist() == [3.5, 3.5]  # pixels 0..7
    assert c[1].tolist() == [11.5, 3.5]  # next cell to the right (row-major)
    assert c[3].tolist() == [3.5, 11.5]  # first cell of the second row


def test_identity_pairs_each_cell_with_itself_only() -> None:
    s = correspondences(torch.eye(3)[None], 3, 4)
    assert torch.equal(s[0], torch.eye(12, dtype=torch.bool))


def test_translation_by_one_cell_pairs_with_the_right_neighbour() -> None:
    hc, wc = 3, 4
    s = correspondences(translation(8.0, 0.0)[None], hc, wc)[0]
    for i in range(hc):
        for j in range(wc):
            a = i * wc + j
            expected = {i * wc + j + 1} if j + 1 < wc else set()  # last column leaves B
            assert set(torch.nonzero(s[a]).flatten().tolist()) == expected


def test_half_cell_shift_gives_two_positives_inside_threshold() -> None:
    # 4 px right: the warped centre is 4 px from the cell and from its right neighbour.
    s = correspondences(translation(4.0, 0.0)[None], 1, 3)[0]
    assert s.tolist() == [[True, True, False], [False, True, True], [False, False, True]]


def test_rotation_by_90_degrees_about_the_centre_permutes_cells() -> None:
    # A 4x4-cell square image (32x32 px) rotated by 90 degrees about its centre (15.5, 15.5).
    c, s = 15.5, math.sin(math.pi / 2)
    rot = torch.tensor([[0.0, -s, 0], [s, 0.0, 0], [0, 0, 1]])
    H = translation(c, c) @ rot @ translation(-c, -c)
    pos = correspondences(H[None], 4, 4)[0]
    assert pos.sum(dim=1).tolist() == [1] * 16  # a permutation
    # Cell (row 0, col 0) → (x, y) = (3.5, 3.5) ↦ (27.5, 3.5) = cell (row 0, col 3).
    assert pos[0].nonzero().item() == 3


def naive_loss(da, db, H, valid, cfg: DescriptorLossConfig) -> float:
    """Straight from the paper's formula with Python loops (the reference)."""
    b, _, hc, wc = da.shape
    total, count = 0.0, 0
    for n in range(b):
        for i in range(hc * wc):
            yi, xi = divmod(i, wc)
            p = H[n] @ torch.tensor([8.0 * xi + 3.5, 8.0 * yi + 3.5, 1.0])
            p = p[:2] / p[2]
            for j in range(hc * wc):
                yj, xj = divmod(j, wc)
                if not valid[n, yj, xj]:
                    continue
                d = float(da[n, :, yi, xi] @ db[n, :, yj, xj])
                close = math.dist(p.tolist(), [8.0 * xj + 3.5, 8.0 * yj + 3.5]) < cfg.threshold
                if close:
                    total += cfg.lambda_d * max(0.0, cfg.positive_margin - d)
                else:
                    total += max(0.0, d - cfg.negative_margin)
                count += 1
    return total / count


def random_descriptors(*shape: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g), dim=1)


def test_loss_matches_the_naive_formula_with_a_valid_mask() -> None:
    cfg = DescriptorLossConfig(chunk=1)
    da, db = random_descriptors(2, 16, 3, 4, seed=1), random_descriptors(2, 16, 3, 4, seed=2)
    # Make some negatives exceed the margin and a positive imperfect.
    db[0, :, 0, 1] = da[0, :, 0, 0]
    H = torch.stack([translation(8.0, 0.0), translation(3.0, 5.0)])
    valid = torch.ones(2, 3, 4, dtype=torch.bool)
    valid[1, :, 0] = False
    got = descriptor_loss(da, db, H, valid, cfg)
    assert got.item() == pytest.approx(naive_loss(da, db, H, valid, cfg), rel=1e-5)


def test_perfect_descriptors_give_only_the_negative_term() -> None:
    # B's descriptors are A's shifted by one cell, all distinct one-hot vectors: positives have
    # d = 1 (no loss) and negatives d = 0 < 0.2 (no loss).
    hc, wc = 2, 3
    da = torch.eye(8)[: hc * wc].T.reshape(1, 8, hc, wc)
    db = torch.zeros_like(da)
    db[..., 1:] = da[..., :-1]
    db[..., 0] = torch.eye(8)[7][:, None]  # the column nothing maps to: an unused vector
    loss = descriptor_loss(da, db, translation(8.0, 0.0)[None])
    assert loss.item() == 0.0
    # Swapping B's cells breaks the correspondence: now the loss is positive.
    assert descriptor_loss(da, db.flip(-1), translation(8.0, 0.0)[None]).item() > 1.0


def test_chunking_changes_neither_value_nor_gradient() -> None:
    da = random_descriptors(5, 8, 4, 5, seed=3).requires_grad_()
    db = random_descriptors(5, 8, 4, 5, seed=4).requires_grad_()
    H = torch.stack([translation(float(k), 8.0 - k) for k in range(5)])
    grads = []
    for chunk in (1, 2, 5):
        da.grad = db.grad = None
        loss = descriptor_loss(da, db, H, cfg=DescriptorLossConfig(chunk=chunk))
        loss.backward()
        grads.append((loss.item(), da.grad.clone(), db.grad.clone()))
    for value, ga, gb in grads[1:]:
        assert value == pytest.approx(grads[0][0], rel=1e-6)
        assert torch.allclose(ga, grads[0][1], atol=1e-7)
        assert torch.allclose(gb, grads[0][2], atol=1e-7)


def test_autocast_bf16_is_computed_in_float32() -> None:
    da, db = random_descriptors(2, 32, 3, 4, seed=5), random_descriptors(2, 32, 3, 4, seed=6)
    H = torch.stack([translation(8.0, 0.0), torch.eye(3)])
    ref = descriptor_loss(da, db, H)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = descriptor_loss(da.bfloat16().float(), db.bfloat16().float(), H)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(ref.item(), rel=2e-2)


def test_no_valid_cell_gives_zero_with_a_graph() -> None:
    da = random_descriptors(1, 8, 2, 2).requires_grad_()
    loss = descriptor_loss(da, da.detach(), torch.eye(3)[None], torch.zeros(1, 2, 2, dtype=bool))
    loss.backward()
    assert loss.item() == 0.0 and da.grad is not None


def test_default_weight_gives_the_descriptor_head_gradients_far_above_adams_eps() -> None:
    """The paper's λ = 1e-4 on this per-pair mean starves the head: its gradients sit at or
    below Adam's eps (1e-8), which then damps every step (docs/keypoints.md, "Losses")."""
    import cv2
    import skimage.data

    from pointforge.models.superpoint import superpoint

    photo = cv2.resize(skimage.data.camera(), (320, 240)).astype("float32") / 255
    a = torch.from_numpy(photo)[None, None]
    b = torch.roll(a, 8, dims=-1)  # B = A shifted right by one cell
    eps = torch.optim.Adam([torch.zeros(1)]).defaults["eps"]

    def head_grad_rms(weight: float) -> float:
        torch.manual_seed(0)
        model = superpoint()
        desc = model(torch.cat([a, b]))["descriptors"]  # (2, 256, 30, 40)
        cfg = DescriptorLossConfig(weight=weight)
        loss = descriptor_loss(desc[:1], desc[1:], translation(8, 0)[None], None, cfg)
        (cfg.weight * loss).backward()
        return float(model.convDb.weight.grad.pow(2).mean().sqrt())

    assert head_grad_rms(DescriptorLossConfig().weight) > 100 * eps
    assert head_grad_rms(1e-4) < eps  # the paper's value, for contrast
