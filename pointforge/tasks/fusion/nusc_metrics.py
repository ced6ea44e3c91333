"""nuScenes detection metrics (mAP, TP errors, NDS), written from the published definitions.

Why: CenterFusion is evaluated with the nuScenes detection score, but nuscenes-devkit cannot be
a dependency (it pins numpy<2). This module re-implements the metric from the nuScenes paper
(Caesar et al., CVPR 2020, §3) and the devkit's documented ``detection_cvpr_2019`` config and
README ("nuScenes detection task"), reproducing its exact accumulation procedure:

* **Matching**: per class, all predictions of all samples sorted by score (descending); each
  takes the nearest not-yet-taken GT box of the same class *in the same sample* by centre
  distance on the ground plane (xy), and is a TP if that distance is strictly below the
  threshold; thresholds ``D = {0.5, 1, 2, 4}`` m.
* **AP**: cumulative precision/recall, resampled with linear interpolation on the 101 recall
  points 0, 0.01, …, 1 (precision 0 beyond the highest recall reached). AP is the mean over
  the recall points *above* ``min_recall = 0.1`` (indices 11…100) of ``max(p - 0.1, 0)``,
  divided by ``1 - min_precision = 0.9``. mAP = mean over classes and the four thresholds.
* **TP errors** at ``dist_th_tp = 2 m``: per matched TP, ATE = xy centre distance, ASE =
  1 − IoU of the boxes after aligning centres and yaw (so only sizes count), AOE = smallest
  absolute yaw difference (period π for ``barrier``, whose front is undefined; 2π else),
  AVE = ‖Δ(vx, vy)‖₂, AAE = 1 − [attribute equal] (NaN when the GT has no attribute). The
  cumulative (NaN-ignoring) mean of each error in score order is resampled on the same recall
  grid (via the score at each recall point) and averaged over the recall points from just
  above 10 % up to the highest recall reached; a class that never reaches that recall gets 1.
  Undefined errors are NaN and excluded from the class mean (the devkit's rule):
  ``traffic_cone`` has no AOE/AVE/AAE, ``barrier`` no AVE/AAE.
* **NDS** = (5·mAP + Σ over the five mTP of (1 − min(1, mTP))) / 10; an mTP that is NaN (no
  class defines it) scores 0.

Deliberate scope: only the classes present in the ground truth are evaluated (the devkit
evaluates all ten and gives an absent class AP 0, which would make a 5-class synthetic set or a
small split look bad for no reason). The devkit's GT filters (class range from the ego vehicle,
boxes without lidar/radar points, boxes inside bike racks) need the ego pose / point counts; the
class-range filter is applied here when the boxes carry ``ego_translation`` and
``NuscEvalConfig.apply_class_range`` is true; point-count filtering is left to the reader.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from pointforge.geometry.camera import quat_to_yaw, yaw_to_quat

# The ten nuScenes detection classes (detection README, "Classes and attributes").
DETECTION_NAMES: tuple[str, ...] = (
    "car",
    "truck",
    "bus",
    "trailer",
    "construction_vehicle",
    "pedestrian",
    "motorcycle",
    "bicycle",
    "traffic_cone",
    "barrier",
)
TP_METRICS: tuple[str, ...] = ("trans_err", "scale_err", "orient_err", "vel_err", "attr_err")
# Names of the mean TP errors in the output dict, in TP_METRICS order.
TP_OUTPUT_NAMES: dict[str, str] = {
    "trans_err": "mATE",
    "scale_err": "mASE",
    "orient_err": "mAOE",
    "vel_err": "mAVE",
    "attr_err": "mAAE",
}
# TP errors that are undefined for a class (devkit: cones have no heading, velocity or
# attribute; barriers no velocity or attribute).
UNDEFINED_TP: dict[str, tuple[str, ...]] = {
    "traffic_cone": ("orient_err", "vel_err", "attr_err"),
    "barrier": ("vel_err", "attr_err"),
}
N_RECALL = 101  # recall grid 0, 0.01, ..., 1 (devkit DetectionMetricData.nelem)


@dataclass(frozen=True)
class NuscEvalConfig:
    """Parameters of the metric; defaults are the devkit's ``detection_cvpr_2019`` config."""

    dist_ths: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)  # matching thresholds (m)
    dist_th_tp: float = 2.0  # threshold at which TP errors are measured (m)
    min_recall: float = 0.1  # recall below this is ignored by AP and TP errors
    min_precision: float = 0.1  # precision below this counts as 0 in AP
    mean_ap_weight: float = 5.0  # weight of mAP in NDS (5 of 10)
    max_boxes_per_sample: int = 500  # submissions with more boxes in a sample are refused
    # Devkit class ranges (m, xy distance from the ego vehicle); used only when
    # apply_class_range is true and the boxes carry ego_translation.
    class_range: tuple[tuple[str, float], ...] = (
        ("car", 50.0),
        ("truck", 50.0),
        ("bus", 50.0),
        ("trailer", 50.0),
        ("construction_vehicle", 50.0),
        ("pedestrian", 40.0),
        ("motorcycle", 40.0),
        ("bicycle", 40.0),
        ("traffic_cone", 30.0),
        ("barrier", 30.0),
    )
    apply_class_range: bool = False  # off: our readers already restrict to the camera view


