"""CenterFusion model: output shapes in both modes, radar reaching only the secondary heads,
targets aligned with the detection family's slots, and every loss term finite."""

from __future__ import annotations

import math

import pytest
import torch

from pointforge.registry import MODELS, load_builtin
from pointforge.tasks.fusion.data.tensors import build_synthetic, collate_fusion
from pointforge.tasks.fusion.losses import fusion_losses
from pointforge.tasks.fusion.model import (
    decode_cells,
    fused_depth,
    gather_cells,
    inverse_sigmoid_depth,
    topk_peaks,
)
from pointforge.tasks.fusion.targets import build_fusion_targets

SMALL = {"neck_channels": (16, 16, 16), "head_conv": 8}


@pytest.fixture(scope="module")
def batch() -> dict:
    load_builtin()
    ds = build_synthetic("train", image_size=(64, 128), focal=100.0)
    return collate_fusion([ds[0], ds[1]])


def test_shapes_in_both_modes(batch: dict) -> None:
    torch.manual_seed(0)
    args = (batch["image"], batch["radar"], batch["radar_mask"], batch["intrinsics"])
    fusion = MODELS.build("centerfusion", radar=True, **SMALL).eval()
    camera = MODELS.build("centerfusion", radar=False, **SMALL).eval()
    with torch.no_grad():
        out_f, out_c = fusion(*args), camera(*args)
    common = {"heatmap": 10, "wh": 2, "offset": 2, "depth": 1, "dim": 3, "rot": 2, "amodal": 2,
              "velocity": 3, "attribute": 8}  # fmt: skip
    for name, ch in common.items():
        assert out_f[name].shape == out_c[name].shape == (2, ch, 16, 32), name
    assert out_f["depth_sec"].shape == (2, 1, 16, 32) and out_f["rot_sec"].shape == (2, 2, 16, 32)
    assert out_f["radar_maps"].shape == (2, 3, 16, 32)
    assert "depth_sec" not in out_c and not hasattr(camera, "depth_sec")
    # The secondary heads read 3 more channels than the primary ones.
    assert fusion.velocity[0].in_channels == camera.velocity[0].in_channels + 3
    # Depth heads start at 20 m.
    assert inverse_sigmoid_depth(out_c["depth"]).mean().item() == pytest.approx(20.0, rel=0.3)


def test_radar_changes_only_the_secondary_heads(batch: dict) -> None:
    torch.manual_seed(0)
    model = MODELS.build("centerfusion", radar=True, assoc_min_score=0.0, **SMALL).eval()
    targets = build_fusion_targets(batch["boxes"], batch["intrinsics"], (64, 128), 10)
    args = (batch["image"], batch["radar"], batch["radar_mask"], batch["intrinsics"])
    with torch.no_grad():
        a = model(*args, gt=targets["gt"])
        moved = batch["radar"].clone()
        moved[..., 3] += 5.0  # every return 5 m/s faster along camera x
        b = model(batch["image"], moved, batch["radar_mask"], batch["intrinsics"], gt=targets["gt"])
    assert torch.equal(a["depth"], b["depth"]) and torch.equal(a["heatmap"], b["heatmap"])
    assert a["radar_maps"][:, 0].gt(0).any(), "the ground-truth boxes found radar returns"
    assert torch.allclose(
        b["radar_maps"][:, 1], a["radar_maps"][:, 1] + 5.0 * a["radar_maps"][:, 0].gt(0)
    )
    assert not torch.equal(a["velocity"], b["velocity"])
    camera = MODELS.build("centerfusion", radar=False, **SMALL).eval()
    moved_args = (batch["image"], moved, batch["radar_mask"], batch["intrinsics"])
    with torch.no_grad():
        assert torch.equal(camera(*args)["velocity"], camera(*moved_args)["velocity"])


def test_targets_follow_the_slots_and_losses_are_finite(batch: dict) -> None:
    t = build_fusion_targets(batch["boxes"], batch["intrinsics"], (64, 128), 10)
    b0 = batch["boxes"][0]
    n = len(b0["label"])
    assert int(t["mask"][0].sum()) == n
    assert torch.allclose(t["depth"][0, :n], b0["depth"].float())
    assert torch.allclose(t["dim"][0, :n].exp(), b0["size"].float(), rtol=1e-5)
    # The amodal offset brings the heatmap cell back to the projected 3D centre.
    k = batch["intrinsics"][0]
    c = b0["center"].float()
    u = k[0, 0] * c[:, 0] / c[:, 2] + k[0, 2]
    cell_x = (t["indices"][0, :n] % 32).float()
    assert torch.allclose((cell_x + t["amodal"][0, :n, 0]) * 4, u, atol=1e-3)
    rot = t["rot"][0, :n]
    assert torch.allclose(rot.norm(dim=1), torch.ones(n))
    model = MODELS.build("centerfusion", radar=True, **SMALL)
    out = model(batch["image"], batch["radar"], batch["radar_mask"], batch["intrinsics"],
                gt=t["gt"])  # fmt: skip
    losses = fusion_losses(out, t)
    assert set(losses) == {"loss_hm", "loss_wh", "loss_off", "loss_depth", "loss_dim", "loss_rot",
                           "loss_amodal", "loss_velocity", "loss_attribute", "loss_depth_sec",
                           "loss_rot_sec"}  # fmt: skip
    assert all(math.isfinite(float(v.detach())) for v in losses.values())
    sum(losses.values()).backward()
    assert model.depth_sec[0].weight.grad is not None


