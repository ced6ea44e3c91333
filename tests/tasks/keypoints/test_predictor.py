from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from skimage import data as skdata

import pointforge
from pointforge import DEFAULT_WEIGHTS
from pointforge.engine import precision
from pointforge.models.loading import read_state_dict
from pointforge.models.superpoint import SuperPoint, magicpoint, superpoint
from pointforge.tasks.keypoints.predictor import (
    KeypointPredictor,
    build_model_for_state_dict,
    load_state_dict_from_file,
)


@pytest.fixture(scope="module")
def sp_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "sp.pth"
    torch.save({"model": superpoint().state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def shipped_sp() -> SuperPoint:
    """The shipped detector weights plus a seeded random descriptor head.

    A fully random network gives nearly input-independent heatmaps (its biases dominate), so
    invariance tests on it could pass for any preprocessing; the trained detector responds to
    the image content, and random descriptors of its trained features still depend on it.
    """
    torch.manual_seed(0)
    model = SuperPoint(descriptor=True)
    missing, unexpected = model.load_state_dict(read_state_dict(DEFAULT_WEIGHTS), strict=False)
    assert not unexpected and all(k.startswith("convD") for k in missing)
    return model.eval()


def assert_same(a: dict, b: dict) -> None:
    for key in ("keypoints", "scores", "descriptors"):
        assert np.array_equal(a[key], b[key]), key


def test_bgr_grey_and_bgra_inputs_give_the_same_output(shipped_sp: SuperPoint) -> None:
    pred = KeypointPredictor(shipped_sp, device="cpu", detection_threshold=0.005)
    rgb = cv2.resize(skdata.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)  # real photo
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    ref = pred(bgr)
    assert len(ref["keypoints"]) > 20
    assert ref["descriptors"].shape == (len(ref["keypoints"]), 256)
    assert np.allclose(np.linalg.norm(ref["descriptors"], axis=1), 1, atol=1e-5)
    assert np.all(np.diff(ref["scores"]) <= 0)  # sorted descending
    assert_same(ref, pred(grey))
    assert_same(ref, pred(grey[..., None]))  # (H, W, 1)
    assert_same(ref, pred(cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)))  # alpha is ignored
    # Channel order matters on this photo, so the checks above would catch an RGB/BGR mix-up.
    assert not np.array_equal(ref["scores"], pred(rgb)["scores"])
    # A flipped view (negative strides) is accepted and equals its contiguous copy.
    flipped = bgr[:, ::-1]
    assert_same(pred(flipped), pred(np.ascontiguousarray(flipped)))


@pytest.mark.parametrize("size", [(1, 1), (7, 13), (15, 15), (17, 23), (481, 641)])
def test_any_size_gives_keypoints_inside_the_image(
    shipped_sp: SuperPoint, size: tuple[int, int]
) -> None:
    h, w = size
    camera = skdata.camera()  # (512, 512) real photo; small sizes crop a textured region
    img = cv2.resize(camera, (w, h)) if h > 100 else camera[300 : 300 + h, 200 : 200 + w]
    for border in (0, 4):
        pred = KeypointPredictor(shipped_sp, device="cpu", detection_threshold=0.0, border=border)
        out = pred(img)
        k = out["keypoints"]
        assert out["descriptors"].shape == (len(k), 256) and out["scores"].shape == (len(k),)
        assert np.all((k[:, 0] >= border) & (k[:, 0] <= w - 1 - border))
        assert np.all((k[:, 1] >= border) & (k[:, 1] <= h - 1 - border))
        # Sub-pixel keypoints are the integer ones (pixel positions, not rescaled coordinates)
        # moved by at most half a pixel per axis, same order and scores.
        integer = KeypointPredictor(
            shipped_sp, device="cpu", detection_threshold=0.0, border=border, subpixel=False
        )(img)
        assert np.all(integer["keypoints"] == np.round(integer["keypoints"]))
        np.testing.assert_array_equal(out["scores"], integer["scores"])
        assert np.abs(k - integer["keypoints"]).max(initial=0.0) <= 0.5
        if border == 0:
            assert len(k) > 0  # the padded region is masked, the real pixels are not
        if min(h, w) <= 2 * border:
            assert len(k) == 0


def test_odd_and_tiny_sizes_work(sp_weights: Path) -> None:
    pred = pointforge.load_predictor(sp_weights, device="cpu", detection_threshold=0.0, border=2)
    for h, w in [(101, 77), (9, 13)]:
        img = np.random.default_rng(0).integers(0, 255, (h, w), dtype=np.uint8)
        out = pred(img)
        k = out["keypoints"]
        assert np.all((k[:, 0] >= 2) & (k[:, 0] < w - 2) & (k[:, 1] >= 2) & (k[:, 1] < h - 2))


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((32, 32), np.float32), "uint8 numpy array.*got dtype float32"),
        (np.zeros((32, 32, 3), np.uint16), "uint8 numpy array.*got dtype uint16"),
        (torch.zeros(32, 32, dtype=torch.uint8), "uint8 numpy array.*got Tensor"),
        (np.zeros((32, 32, 2), np.uint8), r"\(H, W, 3\) BGR.*got shape \(32, 32, 2\)"),
        (np.zeros(32, np.uint8), r"\(H, W\) grey.*got shape \(32,\)"),
        (np.zeros((0, 32), np.uint8), "empty"),
    ],
)
def test_bad_images_are_refused_with_the_expected_format(image: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        KeypointPredictor(magicpoint(), device="cpu")(image)


def test_detector_only_has_no_descriptors(tmp_path: Path) -> None:
    torch.save(magicpoint().state_dict(), tmp_path / "mp.pth")  # raw (v1-style) state dict
    out = pointforge.load_predictor(tmp_path / "mp.pth", device="cpu")(np.zeros((32, 32), np.uint8))
    assert out["descriptors"] is None and out["keypoints"].shape[1] == 2


def test_bad_weights_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match=r"broken\.pth"):
        load_state_dict_from_file(bad)
    state = superpoint().state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["convPb.bias"]
    with pytest.raises(ValueError, match=r"missing keys \['convPb.bias'\].*unexpected.*extra"):
        build_model_for_state_dict(state)


