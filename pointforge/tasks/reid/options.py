"""Config sections of the re-ID family: the ``reid:`` section (``docs/reid.md``).

Defaults are FastReID's "bag of tricks" baseline (BoT, Luo et al. 2019) unless a comment says
otherwise: P = 16 identities × K = 4 images, triplet margin 0.3, label smoothing 0.1, both
losses weighted 1, cosine distance on the BNNeck feature, 256×128 input.

The input size is ``data.image_size`` ``[H, W]``, as in every other family; the former
``reid.input.height`` / ``reid.input.width`` are still read, with a deprecation warning
(:func:`resolve_reid`, ``docs/config.md`` "Renamed keys"), also from the configs stored in
older checkpoints.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from pointforge.config.compose import replace_section
from pointforge.config.renamed import renamed
from pointforge.config.schema import Config
from pointforge.config.validate import need
from pointforge.tasks.reid.data.transforms import ReIDTransformParams
from pointforge.tasks.reid.evaluator import ReIDEvalOptions
from pointforge.tasks.reid.losses import LABEL_SMOOTHING, TRIPLET_MARGIN

_BOT = ReIDTransformParams()  # the transform's BoT defaults
DEFAULT_IMAGE_SIZE = (_BOT.height, _BOT.width)  # BoT 256×128 (Luo et al. 2019, §3)


@dataclass(frozen=True)
class ReIDInputConfig:
    """``reid.input``: the train augmentation (pointforge/tasks/reid/data/transforms.py)."""

    # Deprecated (read with a warning): the input size is data.image_size [H, W]; null = not
    # given. docs/config.md, "Renamed keys".
    height: int | None = None
    # Deprecated: see height.
    width: int | None = None
    # Zero padding before the random crop back to the input size (BoT: 10 px).
    padding: int = _BOT.padding
    # Horizontal flip probability (BoT: 0.5).
    flip_prob: float = _BOT.flip_prob
    # Random erasing probability (Zhong et al. 2020; BoT §3.3: 0.5).
    erasing_prob: float = _BOT.erasing_prob
    # Erased area fraction [s_l, s_h] (Zhong et al. 2020: 0.02-0.4).
    erasing_scale: tuple[float, float] = _BOT.erasing_scale
    # Erased aspect ratio [r_1, 1/r_1] (Zhong et al. 2020: 0.3-3.33).
    erasing_ratio: tuple[float, float] = _BOT.erasing_ratio
    # Colour jitter strength (brightness/contrast/saturation; hue = strength / 4); 0 = off.
    color_jitter: float = _BOT.color_jitter


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
    # Augmentation (pointforge/tasks/reid/data/transforms.py); the size is data.image_size.
    input: ReIDInputConfig = field(default_factory=ReIDInputConfig)
    # Query→gallery metric, k-reciprocal re-ranking (Zhong et al. 2017: k1 20, k2 6, λ 0.3)
    # and the query chunk that bounds evaluation memory.
    eval: ReIDEvalOptions = field(default_factory=ReIDEvalOptions)
    # Images per forward in evaluation; null = data.batch_size.
    eval_batch_size: int | None = None


@dataclass(frozen=True)
class ReIDOptions:
    """Sections of task ``reid``."""

    reid: ReIDConfig = field(default_factory=ReIDConfig)


def resolve_reid(cfg: Config) -> Config:
    """``data.image_size`` filled once (BoT 256×128 when not given), from the deprecated
    ``reid.input.height`` / ``width`` when those are given (warning; an error when they
    disagree with ``data.image_size``); the resolved config holds only the new key."""
    if "image_size" not in {f.name for f in dataclasses.fields(cfg.data)}:
        return cfg  # not a re-ID dataset: check_reid / the task name the problem
    given = cfg.data.image_size
    size = tuple(given) if given is not None else None
    old_h, old_w = cfg.reid.input.height, cfg.reid.input.width
    old = None
    if old_h is not None or old_w is not None:
        fallback = size or DEFAULT_IMAGE_SIZE
        old = (
            old_h if old_h is not None else fallback[0],
            old_w if old_w is not None else fallback[1],
        )
    size = renamed("reid.input.height/width", old, "data.image_size", size) or DEFAULT_IMAGE_SIZE
    reid = replace_section(
        cfg.reid, input=dataclasses.replace(cfg.reid.input, height=None, width=None)
    )
    data = replace_section(cfg.data, image_size=tuple(int(v) for v in size))
    return replace_section(cfg, data=data, reid=reid)


def transform_params(cfg: Config) -> ReIDTransformParams:
    """The transform's parameters: ``reid.input`` at the resolved ``data.image_size``."""
    t = cfg.reid.input
    keys = {f.name: getattr(t, f.name) for f in dataclasses.fields(t)}
    h, w = getattr(cfg.data, "image_size", None) or DEFAULT_IMAGE_SIZE
    return ReIDTransformParams(**{**keys, "height": int(h), "width": int(w)})


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
    size = getattr(cfg.data, "image_size", None)
    need(
        size is not None and len(size) == 2 and min(size) >= 16,
        "data.image_size",
        f"must be [H, W] with both sides >= 16 (the re-ID input), got {size}",
    )
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
