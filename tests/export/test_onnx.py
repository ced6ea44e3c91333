"""ONNX export: the file's outputs match PyTorch (fixed and dynamic sizes), CLI end to end.

Exports use small random-weight networks at 64x96 so each takes seconds on one CPU thread.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pointforge.cli.main import main
from pointforge.export.onnx import OnnxVerificationError, export_onnx, verify_onnx
from pointforge.models.superpoint import SuperPoint

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

H, W = 64, 96
ATOL = 1e-4


@pytest.fixture
def ort():
    return pytest.importorskip("onnxruntime")


def _superpoint(seed: int = 0, descriptor: bool = True) -> SuperPoint:
    torch.manual_seed(seed)
    return SuperPoint(descriptor=descriptor).eval()


def _images(b: int, h: int, w: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(b, 1, h, w, generator=torch.Generator().manual_seed(seed))


def _io_dims(path) -> dict[str, list]:
    g = onnx.load(str(path)).graph
    return {
        v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*g.input, *g.output]
    }


@pytest.fixture(scope="module")
def fixed_export(tmp_path_factory):
    model = _superpoint()
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / "sp.onnx", H, W)
    return model, path


def test_fixed_export_matches_pytorch(fixed_export, ort):
    model, path = fixed_export
    assert _io_dims(path) == {
        "image": [1, 1, H, W],
        "heatmap": [1, H, W],
        "descriptors": [1, 256, H // 8, W // 8],
    }
    diffs = verify_onnx(path, model, _images(1, H, W))
    assert set(diffs) == {"heatmap", "descriptors"}
    assert all(d <= ATOL for d in diffs.values()), diffs
    # The heatmap is a per-pixel probability map, not a constant: the diff above means something.
    heatmap = ort.InferenceSession(str(path)).run(["heatmap"], {"image": _images(1, H, W).numpy()})
    assert heatmap[0].shape == (1, H, W) and 0 < heatmap[0].max() < 1 and heatmap[0].std() > 0
    # A fixed export really is fixed: another size is refused by the runtime.
    with pytest.raises(Exception, match=r"(?i)dimension|shape"):
        ort.InferenceSession(str(path)).run(None, {"image": _images(1, H + 8, W).numpy()})
    # Atomic write: no temp file is left beside the model.
    assert sorted(p.name for p in path.parent.iterdir()) == ["sp.onnx"]


def test_verification_names_the_output_that_differs(fixed_export, ort):
    _, path = fixed_export
    other = _superpoint()  # the same seed as fixed_export's model
    with torch.no_grad():
        other.convDb.weight.add_(0.5 * torch.randn_like(other.convDb.weight))
    # Same detector, different descriptor head: the heatmap still matches, descriptors do not.
    with pytest.raises(OnnxVerificationError, match="'descriptors' differs from PyTorch"):
        verify_onnx(path, other, _images(1, H, W))


def test_dynamic_export_matches_pytorch_at_two_sizes(tmp_path, ort):
    model = _superpoint(seed=3)
    path = export_onnx(model, tmp_path / "dyn.onnx", H, W, dynamic=True)
    assert _io_dims(path) == {
        "image": ["batch", 1, "height", "width"],
        "heatmap": ["batch", "height", "width"],
        "descriptors": ["batch", 256, "height/8", "width/8"],
    }
    for b, h, w in [(1, H, W), (3, 40, 24)]:
        diffs = verify_onnx(path, model, _images(b, h, w))
        assert diffs["heatmap"] <= ATOL and diffs["descriptors"] <= ATOL, (b, h, w, diffs)


def test_lite_variant_exports_with_its_strided_stem(tmp_path, ort):
    """SuperPoint-Lite (stride-2 first conv, 3 stages): same graph outputs, same agreement,
    at two sizes of a dynamic export."""
    from pointforge.models.superpoint import superpoint_lite

    torch.manual_seed(4)
    model = superpoint_lite().eval()
    path = export_onnx(model, tmp_path / "lite.onnx", H, W, dynamic=True)
    for b, h, w in [(1, H, W), (2, 40, 24)]:
        diffs = verify_onnx(path, model, _images(b, h, w))
        assert diffs["heatmap"] <= ATOL and diffs["descriptors"] <= ATOL, (b, h, w, diffs)


def test_torchscript_exporter_detector_only_opset_17(tmp_path, ort):
    model = _superpoint(seed=4, descriptor=False)
    path = export_onnx(
        model, tmp_path / "mp.onnx", H, W, dynamic=True, opset=17, exporter="torchscript"
    )
    assert onnx.load(str(path)).opset_import[0].version == 17
    assert _io_dims(path) == {
        "image": ["batch", 1, "height", "width"],
        "heatmap": ["batch", "height", "width"],
    }
    for b, h, w in [(1, H, W), (2, 32, 48)]:
        assert verify_onnx(path, model, _images(b, h, w))["heatmap"] <= ATOL


def test_export_refuses_bad_sizes_and_opsets(tmp_path):
    model = _superpoint()
    with pytest.raises(ValueError, match="height must be a multiple of 8 and >= 16, got 60"):
        export_onnx(model, tmp_path / "a.onnx", 60, W)
    with pytest.raises(ValueError, match="width must be a multiple of 8 and >= 16, got 8"):
        export_onnx(model, tmp_path / "a.onnx", H, 8)
    with pytest.raises(ValueError, match=r"opset 17 < 18.*torchscript"):
        export_onnx(model, tmp_path / "a.onnx", H, W, opset=17)
    assert not any(tmp_path.iterdir())


def test_cli_exports_and_verifies_a_dynamic_superpoint(tmp_path, capsys, ort):
    weights, out = tmp_path / "sp.pth", tmp_path / "deploy" / "sp.onnx"
    torch.save(_superpoint(seed=5).state_dict(), weights)
    args = ["export-onnx", "--weights", str(weights), "--out", str(out)]
    assert main([*args, "--height", str(H), "--width", str(W), "--dynamic"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "dynamic batch/H/W" in printed
    assert f"verified with onnxruntime at 1x1x{H}x{W}" in printed
    assert "verified with onnxruntime at 2x1x240x320" in printed
    assert printed.count("descriptors") == 2
    assert _io_dims(out)["descriptors"] == ["batch", 256, "height/8", "width/8"]


def test_cli_says_when_verification_is_skipped(tmp_path, capsys, monkeypatch):
    weights, out = tmp_path / "mp.pth", tmp_path / "mp.onnx"
    torch.save(_superpoint(seed=6, descriptor=False).state_dict(), weights)
    import pointforge.tasks.keypoints.onnx_cmd as onnx_cmd

    real = onnx_cmd.importlib.util.find_spec
    monkeypatch.setattr(
        onnx_cmd.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "onnxruntime" else real(name, *a),
    )
    args = [
        "export-onnx",
        "--weights",
        str(weights),
        "--out",
        str(out),
        "--exporter",
        "torchscript",
    ]
    assert main([*args, "--height", "32", "--width", "48", "--opset", "17"]) == 0
    printed = capsys.readouterr().out
    assert "onnxruntime is not installed: verification skipped" in printed
    assert "verified" not in printed.replace("verification", "") and out.is_file()


def test_cli_named_errors(tmp_path, capsys):
    weights = tmp_path / "sp.pth"
    torch.save(_superpoint().state_dict(), weights)
    base = ["export-onnx", "--weights", str(weights)]
    out = str(tmp_path / "m.onnx")

    assert main([*base, "--out", out, "--height", "60"]) == 2
    assert "height must be a multiple of 8 and >= 16, got 60" in capsys.readouterr().err

    (tmp_path / "afile").write_text("x")
    assert main([*base, "--out", str(tmp_path / "afile" / "m.onnx"), "--height", "16"]) == 2
    assert "a parent of it is a file, not a folder" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path), "--height", "16"]) == 2
    assert "it is a directory" in capsys.readouterr().err

    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    assert main(["export-onnx", "--weights", str(tmp_path / "bad.pth"), "--out", out]) == 2
    err = capsys.readouterr().err
    assert "WeightsError" in err and "bad.pth" in err
    assert main(["export-onnx", "--weights", str(tmp_path / "none.pth"), "--out", out]) == 2
    assert "weights file not found" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_fixed_size_file_given_another_size_says_what_it_expects(fixed_export, ort):
    """Issue 11.9: a fixed export run at another size failed with onnxruntime's raw
    "Got invalid dimensions ... Expected: 64" message."""
    model, path = fixed_export
    with pytest.raises(ValueError, match=r"takes input 1x1x64x96 .* got 1x1x72x96: it was "):
        verify_onnx(path, model, _images(1, H + 8, W))
    with pytest.raises(ValueError, match=r"exported at a fixed 64x96 \(H x W\).*--dynamic"):
        verify_onnx(path, model, _images(2, H, W))  # the batch is fixed too


def test_out_path_creates_only_the_files_own_folder(tmp_path, capsys):
    """Issue 11.9: ``--out /nonexistent/x.onnx`` made a folder at the filesystem root."""
    import shutil
    import uuid

    from pointforge.export.onnx import _check_out_path

    weights = tmp_path / "sp.pth"
    torch.save(_superpoint().state_dict(), weights)
    top = Path("/") / f"pointforge-test-{uuid.uuid4().hex[:8]}"
    try:
        argv = ["export-onnx", "--weights", str(weights), "--out", str(top / "x.onnx")]
        assert main([*argv, "--height", "16", "--width", "16"]) == 2
        err = capsys.readouterr().err
        assert f"folder {top} does not exist" in err and len(err.strip().splitlines()) == 1
        assert not top.exists()
    finally:
        if top.exists():  # only if the check failed: do not leave it at the root
            shutil.rmtree(top)
    with pytest.raises(FileNotFoundError, match=f"folder {tmp_path / 'a'} does not exist"):
        _check_out_path(tmp_path / "a" / "b" / "x.onnx")  # a chain of missing folders
    assert not (tmp_path / "a").exists()
    _check_out_path(tmp_path / "new" / "x.onnx")  # the file's own folder is made
    assert (tmp_path / "new").is_dir()
