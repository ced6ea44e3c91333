"""Typed configuration schema of the engine: the keys every run has, with types and defaults.

Why dataclasses: the schema *is* the documentation of the config, the validator reads the type
hints to reject typos and type mismatches before any work starts, and the resolved config is
frozen so nothing mutates it during a run.

Only engine keys live here. A task adds its own top-level sections (its ``options``), a
dataset its keys under ``data.`` and a model its keys under ``model.``; the config class of a
run is composed from the three at load time (:mod:`pointforge.config.compose`, ``docs/config.md``).
Those composed attributes are reached as ``cfg.<section>`` / ``cfg.data.<key>``; the
``__getattr__`` below only turns a missing one into an error that says which component owns
which keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pointforge.engine.launch import DDPConfig


class _Composed:
    """Mixin of the core sections: attributes that a composed subclass adds are typed ``Any``
    for the type checker; a missing one raises an ``AttributeError`` naming what exists."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        owned = ", ".join(f for f in getattr(self, "__dataclass_fields__", {}))
        raise AttributeError(
            f"config section {type(self).__name__} has no key '{name}' (it has: {owned}); "
            "task options, dataset and model keys exist only when the run's task, data.name "
            "or model.name declares them"
        )


@dataclass(frozen=True)
class LoadConfig:
    """How ``model.weights`` is fitted to the model (policy in ``pointforge.models.loading``)."""

    # Regexes (re.match, anchored at the key start, e.g. 'fc\.' in YAML) for state-dict keys that
    # may fail to load (shape mismatch, missing or unexpected) and then keep their fresh init,
    # e.g. a classifier head with another number of classes. Default: none, every key must fit.
    reinit_mismatched: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelConfig(_Composed):
    """Which network to build (a name in the model registry) and how to initialise it.

    ``name: null`` means the task's default model. The model's own keys (e.g. ``batchnorm``)
    are declared with its registration.
    """

    # A registered model; null = the task's default model.
    name: str | None = None
    # Optional initial weights: one of our checkpoints, a plain/DDP state dict or MagicLeap v1.
    weights: str | None = None
    load: LoadConfig = field(default_factory=LoadConfig)
    # Regexes (re.search on parameter names, e.g. "^conv1a\\.") of parameters to freeze:
    # requires_grad=False, left out of the optimiser, and BatchNorms whose parameters are all
    # frozen stay in eval mode. Empty = train everything (the usual default, as in detectron2).
    freeze: tuple[str, ...] = ()


@dataclass(frozen=True)
class DataConfig(_Composed):
    """Training data: which dataset and how it is batched. ``num_workers: null`` means one
    worker per CPU core; ``name: null`` means the task's default dataset. The dataset's own
    keys (``image_size``, ``root``, ...) are declared with its registration."""

    # A registered dataset; null = the task's default dataset.
    name: str | None = None
    # The global batch: split evenly over DDP ranks.
    batch_size: int = 64
    # DataLoader worker processes; null = one per CPU core.
    num_workers: int | None = None
    # null = pin when training on CUDA.
    pin_memory: bool | None = None
    # How DataLoader workers share batch tensors (torch.multiprocessing.set_sharing_strategy).
    # null keeps torch's default (file_descriptor on Linux); file_system avoids "Too many open
    # files" / some /dev/shm shortages (see pointforge.data.errors.SHM_ADVICE).
    # Checked against the platform's strategies in loader.check_values.
    sharing_strategy: str | None = None


@dataclass(frozen=True)
class SolverConfig:
    """Optimiser and learning-rate schedule. Iteration based, like detectron2."""

    optimizer: str = field(default="adam", metadata={"choices": ("adam", "adamw", "sgd")})
    # Base learning rate (per optimiser step; the batch is data.batch_size x accumulate_steps).
    lr: float = 1e-3
    # The effective batch (data.batch_size x accumulate_steps) ``lr`` was tuned for; with
    # another batch the LR is scaled (linearly for SGD, by the square root for Adam/AdamW,
    # docs/config.md "Budget and batch"); null = use lr as given.
    reference_batch_size: int | None = None
    # false: keep lr as given even when reference_batch_size differs from the batch.
    scale_lr: bool = True
    # L2 penalty (decoupled for adamw).
    weight_decay: float = 0.0
    # SGD momentum.
    momentum: float = 0.9
    # Adam/AdamW betas.
    betas: tuple[float, ...] = (0.9, 0.999)
    # Length of the run in optimiser steps (iterations).
    max_iter: int = 50_000
    lr_schedule: str = field(
        default="constant", metadata={"choices": ("constant", "multistep", "cosine")}
    )
    # Where multistep multiplies the LR by ``gamma``: integers are iterations, numbers with a
    # decimal point in (0, 1) are fractions of max_iter ([0.64, 0.86] follows the budget).
    steps: tuple[int | float, ...] = ()
    # Multistep LR factor.
    gamma: float = 0.1
    # Linear warmup from warmup_factor x lr to lr over this many iterations (0 = none); a
    # number with a decimal point in (0, 1) is a fraction of max_iter (0.08 of 600 = 48).
    warmup_iters: int | float = 0
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
    # (see weight_decay_norm)
    weight_decay_bias: float | None = None


