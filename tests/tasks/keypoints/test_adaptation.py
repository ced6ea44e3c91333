"""Homographic adaptation: identity = plain detector, hand-built un-warping, masked averaging."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data
import torch

from pointforge import DEFAULT_WEIGHTS
from pointforge.geometry.homography import HomographyConfig
from pointforge.models.loading import read_state_dict
from pointforge.tasks.keypoints.adaptation import (
    adapt_heatmaps,
    adaptation_homographies,
    aggregate,
    heatmap_keypoints,
    unwarp_heatmaps,
)
from pointforge.tasks.keypoints.postprocess import extract_keypoints, logits_to_heatmap
from pointforge.tasks.keypoints.predictor import build_model_for_state_dict


@pytest.fixture(scope="module")
def detector() -> torch.nn.Module:
    return build_model_for_state_dict(read_state_dict(DEFAULT_WEIGHTS)).eval()


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    """Two real photos, grey, 64×96, as (2, 1, 64, 96) floats in [0, 1]."""
    ims = [cv2.resize(skimage.data.camera(), (96, 64), interpolation=cv2.INTER_AREA)]
    coins = skimage.data.coins()
    ims.append(cv2.resize(coins, (96, 64), interpolation=cv2.INTER_AREA))
    return torch.from_numpy(np.stack(ims)).float().div(255)[:, None]


def test_identity_only_reproduces_plain_detector(detector, photos):
    hom = torch.stack([adaptation_homographies(i, 1, 64, 96, HomographyConfig()) for i in (0, 1)])
    assert torch.equal(hom, torch.eye(3).expand(2, 1, 3, 3))
    heat = adapt_heatmaps(detector, photos, hom, forward_batch=1)
    with torch.inference_mode():
        plain = logits_to_heatmap(detector(photos)["logits"])
    torch.testing.assert_close(heat, plain, rtol=1e-5, atol=1e-6)
    ours = heatmap_keypoints(heat, 0.015, 4, 4, None)
    ref = extract_keypoints(plain, 0.015, 4, None, 4)
    assert sum(len(k) for k, _ in ours) > 5  # the photos do have corners
    for (k, s), (rk, rs) in zip(ours, ref, strict=True):
        np.testing.assert_array_equal(k, rk.numpy())
        np.testing.assert_allclose(s, rs.numpy(), rtol=1e-5)


def test_unwarp_maps_a_peak_back_through_a_known_homography():
    # H maps source pixel (x, y) to (2x + 4, 2y + 6): the view's peak at (24, 20) is the
    # source's (10, 7); source pixels with 2x + 4 > 63 were never seen by the view.
    h = torch.tensor([[[2.0, 0, 4], [0, 2, 6], [0, 0, 1]]])
    view = torch.zeros(1, 48, 64)
    view[0, 20, 24] = 1.0
    back, mask = unwarp_heatmaps(view, h, valid_border_margin=0)
    assert back[0, 7, 10] == pytest.approx(1.0, abs=1e-5)
    assert back.sum() == pytest.approx(1.0, abs=1e-4)  # no other pixel picks up the peak
    # Seen: x ≤ 29 (2·29+4 ≤ 63 < 2·30+4) and y ≤ 20 (2·20+6 ≤ 47 < 2·21+6).
    assert mask[0, :21, :30].min() == 1
    assert mask[0, :, 30:].max() == 0 and mask[0, 21:].max() == 0
    # Erosion shrinks the seen region from the warp's border only, not from the image's edge.
    _, eroded = unwarp_heatmaps(view, h, valid_border_margin=2)
    assert eroded[0, :19, :28].min() == 1
    assert eroded[0, :, 28:].max() == 0 and eroded[0, 19:].max() == 0


def test_mean_is_weighted_by_validity_masks():
    identity = torch.full((1, 4, 6), 0.2)
    back = torch.full((1, 2, 4, 6), 0.6)
    mask = torch.zeros(1, 2, 4, 6)
    mask[0, 0, :, :3] = 1  # view 1 saw the left half; view 2 saw nothing
    mean = aggregate(identity, back, mask, "mean")
    torch.testing.assert_close(mean[0, :, :3], torch.full((4, 3), 0.4))
    torch.testing.assert_close(mean[0, :, 3:], torch.full((4, 3), 0.2))
    top = aggregate(identity, back, mask, "max")
    assert top[0, 0, 0] == pytest.approx(0.6) and top[0, 0, 5] == pytest.approx(0.2)


def test_homographies_are_seeded_per_image():
    cfg = HomographyConfig()
    a = adaptation_homographies(3, 5, 64, 96, cfg, seed=1)
    assert a.shape == (5, 3, 3) and torch.equal(a[0], torch.eye(3))
    assert torch.equal(a, adaptation_homographies(3, 5, 64, 96, cfg, seed=1))
    assert not torch.allclose(a[1:], adaptation_homographies(4, 5, 64, 96, cfg, seed=1)[1:])


def test_bf16_adaptation_finds_the_float32_keypoints(detector, photos):
    """bf16 + channels-last (adaptation.amp=bf16) is a speed option: the labels must stay those
    of float32 up to the precision of the heatmap near the threshold."""
    hom = torch.stack(
        [adaptation_homographies(i, 6, 64, 96, HomographyConfig(), seed=1) for i in (0, 1)]
    )
    ref = adapt_heatmaps(detector, photos, hom, forward_batch=4)
    fast = adapt_heatmaps(detector, photos, hom, forward_batch=4, amp="bf16")
    assert fast.dtype == torch.float32 and fast.shape == ref.shape
    assert not torch.equal(fast, ref)  # the bf16 path did run
    assert (fast - ref).abs().max() < 0.05 * ref.max()
    for (k, _), (rk, _) in zip(
        heatmap_keypoints(fast, 0.003, 4, 4, None),
        heatmap_keypoints(ref, 0.003, 4, 4, None),
        strict=True,
    ):
        assert len(rk) > 5
        d = np.linalg.norm(k[:, None] - rk[None], axis=-1)
        assert (d.min(axis=1) <= 1.0).mean() > 0.8 and abs(len(k) - len(rk)) <= 0.2 * len(rk)
