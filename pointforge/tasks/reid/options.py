"""Config sections of the re-ID family: the ``reid:`` section (``docs/reid.md``).

Defaults are FastReID's "bag of tricks" baseline (BoT, Luo et al. 2019) unless a comment says
otherwise: P = 16 identities × K = 4 images, triplet margin 0.3, label smoothing 0.1, both
losses weighted 1, cosine distance on the BNNeck feature, 256×128 input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pointforge.config.schema import Config
from pointforge.config.validate import need
from pointforge.tasks.reid.data.transforms import ReIDTransformParams
from pointforge.tasks.reid.evaluator import ReIDEvalOptions
from pointforge.tasks.reid.losses import LABEL_SMOOTHING, TRIPLET_MARGIN


@dataclass(frozen=True)
class ReIDConfig:
    """Re-identification (task ``reid``): P×K batches, BoT losses, input pipeline, evaluation."""

    # Identities per global batch (split over DDP ranks, so it must divide by their number)
    # and images per identity: BoT / FastReID 16 × 4. data.batch_size must equal p * k.
    p: int = 16
    k: int = 4
    # Batch-hard triplet on the pre-BNNeck feature (Hermans et al. 2017): margin 0.3 (BoT
    # §4.1); soft_margin uses log(1 + exp(d_ap - d_an)) instead (Hermans et al. §3.1).
    triplet_margin: float = TRIPLET_MARGIN
    soft_margin: bool = False
    # Identity cross-entropy on the post-BNNeck logits, label smoothing 0.1 (BoT §3.4).
    label_smoothing: float = LABEL_SMOOTHING
    # Loss weights: BoT sums both with weight 1 (its eq. 4 without the center loss).
    ce_weight: float = 1.0
    triplet_weight: float = 1.0
    # Augmentation and input size (pointforge/tasks/reid/data/transforms.py; BoT 256×128).
    input: ReIDTransformParams = field(default_factory=ReIDTransformParams)
    # Query→gallery metric, k-reciprocal re-ranking (Zhong et al. 2017: k1 20, k2 6, λ 0.3)
    # and the query chunk that bounds evaluation memory.
    eval: ReIDEvalOptions = field(default_factory=ReIDEvalOptions)
    # Images per forward in evaluation; null = data.batch_size.
    eval_batch_size: int | None = None


@dataclass(frozen=True)
class ReIDOptions:
    """Sections of task ``reid``."""

    reid: ReIDConfig = field(default_factory=ReIDConfig)


def check_reid(cfg: Config) -> None:
    """Value checks of the ``reid`` keys and the data keys they constrain."""
    r = cfg.reid
    need(r.p >= 2, "reid.p", f"must be >= 2 (the triplet loss needs negatives), got {r.p}")
    need(r.k >= 2, "reid.k", f"must be >= 2 (the triplet loss needs positives), got {r.k}")
    need(
        cfg.data.batch_size == r.p * r.k,
        "data.batch_size",
        f"must equal reid.p * reid.k = {r.p} * {r.k} = {r.p * r.k} (P identities × K "
        f"images per global batch), got {cfg.data.batch_size}",
    )
    need(r.triplet_margin >= 0, "reid.triplet_margin", f"must be >= 0, got {r.triplet_margin}")
    need(
        0.0 <= r.label_smoothing < 1.0,
        "reid.label_smoothing",
        f"must be in [0, 1), got {r.label_smoothing}",
    )
    need(r.ce_weight >= 0, "reid.ce_weight", f"must be >= 0, got {r.ce_weight}")
    need(r.triplet_weight >= 0, "reid.triplet_weight", f"must be >= 0, got {r.triplet_weight}")
    need(
        r.ce_weight + r.triplet_weight > 0,
        "reid.ce_weight",
        "and reid.triplet_weight are both 0: nothing to train",
    )
    t = r.input
    need(t.height >= 16 and t.width >= 16, "reid.input.height", "and width must be >= 16")
    need(t.padding >= 0, "reid.input.padding", f"must be >= 0, got {t.padding}")
    for key, prob in (("flip_prob", t.flip_prob), ("erasing_prob", t.erasing_prob)):
        need(0.0 <= prob <= 1.0, f"reid.input.{key}", f"must be in [0, 1], got {prob}")
    for key, pair in (("erasing_scale", t.erasing_scale), ("erasing_ratio", t.erasing_ratio)):
        need(
            len(pair) == 2 and 0 < pair[0] <= pair[1],
            f"reid.input.{key}",
            f"must be [min, max] with 0 < min <= max, got {list(pair)}",
        )
    need(t.color_jitter >= 0, "reid.input.color_jitter", f"must be >= 0, got {t.color_jitter}")
    e = r.eval
    need(e.rerank_k1 >= 1, "reid.eval.rerank_k1", f"must be >= 1, got {e.rerank_k1}")
    need(e.rerank_k2 >= 1, "reid.eval.rerank_k2", f"must be >= 1, got {e.rerank_k2}")
    need(
        0.0 <= e.rerank_lambda <= 1.0,
        "reid.eval.rerank_lambda",
        f"must be in [0, 1], got {e.rerank_lambda}",
    )
    need(e.chunk_size >= 1, "reid.eval.chunk_size", f"must be >= 1, got {e.chunk_size}")
    need(
        r.eval_batch_size is None or r.eval_batch_size >= 1,
        "reid.eval_batch_size",
        f"must be >= 1 or null, got {r.eval_batch_size}",
    )
    if hasattr(cfg.data, "root"):  # the file-based datasets (not synthetic_reid)
        root = cfg.data.root
        need(
            root is not None and root.strip() != "",
            "data.root",
            f"must be the {cfg.data.name} dataset folder (nothing is downloaded), got {root!r}",
        )
