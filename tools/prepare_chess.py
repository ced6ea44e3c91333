"""Build data/chess/ from a local copy of github.com/jsansao/ChessPiecesv23 (CC0).

Why: the original photos are 2048x1371 JPEGs (~80 MB in all), too big to ship; downscaled to a
longest side of 384 px at JPEG quality 80 the whole set is about 6.5 MB and still shows every
piece at 13-60 px (like the shapes set's objects), enough for a stride-4 CenterNet. Boxes are
rescaled by the same per-axis factors.

The export declares 14 categories: id 0 "pieces" (Roboflow's supercategory placeholder, never
used) and id 1 "bishop" (a colourless bishop, used by one training annotation) besides the 12
coloured piece classes. Both are removed so the set has exactly the 12 real classes; the one
"bishop" annotation is dropped and reported. Image and annotation ids, file names, and the
repository's train/valid/test split are kept.

Usage: python tools/prepare_chess.py SRC [--out data/chess] [--max-side 384] [--quality 80]
SRC is a checkout of the repository, or a bare git directory (read with ``git show``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import cv2
import numpy as np

SPLITS = ("train", "valid", "test")
ANNOTATIONS = "_annotations.coco.json"
DROP_CATEGORIES = {"pieces", "bishop"}  # see the module docstring


def read_bytes(src: Path, rel: str) -> bytes:
    """File ``rel`` of a checkout, or of HEAD when ``src`` is a bare git directory."""
    if (src / rel).is_file():
        return (src / rel).read_bytes()
    return subprocess.run(
        ["git", f"--git-dir={src}", "show", f"HEAD:{rel}"], check=True, capture_output=True
    ).stdout


def prepare_split(src: Path, out: Path, split: str, max_side: int, quality: int) -> dict:
    data = json.loads(read_bytes(src, f"{split}/{ANNOTATIONS}"))
    dropped_cats = {c["id"] for c in data["categories"] if c["name"] in DROP_CATEGORIES}
    (out / split).mkdir(parents=True, exist_ok=True)
    factors: dict[int, tuple[float, float]] = {}
    for img in data["images"]:
        raw = np.frombuffer(read_bytes(src, f"{split}/{img['file_name']}"), np.uint8)
        bgr = cv2.imdecode(raw, cv2.IMREAD_COLOR)
        if bgr is None or bgr.shape[:2] != (img["height"], img["width"]):
            raise SystemExit(f"{split}/{img['file_name']}: unreadable or not the annotated size")
        h, w = bgr.shape[:2]
        r = max_side / max(h, w)
        nw, nh = round(w * r), round(h * r)
        small = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_AREA)
        ok, enc = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        (out / split / img["file_name"]).write_bytes(enc.tobytes())
        factors[img["id"]] = (nw / w, nh / h)
        img["width"], img["height"] = nw, nh
    kept, dropped = [], []
    for a in data["annotations"]:
        if a["category_id"] in dropped_cats:
            dropped.append(a)
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
    (out / split / ANNOTATIONS).write_text(json.dumps(data))
    for a in dropped:
        print(
            f"{split}: dropped annotation id {a['id']} (image id {a['image_id']}): category "
            f"{a['category_id']} is one of the removed categories {sorted(DROP_CATEGORIES)}"
        )
    print(f"{split}: {len(data['images'])} images, {len(kept)} boxes")
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("--out", type=Path, default=Path("data/chess"))
    ap.add_argument("--max-side", type=int, default=384)
    ap.add_argument("--quality", type=int, default=80)
    args = ap.parse_args()
    for split in SPLITS:
        prepare_split(args.src, args.out, split, args.max_side, args.quality)


if __name__ == "__main__":
    main()