def test_ddp_prefix_is_stripped(tmp_path: Path) -> None:
    state = {f"module.{k}": v for k, v in magicpoint().state_dict().items()}
    torch.save({"model": state}, tmp_path / "ddp.pth")
    assert all(not k.startswith("module.") for k in load_state_dict_from_file(tmp_path / "ddp.pth"))


def test_large_image_runs_in_tiles_equal_to_the_whole_image(shipped_sp: SuperPoint) -> None:
    """Issue 11.7: a 4000x3000 photo took 9.9 GB because the network ran on it whole. An image
    larger than ``tile_size`` must run tile by tile (no forward sees more than a tile plus its
    margins) and give the whole-image keypoints and descriptors, in input pixels."""
    from pointforge.tasks.keypoints.predictor import TILE_MARGIN

    photo = cv2.resize(skdata.astronaut()[..., ::-1], (300, 212), interpolation=cv2.INTER_AREA)
    whole = KeypointPredictor(shipped_sp, "cpu", max_keypoints=None, tile_size=None)(photo)
    seen: list[tuple[int, int]] = []
    hook = shipped_sp.register_forward_pre_hook(lambda _m, a: seen.append(a[0].shape[-2:]))
    try:
        tiled = KeypointPredictor(shipped_sp, "cpu", max_keypoints=None, tile_size=64)(photo)
    finally:
        hook.remove()
    assert len(seen) == 4 * 5  # 216/64 → 4 rows, 304/64 → 5 columns of tiles
    assert max(max(s) for s in seen) <= 64 + 2 * TILE_MARGIN
    assert len(whole["keypoints"]) > 50
    # Same points in the same order: the sub-pixel offsets come from heatmap values that agree
    # to float rounding (as the scores do), so they may differ by ~1e-5 px; a tile offset
    # error would be whole pixels.
    np.testing.assert_allclose(tiled["keypoints"], whole["keypoints"], rtol=0, atol=1e-3)
    np.testing.assert_allclose(tiled["scores"], whole["scores"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(tiled["descriptors"], whole["descriptors"], atol=1e-4)
    assert tiled["keypoints"][:, 0].max() < 300 and tiled["keypoints"][:, 1].max() < 212
    # The default tiles bound a 4000x3000 photo's network memory by 1120² instead of 4000x3000.
    assert KeypointPredictor(shipped_sp, "cpu").tile_size == 1024
    with pytest.raises(ValueError, match="tile_size"):
        KeypointPredictor(shipped_sp, "cpu", tile_size=100)


def test_keypoint_cap_is_announced_once(
    shipped_sp: SuperPoint, caplog: pytest.LogCaptureFixture
) -> None:
    photo = cv2.resize(skdata.astronaut()[..., ::-1], (160, 160), interpolation=cv2.INTER_AREA)
    pred = KeypointPredictor(shipped_sp, "cpu", max_keypoints=10)
    with caplog.at_level("WARNING", logger="pointforge"):
        assert len(pred(photo)["keypoints"]) == 10
        pred(photo)
    assert caplog.text.count("keypoint cap reached: kept the 10 highest-scoring") == 1
    caplog.clear()
    with caplog.at_level("WARNING", logger="pointforge"):
        KeypointPredictor(shipped_sp, "cpu", max_keypoints=None)(photo)
    assert "cap" not in caplog.text


def test_load_predictor_suggests_the_option_name() -> None:
    with pytest.raises(TypeError, match=r"max_keypoint.*did you mean 'max_keypoints'"):
        pointforge.load_predictor(max_keypoint=5)
    with pytest.raises(TypeError, match=r"colour.*options are: .*detection_threshold"):
        pointforge.load_predictor(colour=True)


def test_multiscale_heatmap_is_the_mean_of_the_rescaled_heatmaps(shipped_sp: SuperPoint) -> None:
    """``scales=(1.0, 0.5)``: the heatmap is the mean of the full-size heatmap and the half-size
    image's heatmap resized back; keypoints come from it, descriptors from scale 1.0."""
    import torch.nn.functional as F

    from pointforge.tasks.keypoints.postprocess import sample_descriptors

    grey = cv2.resize(skdata.camera(), (320, 240), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(grey).float().div(255.0)[None, None]
    single = KeypointPredictor(shipped_sp, "cpu", scales=(1.0,))
    multi = KeypointPredictor(shipped_sp, "cpu", scales=(1.0, 0.5))
    half = single.heatmap(F.interpolate(x, size=(120, 160), mode="area"))
    up = F.interpolate(half[:, None], size=(240, 320), mode="bilinear", align_corners=False)[:, 0]
    expected = (single.heatmap(x) + up) / 2
    got = multi.heatmap(x)
    torch.testing.assert_close(got, expected)
    assert (got - single.heatmap(x)).abs().max() > 1e-3  # the half scale changed the map
    out = multi(grey)
    assert len(out["keypoints"]) > 20
    assert not np.array_equal(out["keypoints"], single(grey)["keypoints"])
    with torch.inference_mode():
        dense = shipped_sp(x)["descriptors"]
    kp = torch.from_numpy(out["keypoints"])
    want = sample_descriptors(dense, [kp], (240, 320))[0].numpy()
    np.testing.assert_allclose(out["descriptors"], want, atol=1e-5)


@pytest.mark.parametrize("scales", [(0.5,), (1.0, 1.0), (1.0, -0.5), ()])
def test_bad_scales_are_refused(shipped_sp: SuperPoint, scales: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match=r"scales must be distinct factors .* include 1\.0"):
        KeypointPredictor(shipped_sp, "cpu", scales=scales)


def test_cpu_predictor_runs_a_channels_last_copy_and_leaves_the_model_alone(
    shipped_sp: SuperPoint,
) -> None:
    """The periodic benchmark builds a predictor from the model being trained: converting that
    model in place would change the rounding of its later training steps."""
    from pointforge.tasks.keypoints.postprocess import logits_to_heatmap

    pred = KeypointPredictor(shipped_sp, "cpu")
    assert pred.model is not shipped_sp
    assert pred.model.conv1b.weight.is_contiguous(memory_format=torch.channels_last)
    assert shipped_sp.conv1b.weight.is_contiguous()
    grey = cv2.resize(skdata.camera(), (160, 120), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(grey).float().div(255.0)[None, None]
    with torch.inference_mode():
        want = logits_to_heatmap(shipped_sp(x)["logits"])
    torch.testing.assert_close(pred.heatmap(x), want, rtol=1e-4, atol=1e-6)


def test_bf16_precision_finds_nearly_the_same_keypoints(shipped_sp: SuperPoint) -> None:
    """bf16 keeps ~3 significant digits in the network; the strong keypoints must survive it."""
    grey = cv2.resize(skdata.camera(), (320, 240), interpolation=cv2.INTER_AREA)
    ref = KeypointPredictor(shipped_sp, "cpu", max_keypoints=100)(grey)
    low = KeypointPredictor(shipped_sp, "cpu", max_keypoints=100, precision="bf16")(grey)
    assert low["keypoints"].dtype == np.float32 and low["descriptors"].dtype == np.float32
    assert len(ref["keypoints"]) == 100 and len(low["keypoints"]) == 100
    dist = np.linalg.norm(ref["keypoints"][:, None] - low["keypoints"][None], axis=-1)
    assert (dist.min(axis=1) < 1.0).mean() >= 0.9  # 0.98 measured
    assert not np.array_equal(ref["scores"], low["scores"])  # bf16 did run
    with pytest.raises(ValueError, match=r"precision must be one of \['fp32', 'bf16'\]"):
        KeypointPredictor(shipped_sp, "cpu", precision="fp16")


def test_bf16_on_a_cpu_without_native_bf16_warns(
    shipped_sp: SuperPoint, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Emulated bf16 is several times slower than float32 (benchmarks/bench_predictor.py): a
    user asking for it for speed is told, and still gets bf16."""
    monkeypatch.setattr(precision, "native_bf16", lambda device: False)
    with caplog.at_level(logging.WARNING, logger="pointforge"):
        pred = KeypointPredictor(shipped_sp, "cpu", precision="bf16")
        KeypointPredictor(shipped_sp, "cpu")
    assert caplog.text.count("precision bf16 on a CPU without native bf16") == 1
    assert pred.precision == "bf16"
