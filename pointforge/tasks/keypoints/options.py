"""Config sections of the keypoint family (MagicPoint, SuperPoint, the homography benchmark).

These are the family's own keys: each keypoint task lists the sections it uses in its
``options`` dataclass, so a run's config holds only those (``docs/config.md``). Defaults cite
the SuperPoint paper (DeTone et al. 2018) and the MagicLeap demo; see ``docs/keypoints.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pointforge.config.schema import Config
from pointforge.config.validate import need
from pointforge.evaluation.homography import HomographyEvalConfig
from pointforge.geometry.homography import HomographyConfig
from pointforge.tasks.keypoints.postprocess import PRECISIONS, SCALES_RULE, scales_valid


@dataclass(frozen=True)
class DetectionConfig:
    """Keypoint extraction defaults (MagicLeap demo: NMS 4, border 4, threshold 0.015)."""

    nms_radius: int = 4
    border: int = 4
    detection_threshold: float = 0.015
    max_keypoints: int | None = 1000
    # Heatmap fused over these image scales (must include 1.0; docs/keypoints.md, "Multi-scale
    # detection"). [1.0] is the published single-scale detector.
    scales: tuple[float, ...] = (1.0,)
    # Keypoints moved off the pixel grid to a Gaussian fitted through each heatmap peak
    # (docs/keypoints.md, "Sub-pixel refinement"); false = the published integer keypoints.
    subpixel: bool = True
    # The network's arithmetic: fp32 or bf16 (about half the CPU time on AVX-512 BF16
    # processors; docs/keypoints.md, "Speed on CPU").
    precision: str = "fp32"

    def predictor_options(self) -> dict[str, object]:
        """These settings as ``KeypointPredictor`` keyword arguments (the names match), so the
        stored-config predictor and the benchmark's predictor cannot drift apart."""
        return {
            "max_keypoints": self.max_keypoints,
            "detection_threshold": self.detection_threshold,
            "nms_radius": self.nms_radius,
            "border": self.border,
            "scales": tuple(self.scales),
            "subpixel": self.subpixel,
            "precision": self.precision,
        }


@dataclass(frozen=True)
class EvalConfig:
    """Detector evaluation on the Synthetic Shapes test split (docs/evaluation.md)."""

    num_images: int = 1000
    # null = data.batch_size.
    batch_size: int | None = None
    distance: float = 4.0
    # Low threshold so that the PR curve reaches high recall; AP ranks by score anyway.
    detection_threshold: float = 0.001
    nms_radius: int = 4
    # No border removal here, unlike inference (4): the ground truth keeps corners up to the
    # image edge (3.5 % of the test points lie within 4 px of it), which a border would make
    # undetectable by construction, capping every method's recall at ~0.965. The public
    # re-implementation whose AP we compare against removes none on this benchmark either
    # (docs/evaluation.md).
    border: int = 0
    max_keypoints: int | None = 300
    noisy: bool = True
    baselines: tuple[str, ...] = ("fast", "harris", "shi")
    # Number of example test images drawn into eval/detections.png.
    num_visualize: int = 8
    # Other weights scored on the same test sets and drawn beside the model (e.g. the shipped
    # MagicPoint), so a short run is seen next to a trained one; reported under the file's
    # stem, like the baselines. null = none.
    reference_weights: str | None = None


@dataclass(frozen=True)
class AdaptationConfig:
    """Homographic adaptation (``pointforge export-labels``; SuperPoint paper §5,
    docs/keypoints.md).

    Each image is warped by ``num_homographies`` homographies (the first is the identity), the
    detector heatmaps are warped back and averaged, weighted by the validity masks, then NMS and
    a threshold give the keypoint labels.
    """

    # N_h = 100 in the paper (the first is the identity).
    num_homographies: int = 100
    # mean: validity-weighted average of the un-warped heatmaps (paper, docs/keypoints.md);
    # max: per-pixel maximum (a variant of the public implementations).
    aggregation: str = field(default="mean", metadata={"choices": ("mean", "max")})
    # Label extraction: NMS radius 4 (docs/keypoints.md), threshold and border of the MagicLeap
    # demo.
    detection_threshold: float = 0.015
    nms_radius: int = 4
    border: int = 4
    # null = keep every keypoint above the threshold (labels, not a demo's top-k).
    max_keypoints: int | None = None
    # Images adapted together; their num_homographies warps are flattened into one batch.
    images_per_batch: int = 2
    # Warped images per network forward (bounds memory: ~20 MB per 240x320 image on the first
    # conv); the flattened batch is cut into chunks of this size.
    forward_batch: int = 50
    # Images per on-disk label shard (one .npz each, written atomically).
    shard_size: int = 256
    # Network precision of the adapted forwards. bf16 autocast with channels-last memory runs
    # 3x faster than fp32 on a CPU with AVX512-BF16 (benchmarks/bench_adaptation.py); the
    # heatmaps are averaged in float32 either way. off = float32 (bit-stable labels).
    amp: str = field(default="off", metadata={"choices": ("off", "bf16")})
    # Homographies of the adaptation: the public export configs use the training amplitudes
    # (scaling/perspective 0.2, patch 0.85, artifacts allowed); the validity masks are eroded
    # by valid_border_margin (3 px) so zero padding does not leak into the average.
    homographic: HomographyConfig = field(default_factory=HomographyConfig)


