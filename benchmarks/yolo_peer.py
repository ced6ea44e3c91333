"""Ultralytics YOLOv8n from scratch, a peer of CenterNet-R18 (benchmarks/bench_detection_peers.py).

Install with ``pip install -e ".[bench]" -c constraints.txt`` (the ``bench`` extra pins
ultralytics-opencv-headless; it brings no other torch).

* Data: the records pointforge's own readers parsed (COCO json, VOC xml; original pixels,
  validated, VOC ``difficult`` objects left out of training as pointforge leaves them out) are
  written as a YOLO folder: ``images/<split>/<id>.jpg`` (symbolic links to the originals) and
  ``labels/<split>/<id>.txt`` (``class cx cy w h``, normalised to the image), plus the
  ``data.yaml`` Ultralytics reads. So all three detectors train on the very same boxes.
* Offline: nothing may be downloaded (the benchmark hosts have no internet). Before Ultralytics
  is imported, ``YOLO_OFFLINE`` (its online check answers no), ``YOLO_AUTOINSTALL=false`` (no
  pip installs) and ``YOLO_CONFIG_DIR`` (its settings file, in the run folder) are set; settings
  ``sync`` (analytics) and its logger integrations are switched off; its dataset check's font
  download (fonts serve only plots, which are off) is replaced by a no-op. A Python audit hook
  makes any internet socket use during the YOLO arm fail at once and records it, so a forgotten
  download shows up in the results instead of hanging.
* Threads: Ultralytics resets torch's CPU threads to ``min(8, cores - 1)`` when it selects the
  device; that constant is set to the benchmark's ``--threads`` so all three arms get as many.
  Ultralytics trains on the CPU with no loader workers (its own choice for CPU training).
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from pointforge.tasks.detection.coco_eval import COCOEvaluator

NETWORK_ATTEMPTS: list[str] = []
_guard = {"on": False}


def _audit(event: str, args: tuple[Any, ...]) -> None:
    """Refuse internet sockets (name look-ups, TCP/UDP connects) while the guard is on; Unix
    sockets (DataLoader workers share tensors over them) pass."""
    if not _guard["on"]:
        return
    if event == "socket.getaddrinfo":
        what = f"getaddrinfo {args[0]}:{args[1]}"
    elif event == "socket.connect" and args[0].family in (socket.AF_INET, socket.AF_INET6):
        what = f"connect {args[1]}"
    else:
        return
    NETWORK_ATTEMPTS.append(what)
    raise OSError(f"bench_detection_peers: network use refused ({what})")


sys.addaudithook(_audit)


def import_offline(config_dir: Path, threads: int) -> Any:
    """Import Ultralytics with every download path closed (see the module docstring); returns
    its ``YOLO`` class."""
    config_dir.mkdir(parents=True, exist_ok=True)
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "false"
    os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    _guard["on"] = True
    import ultralytics.data.utils as ul_data
    import ultralytics.utils.torch_utils as ul_torch
    from ultralytics import YOLO
    from ultralytics.utils import SETTINGS

    # No analytics, and none of the logger integrations it enables by default when their
    # package is importable (Ray Tune and TensorBoard are installed here).
    integrations = ("clearml", "comet", "dvc", "mlflow", "raytune", "tensorboard", "wandb")
    SETTINGS.update({"sync": False, **dict.fromkeys(integrations, False)})
    ul_data.check_font = lambda *a, **k: None
    ul_torch.NUM_THREADS = threads
    return YOLO


def write_yolo_folder(folder: Path, splits: dict[str, Any]) -> Path:
    """``splits``: name → pointforge ``DetectionDataset`` (its ``records``, ``categories``).
    Writes the YOLO folder and returns its ``data.yaml``; class index i is the datasets'
    contiguous index i, so YOLO's labels map to the same COCO category ids."""
    names: list[str] | None = None
    for split, ds in splits.items():
        if names is None:
            names = list(ds.class_names)
        elif list(ds.class_names) != names:
            raise ValueError(f"split {split!r} has classes {ds.class_names}, others {names}")
        images, labels = folder / "images" / split, folder / "labels" / split
        images.mkdir(parents=True, exist_ok=True)
        labels.mkdir(parents=True, exist_ok=True)
        for rec in ds.records:
            src = Path(rec.path).resolve()
            link = images / f"{rec.image_id}{src.suffix.lower()}"
            if not link.exists():
                link.symlink_to(src)
            boxes = np.asarray(rec.boxes, dtype=np.float64).reshape(-1, 4)
            cx = (boxes[:, 0] + boxes[:, 2]) / 2 / rec.width
            cy = (boxes[:, 1] + boxes[:, 3]) / 2 / rec.height
            w = (boxes[:, 2] - boxes[:, 0]) / rec.width
            h = (boxes[:, 3] - boxes[:, 1]) / rec.height
            lines = [
                f"{int(c)} {a:.6f} {b:.6f} {d:.6f} {e:.6f}"
                for c, a, b, d, e in zip(rec.labels, cx, cy, w, h)
            ]
            (labels / f"{rec.image_id}.txt").write_text("".join(f"{line}\n" for line in lines))
    assert names is not None, "no splits given"
    data = {
        "path": str(folder),
        **{split: f"images/{split}" for split in splits},
        "names": dict(enumerate(names)),
    }
    data_yaml = folder / "data.yaml"
    data_yaml.write_text(yaml.safe_dump(data, sort_keys=False))
    return data_yaml


