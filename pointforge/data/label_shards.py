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

Several processes (``torchrun``, docs/keypoints.md): only one process may rewrite the manifest,
so every rank commits a shard by writing its file and then ``shard_NNNNN.part.json`` (that
shard's manifest entry), both atomically; rank 0 folds the part files into the manifest
(:meth:`LabelShardWriter.merge_parts`) after a barrier at the end, and on every ``resume``
(parts left by killed ranks are whole shards). Shard files are written byte-reproducibly (fixed
zip timestamps) and the manifest lists shards in index order, so the directory is the same,
byte for byte, whatever the number of processes and however often the export was resumed.
"""

from __future__ import annotations

import io
import json
import zipfile
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


def part_name(shard: int) -> str:
    """The manifest entry of ``shard`` written by a rank that may not touch the manifest."""
    return f"shard_{shard:05d}.part.json"


# zip's earliest representable time: np.savez stamps each member with the wall clock, which
# would make two exports of the same labels differ in bytes.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def encode_shard(labels: list[ImageLabels]) -> bytes:
    """The ``.npz`` bytes of one shard (arrays as in the module docstring), independent of
    when and where they are written; readable by :func:`numpy.load`."""
    counts = [len(lab.keypoints) for lab in labels]
    empty2 = np.zeros((0, 2), np.float32)
    arrays = {
        "keypoints": np.concatenate([lab.keypoints for lab in labels] or [empty2]),
        "scores": np.concatenate([lab.scores for lab in labels] or [empty2[:, 0]]),
        "offsets": np.concatenate([[0], np.cumsum(counts)]),
        "paths": np.array([lab.path for lab in labels], dtype=np.str_),
    }
    dtypes = {"keypoints": np.float32, "scores": np.float32, "offsets": np.int64}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as f:
                array = value.astype(dtypes[key]) if key in dtypes else value
                np.lib.format.write_array(f, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def shard_entry(labels: list[ImageLabels], skipped: list[str], shard: int) -> dict[str, Any]:
    """The manifest entry of ``shard``: each image's path, sizes, scale and keypoint count."""
    return {
        "file": shard_name(shard),
        "images": [
            {
                "path": lab.path,
                "size": list(lab.size),
                "orig_size": list(lab.orig_size),
                "scale": list(lab.scale),
                "num_keypoints": len(lab.keypoints),
            }
            for lab in labels
        ],
        "skipped": list(skipped),
    }


def write_shard_part(
    out_dir: str | Path, shard: int, labels: list[ImageLabels], skipped: list[str]
) -> None:
    """Commit ``shard`` from any rank: its file, then its entry as a part file (both atomic),
    so a part file always stands for a whole shard. Rank 0 merges parts into the manifest."""
    out = Path(out_dir)
    atomic_write_bytes(encode_shard(labels), out / shard_name(shard))
    text = json.dumps(shard_entry(labels, skipped, shard), separators=(",", ":"))
    atomic_write_text(text + "\n", out / part_name(shard))


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
                now, then = json.loads(json.dumps(value)), old.get(key)
                if now != then:
                    raise LabelStoreError(
                        f"cannot resume in {self.out}: its manifest was written with another "
                        f"'{key}' ({_changes(then, now)}); use a new --out"
                    )
            self.manifest = old
            for tmp in self.out.glob(".*.tmp"):  # leftovers of a write killed mid-way
                tmp.unlink()
        self.out.mkdir(parents=True, exist_ok=True)
        self.shard_size = shard_size
        self.num_images = num_images
        self.num_shards = -(-num_images // shard_size)
        if nonempty:
            self.merge_parts()  # shards committed by ranks of a killed multi-process export
        self._save_manifest()

    def done(self, shard: int) -> bool:
        return str(shard) in self.manifest["shards"]

    def shard_range(self, shard: int) -> range:
        """Image indices (in the sorted listing) whose labels go to ``shard``."""
        return range(shard * self.shard_size, min((shard + 1) * self.shard_size, self.num_images))

    def write_shard(self, shard: int, labels: list[ImageLabels], skipped: list[str]) -> None:
        """Write ``shard`` atomically, then record it (and its ``skipped`` files) as done."""
        atomic_write_bytes(encode_shard(labels), self.out / shard_name(shard))
        self.manifest["shards"][str(shard)] = shard_entry(labels, skipped, shard)
        self._save_manifest()

    def merge_parts(self) -> int:
        """Fold the part files of :func:`write_shard_part` into the manifest (one atomic
        rewrite), then delete them; returns how many were merged. Idempotent: a kill between
        the rewrite and the deletion merges the same entries again on resume."""
        parts = sorted(self.out.glob("shard_*.part.json"))
        for part in parts:
            try:
                entry = json.loads(part.read_text())
            except json.JSONDecodeError as exc:  # cannot happen with atomic writes
                raise LabelStoreError(f"corrupt shard part {part}: {exc}") from None
            shard = int(part.name[len("shard_") : -len(".part.json")])
            if not (self.out / entry["file"]).is_file() or shard >= self.num_shards:
                raise LabelStoreError(
                    f"{part} does not belong to a shard of this export ({entry['file']}); "
                    "remove it or use a new --out"
                )
            self.manifest["shards"][str(shard)] = entry
        if parts:
            self._save_manifest()
            for part in parts:
                part.unlink()
        return len(parts)

    def _save_manifest(self) -> None:
        # Shards in index order, whichever rank or run completed them first.
        shards = self.manifest["shards"]
        self.manifest["shards"] = {k: shards[k] for k in sorted(shards, key=int)}
        self.manifest["complete"] = len(shards) == self.num_shards
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


def _changes(then: Any, now: Any, prefix: str = "") -> str:
    """The keys that differ between two (nested) settings, ``a.b: old -> new``, instead of
    both whole values (an adaptation section is dozens of keys)."""
    if isinstance(then, dict) and isinstance(now, dict):
        diffs = [
            _changes(then.get(k), now.get(k), f"{prefix}{k}.")
            for k in sorted(set(then) | set(now))
            if then.get(k) != now.get(k)
        ]
        return "; ".join(diffs)
    return f"{prefix.rstrip('.') or 'value'}: {then!r} -> {now!r}"