@dataclass
class NuscBox:
    """One box in the global frame (prediction or GT), the devkit's ``DetectionBox`` fields.

    ``rotation`` is a quaternion ``(w, x, y, z)``; use :meth:`from_yaw` to build one from a yaw.
    ``velocity`` (vx, vy) may hold NaN for GT (nuScenes has no velocity for a lone annotation).
    ``attribute_name`` is "" when the GT has none. ``ego_translation`` (optional) is the box
    centre relative to the ego vehicle, for the class-range filter."""

    sample_token: str
    # Typed as variable-length tuples: builders convert array rows / JSON lists element-wise,
    # so the lengths in the comments are guaranteed by the data (and checked by nusc_json).
    translation: tuple[float, ...]  # (x, y, z) m
    size: tuple[float, ...]  # (w, l, h) m
    rotation: tuple[float, ...]  # (w, x, y, z)
    velocity: tuple[float, ...] = (0.0, 0.0)  # (vx, vy) m/s
    detection_name: str = "car"
    detection_score: float = -1.0
    attribute_name: str = ""
    ego_translation: tuple[float, float, float] | None = None

    @classmethod
    def from_yaw(cls, sample_token: str, translation, size, yaw: float, **kw) -> NuscBox:
        return cls(
            sample_token,
            tuple(map(float, translation)),
            tuple(map(float, size)),
            tuple(map(float, yaw_to_quat(yaw))),
            **kw,
        )

    @property
    def yaw(self) -> float:
        return quat_to_yaw(np.asarray(self.rotation))


# ----------------------------------------------------------------------------- primitives
def center_distance(a: NuscBox, b: NuscBox) -> float:
    """Euclidean distance of the box centres on the ground plane (xy), in metres."""
    return float(np.hypot(a.translation[0] - b.translation[0], a.translation[1] - b.translation[1]))


def scale_iou(a: NuscBox, b: NuscBox) -> float:
    """3D IoU of two boxes after moving them to the same centre and yaw: the intersection of
    two aligned cuboids is the product of the per-axis minima of (w, l, h)."""
    sa, sb = np.asarray(a.size, float), np.asarray(b.size, float)
    if np.any(sa <= 0) or np.any(sb <= 0):
        raise ValueError(f"box sizes must be > 0, got {a.size} and {b.size} ({a.sample_token})")
    inter = float(np.prod(np.minimum(sa, sb)))
    return inter / (float(np.prod(sa)) + float(np.prod(sb)) - inter)


def yaw_diff(a: NuscBox, b: NuscBox, period: float = 2 * np.pi) -> float:
    """Smallest absolute yaw difference in [0, π] (in [0, π/2] for ``period = π``)."""
    d = (a.yaw - b.yaw + period / 2) % period - period / 2
    return float(abs(d))


def velocity_l2(a: NuscBox, b: NuscBox) -> float:
    """‖(vx, vy)_a − (vx, vy)_b‖₂ (NaN if a GT velocity is NaN)."""
    return float(np.hypot(a.velocity[0] - b.velocity[0], a.velocity[1] - b.velocity[1]))


def attr_error(gt: NuscBox, pred: NuscBox) -> float:
    """1 − attribute accuracy: 0 if equal, 1 if not, NaN when the GT has no attribute."""
    if gt.attribute_name == "":
        return float("nan")
    return 0.0 if gt.attribute_name == pred.attribute_name else 1.0


def nan_cummean(x: np.ndarray) -> np.ndarray:
    """Cumulative mean (N,) ignoring NaNs; all ones if every value is NaN (devkit ``cummean``:
    an error that is never defined is treated as the worst, 1)."""
    x = np.asarray(x, dtype=np.float64)
    valid = ~np.isnan(x)
    if not valid.any():
        return np.ones_like(x)
    sums = np.cumsum(np.where(valid, x, 0.0))
    counts = np.cumsum(valid)
    return np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)


