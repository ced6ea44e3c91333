"""``pointforge data chess`` on a small fake clone with the source repository's layout
(``{train,valid,test}/_annotations.coco.json`` beside the JPEGs, Roboflow's 14-category export),
and where ``data.root`` of the chess set is read from."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from pointforge.cli.main import main
from pointforge.config import load_config
from pointforge.tasks.detection.data import ChessParams, build_chess
from pointforge.tasks.detection.data.chess import ANNOTATION_FILE, chess_root
from pointforge.tasks.detection.data.chess_prepare import prepare_chess

ROOT = Path(__file__).resolve().parents[4]
# The export's categories: the unused supercategory placeholder, the colourless bishop, then
# coloured classes (ids kept).
CATEGORIES = [
    {"id": 0, "name": "pieces", "supercategory": "none"},
    {"id": 1, "name": "bishop", "supercategory": "pieces"},
    {"id": 2, "name": "black-bishop", "supercategory": "pieces"},
    {"id": 3, "name": "white-king", "supercategory": "pieces"},
]
W, H = 160, 107  # the originals' 2048x1371 aspect; --max-side 48 gives 48x32


def fake_clone(src: Path) -> None:
    """Two photos per split; train holds the one "bishop" box (id 1), ids start at 0."""
    rng = np.random.default_rng(0)
    for k, split in enumerate(("train", "valid", "test")):
        (src / split).mkdir(parents=True)
        images, anns = [], []
        for j in range(2):
            name = f"{split}_{j}.jpg"
            ok, enc = cv2.imencode(".jpg", rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
            assert ok
            (src / split / name).write_bytes(enc.tobytes())
            images.append({"id": j, "file_name": name, "width": W, "height": H, "license": 1})
        anns.append({"id": 0, "image_id": 0, "category_id": 2, "bbox": [10, 20, 40, 30]})
        second = 1 if k == 0 else 3  # the colourless bishop in train only
        anns.append({"id": 1, "image_id": 1, "category_id": second, "bbox": [100, 50, 20, 40]})
        anns.append({"id": 2, "image_id": 1, "category_id": 3, "bbox": [0, 0, 160, 107]})
        data = {"images": images, "annotations": anns, "categories": CATEGORIES}
        (src / split / ANNOTATION_FILE).write_text(json.dumps(data))


def test_data_chess_builds_a_loadable_set_from_a_clone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, out = tmp_path / "ChessPiecesv23", tmp_path / "chess"
    fake_clone(src)
    argv = ["data", "chess", "--source", str(src), "--out", str(out), "--max-side", "48"]
    assert main(argv) == 0
    shown = capsys.readouterr().out
    assert "train: dropped annotation id 1" in shown and "train: 2 images, 2 boxes" in shown
    assert "valid: 2 images, 3 boxes" in shown and f"data.root={out}" in shown
    gt = json.loads((out / "train" / ANNOTATION_FILE).read_text())
    assert [c["id"] for c in gt["categories"]] == [2, 3]  # placeholder and bishop gone
    assert [a["id"] for a in gt["annotations"]] == [0, 2]
    # Boxes scaled by the per-axis factors 48/160 and 32/107; the photo written at 48x32.
    sy = 32 / 107
    assert gt["annotations"][0]["bbox"] == [3.0, round(20 * sy, 2), 12.0, round(30 * sy, 2)]
    assert gt["annotations"][1]["bbox"] == [0.0, 0.0, 48.0, 32.0]
    assert gt["images"][0]["width"] == 48 and gt["images"][0]["height"] == 32
    assert cv2.imread(str(out / "train" / "train_0.jpg")).shape == (32, 48, 3)
    for split, n_boxes in (("train", 2), ("val", 3), ("test", 3)):
        ds = build_chess(ChessParams(root=str(out), image_size=(64, 64)), split)
        assert len(ds) == 2 and sum(len(r.boxes) for r in ds.records) == n_boxes
        assert ds.class_names == ["black-bishop", "white-king"]
        assert ds[1]["image"].shape == (3, 64, 64)
    # An existing set is never replaced silently.
    assert main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0


def test_data_chess_reads_a_bare_git_directory(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    src, bare = tmp_path / "clone", tmp_path / "bare.git"
    fake_clone(src)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-C", str(src)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "export"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(src), str(bare)], check=True)
    commit = subprocess.run(
        ["git", "-C", str(src), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    a, b = tmp_path / "from_checkout", tmp_path / "from_bare"
    prepare_chess(src, a, max_side=48, report=lambda line: None)
    prepare_chess(bare, b, max_side=48, report=lambda line: None)
    for split in ("train", "valid", "test"):
        assert (a / split / ANNOTATION_FILE).read_text() == (
            b / split / ANNOTATION_FILE
        ).read_text()
    assert commit in (b / "SOURCE.txt").read_text() and commit in (a / "SOURCE.txt").read_text()


def test_data_chess_names_what_is_wrong_with_the_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    fake_clone(src)
    (src / "test" / ANNOTATION_FILE).unlink()
    assert main(["data", "chess", "--source", str(src), "--out", str(tmp_path / "o1")]) == 2
    assert "test/_annotations.coco.json" in capsys.readouterr().err
    fake_clone(tmp_path / "src2")
    gt = json.loads((tmp_path / "src2" / "valid" / ANNOTATION_FILE).read_text())
    gt["images"][1]["width"] = 2048  # not the photo's size
    (tmp_path / "src2" / "valid" / ANNOTATION_FILE).write_text(json.dumps(gt))
    with pytest.raises(ValueError, match=r"valid/valid_1\.jpg: .*annotated size 2048x107"):
        prepare_chess(tmp_path / "src2", tmp_path / "o2", report=lambda line: None)


def test_chess_root_is_read_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        build_chess(ChessParams(root="sets/chess"), "train")
    text = str(err.value)
    assert text.startswith("data.root:") and str(tmp_path / "sets" / "chess") in text
    assert "pointforge data chess --source" in text
    (tmp_path / "sets" / "chess").mkdir(parents=True)
    assert chess_root("sets/chess") == (tmp_path / "sets" / "chess").resolve()


def test_default_chess_root_is_the_shared_copy_beside_the_clone(
    monkeypatch: pytest.MonkeyPatch, shared_data: Callable[[str], Path]
) -> None:
    """The default, and configs/centernet_chess.yaml, run from the repository root."""
    shared = shared_data("chess").resolve()  # first: skips (or fails in CI) when absent
    monkeypatch.chdir(ROOT)
    cfg = load_config(ROOT / "configs" / "centernet_chess.yaml")
    assert chess_root(cfg.data.root) == chess_root() == shared
    assert chess_root(ChessParams().root) == shared_data("chess").resolve()