def matched_epochs(iters: int, batch: int, n_train: int) -> tuple[int, float]:
    """``(epochs, fraction)`` so that YOLO sees about ``iters * batch`` images:
    ``round(iters * batch / n_train)`` epochs of the whole set, or, for a budget under one
    epoch (smoke tests), one epoch over that fraction of it (Ultralytics' ``fraction``)."""
    images = iters * batch
    if images >= n_train:
        return max(1, round(images / n_train)), 1.0
    return 1, images / n_train


def train_yolo(
    yolo_cls: Any,
    data_yaml: Path,
    project: Path,
    epochs: int,
    fraction: float,
    batch: int,
    imgsz: int,
    workers: int,
    device: str,
    seed: int,
) -> dict[str, Any]:
    """YOLOv8n built from ``yolov8n.yaml`` (random init, ``pretrained=False``) trained with
    Ultralytics' own recipe (its defaults: optimizer ``auto``, warmup, mosaic, close_mosaic
    10, EMA) for ``epochs``; fp32 (``amp=False``), no plots, validation only at the last epoch.
    Returns the weights path (``last.pt``: the final EMA weights) and per-batch times."""
    model = yolo_cls("yolov8n.yaml", task="detect")
    stamps: list[float] = []
    model.add_callback("on_train_batch_end", lambda _trainer: stamps.append(time.perf_counter()))
    start = time.perf_counter()
    model.train(
        data=str(data_yaml),
        epochs=epochs,
        fraction=fraction,
        batch=batch,
        imgsz=imgsz,
        workers=workers,
        device=device,
        seed=seed,
        pretrained=False,
        amp=False,
        plots=False,
        val=False,
        project=str(project),
        name="train",
        exist_ok=True,
        verbose=False,
    )
    train_s = time.perf_counter() - start
    last = project / "train" / "weights" / "last.pt"
    if not last.is_file():
        raise FileNotFoundError(f"Ultralytics wrote no {last}")
    return {"weights": last, "train_s": train_s, "batch_times": [float(t) for t in np.diff(stamps)]}


def evaluate_yolo(
    yolo_cls: Any,
    weights: Path,
    dataset: Any,
    imgsz: int,
    device: str,
    conf: float = 0.001,
    iou: float = 0.7,
    log: Callable[[str], None] = print,
) -> dict[str, float]:
    """YOLO's detections on ``dataset`` (a pointforge ``DetectionDataset``) scored by
    pointforge's COCO evaluator on that dataset's own ground truth. Ultralytics' predictor
    letterboxes each image to ``imgsz`` on its long side (padded to a multiple of 32) and
    returns boxes in original image pixels; ``conf``/``iou`` are its ``val`` mode's defaults,
    at most 100 detections per image (COCO's limit)."""
    model = yolo_cls(str(weights), task="detect")
    evaluator = COCOEvaluator(dataset.coco_ground_truth(), [c for c, _ in dataset.categories], 100)
    for rec in dataset.records:
        result = model.predict(
            rec.path, imgsz=imgsz, conf=conf, iou=iou, max_det=100, device=device, verbose=False
        )[0]
        boxes = result.boxes
        evaluator.process(
            {"image_id": [rec.image_id]},
            {
                "boxes": boxes.xyxy.float().cpu()[None],
                "scores": boxes.conf.float().cpu()[None],
                "labels": boxes.cls.long().cpu()[None],
            },
        )
    log(f"yolo: {len(dataset.records)} images predicted")
    return evaluator.evaluate()
