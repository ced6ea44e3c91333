"""Small real inputs in the layouts the documented commands expect (tests/test_docs_commands.py).

Why real files: a documented command is only shown to work if it runs on data in the layout a
user brings (Market-1501 names, HPatches sequences, COCO json, VOC xml, YOLO txt...). Each
builder writes a few scikit-image photos (or crops of them) into ``path`` in that layout, in a
few milliseconds; nothing is downloaded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import skimage.data
import torch

PHOTOS = ("camera", "astronaut", "coffee", "chelsea", "rocket", "brick")
CLASSES = ("square", "disc")


def photo(index: int, size: tuple[int, int] = (96, 128)) -> np.ndarray:
    """``uint8 (H, W, 3)`` BGR: scikit-image photo ``index`` (cyclic) resized to ``size``."""
    img = getattr(skimage.data, PHOTOS[index % len(PHOTOS)])()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    img = cv2.resize(img[..., :3], (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img[..., ::-1])


def _write(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"cannot write {path}")
    return path


def image_file(path: Path, index: int = 0) -> Path:
    """One photo at ``path`` (format from its suffix)."""
    return _write(path, photo(index))


def photo_folder(path: Path, num: int = 3) -> Path:
    """``path/NN.png``: a folder of photos (export-labels, homography_pairs, gallery)."""
    for i in range(num):
        image_file(path / f"{i:02d}.png", i)
    return path


def digit_png(path: Path) -> Path:
    """An 8x8 scikit-learn digit, grey, as the classification quickstart reads them."""
    from sklearn.datasets import load_digits

    digit = load_digits().images[0] * (255.0 / 16.0)
    return _write(path, digit.astype(np.uint8))


def homography() -> np.ndarray:
    """A mild, known viewpoint change (float64 ``(3, 3)``) for 96x128 photos."""
    return np.array([[0.95, 0.05, 4.0], [-0.04, 1.0, 3.0], [1e-4, 0.0, 1.0]])


def warped_pair(a: Path, b: Path, h_txt: Path | None = None) -> None:
    """``a`` a photo, ``b`` the same photo warped by :func:`homography`; ``h_txt`` holds H."""
    img = photo(0)
    _write(a, img)
    _write(b, cv2.warpPerspective(img, homography(), (img.shape[1], img.shape[0])))
    if h_txt is not None:
        np.savetxt(h_txt, homography())


def homography_txt(path: Path) -> Path:
    np.savetxt(path, homography())
    return path


def hpatches(path: Path) -> Path:
    """``path/hpatches-sequences-release/{i_,v_}<name>/{1..6}.ppm`` and ``H_1_k``: two
    sequences from photos, the viewpoint one warped by known homographies, the illumination
    one brightened (identity homographies), as in the HPatches release."""
    root = path / "hpatches-sequences-release"
    base = homography()
    for seq, index in (("i_photo", 1), ("v_photo", 0)):
        img = photo(index)
        _write(root / seq / "1.ppm", img)
        for k in range(2, 7):
            if seq.startswith("v"):
                h = np.eye(3) + (base - np.eye(3)) * (k - 1) / 5.0
                out = cv2.warpPerspective(img, h, (img.shape[1], img.shape[0]))
            else:
                h = np.eye(3)
                out = cv2.convertScaleAbs(img, alpha=1.0, beta=10.0 * k)
            _write(root / seq / f"{k}.ppm", out)
            np.savetxt(root / seq / f"H_1_{k}", h)
    return path


def _boxes(index: int) -> list[tuple[int, list[float]]]:
    """``(class, [x, y, w, h])`` boxes of image ``index`` (inside a 96x128 photo)."""
    return [
        (index % 2, [10.0 + 4 * index, 12.0, 40.0, 30.0]),
        (1 - index % 2, [70.0, 50.0, 30, 28]),
    ]


def coco_images(images: Path, num: int = 3, prefix: str = "") -> Path:
    """``images/<prefix>NNN.jpg``: the photos a :func:`coco_json` of the same ``num`` lists."""
    for i in range(num):
        image_file(images / f"{prefix}{i:03d}.jpg", i)
    return images


def coco_json(json_path: Path, num: int = 3, prefix: str = "") -> Path:
    """``json_path``: a COCO detection json over the photos of :func:`coco_images`."""
    doc: dict[str, list[dict[str, object]]] = {"images": [], "annotations": [], "categories": []}
    doc["categories"] = [{"id": i + 1, "name": n} for i, n in enumerate(CLASSES)]
    for i in range(num):
        name = f"{prefix}{i:03d}.jpg"
        doc["images"].append({"id": i + 1, "file_name": name, "height": 96, "width": 128})
        for cls, box in _boxes(i):
            ann = {"id": len(doc["annotations"]) + 1, "image_id": i + 1, "category_id": cls + 1}
            doc["annotations"].append({**ann, "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(doc))
    return json_path


def chess_folder(path: Path, annotation_file: str = "_annotations.coco.json") -> Path:
    """``path/{train,valid,test}/<annotation_file>`` + JPEGs: the chess set's (and its Roboflow
    source's) layout."""
    for split in ("train", "valid", "test"):
        coco_images(path / split, prefix=f"{split}_")
        coco_json(path / split / annotation_file, prefix=f"{split}_")
    return path