@dataclass(frozen=True)
class DescriptorLossConfig:
    """Hinge-loss parameters; defaults = the SuperPoint paper (docs/keypoints.md)."""

    positive_margin: float = 1.0
    negative_margin: float = 0.2
    # Weight of positive pairs (paper: 250), balancing ~1 positive per Hc*Wc negatives.
    lambda_d: float = 250.0
    # A cell pair is positive when the warped cell centre is closer than this, px (paper: 8).
    threshold: float = 8.0
    # Lambda of the total loss det(A) + det(B) + weight * desc. Not the paper's 1e-4: with this
    # mean over (Hc*Wc)^2 pairs, 1e-4 gives the descriptor head gradients of ~1e-8 RMS, at or
    # below Adam's eps, so it barely trains (docs/keypoints.md, "Losses").
    weight: float = 1.0
    # Images per chunk of the (B, N, N) pair computation (memory bound; see module docstring).
    chunk: int = 4


@dataclass(frozen=True)
class MagicPointOptions:
    """Sections of task ``magicpoint``: extraction defaults, the Synthetic Shapes evaluation
    and homographic adaptation (``pointforge export-labels`` with a MagicPoint)."""

    detection: DetectionConfig = field(default_factory=DetectionConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    adaptation: AdaptationConfig = field(default_factory=AdaptationConfig)


@dataclass(frozen=True)
class SuperPointOptions:
    """Sections of task ``superpoint``: extraction defaults, the hinge loss, the homography
    benchmark of its periodic evaluation and adaptation (a second round of labels)."""

    detection: DetectionConfig = field(default_factory=DetectionConfig)
    descriptor_loss: DescriptorLossConfig = field(default_factory=DescriptorLossConfig)
    homography_eval: HomographyEvalConfig = field(default_factory=HomographyEvalConfig)
    adaptation: AdaptationConfig = field(default_factory=AdaptationConfig)


@dataclass(frozen=True)
class DistillConfig:
    """Teacher → student distillation (task ``superpoint_distill``; docs/keypoints.md,
    "SuperPoint-Lite"). The student learns the teacher's outputs on the training pairs: the
    65-way cell distribution (KL divergence) and the descriptors (1 − cosine), per valid cell."""

    # Weights of the teacher (a SuperPoint with a descriptor head); null = the shipped one.
    teacher: str | None = None
    detector_weight: float = 1.0
    descriptor_weight: float = 1.0
    # Weight of the paper's label losses (detector CE on the labels + descriptor hinge) added
    # to the distillation terms; 0 = pure distillation (labels are still read, unused).
    label_weight: float = 0.0


@dataclass(frozen=True)
class DistillOptions(SuperPointOptions):
    """Sections of task ``superpoint_distill``: those of ``superpoint`` plus ``distill``."""

    distill: DistillConfig = field(default_factory=DistillConfig)


@dataclass(frozen=True)
class HomographyEvalOptions:
    """Sections of task ``homography_eval`` (evaluation only)."""

    detection: DetectionConfig = field(default_factory=DetectionConfig)
    homography_eval: HomographyEvalConfig = field(default_factory=HomographyEvalConfig)


def check_image_size(cfg: Config) -> None:
    """SuperPoint's rule: the network downsamples by 8, so training/eval sides are multiples
    of 8 (the predictor pads arbitrary images itself)."""
    size = cfg.data.image_size
    need(len(size) == 2, "data.image_size", "must be [height, width]")
    need(
        all(s > 0 and s % 8 == 0 for s in size),
        "data.image_size",
        f"sides must be positive multiples of 8, got {list(size)}",
    )


def check_detection(cfg: Config) -> None:
    d = cfg.detection
    need(scales_valid(d.scales), "detection.scales", f"{SCALES_RULE}, got {list(d.scales)}")
    need(
        d.precision in PRECISIONS,
        "detection.precision",
        f"must be one of {list(PRECISIONS)}, got {d.precision!r}",
    )
    need(d.nms_radius >= 0, "detection.nms_radius", "must be >= 0")
    need(d.border >= 0, "detection.border", "must be >= 0")
    need(
        d.max_keypoints is None or d.max_keypoints >= 1,
        "detection.max_keypoints",
        "must be >= 1 or null",
    )


def check_homography_eval(cfg: Config) -> None:
    """Task homography_eval: known methods, positive counts and radii, HPatches needs a path."""
    h, allowed = cfg.homography_eval, ("pointforge", "sift", "orb", "gftt_sift")
    bad = [m for m in h.methods if m not in allowed]
    need(not bad, "homography_eval.methods", f"has unknown {bad}; valid: {list(allowed)}")
    need(
        len(h.methods) > 0 and len(set(h.methods)) == len(h.methods),
        "homography_eval.methods",
        f"must be a non-empty list without repeats, got {list(h.methods)}",
    )
    for key in ("pairs_per_image", "rep_keypoints", "match_keypoints"):
        need(getattr(h, key) > 0, f"homography_eval.{key}", "must be > 0")
    for key in ("distance", "ransac_threshold"):
        need(getattr(h, key) > 0, f"homography_eval.{key}", "must be > 0 (pixels)")
    need(
        len(h.thresholds) > 0 and all(t > 0 for t in h.thresholds),
        "homography_eval.thresholds",
        f"must be a non-empty list of positive pixel errors, got {list(h.thresholds)}",
    )
    need(h.num_visualize >= 0, "homography_eval.num_visualize", "must be >= 0")
    need(
        cfg.task != "homography_eval" or cfg.data.name != "hpatches" or cfg.data.path is not None,
        "data.path",
        "must name the HPatches folder (hpatches-sequences-release) when data.name=hpatches",
    )


def check_adaptation(cfg: Config) -> None:
    """Homographic adaptation (export-labels): positive counts and sizes, sane threshold."""
    a = cfg.adaptation
    for key in ("num_homographies", "images_per_batch", "forward_batch", "shard_size"):
        need(getattr(a, key) >= 1, f"adaptation.{key}", f"must be >= 1, got {getattr(a, key)}")
    need(a.nms_radius >= 0, "adaptation.nms_radius", "must be >= 0")
    need(a.border >= 0, "adaptation.border", "must be >= 0")
    need(
        0.0 <= a.detection_threshold < 1.0,
        "adaptation.detection_threshold",
        f"must be in [0, 1), got {a.detection_threshold}",
    )
    need(
        a.max_keypoints is None or a.max_keypoints >= 1,
        "adaptation.max_keypoints",
        "must be >= 1 or null",
    )
    need(
        a.homographic.valid_border_margin >= 0,
        "adaptation.homographic.valid_border_margin",
        "must be >= 0",
    )


def check_descriptor_loss(cfg: Config) -> None:
    """SuperPoint training (task superpoint): its inputs exist, hinge-loss values are sane."""
    dl = cfg.descriptor_loss
    need(dl.weight >= 0, "descriptor_loss.weight", f"must be >= 0, got {dl.weight}")
    need(dl.lambda_d > 0, "descriptor_loss.lambda_d", f"must be > 0, got {dl.lambda_d}")
    need(dl.threshold > 0, "descriptor_loss.threshold", f"must be > 0 px, got {dl.threshold}")
    need(dl.chunk >= 1, "descriptor_loss.chunk", f"must be >= 1, got {dl.chunk}")
    need(
        dl.negative_margin < dl.positive_margin,
        "descriptor_loss.negative_margin",
        f"must be below positive_margin ({dl.negative_margin} vs {dl.positive_margin})",
    )
    # Existence is checked when the data is built (named errors from the photo folder and the
    # label store), so that `pointforge config` works before the data is prepared.
    for key, how in (("root", "pointforge data photos"), ("labels", "pointforge export-labels")):
        need(
            getattr(cfg.data, key) is not None,
            f"data.{key}",
            f"must be set for task superpoint (make it with `{how}`)",
        )


def check_distill(cfg: Config) -> None:
    """Distillation weights are non-negative and at least one term is on."""
    d = cfg.distill
    for key in ("detector_weight", "descriptor_weight", "label_weight"):
        value = getattr(d, key)
        need(value >= 0, f"distill.{key}", f"must be >= 0, got {value}")
    need(
        d.detector_weight + d.descriptor_weight + d.label_weight > 0,
        "distill.detector_weight",
        "all three distill weights are 0: nothing to train",
    )