def test_fused_depth_blends_the_radar_anchored_depth_only_where_radar_hit() -> None:
    radar = torch.tensor([[[[0.5, 0.0]]]])  # normalised: 30 m at the first cell, none at the second
    # offset 1.5 m and trust logit 0 (w = 0.5) at the first cell; the second has no return
    res = torch.tensor([[[[1.5, 7.0]], [[0.0, 5.0]]]])
    sec = torch.full((1, 1, 1, 2), math.log(1 / 9))  # σ = 0.1 → 1/0.1 − 1 = 9 m
    fused = fused_depth(sec, res, radar, max_depth=60.0)
    assert fused[0, 0, 0, 0].item() == pytest.approx(0.5 * 31.5 + 0.5 * 9.0, rel=1e-5)
    assert fused[0, 0, 0, 1].item() == pytest.approx(9.0, rel=1e-4)
    trusted = fused_depth(sec, torch.tensor([[[[1.5, 0.0]], [[30.0, 0.0]]]]), radar, 60.0)
    assert trusted[0, 0, 0, 0].item() == pytest.approx(31.5, rel=1e-5)  # σ(30) ≈ 1: the radar's


def test_radar_residual_depth_is_trained_and_decoded(batch: dict) -> None:
    torch.manual_seed(0)
    t = build_fusion_targets(batch["boxes"], batch["intrinsics"], (64, 128), 10)
    model = MODELS.build("centerfusion", radar=True, radar_depth_residual=True, **SMALL)
    args = (batch["image"], batch["radar"], batch["radar_mask"], batch["intrinsics"])
    out = model(*args, gt=t["gt"])
    hit = out["radar_maps"][:, :1] > 0
    assert hit.any(), "the ground-truth boxes found radar returns"
    want = fused_depth(out["depth_sec"], out["depth_res"], out["radar_maps"][:, :1], 60.0)
    assert torch.equal(out["depth_fused"], want)
    assert torch.allclose(out["depth_fused"][~hit], inverse_sigmoid_depth(out["depth_sec"])[~hit])
    assert not torch.allclose(out["depth_fused"][hit], inverse_sigmoid_depth(out["depth_sec"])[hit])
    losses = fusion_losses(out, t)
    assert "loss_depth_res" in losses and math.isfinite(float(losses["loss_depth_res"].detach()))
    losses["loss_depth_res"].backward()
    assert model.depth_res[-1].weight.grad is not None
    assert model.depth_res[-1].weight.grad.abs().sum() > 0
    # Decoding reads depth_fused: the 3D centre of a peak lies at the fused depth.
    peaks = topk_peaks(out["heatmap"].detach().sigmoid(), 5)
    dec = decode_cells({k: v.detach() for k, v in out.items()}, peaks, batch["intrinsics"], 4)
    want = gather_cells(out["depth_fused"].detach(), peaks["cells"])[..., 0]
    assert torch.allclose(dec["center"][..., 2], want)
    # The paper's head (the default) has neither output.
    paper = MODELS.build("centerfusion", radar=True, **SMALL)
    assert not hasattr(paper, "depth_res")
    assert "depth_fused" not in paper(*args, gt=t["gt"])


def test_secondary_detach_keeps_radar_losses_out_of_the_image_features(batch: dict) -> None:
    t = build_fusion_targets(batch["boxes"], batch["intrinsics"], (64, 128), 10)
    args = (batch["image"], batch["radar"], batch["radar_mask"], batch["intrinsics"])
    grads = {}
    for detach in (False, True):
        torch.manual_seed(0)
        model = MODELS.build("centerfusion", radar=True, secondary_detach=detach, **SMALL)
        out = model(*args, gt=t["gt"])
        loss = fusion_losses(out, t)
        (loss["loss_depth_sec"] + loss["loss_velocity"]).backward()
        assert model.depth_sec[0].weight.grad.abs().sum() > 0  # the head itself still learns
        grads[detach] = model.backbone[0].weight.grad
    assert grads[False] is not None and grads[False].abs().sum() > 0
    assert grads[True] is None or grads[True].abs().sum() == 0
