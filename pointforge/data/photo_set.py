"""The openly licensed photo set for SuperPoint: assembled from local copies of public repositories.

Why: the photos bundled with scikit-image and scikit-learn are 19 scenes, far too few for a
descriptor that must generalise (docs/keypoints.md, "Training photos"). Several hundred distinct
scenes exist in public repositories under permissive licences, but the package must stay small
and nothing is downloaded at run time, so the set is *assembled* from a checkout (or a bare git
directory) of each source that the user already has: ``pointforge data photo-set``.

Each :class:`PhotoSource` pins a repository, a commit, a folder, the licence and the
attribution, and its split: the **train** sources feed homographic adaptation and SuperPoint
training; the **val** sources are held out for the homography benchmark at 480×640 (they are
never labelled or trained on). The assembled folder records, for every photo, where it came
from, its licence and the SHA-256 of the original bytes (``sources.json``) plus a human-readable
``SOURCES.md``: CC BY 4.0 requires the attribution to travel with the copies.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
PHOTO_SET_SPLITS = ("train", "val")


def _roboflow_key(rel: str) -> str:
    """Roboflow exports name a photo ``<origin id>_jpg.rf.<hash>.jpg`` and may hold the same origin
    photo several times (once per export split): the origin id identifies the scene."""
    return Path(rel).name.split("_jpg.rf.")[0]


def _file_key(rel: str) -> str:
    return Path(rel).name


@dataclass(frozen=True)
class PhotoSource:
    """One public folder of photos, pinned to a commit."""

    name: str
    repository: str  # https URL of the git repository
    commit: str  # the commit whose files were checked; git copies are read at this commit
    folder: str  # folder inside the repository; every image below it is taken
    licence: str
    attribution: str
    split: str  # "train" or "val"
    note: str = ""
    dedupe: str = "file"  # "file": one photo per file name; "roboflow": per origin id
    pattern: str = ""  # regex an image path must contain (empty: every image in the folder)

    def key(self, rel: str) -> str:
        return (_roboflow_key if self.dedupe == "roboflow" else _file_key)(rel)


SOURCES: tuple[PhotoSource, ...] = (
    PhotoSource(
        name="vehicles_openimages",
        repository="https://github.com/Codeveen/Vehicle-Classification",
        commit="2eefd8fe1a2bc1c7a5470f6e920b7a9e1827fdf5",
        folder="Vehicles-OpenImages.v1-416x416.yolov8",
        licence="CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)",
        attribution=(
            "Vehicles-OpenImages dataset by Jacob Solawetz / Roboflow "
            "(https://universe.roboflow.com/roboflow-gw7yv/vehicles-openimages), photos from "
            "Open Images; resized to 416x416 by Roboflow. Licence stated in the folder's "
            "README.dataset.txt."
        ),
        split="train",
        note="627 distinct street scenes (each origin photo kept once across its export splits)",
        dedupe="roboflow",
        pattern=r"/(train|valid|test)/images/",  # not the training plots under runs/
    ),
    PhotoSource(
        name="boofcv_pixabay",
        repository="https://github.com/lessthanoptimal/BoofCV-Data",
        commit="cc6d8adf795be2e0c6cc12b42b9ed0c92cab0fcf",
        folder="example/recognition/pixabay",
        licence="CC0 (public domain; the folder's readme.md: 'All images from pixabay, CC0')",
        attribution="Pixabay photos collected in BoofCV-Data by Peter Abeles",
        split="val",
        note="55 everyday objects and scenes, about 640x960",
    ),
    PhotoSource(
        name="wct_photos",
        repository="https://github.com/CommunityToolkit/WindowsCommunityToolkit",
        commit="6bfe8a5d21feb8818a8048b9fc41a84a70af8b0f",
        folder="Microsoft.Toolkit.Uwp.SampleApp/Assets/Photos",
        licence="MIT (the repository's License.md)",
        attribution=(
            "Sample photos of the Windows Community Toolkit, (c) .NET Foundation and Contributors"
        ),
        split="val",
        note="24 landscape and outdoor photos, 800 px and larger",
    ),
)


def sources_by_name() -> dict[str, PhotoSource]:
    return {s.name: s for s in SOURCES}


def photo_set_help() -> str:
    """One paragraph per source for ``pointforge data photo-set --help``."""
    return "\n".join(
        f"  {s.name} ({s.split}): {s.repository} @ {s.commit[:10]}, {s.folder}/\n"
        f"      {s.licence}; {s.note}"
        for s in SOURCES
    )


def _git_dir(root: Path) -> Path | None:
    """The git directory of a local copy: ``root`` itself when bare, ``root/.git`` for a
    checkout, ``None`` for a plain folder (an unpacked archive)."""
    if (root / "HEAD").is_file() and (root / "objects").is_dir():
        return root
    if (root / ".git").exists():
        return root / ".git"
    return None


def _git(git_dir: Path, *args: str) -> bytes:
    try:
        return subprocess.run(
            ["git", f"--git-dir={git_dir}", *args], check=True, capture_output=True
        ).stdout
    except subprocess.CalledProcessError as err:
        raise ValueError(
            f"git {' '.join(args)} failed in {git_dir}: {err.stderr.decode().strip()} "
            "(does the copy hold the pinned commit? `git fetch` it)"
        ) from err


def list_images(root: Path, source: PhotoSource) -> list[str]:
    """Image paths (relative to the repository) of ``source`` in the local copy ``root``.

    A git copy (bare or checkout) is read at the pinned commit, whatever is checked out, so
    the set is the documented one; a plain folder is read as it is (``sources.json`` still
    records the SHA-256 of every photo)."""
    git_dir = _git_dir(root)
    if git_dir is not None:
        out = _git(git_dir, "ls-tree", "-r", "--name-only", source.commit, source.folder)
        rels = [r for r in out.decode().split("\n") if r]
    else:
        folder = root / source.folder
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{root} has no folder {source.folder!r}: is it a copy of {source.repository}?"
            )
        rels = [p.relative_to(root).as_posix() for p in folder.rglob("*") if p.is_file()]
    if not rels:
        raise FileNotFoundError(
            f"{root} has no files under {source.folder!r} at {source.commit[:10]}: is it a "
            f"copy of {source.repository}?"
        )
    pattern = re.compile(source.pattern)
    return sorted(r for r in rels if r.lower().endswith(IMAGE_SUFFIXES) and pattern.search(r))


def read_bytes(root: Path, rel: str, commit: str) -> bytes:
    """File ``rel`` of the local copy ``root``: at ``commit`` for a git copy, else from disk."""
    git_dir = _git_dir(root)
    if git_dir is not None:
        return _git(git_dir, "show", f"{commit}:{rel}")
    return (root / rel).read_bytes()


def _safe_name(source: str, key: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(key).stem)
    return f"{source}__{stem}.png"


def iter_source(root: Path, source: PhotoSource) -> Iterator[tuple[str, str, bytes]]:
    """``(key, rel, bytes)`` for each distinct photo of ``source`` (first path per key wins)."""
    seen: set[str] = set()
    for rel in list_images(root, source):
        key = source.key(rel)
        if key in seen:
            continue
        seen.add(key)
        yield key, rel, read_bytes(root, rel, source.commit)


def assemble_photo_set(
    out: Path,
    copies: dict[str, Path],
    split: str,
    progress: Callable[[Iterator[tuple[str, str, bytes]], str], Iterator[tuple[str, str, bytes]]]
    | None = None,
) -> list[dict[str, str]]:
    """Write the grey PNGs of ``split`` from the local ``copies`` (source name → checkout or bare
    git dir) into ``out``, with ``sources.json`` and ``SOURCES.md``. Returns the records.

    Every source of the split must be given: a partial set would silently change what the
    figures in the docs were measured on. A photo that OpenCV cannot decode is an error naming
    the file (the pinned commits decode completely).
    """
    import cv2  # imported here so that the CLI's --help does not load OpenCV
    import numpy as np

    if split not in PHOTO_SET_SPLITS:
        raise ValueError(
            f"unknown photo-set split {split!r}; choose one of {list(PHOTO_SET_SPLITS)}"
        )
    known = sources_by_name()
    unknown = sorted(set(copies) - set(known))
    if unknown:
        raise ValueError(f"unknown photo source(s) {unknown}; known: {sorted(known)}")
    wanted = [s for s in SOURCES if s.split == split]
    missing = [s.name for s in wanted if s.name not in copies]
    if missing:
        needs = ", ".join(f"{s.name}=<copy of {s.repository}>" for s in wanted if s.name in missing)
        raise ValueError(f"split {split!r} needs --source {needs}")
    out.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, str]] = []
    for source in wanted:
        items = iter_source(copies[source.name], source)
        if progress is not None:
            items = progress(items, source.name)
        for key, rel, data in items:
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise ValueError(f"{source.name}: cannot decode {rel} ({len(data)} bytes)")
            name = _safe_name(source.name, key)
            if not cv2.imwrite(str(out / name), image):
                raise OSError(f"could not write {out / name}")
            records.append(
                {
                    "file": name,
                    "source": source.name,
                    "path": rel,
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "licence": source.licence,
                }
            )
    _write_provenance(out, split, wanted, records)
    return records


def _write_provenance(
    out: Path, split: str, sources: list[PhotoSource], records: list[dict[str, str]]
) -> None:
    payload = {"split": split, "sources": [asdict(s) for s in sources], "photos": records}
    (out / "sources.json").write_text(json.dumps(payload, indent=1))
    lines = [f"# Photo set, split {split}: {len(records)} photos", ""]
    for s in sources:
        n = sum(r["source"] == s.name for r in records)
        lines += [
            f"## {s.name} ({n} photos)",
            f"- Source: {s.repository} at commit {s.commit}, folder `{s.folder}`",
            f"- Licence: {s.licence}",
            f"- Attribution: {s.attribution}",
            "- Changes: converted to 8-bit grey PNG; otherwise unmodified.",
            "",
        ]
    lines.append("Per-photo origin and SHA-256 of the original bytes: sources.json.")
    (out / "SOURCES.md").write_text("\n".join(lines) + "\n")