# ----------------------------------------------------------------------------- accumulation
@dataclass
class MetricCurve:
    """One class at one threshold, on the recall grid (each array (101,))."""

    recall: np.ndarray
    precision: np.ndarray
    confidence: np.ndarray
    errors: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def no_predictions(cls) -> MetricCurve:
        """No TP at all: precision 0 everywhere, every TP error 1 (devkit convention)."""
        z = np.zeros(N_RECALL)
        ones = {k: np.ones(N_RECALL) for k in TP_METRICS}
        return cls(np.linspace(0, 1, N_RECALL), z, z.copy(), ones)

    @property
    def max_recall_ind(self) -> int:
        """Index of the highest recall point with a non-zero (interpolated) score."""
        nz = np.nonzero(self.confidence)[0]
        return int(nz[-1]) if len(nz) else 0


def _by_sample(boxes: Iterable[NuscBox], name: str) -> dict[str, list[NuscBox]]:
    out: dict[str, list[NuscBox]] = defaultdict(list)
    for b in boxes:
        if b.detection_name == name:
            out[b.sample_token].append(b)
    return out


def accumulate(
    gt: Sequence[NuscBox], preds: Sequence[NuscBox], class_name: str, dist_th: float
) -> MetricCurve:
    """Greedy matching of ``class_name`` at ``dist_th`` and the curves on the recall grid."""
    gt_by_sample = _by_sample(gt, class_name)
    npos = sum(len(v) for v in gt_by_sample.values())
    if npos == 0:
        return MetricCurve.no_predictions()
    cls_preds = [p for p in preds if p.detection_name == class_name]
    # Descending score; ties broken by the larger original index first (the devkit sorts
    # (score, index) pairs ascending and reverses), so results are order-independent only up
    # to exact score ties, as in the devkit.
    order = sorted(range(len(cls_preds)), key=lambda i: (cls_preds[i].detection_score, i))[::-1]
    taken: set[tuple[str, int]] = set()
    is_tp = np.zeros(len(order))
    scores = np.array([cls_preds[i].detection_score for i in order], dtype=np.float64)
    match: dict[str, list[float]] = {k: [] for k in TP_METRICS}
    match_conf: list[float] = []
    period = np.pi if class_name == "barrier" else 2 * np.pi
    for rank, i in enumerate(order):
        p = cls_preds[i]
        best, best_j = np.inf, -1
        for j, g in enumerate(gt_by_sample.get(p.sample_token, ())):
            if (p.sample_token, j) in taken:
                continue
            d = center_distance(g, p)
            if d < best:
                best, best_j = d, j
        if best < dist_th:
            taken.add((p.sample_token, best_j))
            g = gt_by_sample[p.sample_token][best_j]
            is_tp[rank] = 1
            match["trans_err"].append(center_distance(g, p))
            match["scale_err"].append(1.0 - scale_iou(g, p))
            match["orient_err"].append(yaw_diff(g, p, period))
            match["vel_err"].append(velocity_l2(g, p))
            match["attr_err"].append(attr_error(g, p))
            match_conf.append(p.detection_score)
    if not match_conf:
        return MetricCurve.no_predictions()
    tp = np.cumsum(is_tp)
    fp = np.cumsum(1 - is_tp)
    prec = tp / (tp + fp)
    rec = tp / npos
    grid = np.linspace(0, 1, N_RECALL)
    precision = np.interp(grid, rec, prec, right=0)
    confidence = np.interp(grid, rec, scores, right=0)
    # Error at each recall point = cumulative mean of the TP errors down to the score reached
    # at that recall (np.interp needs increasing x: work on the reversed, ascending scores).
    asc_conf = np.asarray(match_conf)[::-1]
    errors = {
        k: np.interp(confidence[::-1], asc_conf, nan_cummean(np.asarray(v))[::-1])[::-1]
        for k, v in match.items()
    }
    return MetricCurve(grid, precision, confidence, errors)


def calc_ap(curve: MetricCurve, min_recall: float, min_precision: float) -> float:
    """Area under the clipped precision/recall curve, normalised to [0, 1]."""
    prec = curve.precision[round(100 * min_recall) + 1 :] - min_precision
    return float(np.mean(np.clip(prec, 0, None))) / (1.0 - min_precision)


def calc_tp(curve: MetricCurve, min_recall: float, metric: str) -> float:
    """Mean TP error over the recall points above ``min_recall`` up to the maximum recall;
    1 if the class never gets above ``min_recall``."""
    first, last = round(100 * min_recall) + 1, curve.max_recall_ind
    if last < first:
        return 1.0
    return float(np.mean(curve.errors[metric][first : last + 1]))


