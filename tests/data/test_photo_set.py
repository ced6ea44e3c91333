"""Photo set assembly from local copies (checkout and bare git dir): dedupe, filter, provenance."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from pointforge.cli.main import main
from pointforge.data import photo_set
from pointforge.data.photo_set import PhotoSource, assemble_photo_set

PR = "ds/runs/detect/PR_curve.png"


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str]:
    """A git repository in the layout of a Roboflow export: one origin photo twice (train and
    valid), a second photo, and a training plot that is not a photo of the set."""
    root = tmp_path / "src"
    photos = {
        "ds/train/images/aaa_jpg.rf.111.jpg": skimage.data.camera(),
        "ds/valid/images/aaa_jpg.rf.222.jpg": skimage.data.camera(),
        "ds/valid/images/bbb_jpg.rf.333.jpg": skimage.data.coins(),
        "ds/runs/detect/PR_curve.png": np.zeros((32, 32), np.uint8),
    }
    for rel, image in photos.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        ok, buf = cv2.imencode(Path(rel).suffix, image)
        assert ok
        (root / rel).write_bytes(buf.tobytes())
    _git("init", "-q", cwd=root)
    _git("add", ".", cwd=root)
    _git("commit", "-q", "-m", "photos", cwd=root)
    return root, _git("rev-parse", "HEAD", cwd=root)


def _source(commit: str, split: str = "train") -> PhotoSource:
    return PhotoSource(
        name="toy",
        repository="https://example.org/toy",
        commit=commit,
        folder="ds",
        licence="CC0",
        attribution="test photos",
        split=split,
        dedupe="roboflow",
        pattern=r"/(train|valid|test)/images/",
    )


@pytest.mark.parametrize("kind", ["checkout", "bare", "plain"])
def test_assembles_distinct_photos_with_provenance(
    repo: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    root, commit = repo
    monkeypatch.setattr(photo_set, "SOURCES", (_source(commit),))
    copy = root
    if kind == "bare":
        copy = tmp_path / "bare.git"
        subprocess.run(["git", "clone", "-q", "--bare", str(root), str(copy)], check=True)
    elif kind == "plain":  # an unpacked archive: no git at all
        copy = tmp_path / "plain"
        shutil.copytree(root, copy, ignore=shutil.ignore_patterns(".git"))
    if kind != "plain":
        # A later commit in the copy does not change the set: git copies are read at the pin.
        (root / "ds/train/images/zzz_jpg.rf.999.jpg").write_bytes((root / PR).read_bytes())
        _git("add", ".", cwd=root)
        _git("commit", "-q", "-m", "later", cwd=root)
        if kind == "bare":
            subprocess.run(["git", "--git-dir", str(copy), "fetch", "-q", str(root)], check=True)
    records = assemble_photo_set(tmp_path / "out", {"toy": copy}, "train")
    # aaa appears once (its valid copy is the same origin photo); the plot is filtered out.
    assert [r["file"] for r in records] == ["toy__aaa.png", "toy__bbb.png"]
    got = cv2.imread(str(tmp_path / "out" / "toy__bbb.png"), cv2.IMREAD_UNCHANGED)
    jpeg = cv2.imread(str(root / "ds/valid/images/bbb_jpg.rf.333.jpg"), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(got, jpeg)  # the decoded photo, stored losslessly
    meta = json.loads((tmp_path / "out" / "sources.json").read_text())
    assert meta["split"] == "train" and meta["sources"][0]["commit"] == commit
    first = meta["photos"][0]
    assert first["path"] == "ds/train/images/aaa_jpg.rf.111.jpg"
    original = (root / first["path"]).read_bytes()
    assert first["sha256"] == hashlib.sha256(original).hexdigest()
    md = (tmp_path / "out" / "SOURCES.md").read_text()
    assert "CC0" in md and commit in md and "2 photos" in md


def test_refuses_missing_unknown_and_undecodable_sources(
    repo: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, commit = repo
    monkeypatch.setattr(photo_set, "SOURCES", (_source(commit),))
    with pytest.raises(ValueError, match="needs --source toy="):
        assemble_photo_set(tmp_path / "out", {}, "train")
    with pytest.raises(ValueError, match="unknown photo source"):
        assemble_photo_set(tmp_path / "out", {"toy": root, "nope": root}, "train")
    with pytest.raises(ValueError, match="does the copy hold the pinned commit"):
        bad = {"toy": root}
        monkeypatch.setattr(photo_set, "SOURCES", (_source("0" * 40),))
        assemble_photo_set(tmp_path / "out", bad, "train")
    monkeypatch.setattr(photo_set, "SOURCES", (_source(commit),))
    plain = tmp_path / "plain"
    shutil.copytree(root, plain, ignore=shutil.ignore_patterns(".git"))
    (plain / "ds/train/images/ccc_jpg.rf.444.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="cannot decode ds/train/images/ccc_jpg"):
        assemble_photo_set(tmp_path / "out", {"toy": plain}, "train")
    # The val split has no toy source: nothing is asked for, nothing written but provenance.
    assert assemble_photo_set(tmp_path / "val", {}, "val") == []


def test_cli_writes_the_split(
    repo: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    root, commit = repo
    monkeypatch.setattr(photo_set, "SOURCES", (dataclasses.replace(_source(commit)),))
    out = tmp_path / "cli"
    assert main(["data", "photo-set", "--out", str(out), "--source", f"toy={root}"]) == 0
    assert "wrote 2 train photos" in capsys.readouterr().out
    assert sorted(p.name for p in out.glob("*.png")) == ["toy__aaa.png", "toy__bbb.png"]


def test_shipped_sources_are_pinned_and_split() -> None:
    for s in photo_set.SOURCES:
        assert len(s.commit) == 40 and s.repository.startswith("https://github.com/")
        assert s.split in ("train", "val") and s.licence
    assert {s.split for s in photo_set.SOURCES} == {"train", "val"}
