"""``pointforge data chess``: build the chess set from a local copy of its public repository.

Why a command and not files in the repository: the photos come from another repository
(github.com/jsansao/ChessPiecesv23, CC0), so they live beside ours (docs/detection.md) and
anyone can rebuild them from a clone. The originals are 2048x1371 JPEGs (~80 MB); downscaled to
a longest side of 384 px at JPEG quality 80 the set is ~6.5 MB and still shows every piece at
13-60 px, enough for a stride-4 CenterNet. Boxes are rescaled by the same per-axis factors.

Source layout (a checkout, or a bare git directory read with ``git show HEAD:...``)::

    train/_annotations.coco.json  train/<file_name>.jpg ...
    valid/_annotations.coco.json  valid/...
    test/_annotations.coco.json   test/...

The export declares 14 categories: "pieces" (Roboflow's supercategory placeholder, never used)
and "bishop" (a colourless bishop, one training annotation) besides the 12 coloured piece
classes. Both are removed so the set has exactly the 12 real classes; the dropped annotations
are reported. Image and annotation ids, file names and the train/valid/test split are kept.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pointforge.tasks.detection.data.chess import ANNOTATION_FILE, SOURCE_REPOSITORY

SOURCE_SPLITS = ("train", "valid", "test")
DROP_CATEGORIES = frozenset({"pieces", "bishop"})  # see the module docstring


@dataclass(frozen=True)
class SplitSummary:
    """What one split became: counts after the changes, and the annotation ids dropped."""

    split: str
    images: int
    boxes: int
    dropped_ann_ids: tuple[int, ...]


def read_source(src: Path, rel: str) -> bytes:
    """File ``rel`` of a checkout, or of HEAD when ``src`` is a bare git directory.

    Raises FileNotFoundError naming ``--source`` and the file when neither has it.
    """
    if (src / rel).is_file():
        return (src / rel).read_bytes()
    if (src / "HEAD").is_file() and (src / "objects").is_dir():
        done = subprocess.run(
            ["git", f"--git-dir={src}", "show", f"HEAD:{rel}"], capture_output=True, check=False
        )
        if done.returncode == 0:
            return done.stdout
    raise FileNotFoundError(
        f"--source {src}: no {rel} (expected a checkout or bare git directory of "
        f"{SOURCE_REPOSITORY})"
    )


def source_commit(src: Path) -> str | None:
    """The source's HEAD commit when it is a git checkout or bare directory, else None."""
    git_dir = src if (src / "HEAD").is_file() else src / ".git"
    done = subprocess.run(
        ["git", f"--git-dir={git_dir}", "rev-parse", "HEAD"], capture_output=True, check=False
    )
    return done.stdout.decode().strip() if done.returncode == 0 else None


def _downscale(
    raw: bytes, where: str, size: tuple[int, int], max_side: int, quality: int
) -> tuple[bytes, int, int]:
    """JPEG bytes of the photo at longest side ``max_side`` and its (w, h) -> (w', h')."""
    bgr = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None or bgr.shape[:2] != size:
        raise ValueError(f"{where}: unreadable, or not the annotated size {size[1]}x{size[0]}")
    h, w = size
    r = max_side / max(h, w)
    nw, nh = round(w * r), round(h * r)
    small = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_AREA)
    ok, enc = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f"{where}: JPEG encoding failed")
    return enc.tobytes(), nw, nh


def prepare_split(src: Path, out: Path, split: str, max_side: int, quality: int) -> SplitSummary:
    """Write ``out/<split>/`` (downscaled JPEGs + rescaled COCO json) from ``src/<split>/``."""
    data: dict[str, Any] = json.loads(read_source(src, f"{split}/{ANNOTATION_FILE}"))
    dropped_cats = {c["id"] for c in data["categories"] if c["name"] in DROP_CATEGORIES}
    (out / split).mkdir(parents=True, exist_ok=True)
    factors: dict[int, tuple[float, float]] = {}
    for img in data["images"]:
        rel = f"{split}/{img['file_name']}"
        size = (int(img["height"]), int(img["width"]))
        enc, nw, nh = _downscale(read_source(src, rel), rel, size, max_side, quality)
        (out / split / img["file_name"]).write_bytes(enc)
        factors[img["id"]] = (nw / size[1], nh / size[0])
        img["width"], img["height"] = nw, nh
    kept, dropped = [], []
    for a in data["annotations"]:
        if a["category_id"] in dropped_cats:
            dropped.append(int(a["id"]))
            continue
        sx, sy = factors[a["image_id"]]
        x, y, bw, bh = a["bbox"]
        a["bbox"] = [round(x * sx, 2), round(y * sy, 2), round(bw * sx, 2), round(bh * sy, 2)]
        a["area"] = round(a["bbox"][2] * a["bbox"][3], 2)
        kept.append(a)
    data["annotations"] = kept
    data["categories"] = [c for c in data["categories"] if c["id"] not in dropped_cats]
    for c in data["categories"]:
        c["supercategory"] = "pieces"
    # The json last: a split folder with its json is a complete split.
    (out / split / ANNOTATION_FILE).write_text(json.dumps(data))
    return SplitSummary(split, len(data["images"]), len(kept), tuple(dropped))


def prepare_chess(
    src: Path,
    out: Path,
    max_side: int = 384,
    quality: int = 80,
    overwrite: bool = False,
    report: Callable[[str], None] = print,
) -> list[SplitSummary]:
    """Build the three splits of the chess set in ``out`` from the clone ``src``.

    Refuses an ``out`` that already holds a split unless ``overwrite``, so a shared copy is
    never replaced by accident. ``report`` gets one line per split and per dropped annotation.
    """
    if max_side <= 0:
        raise ValueError(f"--max-side must be > 0, got {max_side}")
    if not 0 <= quality <= 100:
        raise ValueError(f"--quality must be in [0, 100], got {quality}")
    if not src.is_dir():
        raise FileNotFoundError(f"--source {src} is not a folder")
    held = [s for s in SOURCE_SPLITS if (out / s / ANNOTATION_FILE).exists()]
    if held and not overwrite:
        raise FileExistsError(
            f"--out {out} already holds the chess split(s) {', '.join(held)}; pass --overwrite"
        )
    summaries = []
    for split in SOURCE_SPLITS:
        s = prepare_split(src, out, split, max_side, quality)
        for ann_id in s.dropped_ann_ids:
            report(
                f"{split}: dropped annotation id {ann_id} (category in {sorted(DROP_CATEGORIES)})"
            )
        report(f"{split}: {s.images} images, {s.boxes} boxes")
        summaries.append(s)
    commit = source_commit(src)
    (out / "SOURCE.txt").write_text(
        f"Built by `pointforge data chess` from {SOURCE_REPOSITORY}"
        f"{f' at commit {commit}' if commit else ''} (CC0 1.0, public domain): photos "
        f"downscaled to a longest side of {max_side} px (JPEG quality {quality}), boxes "
        f"rescaled, categories {sorted(DROP_CATEGORIES)} removed.\n"
    )
    return summaries
