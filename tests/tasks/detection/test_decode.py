"""Decoding recovers boxes from perfect maps; flip test symmetry; mapping back to originals."""

from __future__ import annotations

import torch
from torch import nn

from pointforge.tasks.detection.decode import (
    boxes_to_original,
    decode,
    detect,
    merge_flip,
    peak_mask,
)
from pointforge.tasks.detection.targets import build_targets


def _perfect_maps(t: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Dense wh/offset maps holding each object's target at its cell; heat = target heatmap."""
    b, _, h, w = t["heatmap"].shape
    wh = torch.zeros(b, 2, h * w)
    off = torch.zeros(b, 2, h * w)
    for i in range(b):
        for j in torch.nonzero(t["mask"][i]).flatten().tolist():
            wh[i, :, t["indices"][i, j]] = t["wh"][i, j]
            off[i, :, t["indices"][i, j]] = t["offset"][i, j]
    return t["heatmap"], wh.view(b, 2, h, w), off.view(b, 2, h, w)


def test_decode_recovers_boxes_from_perfect_maps() -> None:
    boxes = [
        torch.tensor([[3.0, 5, 41, 37], [50, 20, 90, 60], [70, 70, 126, 122]]),
        torch.tensor([[10.0, 90, 31, 113]]),
    ]
    labels = [torch.tensor([0, 2, 2]), torch.tensor([1])]
    t = build_targets(boxes, labels, 3, (128, 128))
    heat, wh, off = _perfect_maps(t)
    # Through logits, as the model would give them: sigmoid(logit(Y)) = Y.
    logits = torch.logit(heat.clamp(1e-6, 1 - 1e-6))
    det = decode(logits.sigmoid(), wh, off, k=10)
    assert det["boxes"].shape == (2, 10, 4) and det["boxes"].dtype == torch.float32
    for i in range(2):
        n = boxes[i].shape[0]
        torch.testing.assert_close(
            sorted(det["boxes"][i, :n].tolist()), sorted(boxes[i].tolist()), atol=1e-3, rtol=0
        )
        assert sorted(det["labels"][i, :n].tolist()) == sorted(labels[i].tolist())
        assert (det["scores"][i, :n] > 0.99).all()
        assert (det["scores"][i, n:] < 0.99).all()  # the rest are lower peaks / background


def test_peak_mask_keeps_local_maxima_only() -> None:
    heat = torch.zeros(1, 1, 5, 5)
    heat[0, 0, 2, 2], heat[0, 0, 2, 3], heat[0, 0, 0, 0] = 0.9, 0.5, 0.3
    kept = peak_mask(heat)
    assert kept[0, 0, 2, 2] == 0.9 and kept[0, 0, 0, 0] == 0.3 and kept[0, 0, 2, 3] == 0
    assert int((kept > 0).sum()) == 2


class _Lopsided(nn.Module):
    """A fake detector that, like a trained CNN, is not mirror-equivariant: its maps add a
    left-to-right ramp to a function of the image."""

    stride = 4

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        small = nn.functional.avg_pool2d(x, 4)
        ramp = torch.linspace(0, 1, small.shape[-1])
        return {
            "heatmap": small[:, :2] * 4 - 2 + ramp,
            "wh": small[:, 1:3] * 10 + 1 + 3 * ramp,
            "offset": small[:, :2] * 0.5,
        }


def test_flip_test_is_mirror_symmetric() -> None:
    torch.manual_seed(0)
    image = torch.rand(1, 3, 32, 32)
    model = _Lopsided()
    # The merged heat and size of the mirrored image are the mirrored merged maps of the
    # image (flip test makes the prediction flip-equivariant even for a lopsided network).
    heat, wh, _ = merge_flip(model(image), model(image.flip(3)))
    heat_m, wh_m, _ = merge_flip(model(image.flip(3)), model(image))
    torch.testing.assert_close(heat_m, heat.flip(3))
    torch.testing.assert_close(wh_m, wh.flip(3))
    # The ramp's two mirror images average to a symmetric bias.
    out = model(image)
    expected = (out["heatmap"].sigmoid() + model(image.flip(3))["heatmap"].sigmoid().flip(3)) / 2
    torch.testing.assert_close(heat, expected)
    # So detect() finds the same (label, score, width) set on the image and on its mirror
    # (ties may come in either order).
    a = detect(model, image, k=20, flip_test=True)
    b = detect(model, image.flip(3), k=20, flip_test=True)

    def rows(d: dict[str, torch.Tensor]) -> list[tuple[int, float, float]]:
        w = d["boxes"][0, :, 2] - d["boxes"][0, :, 0]
        return sorted(
            (int(c), round(float(s), 5), round(float(x), 4))
            for c, s, x in zip(d["labels"][0], d["scores"][0], w)
            if s > 0  # past the last peak, top-k fills with zero-score cells in any order
        )

    assert len(rows(a)) >= 3 and rows(a) == rows(b)
    # Flip test really averages: without it, the lopsided network gives other scores.
    c = detect(model, image, k=20, flip_test=False)
    assert not torch.allclose(a["scores"], c["scores"])


def test_boxes_to_original_scales_and_clips() -> None:
    boxes = torch.tensor([[[10.0, 20, 50, 60], [-4, 0, 300, 200]]])
    out = boxes_to_original(boxes, [[0.5, 0.25]], [[200, 100]])
    torch.testing.assert_close(out, torch.tensor([[[20.0, 80, 100, 200], [0, 0, 100, 200]]]))
