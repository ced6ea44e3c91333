"""Retrieval: a query crop against a gallery folder → the top-k list and a PNG strip.

Why a strip: it is how re-ID results are inspected (torchreid's ``visrank``, FastReID's
``visualize_result``): the query, then its k nearest gallery crops left to right, each framed
green when it shows the query's identity and red when it does not.

Identities are known when the file names say so: Market-1501 / DukeMTMC-reID names
(``0002_c1s1_000451_03.jpg``, ``0005_c2_f0046985.jpg``: identity, camera) or the generic
layout ``<gallery_dir>/<identity>/<camera>_<anything>.jpg`` (the query's identity is then the
name of its parent folder). Otherwise frames are grey. As in the Market protocol, gallery
crops of the query's identity seen by the query's camera are left out (the same track, not a
re-identification), so are junk crops (identity ``-1``) and the query file itself.

Distances are cosine distances ``1 - a·b`` of the predictor's unit-norm embeddings.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pointforge.data.image_io import read_image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
# Market-1501 (0002_c1s1_...) and DukeMTMC-reID (0005_c2_f...) names: identity, camera.
_DATASET_NAME = re.compile(r"^(-1|\d+)_c(\d+)(?:s\d+_\d+_\d+|_f\d+)\.(?:jpg|jpeg|png)$", re.I)
JUNK = "-1"
CELL_HEIGHT, CELL_WIDTH = 128, 64  # strip cell: the synthetic set's native size, 1:2 as BoT
BORDER = 4  # frame thickness in pixels
GREEN, RED, GREY, BLUE = (0, 190, 0), (0, 0, 220), (160, 160, 160), (200, 120, 0)  # BGR


@dataclass(frozen=True)
class Identity:
    """What a file name says: identity and camera (``None`` when it does not say)."""

    identity: str | None
    camera: str | None


def identity_of(path: str | Path, root: str | Path | None = None) -> Identity:
    """The identity and camera of a crop from its name (see the module docstring).

    ``root``: the gallery folder; a file in a sub-folder of it gets the first sub-folder's
    name as identity. Without ``root`` the parent folder's name is used, for a query file
    taken from such a layout.
    """
    path = Path(path)
    match = _DATASET_NAME.match(path.name)
    if match is not None:
        return Identity(str(int(match.group(1))), f"c{int(match.group(2))}")
    camera, sep, _ = path.stem.partition("_")
    cam = camera if sep and camera else None
    if root is not None:
        rel = path.resolve().relative_to(Path(root).resolve())
        return Identity(rel.parts[0] if len(rel.parts) > 1 else None, cam)
    return Identity(path.parent.name or None, cam)


def gallery_files(gallery_dir: str | Path) -> list[Path]:
    """Every JPEG/PNG under ``gallery_dir`` (recursively), sorted; an empty folder is an error."""
    root = Path(gallery_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"gallery folder {root} does not exist")
    files = sorted(
        Path(d) / f
        for d, _, names in os.walk(root)
        for f in names
        if Path(f).suffix.lower() in IMAGE_EXTENSIONS
    )
    if not files:
        raise ValueError(f"gallery folder {root} holds no .jpg/.jpeg/.png images")
    return files


def rank_gallery(
    predictor: Any,
    query: np.ndarray,
    query_path: str | Path | None,
    gallery: list[Path],
    gallery_dir: str | Path,
    top_k: int = 10,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Rank ``gallery`` for the BGR ``query`` crop with ``predictor`` (crops → unit-norm
    ``embeddings (N, D)``).

    Returns ``{"paths": [Path] (k,), "distances": float32 (k,), "correct": [bool | None],
    "gallery_images": [BGR uint8], "excluded": int}`` in increasing distance; ``correct`` is
    ``None`` where the query's or the crop's identity is unknown.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    q_id = identity_of(query_path) if query_path is not None else Identity(None, None)
    ids = [identity_of(p, gallery_dir) for p in gallery]
    same_file = Path(query_path).resolve() if query_path is not None else None
    keep = [
        i
        for i, (p, g) in enumerate(zip(gallery, ids, strict=True))
        if g.identity != JUNK
        and p.resolve() != same_file
        and not (
            q_id.identity is not None
            and g.identity == q_id.identity
            and g.camera is not None
            and g.camera == q_id.camera
        )
    ]
    if not keep:
        raise ValueError(f"no gallery image left to rank in {gallery_dir} (all excluded)")
    q = predictor(query)["embeddings"][0]  # (D,)
    dists = np.empty(len(keep), np.float32)
    for start in range(0, len(keep), batch_size):
        chunk = keep[start : start + batch_size]
        emb = predictor([read_image(gallery[i]) for i in chunk])["embeddings"]  # (b, D)
        dists[start : start + len(chunk)] = 1.0 - emb @ q
    order = np.argsort(dists, kind="stable")[:top_k]
    chosen = [keep[int(j)] for j in order]
    correct = [
        None
        if q_id.identity is None or ids[i].identity is None
        else ids[i].identity == q_id.identity
        for i in chosen
    ]
    return {
        "paths": [gallery[i] for i in chosen],
        "distances": dists[order],
        "correct": correct,
        "gallery_images": [read_image(gallery[i]) for i in chosen],
        "excluded": len(gallery) - len(keep),
    }


def _cell(image: np.ndarray, colour: tuple[int, int, int], caption: str) -> np.ndarray:
    """One framed ``(CELL_HEIGHT + 2·BORDER + 14, CELL_WIDTH + 2·BORDER, 3)`` strip cell."""
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    crop = cv2.resize(image, (CELL_WIDTH, CELL_HEIGHT), interpolation=cv2.INTER_AREA)
    framed = cv2.copyMakeBorder(crop, *(BORDER,) * 4, cv2.BORDER_CONSTANT, value=colour)
    text = np.full((14, framed.shape[1], 3), 255, np.uint8)
    cv2.putText(text, caption, (2, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([framed, text])


def draw_strip(
    query: np.ndarray,
    gallery_images: list[np.ndarray],
    distances: np.ndarray,
    correct: list[bool | None],
) -> np.ndarray:
    """BGR ``uint8`` strip: the query (blue frame), a gap, then the ranked crops framed green
    (same identity), red (another identity) or grey (unknown), each captioned with its rank
    and distance."""
    cells = [_cell(query, BLUE, "query")]
    gap = np.full((cells[0].shape[0], 8, 3), 255, np.uint8)
    cells.append(gap)
    for rank, (img, dist, ok) in enumerate(zip(gallery_images, distances, correct, strict=True)):
        colour = GREY if ok is None else GREEN if ok else RED
        cells.append(_cell(img, colour, f"{rank + 1}: {float(dist):.3f}"))
    return np.hstack(cells)


def retrieve(
    weights: str | Path,
    query_image: str | Path,
    gallery_dir: str | Path,
    top_k: int = 10,
    out_png: str | Path | None = None,
    device: str = "auto",
    batch_size: int = 64,
) -> dict[str, Any]:
    """Rank the crops of ``gallery_dir`` for ``query_image`` with the re-ID checkpoint
    ``weights``; write the strip to ``out_png`` when given. Returns :func:`rank_gallery`'s
    dict plus ``"strip"`` (the BGR picture)."""
    from pointforge.predictor import load_predictor

    predictor = load_predictor(weights, device=device, batch_size=batch_size)
    query = read_image(query_image)
    result = rank_gallery(
        predictor, query, query_image, gallery_files(gallery_dir), gallery_dir, top_k, batch_size
    )
    result["strip"] = draw_strip(
        query, result["gallery_images"], result["distances"], result["correct"]
    )
    if out_png is not None:
        out = Path(out_png)
        out.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(out), result["strip"]):
            raise OSError(f"cannot write {out} (is the extension .png?)")
    return result