# ----------------------------------------------------------------------------- evaluation
def _check(boxes: Sequence[NuscBox], what: str, cfg: NuscEvalConfig) -> None:
    counts: dict[str, int] = defaultdict(int)
    for b in boxes:
        if b.detection_name not in DETECTION_NAMES:
            raise ValueError(
                f"{what} box in sample {b.sample_token!r}: unknown detection_name "
                f"{b.detection_name!r} (expected one of {DETECTION_NAMES})"
            )
        counts[b.sample_token] += 1
    over = [t for t, n in counts.items() if n > cfg.max_boxes_per_sample]
    if over:
        raise ValueError(
            f"{what}: sample {over[0]!r} has {counts[over[0]]} boxes, more than "
            f"max_boxes_per_sample={cfg.max_boxes_per_sample}"
        )


def _in_range(boxes: Sequence[NuscBox], cfg: NuscEvalConfig) -> list[NuscBox]:
    ranges = dict(cfg.class_range)
    out = []
    for b in boxes:
        if b.ego_translation is None:
            raise ValueError(
                f"apply_class_range needs ego_translation; box in sample {b.sample_token!r} "
                "has none"
            )
        if np.hypot(b.ego_translation[0], b.ego_translation[1]) < ranges[b.detection_name]:
            out.append(b)
    return out


def evaluate_nusc(
    gt: Sequence[NuscBox], preds: Sequence[NuscBox], cfg: NuscEvalConfig | None = None
) -> dict[str, float]:
    """nuScenes metrics of ``preds`` against ``gt`` (both global-frame boxes, any samples).

    Predictions for samples that have no GT entry are refused (the devkit requires the
    submission's samples to equal the evaluated split's). Returns ``nds``, ``mAP``, ``mATE``,
    ``mASE``, ``mAOE``, ``mAVE``, ``mAAE``, ``AP/<class>`` (mean over thresholds),
    ``AP/<class>@<d>m`` and ``<TP>/<class>`` (e.g. ``ATE/car``; NaN where undefined) for every
    class present in ``gt``."""
    cfg = cfg or NuscEvalConfig()
    _check(gt, "ground truth", cfg)
    _check(preds, "prediction", cfg)
    gt_samples = {b.sample_token for b in gt}
    stray = sorted({p.sample_token for p in preds} - gt_samples)
    if stray:
        raise ValueError(
            f"{len(stray)} predicted sample(s) have no ground truth sample, e.g. {stray[0]!r}"
        )
    if cfg.apply_class_range:
        gt, preds = _in_range(gt, cfg), _in_range(preds, cfg)
    classes = [c for c in DETECTION_NAMES if any(b.detection_name == c for b in gt)]
    if not classes:
        raise ValueError("ground truth has no boxes: nothing to evaluate")
    out: dict[str, float] = {}
    aps: list[float] = []
    tp_table: dict[str, list[float]] = {k: [] for k in TP_METRICS}
    for c in classes:
        class_aps = []
        for d in cfg.dist_ths:
            curve = accumulate(gt, preds, c, d)
            ap = calc_ap(curve, cfg.min_recall, cfg.min_precision)
            out[f"AP/{c}@{d:g}m"] = ap
            class_aps.append(ap)
            if d == cfg.dist_th_tp:
                tp_curve = curve
        if cfg.dist_th_tp not in cfg.dist_ths:
            tp_curve = accumulate(gt, preds, c, cfg.dist_th_tp)
        out[f"AP/{c}"] = float(np.mean(class_aps))
        aps.extend(class_aps)
        for k in TP_METRICS:
            undefined = k in UNDEFINED_TP.get(c, ())
            err = float("nan") if undefined else calc_tp(tp_curve, cfg.min_recall, k)
            tp_table[k].append(err)
            out[f"{TP_OUTPUT_NAMES[k][1:]}/{c}"] = err
    out["mAP"] = float(np.mean(aps))
    tp_score = 0.0
    for k in TP_METRICS:
        vals = np.asarray(tp_table[k])
        mean = float(np.mean(vals[~np.isnan(vals)])) if (~np.isnan(vals)).any() else float("nan")
        out[TP_OUTPUT_NAMES[k]] = mean
        tp_score += 0.0 if np.isnan(mean) else 1.0 - min(1.0, mean)
    out["nds"] = (cfg.mean_ap_weight * out["mAP"] + tp_score) / (
        cfg.mean_ap_weight + len(TP_METRICS)
    )
    return out
