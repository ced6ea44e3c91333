"""Sharded on-disk keypoint labels: what homographic adaptation writes and training reads.

Why shards: one file per image means 100k+ tiny files (slow on every file system, painful to
copy), one file for everything cannot resume. Here shard ``k`` holds the labels of images
``[k·S, (k+1)·S)`` of the sorted folder listing, so the work of a shard is fixed in advance:

``out/shard_00000.npz`` … — ``keypoints`` ``(K, 2)`` float32 (x, y) in the *resized* image,
``scores`` ``(K,)`` float32, ``offsets`` ``(n+1,)`` int64 (image ``j`` owns rows
``offsets[j]:offsets[j+1]``) and ``paths`` ``(n,)`` str, written atomically (temp file, fsync,
rename); ``out/manifest.json`` lists the *completed* shards with each image's path, sizes and
scale factors, and is itself rewritten atomically after each shard.

Kill safety: a shard only counts once the manifest lists it, so a kill before the manifest
update just recomputes that shard (deterministically) and replaces the file; temp files of an
interrupted write are deleted on resume; entries can never be duplicated because a shard's
entries are replaced as a whole.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pointforge.engine.checkpoint import atomic_write_bytes, atomic_write_text

MANIFEST = "manifest.json"
FORMAT = "pointforge-keypoint-labels"
VERSION = 1


class LabelStoreError(ValueError):
    """A label directory that is refused, inconsistent or corrupt; the message names it."""


@dataclass(frozen=True)
class ImageLabels:
    """Labels of one image. ``keypoints`` ``(N, 2)`` float32 (x, y) in the resized image,
    ``scores`` ``(N,)``; ``size``/``orig_size`` ``(h, w)``; ``scale`` ``(sx, sy)``."""

    path: str
    keypoints: np.ndarray
    scores: np.ndarray
    size: tuple[int, int]
    orig_size: tuple[int, int]
    scale: tuple[float, float]


def shard_name(shard: int) -> str:
    return f"shard_{shard:05d}.npz"


class LabelShardWriter:
    """Create or resume a label directory; :meth:`write_shard` commits one shard.

    ``settings`` (adaptation parameters, weights, image listing) are stored in the manifest;
    resuming with different settings is refused, since mixing labels of two settings would be
    silent corruption.
    """

    def __init__(
        self,
        out_dir: str | Path,
        settings: dict[str, Any],
        shard_size: int,
        num_images: int,
        resume: bool = False,
    ) -> None:
        self.out = Path(out_dir)
        if self.out.exists() and not self.out.is_dir():
            raise LabelStoreError(f"output {self.out} exists and is not a directory")
        nonempty = self.out.is_dir() and any(self.out.iterdir())
        if nonempty and not resume:
            raise LabelStoreError(
                f"output directory {self.out} is not empty; pass --resume to continue the "
                "export there, or choose another --out (labels are never overwritten)"
            )
        header = {
            "format": FORMAT,
            "version": VERSION,
            "shard_size": shard_size,
            "num_images": num_images,
            "settings": settings,
        }
        self.manifest: dict[str, Any] = {**header, "complete": False, "shards": {}}
        if nonempty:
            old = read_manifest(self.out)  # a non-empty dir without a manifest is refused
            for key, value in header.items():
                if json.loads(json.dumps(value)) != old.get(key):
                    raise LabelStoreError(
                        f"cannot resume in {self.out}: its manifest was written with another "
                        f"'{key}' ({old.get(key)!r} vs now {value!r}); use a new --out"
                    )
            self.manifest = old
            for tmp in self.out.glob(".*.tmp"):  # leftovers of a write killed mid-way
                tmp.unlink()
        self.out.mkdir(parents=True, exist_ok=True)
        self.shard_size = shard_size
        self.num_images = num_images
        self.num_shards = -(-num_images // shard_size)
        self._save_manifest()

    def done(self, shard: int) -> bool:
        return str(shard) in self.manifest["shards"]

    def shard_range(self, shard: int) -> range:
        """Image indices (in the sorted listing) whose labels go to ``shard``."""
        return range(shard * self.shard_size, min((shard + 1) * self.shard_size, self.num_images))

    def write_shard(self, shard: int, labels: list[ImageLabels], skipped: list[str]) -> None:
        """Write ``shard`` atomically, then record it (and its ``skipped`` files) as done."""
        counts = [len(lab.keypoints) for lab in labels]
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        empty2 = np.zeros((0, 2), np.float32)
        buf = io.BytesIO()
        np.savez(
            buf,
            keypoints=np.concatenate([lab.keypoints for lab in labels] or [empty2]).astype(
                np.float32
            ),
            scores=np.concatenate([lab.scores for lab in labels] or [empty2[:, 0]]).astype(
                np.float32
            ),
            offsets=offsets,
            paths=np.array([lab.path for lab in labels], dtype=np.str_),
        )
        atomic_write_bytes(buf.getvalue(), self.out / shard_name(shard))
        self.manifest["shards"][str(shard)] = {
            "file": shard_name(shard),
            "images": [
                {
                    "path": lab.path,
                    "size": list(lab.size),
                    "orig_size": list(lab.orig_size),
                    "scale": list(lab.scale),
                    "num_keypoints": n,
                }
                for lab, n in zip(labels, counts, strict=True)
            ],
            "skipped": list(skipped),
        }
        self.manifest["complete"] = len(self.manifest["shards"]) == self.num_shards
        self._save_manifest()

    def _save_manifest(self) -> None:
        # Compact: the manifest is rewritten after every shard and grows with the image count.
        text = json.dumps(self.manifest, separators=(",", ":"))
        atomic_write_text(text + "\n", self.out / MANIFEST)


def read_manifest(out_dir: str | Path) -> dict[str, Any]:
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        raise LabelStoreError(f"{out_dir} is not a label directory (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise LabelStoreError(f"corrupt label manifest {path}: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise LabelStoreError(f"{path} is not a pointforge label manifest")
    return manifest


class LabelStore:
    """Read-only access to a label directory: ``len``, iteration in listing order and
    ``store[path]``. Shards are loaded lazily, one cached at a time (training reads in order)."""

    def __init__(self, out_dir: str | Path) -> None:
        self.out = Path(out_dir)
        self.manifest = read_manifest(self.out)
        self._where: dict[str, tuple[int, int]] = {}
        self._meta: dict[str, dict[str, Any]] = {}
        for shard in sorted(self.manifest["shards"], key=int):
            for j, meta in enumerate(self.manifest["shards"][shard]["images"]):
                self._where[meta["path"]] = (int(shard), j)
                self._meta[meta["path"]] = meta
        self._cached: tuple[int, dict[str, np.ndarray]] | None = None

    @property
    def complete(self) -> bool:
        return bool(self.manifest["complete"])

    @property
    def skipped(self) -> list[str]:
        return [p for s in self.manifest["shards"].values() for p in s["skipped"]]

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, path: object) -> bool:
        return path in self._where

    def paths(self) -> list[str]:
        return list(self._where)

    def _shard(self, shard: int) -> dict[str, np.ndarray]:
        if self._cached is None or self._cached[0] != shard:
            file = self.out / shard_name(shard)
            try:
                with np.load(file, allow_pickle=False) as z:
                    arrays = {k: z[k] for k in ("keypoints", "scores", "offsets", "paths")}
            except (OSError, ValueError, KeyError) as exc:
                raise LabelStoreError(f"cannot read label shard {file}: {exc}") from None
            self._cached = (shard, arrays)
        return self._cached[1]

    def __getitem__(self, path: str) -> ImageLabels:
        if path not in self._where:
            raise KeyError(f"no labels for {path!r} in {self.out}")
        shard, j = self._where[path]
        z, meta = self._shard(shard), self._meta[path]
        if str(z["paths"][j]) != path:
            raise LabelStoreError(
                f"shard {shard_name(shard)} in {self.out} disagrees with the manifest"
            )
        lo, hi = int(z["offsets"][j]), int(z["offsets"][j + 1])
        return ImageLabels(
            path,
            z["keypoints"][lo:hi],
            z["scores"][lo:hi],
            tuple(meta["size"]),
            tuple(meta["orig_size"]),
            tuple(meta["scale"]),
        )

    def __iter__(self) -> Iterator[ImageLabels]:
        for path in self._where:
            yield self[path]
