"""Read and write boxes in the nuScenes detection submission format.

Why: ``results_nusc.json`` is what the nuScenes evaluation server (and the devkit, for users
who have it) accepts, so our predictions can be scored officially; writing the ground truth in
the same format (``detection_score`` −1, as the devkit's GT loader stores it) lets
:func:`pointforge.tasks.fusion.nusc_metrics.evaluate_nusc` run from two files. Format (detection
README, "Results format")::

    {"meta": {"use_camera": bool, "use_lidar": bool, "use_radar": bool, "use_map": bool,
              "use_external": bool},
     "results": {sample_token: [{"sample_token": str, "translation": [x, y, z],
                                 "size": [w, l, h], "rotation": [w, x, y, z],
                                 "velocity": [vx, vy], "detection_name": str,
                                 "detection_score": float, "attribute_name": str}, ...]}}

All in the global frame, metres, m/s. Every sample of the split must be a key of ``results``
(an empty list when nothing was detected).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pointforge.tasks.fusion.nusc_metrics import DETECTION_NAMES, NuscBox

RESULTS_FILE = "results_nusc.json"
GROUND_TRUTH_FILE = "ground_truth_nusc.json"
_KEYS = (
    "sample_token",
    "translation",
    "size",
    "rotation",
    "velocity",
    "detection_name",
    "detection_score",
    "attribute_name",
)


def make_meta(use_radar: bool = True) -> dict[str, bool]:
    """The ``meta`` block of a camera(+radar) submission (CenterFusion: camera and radar)."""
    return {
        "use_camera": True,
        "use_lidar": False,
        "use_radar": bool(use_radar),
        "use_map": False,
        "use_external": False,
    }


def box_to_dict(b: NuscBox) -> dict[str, Any]:
    """One box as its submission record (NaN velocities become JSON null)."""
    vel = [None if math.isnan(v) else float(v) for v in b.velocity]
    return {
        "sample_token": b.sample_token,
        "translation": [float(v) for v in b.translation],
        "size": [float(v) for v in b.size],
        "rotation": [float(v) for v in b.rotation],
        "velocity": vel,
        "detection_name": b.detection_name,
        "detection_score": float(b.detection_score),
        "attribute_name": b.attribute_name,
    }


def write_boxes(
    path: str | Path,
    boxes: Iterable[NuscBox],
    sample_tokens: Sequence[str] = (),
    use_radar: bool = True,
) -> Path:
    """Write ``boxes`` as a submission file; ``sample_tokens`` lists samples that must appear
    even without boxes. Returns the path."""
    results: dict[str, list[dict[str, Any]]] = {t: [] for t in sample_tokens}
    for b in boxes:
        results.setdefault(b.sample_token, []).append(box_to_dict(b))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": make_meta(use_radar), "results": results}))
    return path


def write_results(out_dir: str | Path, preds: Iterable[NuscBox], **kw: Any) -> Path:
    """``<out_dir>/results_nusc.json``."""
    return write_boxes(Path(out_dir) / RESULTS_FILE, preds, **kw)


def write_ground_truth(out_dir: str | Path, gt: Iterable[NuscBox], **kw: Any) -> Path:
    """``<out_dir>/ground_truth_nusc.json``; every score is written as −1."""
    gt = [NuscBox(**{**b.__dict__, "detection_score": -1.0}) for b in gt]
    return write_boxes(Path(out_dir) / GROUND_TRUTH_FILE, gt, **kw)


def _vec(rec: dict[str, Any], key: str, n: int, where: str) -> tuple[float, ...]:
    v = rec.get(key)
    if not isinstance(v, list) or len(v) != n:
        raise ValueError(f"{where}: {key!r} must be a list of {n} numbers, got {v!r}")
    return tuple(float("nan") if x is None else float(x) for x in v)


def read_boxes(path: str | Path) -> tuple[list[NuscBox], dict[str, bool], list[str]]:
    """Read a submission file → (boxes, meta, sample tokens in file order).

    Bad records raise a ValueError naming the file, the sample token and the record index."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"nuScenes results file not found: {path}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(data, dict) or "results" not in data or "meta" not in data:
        raise ValueError(f"{path}: expected an object with keys 'meta' and 'results'")
    boxes: list[NuscBox] = []
    for token, recs in data["results"].items():
        for i, rec in enumerate(recs):
            where = f"{path}: results[{token!r}][{i}]"
            missing = [k for k in _KEYS if k not in rec]
            if missing:
                raise ValueError(f"{where}: missing key(s) {missing}")
            if rec["sample_token"] != token:
                raise ValueError(f"{where}: sample_token {rec['sample_token']!r} differs")
            if rec["detection_name"] not in DETECTION_NAMES:
                raise ValueError(f"{where}: unknown detection_name {rec['detection_name']!r}")
            boxes.append(
                NuscBox(
                    sample_token=token,
                    translation=_vec(rec, "translation", 3, where),
                    size=_vec(rec, "size", 3, where),
                    rotation=_vec(rec, "rotation", 4, where),
                    velocity=_vec(rec, "velocity", 2, where),
                    detection_name=rec["detection_name"],
                    detection_score=float(rec["detection_score"]),
                    attribute_name=str(rec["attribute_name"]),
                )
            )
    return boxes, dict(data["meta"]), list(data["results"].keys())