@dataclass(frozen=True)
class EMAConfig:
    """Exponential moving average of the weights, used for evaluation (and saved with them).

    The effective decay ramps up as ``decay * (1 - exp(-updates / tau))`` (the YOLOv5/YOLOX
    ``ModelEMA`` warmup), so early, poor weights are forgotten quickly.
    """

    # Keep an EMA of the weights and evaluate/deploy it.
    enabled: bool = False
    # YOLOX uses 0.9998 with tau 2000 for ~100k-iteration schedules.
    decay: float = 0.9998
    # Warmup time constant (updates) of the effective decay.
    tau: float = 2000.0


@dataclass(frozen=True)
class PreciseBNConfig:
    """Recompute BatchNorm running statistics as true averages before each evaluation.

    Why: running stats are an EMA over weights that kept changing; averaging over ``num_iter``
    fresh training batches with the final weights gives the statistics the model really has
    (Wu & Johnson 2021, "Rethinking BatchNorm"; detectron2 uses 200 iterations).
    """

    # Recompute BatchNorm statistics before each evaluation.
    enabled: bool = False
    # Training batches averaged (detectron2: 200).
    num_iter: int = 200


@dataclass(frozen=True)
class TrainConfig:
    """Loop bookkeeping: how often to checkpoint, log and evaluate."""

    # Iterations between checkpoints (last.pth and iter_NNNNNNN.pth).
    checkpoint_period: int = 1000
    # Periodic ``iter_*.pth`` files to keep (``last.pth`` and ``final.pth`` are always kept).
    keep_last: int = 3
    # Iterations between metrics.jsonl / TensorBoard records.
    log_period: int = 20
    # 0 disables periodic evaluation; the final evaluation always runs.
    eval_period: int = 5000
    # A metric the task's evaluation returns (e.g. bbox/AP, reid/mAP, loss): after each
    # evaluation that improves it, checkpoints/best.pth is written (atomically) with the metric
    # and its iteration, and eval/metrics.json says which iteration was best. null = off.
    best_metric: str | None = None
    # Whether a larger (max) or smaller (min) best_metric is better.
    best_mode: str = field(default="max", metadata={"choices": ("max", "min")})
    # Stop after this many evaluations in a row without improvement of best_metric; the run
    # ends like a finished one (final checkpoint and evaluation; --resume is a no-op).
    # 0 = never stop early. Needs best_metric and eval_period > 0.
    patience: int = 0
    # A tqdm bar with the smoothed loss (rank 0 only).
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
    # Extra hooks by name from pointforge.registry.HOOKS (e.g. registered by a plugin); each
    # entry is called with the Trainer and returns a hook, run after the task's own hooks.
    hooks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config(_Composed):
    """A whole run. ``output_dir: null`` means ``runs/<config file stem>``.

    ``imports`` lists modules or ``.py`` files that register tasks, datasets, models or hooks
    (user plugins, loaded before anything else is read; see ``docs/plugins.md``).
    """

    # The registered task to run (required): it decides the other sections the config has.
    task: str | None = None
    # Modules or .py files to import first (user plugins that register components).
    imports: tuple[str, ...] = ()
    # Seeds weights, data order and augmentation; a run is a pure function of it (and config).
    seed: int = 0
    # torch.use_deterministic_algorithms: bitwise-repeatable on the GPU, at some speed cost.
    deterministic: bool = False
    # auto = CUDA when present, else CPU; or cpu, cuda, cuda:N.
    device: str = "auto"
    # Run directory; null = runs/<config file stem>.
    output_dir: str | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
