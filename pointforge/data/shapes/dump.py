"""Dump a Synthetic Shapes split to disk (docs/cli.md ``pointforge data shapes``).

Layout: ``DIR/images/NNNNNN.png`` (uint8 grey) and ``DIR/points/NNNNNN.npy`` (float32 (K, 2),
(x, y), pixel centres at integer coordinates). Samples are pure functions of (seed, split,
index), so the same seed gives byte-identical files with any number of worker processes.
"""

from __future__ import annotations

import os
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from pointforge.data.datasets.synthetic_shapes import SyntheticShapes
from pointforge.data.transforms.photometric import PhotometricConfig


def _write_one(args: tuple[SyntheticShapes, int, Path]) -> int:
    ds, i, out = args
    image, points = ds.raw(i)
    name = f"{i:06d}"
    ok, png = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"could not encode image {i}")
    for path, write in (
        (out / "images" / f"{name}.png", lambda f: f.write(png.tobytes())),
        (out / "points" / f"{name}.npy", lambda f: np.save(f, points.astype(np.float32))),
    ):
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)  # a killed dump never leaves a half-written file under its name
    return i


def dump_shapes(
    out_dir: str | Path,
    split: str = "test",
    num: int = 1000,
    seed: int = 0,
    noise: bool = False,
    workers: int | None = None,
    overwrite: bool = False,
    image_size: tuple[int, int] = (120, 160),
) -> Path:
    """Write ``num`` samples of ``split``; ``noise`` applies the default photometric noise."""
    out = Path(out_dir)
    images = out / "images"
    if images.is_dir() and any(images.iterdir()) and not overwrite:
        raise ValueError(f"output dir {out} already holds images; use --overwrite or another dir")
    images.mkdir(parents=True, exist_ok=True)
    (out / "points").mkdir(parents=True, exist_ok=True)
    ds = SyntheticShapes(
        split,
        size=num,
        image_size=image_size,
        seed=seed,
        photometric=PhotometricConfig() if noise else None,
    )
    jobs = [(ds, i, out) for i in range(num)]
    workers = workers or os.cpu_count() or 1
    bar = tqdm(total=num, desc=f"shapes {split}", unit="img", disable=None)
    if workers <= 1:
        for job in jobs:
            _write_one(job)
            bar.update()
    else:
        with get_context("spawn").Pool(workers) as pool:
            for _ in pool.imap_unordered(_write_one, jobs, chunksize=16):
                bar.update()
    bar.close()
    return out