def voc(path: Path) -> Path:
    """``path/{Annotations,JPEGImages,ImageSets/Main}``: Pascal VOC with train and val lists."""
    names = [f"2012_{i:06d}" for i in range(3)]
    for i, name in enumerate(names):
        image_file(path / "JPEGImages" / f"{name}.jpg", i)
        objs = "".join(
            f"<object><name>{CLASSES[c]}</name><difficult>0</difficult><bndbox>"
            f"<xmin>{x:.0f}</xmin><ymin>{y:.0f}</ymin><xmax>{x + w:.0f}</xmax>"
            f"<ymax>{y + h:.0f}</ymax></bndbox></object>"
            for c, (x, y, w, h) in _boxes(i)
        )
        xml = f"<annotation><filename>{name}.jpg</filename><size><width>128</width>"
        xml += f"<height>96</height><depth>3</depth></size>{objs}</annotation>"
        (path / "Annotations").mkdir(parents=True, exist_ok=True)
        (path / "Annotations" / f"{name}.xml").write_text(xml)
    (path / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    (path / "ImageSets" / "Main" / "train.txt").write_text("\n".join(names[:2]) + "\n")
    (path / "ImageSets" / "Main" / "val.txt").write_text(names[2] + "\n")
    return path


def yolo_images(images: Path) -> Path:
    """``.../images/<split>`` photos and ``.../labels/<split>`` txt boxes (normalised)."""
    labels = Path(*["labels" if p == "images" else p for p in images.parts])
    labels.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        image_file(images / f"{i:03d}.jpg", i)
        lines = [
            f"{c} {(x + w / 2) / 128:.4f} {(y + h / 2) / 96:.4f} {w / 128:.4f} {h / 96:.4f}"
            for c, (x, y, w, h) in _boxes(i)
        ]
        (labels / f"{i:03d}.txt").write_text("\n".join(lines) + "\n")
    return images


def class_names(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(CLASSES) + "\n")
    return path


def image_folder(path: Path) -> Path:
    """``path/<class>/<image>``: two classes of five photo crops each (classification)."""
    for c in range(2):
        for i in range(5):
            img = photo(c * 3 + i % 3)
            _write(path / f"class{c}" / f"{i}.png", np.roll(img, 7 * i, axis=1))
    return path


def _crop(pid: int, view: int) -> np.ndarray:
    """A 64x32 'person' crop: identity ``pid`` is a fixed photo region, views shift it."""
    img = photo(pid % len(PHOTOS), (128, 160))
    y, x = (7 * pid) % 56 + view, 20 * (pid % 3) + 2 * view
    return np.ascontiguousarray(img[y : y + 64, x : x + 32])


def market1501(path: Path, ids: int = 4) -> Path:
    """Market-1501 layout and names (``0001_c1s1_000101_00.jpg``): train, query, gallery."""
    for folder, first in (("bounding_box_train", 1), ("query", 101), ("bounding_box_test", 101)):
        for p in range(first, first + ids):
            views = (1,) if folder == "query" else (2, 3, 4)
            for v in views:
                cam = 1 if folder == "query" else 2 + v % 2
                name = f"{p:04d}_c{cam}s1_{v:06d}_00.jpg"
                _write(path / folder / name, _crop(p, v))
    return path


def reid_folder(path: Path, ids: int = 4) -> Path:
    """``path/{train,query,gallery}/<identity>/<camera>_<n>.jpg`` (a user's own re-ID set)."""
    for split, first in (("train", 1), ("query", 101), ("gallery", 101)):
        for p in range(first, first + ids):
            views = (1,) if split == "query" else (2, 3, 4)
            for v in views:
                cam = 1 if split == "query" else 2 + v % 2
                _write(path / split / f"{p:04d}" / f"{cam}_{v}.jpg", _crop(p, v))
    return path


def reid_gallery(path: Path) -> Path:
    """A gallery folder of crops (``retrieve``'s GALLERY_DIR), Market names so identities show."""
    for p in range(1, 4):
        for v in (2, 3):
            _write(path / f"{p:04d}_c2s1_{v:06d}_00.jpg", _crop(p, v))
    return path


def reid_query(path: Path) -> Path:
    return _write(path, _crop(1, 1))


def magicleap_v1(path: Path) -> Path:
    """A state dict with MagicLeap's v1 key names and shapes (SuperPoint's, fresh weights)."""
    from pointforge.models.superpoint import superpoint

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(superpoint().state_dict(), path)
    return path


def tune_space(path: Path) -> Path:
    path.write_text("solver.lr: {loguniform: [0.01, 0.2]}\n")
    return path


Builder = Callable[[Path], object]
