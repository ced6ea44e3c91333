"""Typed configuration schema: every key a run accepts, with its type and default.

Why dataclasses: the schema *is* the documentation of the config, the validator reads the type
hints to reject typos and type mismatches before any work starts, and the resolved config is
frozen so nothing mutates it during a run.

Component sections that belong to one module (photometric and homographic augmentation) are
defined next to the code that uses them and imported here, so their defaults live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pointforge.data.transforms.photometric import PhotometricConfig
from pointforge.engine.launch import DDPConfig
from pointforge.evaluation.homography import HomographyEvalConfig
from pointforge.geometry.homography import HomographyConfig


@dataclass(frozen=True)
class LoadConfig:
    """How ``model.weights`` is fitted to the model (policy in ``pointforge.models.loading``)."""

    # Regexes (re.match, anchored at the key start, e.g. 'fc\.' in YAML) for state-dict keys that
    # may fail to load (shape mismatch, missing or unexpected) and then keep their fresh init,
    # e.g. a classifier head with another number of classes. Default: none, every key must fit.
    reinit_mismatched: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelConfig:
    """Which network to build (a name in the model registry) and how to initialise it."""

    name: str = "magicpoint"
    batchnorm: bool = False
    # Optional initial weights: one of our checkpoints, a plain/DDP state dict or MagicLeap v1.
    weights: str | None = None
    load: LoadConfig = field(default_factory=LoadConfig)
    # Regexes (re.search on parameter names, e.g. "^conv1a\\.") of parameters to freeze:
    # requires_grad=False, left out of the optimiser, and BatchNorms whose parameters are all
    # frozen stay in eval mode. Empty = train everything (the usual default, as in detectron2).
    freeze: tuple[str, ...] = ()
    # ResNet stem for small images (16-32 px): 3x3 stride-1 conv, no max-pool, instead of the
    # ImageNet 7x7 stride-2 conv + max-pool (the CIFAR ResNets of He et al. 2016, section 4.2).
    small_input: bool = False


@dataclass(frozen=True)
class DataConfig:
    """Training data. ``num_workers: null`` means one worker per CPU core."""

    name: str = "synthetic_shapes"
    image_size: tuple[int, ...] = (120, 160)
    batch_size: int = 64
    num_workers: int | None = None
    # Subset of Synthetic Shapes primitives; null = all nine (DESIGN.md §3).
    primitives: tuple[str, ...] | None = None
    photometric: PhotometricConfig = field(default_factory=PhotometricConfig)
    homographic: HomographyConfig = field(default_factory=HomographyConfig)
    # null = pin when training on CUDA.
    pin_memory: bool | None = None
    # How DataLoader workers share batch tensors (torch.multiprocessing.set_sharing_strategy).
    # null keeps torch's default (file_descriptor on Linux); file_system avoids "Too many open
    # files" / some /dev/shm shortages (see pointforge.data.errors.SHM_ADVICE).
    # Checked against the platform's strategies in loader.check_values.
    sharing_strategy: str | None = None
    # Class-per-subfolder image tree for data.name=image_folder (unused by other datasets).
    root: str | None = None
    # Homography benchmark source for task homography_eval: the HPatches folder
    # (data.name=hpatches, required) or any image folder (data.name=homography_pairs; null =
    # scikit-image's sample photos, shipped with its package, so no download is needed).
    path: str | None = None
    # Fraction of each class held out for evaluation when a dataset has no fixed split (digits,
    # an image folder without train/ and val/ subfolders); 0.2 = the common 80/20 hold-out.
    val_fraction: float = 0.2
    # Seed of that split, separate from ``seed`` so that runs with different training seeds are
    # scored on the same held-out images.
    split_seed: int = 0
    # What a photo folder (data.name=photo_folder, export-labels) does with a file OpenCV cannot
    # decode: error = stop and name it (default: never lose data silently); skip = log its name,
    # leave it out, and log how many were skipped.
    on_bad_image: str = field(default="error", metadata={"choices": ("error", "skip")})
    # Keypoint label directory of `pointforge export-labels` for data.root (data.name=
    # warped_pairs, SuperPoint training); it must have been made at data.image_size.
    labels: str | None = None


@dataclass(frozen=True)
class SolverConfig:
    """Optimiser and learning-rate schedule. Iteration based, like detectron2."""

    optimizer: str = field(default="adam", metadata={"choices": ("adam", "adamw", "sgd")})
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    betas: tuple[float, ...] = (0.9, 0.999)
    max_iter: int = 50_000
    lr_schedule: str = field(
        default="constant", metadata={"choices": ("constant", "multistep", "cosine")}
    )
    # Iterations at which multistep multiplies the LR by ``gamma``.
    steps: tuple[int, ...] = ()
    gamma: float = 0.1
    warmup_iters: int = 0
    warmup_factor: float = 0.001
    # Clip the global gradient norm to this value; null = no clipping.
    clip_grad_norm: float | None = None
    # Clamp every gradient element to [-v, v] (applied before the norm clip); null = off.
    clip_grad_value: float | None = None
    # Micro-batches of data.batch_size summed into one optimiser step (effective batch =
    # accumulate_steps x batch_size). 1 = no accumulation. One iteration = one optimiser step.
    accumulate_steps: int = 1
    # Weight decay of norm-layer (BatchNorm/GroupNorm/LayerNorm...) parameters and of the other
    # layers' biases; null = same as weight_decay. detectron2 and timm commonly use 0 for both.
    weight_decay_norm: float | None = None
    weight_decay_bias: float | None = None


@dataclass(frozen=True)
class EMAConfig:
    """Exponential moving average of the weights, used for evaluation (and saved with them).

    The effective decay ramps up as ``decay * (1 - exp(-updates / tau))`` (the YOLOv5/YOLOX
    ``ModelEMA`` warmup), so early, poor weights are forgotten quickly.
    """

    enabled: bool = False
    # YOLOX uses 0.9998 with tau 2000 for ~100k-iteration schedules.
    decay: float = 0.9998
    tau: float = 2000.0


@dataclass(frozen=True)
class PreciseBNConfig:
    """Recompute BatchNorm running statistics as true averages before each evaluation.

    Why: running stats are an EMA over weights that kept changing; averaging over ``num_iter``
    fresh training batches with the final weights gives the statistics the model really has
    (Wu & Johnson 2021, "Rethinking BatchNorm"; detectron2 uses 200 iterations).
    """

    enabled: bool = False
    num_iter: int = 200


@dataclass(frozen=True)
class TrainConfig:
    """Loop bookkeeping: how often to checkpoint, log and evaluate."""

    checkpoint_period: int = 1000
    # Periodic ``iter_*.pth`` files to keep (``last.pth`` and ``final.pth`` are always kept).
    keep_last: int = 3
    log_period: int = 20
    # 0 disables periodic evaluation; the final evaluation always runs.
    eval_period: int = 5000
    progress_bar: bool = True
    # Multi-process (torchrun) options; data.batch_size stays the global batch, split evenly
    # over the ranks (see pointforge.engine.launch.DDPConfig).
    ddp: DDPConfig = field(default_factory=DDPConfig)
    # Mixed precision for forward + loss: bf16 halves step time on CPUs with AVX512-BF16 and
    # on recent GPUs; fp16 (CUDA) uses a GradScaler. Losses are computed in float32.
    amp: str = field(default="off", metadata={"choices": ("off", "bf16", "fp16")})
    # Convert the model and inputs to channels_last (faster convolutions with oneDNN/cuDNN).
    channels_last: bool = True
    ema: EMAConfig = field(default_factory=EMAConfig)
    precise_bn: PreciseBNConfig = field(default_factory=PreciseBNConfig)


@dataclass(frozen=True)
class DetectionConfig:
    """Keypoint extraction defaults (MagicLeap demo: NMS 4, border 4, threshold 0.015)."""

    nms_radius: int = 4
    border: int = 4
    detection_threshold: float = 0.015
    max_keypoints: int | None = 1000


@dataclass(frozen=True)
class EvalConfig:
    """Detector evaluation on the Synthetic Shapes test split (DESIGN.md §4)."""

    num_images: int = 1000
    # null = data.batch_size.
    batch_size: int | None = None
    distance: float = 4.0
    # Low threshold so that the PR curve reaches high recall; AP ranks by score anyway.
    detection_threshold: float = 0.001
    nms_radius: int = 4
    border: int = 4
    max_keypoints: int | None = 300
    noisy: bool = True
    baselines: tuple[str, ...] = ("fast", "harris", "shi")
    # Number of example test images drawn into eval/detections.png.
    num_visualize: int = 8


@dataclass(frozen=True)
class ClassificationConfig:
    """Image classification (task ``classification``): input policy, loss, augmentation, metrics."""

    # Channels fed to the network: grey images are replicated to 3, colour ones turned to luma.
    # 3 keeps torchvision's ResNet unchanged, so ImageNet-layout checkpoints load as they are.
    in_channels: int = 3
    # Per-channel normalisation of [0, 1] inputs; default: the ImageNet statistics of
    # torchvision's reference recipe (length must equal in_channels).
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    # nn.CrossEntropyLoss label smoothing; 0.1 as in Szegedy et al. 2016 (Inception-v3) and
    # torchvision's current reference recipe.
    label_smoothing: float = 0.1
    # Training augmentation. crop_flip: RandomResizedCrop (area 8-100 %) + horizontal flip, the
    # torchvision ImageNet reference; affine: a small RandomAffine and no flip, for classes a
    # mirror image would change (digits, letters); none: resize only.
    augment: str = field(default="crop_flip", metadata={"choices": ("crop_flip", "affine", "none")})
    # augment=affine ranges: max rotation in degrees, max shift as a fraction of the side, zoom
    # range. Mild on purpose (10 degrees, 10 %, x0.9-1.1) so a digit stays what it is.
    rotation: float = 10.0
    translate: float = 0.1
    scale: tuple[float, ...] = (0.9, 1.1)
    # evaluate() reports top-k accuracy (key "top{k}") for each k; k >= num_classes gives 1.0.
    topk: tuple[int, ...] = (1, 5)


@dataclass(frozen=True)
class AdaptationConfig:
    """Homographic adaptation (``pointforge export-labels``, DESIGN.md §3; SuperPoint paper §5).

    Each image is warped by ``num_homographies`` homographies (the first is the identity), the
    detector heatmaps are warped back and averaged, weighted by the validity masks, then NMS and
    a threshold give the keypoint labels.
    """

    # N_h = 100 in the paper (the first is the identity).
    num_homographies: int = 100
    # mean: validity-weighted average of the un-warped heatmaps (paper, DESIGN.md §3);
    # max: per-pixel maximum (a variant of the public implementations).
    aggregation: str = field(default="mean", metadata={"choices": ("mean", "max")})
    # Label extraction: NMS radius 4 (DESIGN.md §3), threshold and border of the MagicLeap demo.
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
    # Homographies of the adaptation: the public export configs use the training amplitudes
    # (scaling/perspective 0.2, patch 0.85, artifacts allowed); the validity masks are eroded
    # by valid_border_margin (3 px) so zero padding does not leak into the average.
    homographic: HomographyConfig = field(default_factory=HomographyConfig)


@dataclass(frozen=True)
class DescriptorLossConfig:
    """Hinge-loss parameters; defaults = the SuperPoint paper (DESIGN.md §3)."""

    positive_margin: float = 1.0
    negative_margin: float = 0.2
    # Weight of positive pairs (paper: 250), balancing ~1 positive per Hc*Wc negatives.
    lambda_d: float = 250.0
    # A cell pair is positive when the warped cell centre is closer than this, px (paper: 8).
    threshold: float = 8.0
    # Lambda of the total loss det(A) + det(B) + weight * desc (paper: 1e-4 with this mean
    # over (Hc*Wc)^2 pairs per image; DESIGN.md section 3).
    weight: float = 1e-4
    # Images per chunk of the (B, N, N) pair computation (memory bound; see module docstring).
    chunk: int = 4


@dataclass(frozen=True)
class Config:
    """A whole run. ``output_dir: null`` means ``runs/<config file stem>``."""

    task: str = "magicpoint"
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"
    output_dir: str | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    classification: ClassificationConfig = field(default_factory=ClassificationConfig)
    # Homography benchmark (task homography_eval); defaults = DESIGN.md §4.
    homography_eval: HomographyEvalConfig = field(default_factory=HomographyEvalConfig)
    # Homographic adaptation for `pointforge export-labels`.
    adaptation: AdaptationConfig = field(default_factory=AdaptationConfig)
    # SuperPoint joint training (task superpoint): descriptor hinge loss and its weight.
    descriptor_loss: DescriptorLossConfig = field(default_factory=DescriptorLossConfig)
