from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pointforge.models.superpoint import SuperPoint, magicpoint, superpoint

V1_KEYS = [
    f"{name}.{p}"
    for name in (
        "conv1a",
        "conv1b",
        "conv2a",
        "conv2b",
        "conv3a",
        "conv3b",
        "conv4a",
        "conv4b",
        "convPa",
        "convPb",
        "convDa",
        "convDb",
    )
    for p in ("weight", "bias")
]


def test_shapes_and_normalised_descriptors() -> None:
    out = superpoint()(torch.rand(2, 1, 120, 160))
    assert out["logits"].shape == (2, 65, 15, 20)
    assert out["descriptors"].shape == (2, 256, 15, 20)
    assert torch.allclose(out["descriptors"].norm(dim=1), torch.ones(2, 15, 20), atol=1e-5)
    assert set(magicpoint()(torch.rand(1, 1, 16, 16))) == {"logits"}


def test_v1_parameter_names_and_size(tmp_path: Path) -> None:
    model = superpoint()
    assert list(model.state_dict()) == V1_KEYS
    n = sum(p.numel() for p in model.parameters())
    assert 1.25e6 < n < 1.35e6  # "about 1.3 M parameters" (docs/keypoints.md)
    # A plain v1 state dict round-trips strictly, also into a fresh model.
    torch.save(model.state_dict(), tmp_path / "v1.pth")
    fresh = SuperPoint()
    fresh.load_state_dict(torch.load(tmp_path / "v1.pth", weights_only=True), strict=True)
    x = torch.rand(1, 1, 32, 48)
    assert torch.equal(fresh(x)["logits"], model(x)["logits"])


def test_batchnorm_variant_keeps_v1_conv_keys() -> None:
    bn = SuperPoint(batchnorm=True)
    keys = set(bn.state_dict())
    assert set(V1_KEYS) <= keys and any(k.startswith("bn1a.") for k in keys)
    # v1 weights load into the BN variant's convs (BN keys are the only extras).
    missing = bn.load_state_dict(superpoint().state_dict(), strict=False).missing_keys
    assert all(k.startswith("bn") for k in missing)


def test_bad_shapes_raise_named_errors() -> None:
    with pytest.raises(ValueError, match=r"divisible by 8.*\(1, 1, 100, 160\)"):
        magicpoint()(torch.rand(1, 1, 100, 160))
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        magicpoint()(torch.rand(1, 3, 64, 64))


def test_channels_last_gives_same_result() -> None:
    model = magicpoint().eval()
    x = torch.rand(2, 1, 64, 80)
    ref = model(x)["logits"]
    cl = model.to(memory_format=torch.channels_last)(
        x.contiguous(memory_format=torch.channels_last)
    )
    assert torch.allclose(ref, cl["logits"], atol=1e-4)


def test_lite_variant_keeps_the_cell_and_outputs_with_a_strided_stem() -> None:
    from pointforge.models.superpoint import LITE_CHANNELS, SuperPointLiteParams, superpoint_lite

    # BatchNorm is the Lite default (it barely trains without); the shipped file has it.
    assert SuperPointLiteParams().batchnorm and any(
        k.startswith("bn") for k in superpoint_lite().state_dict()
    )
    lite, full = superpoint_lite(batchnorm=False), superpoint()
    assert lite.stride == 2 and lite.pool_after == ("conv1b", "conv2b")
    assert full.stride == 1 and full.pool_after == ("conv1b", "conv2b", "conv3b")
    out = lite(torch.rand(2, 1, 120, 160))
    assert out["logits"].shape == (2, 65, 15, 20)
    assert out["descriptors"].shape == (2, 256, 15, 20)
    assert torch.allclose(out["descriptors"].norm(dim=1), torch.ones(2, 15, 20), atol=1e-5)
    assert [lite.state_dict()[f"{n}.weight"].shape[0] for n in lite.encoder] == list(LITE_CHANNELS)
    # The same parameter names as the full network, fewer of each.
    assert set(lite.state_dict()) == set(full.state_dict()) - {"conv4a.weight", "conv4a.bias"} - {
        "conv4b.weight",
        "conv4b.bias",
    }
    n_lite = sum(p.numel() for p in lite.parameters())
    assert n_lite < 0.5 * sum(p.numel() for p in full.parameters())


@pytest.mark.parametrize(
    "make",
    [
        superpoint,
        magicpoint,
        lambda: SuperPoint(batchnorm=True),
        lambda: SuperPoint(descriptor_dim=64, channels=(16, 16, 32, 32), head_channels=32),
        lambda: SuperPoint(batchnorm=True, output_batchnorm=False),
    ],
)
def test_architecture_is_read_back_from_the_state_dict(make) -> None:  # type: ignore[no-untyped-def]
    """Any variant's weights rebuild the same network (the predictor and ``detect`` rely on
    this to open a SuperPoint-Lite checkpoint without being told its shape)."""
    from pointforge.models.superpoint import architecture_of, superpoint_lite

    for model in (make(), superpoint_lite()):
        model.eval()
        again = SuperPoint(**architecture_of(model.state_dict()))
        again.load_state_dict(model.state_dict(), strict=True)
        again.eval()
        x = torch.rand(1, 1, 64, 80)
        with torch.no_grad():
            a, b = model(x), again(x)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key


def test_bad_channel_layouts_are_refused() -> None:
    with pytest.raises(ValueError, match="in pairs"):
        SuperPoint(channels=(32, 32, 64))
    with pytest.raises(ValueError, match="2 to 4 stages"):
        SuperPoint(channels=(8,) * 10)


def test_lite_batchnorm_leaves_the_output_convs_free() -> None:
    """A BatchNorm on the logits would normalise away the large "no keypoint" offset a
    distilled student must match; the Lite BN variant normalises every conv but the two 1x1
    output convs, and its checkpoint says so by its keys."""
    from pointforge.models.superpoint import architecture_of, superpoint_lite

    keys = set(superpoint_lite(batchnorm=True).state_dict())
    assert "bn1a.weight" in keys and "bnPa.weight" in keys and "bnDa.weight" in keys
    assert "bnPb.weight" not in keys and "bnDb.weight" not in keys
    arch = architecture_of(superpoint_lite(batchnorm=True).state_dict())
    assert arch["batchnorm"] and not arch["output_batchnorm"]
    assert {"bnPb.weight", "bnDb.weight"} <= set(superpoint(batchnorm=True).state_dict())


def test_model_overrides_are_read_from_the_weights_shape() -> None:
    from pointforge.models.superpoint import model_overrides_for, superpoint_lite

    assert model_overrides_for(superpoint().state_dict()) == (
        "model.name=superpoint model.batchnorm=false"
    )
    assert model_overrides_for(magicpoint(batchnorm=True).state_dict()) == (
        "model.name=magicpoint model.batchnorm=true"
    )
    assert model_overrides_for(superpoint_lite().state_dict()) == (
        "model.name=superpoint_lite model.batchnorm=true"
    )
    # Shapes no registered model has, and other networks' weights: no suggestion.
    odd = SuperPoint(channels=(16, 16, 32, 32), head_channels=32)
    assert model_overrides_for(odd.state_dict()) is None
    assert model_overrides_for({"fc.weight": torch.zeros(2, 2)}) is None
