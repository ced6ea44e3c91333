"""Load a config: schema defaults ← YAML (with ``_base_``) ← ``KEY=VALUE`` overrides.

The result is validated and frozen before any work starts (see :mod:`.validate`), and
"None means inherit" defaults are resolved once here, not scattered through the code.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch.multiprocessing
import yaml

from pointforge.config.schema import Config
from pointforge.config.validate import ConfigError, from_dict, to_dict

MAX_BASE_DEPTH = 16


def load_yaml(path: str | Path, _depth: int = 0) -> dict[str, Any]:
    """Read a YAML config, merging its ``_base_`` file(s) (paths relative to the file) first."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if _depth > MAX_BASE_DEPTH:
        raise ConfigError(f"_base_ chain deeper than {MAX_BASE_DEPTH} at {path} (a cycle?)")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse YAML config {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping, got {type(data).__name__}")
    bases = data.pop("_base_", [])
    if isinstance(bases, str):
        bases = [bases]
    merged: dict[str, Any] = {}
    for base in bases:
        merged = merge(merged, load_yaml(path.parent / base, _depth + 1))
    return merge(merged, data)


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``update`` wins. Mappings merge, everything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` strings; values are parsed as YAML (``lr=1e-4``, ``steps=[1,2]``).

    Unknown keys are caught later by the validator, which names the closest valid key.
    """
    out = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override '{item}' must look like KEY=VALUE (e.g. solver.lr=1e-4)")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"override '{item}': '{part}' is not a section")
            node = child
        node[parts[-1]] = value
    return out


def resolve(cfg: Config, config_path: str | Path | None = None) -> Config:
    """Fill "None means inherit" defaults, once, so the frozen config is explicit."""
    data = cfg.data
    if data.num_workers is None:
        data = dataclasses.replace(data, num_workers=os.cpu_count() or 1)
    ev = cfg.eval
    if ev.batch_size is None:
        ev = dataclasses.replace(ev, batch_size=data.batch_size)
    out_dir = cfg.output_dir
    if out_dir is None:
        stem = Path(config_path).stem if config_path else "default"
        out_dir = str(Path("runs") / stem)
    cfg = dataclasses.replace(cfg, data=data, eval=ev, output_dir=out_dir)
    check_values(cfg)
    return cfg


def check_values(cfg: Config) -> None:
    """Value checks the type system cannot express; each error names its key."""

    def need(cond: bool, key: str, msg: str) -> None:
        if not cond:
            raise ConfigError(f"config key '{key}' {msg}")

    need(len(cfg.data.image_size) == 2, "data.image_size", "must be [height, width]")
    need(
        all(s > 0 and s % 8 == 0 for s in cfg.data.image_size),
        "data.image_size",
        f"sides must be positive multiples of 8, got {list(cfg.data.image_size)}",
    )
    need(cfg.data.batch_size > 0, "data.batch_size", "must be > 0")
    need((cfg.data.num_workers or 0) >= 0, "data.num_workers", "must be >= 0")
    strategies = sorted(torch.multiprocessing.get_all_sharing_strategies())
    need(
        cfg.data.sharing_strategy in (None, *strategies),
        "data.sharing_strategy",
        f"must be null or one of {strategies} (this platform's sharing strategies), got "
        f"{cfg.data.sharing_strategy!r}",
    )
    need(cfg.solver.lr > 0, "solver.lr", "must be > 0")
    need(cfg.solver.max_iter > 0, "solver.max_iter", "must be > 0")
    need(
        not (cfg.train.ddp.backend == "nccl" and cfg.device == "cpu"),
        "train.ddp.backend",
        "is nccl, which needs CUDA, but device=cpu; use gloo or auto",
    )
    need(cfg.train.checkpoint_period > 0, "train.checkpoint_period", "must be > 0")
    need(cfg.train.keep_last >= 0, "train.keep_last", "must be >= 0")
    need(cfg.train.eval_period >= 0, "train.eval_period", "must be >= 0 (0 disables)")
    _check_solver_features(cfg, need)
    _check_classification(cfg, need)
    _check_homography_eval(cfg, need)
    _check_adaptation(cfg, need)
    _check_superpoint(cfg, need)
    need(
        cfg.device in ("auto", "cpu") or cfg.device.startswith("cuda"),
        "device",
        f"must be auto, cpu or cuda[:N], got {cfg.device!r}",
    )
    _check_regexes("model.load.reinit_mismatched", cfg.model.load.reinit_mismatched, need)


def _check_regexes(
    key: str, patterns: tuple[str, ...], need: Callable[[bool, str, str], None]
) -> None:
    """Every entry of a list-of-regexes key must compile; the error names ``key[i]``."""
    for i, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            need(False, f"{key}[{i}]", f"is not a valid regex ({pattern!r}: {exc})")


def _check_solver_features(cfg: Config, need: Callable[[bool, str, str], None]) -> None:
    """Checks of the optional training features (accumulation, clipping, EMA, PreciseBN...)."""
    s, t = cfg.solver, cfg.train
    need(s.accumulate_steps >= 1, "solver.accumulate_steps", "must be >= 1")
    for key, value in (
        ("solver.clip_grad_norm", s.clip_grad_norm),
        ("solver.clip_grad_value", s.clip_grad_value),
    ):
        need(value is None or value > 0, key, f"must be > 0 or null, got {value}")
    for key, value in (
        ("solver.weight_decay", s.weight_decay),
        ("solver.weight_decay_norm", s.weight_decay_norm),
        ("solver.weight_decay_bias", s.weight_decay_bias),
    ):
        need(value is None or value >= 0, key, f"must be >= 0, got {value}")
    need(0.0 < t.ema.decay < 1.0, "train.ema.decay", f"must be in (0, 1), got {t.ema.decay}")
    need(t.ema.tau > 0, "train.ema.tau", f"must be > 0, got {t.ema.tau}")
    need(t.precise_bn.num_iter > 0, "train.precise_bn.num_iter", "must be > 0")
    _check_regexes("model.freeze", cfg.model.freeze, need)


def _check_classification(cfg: Config, need: Callable[[bool, str, str], None]) -> None:
    """Checks of the classification keys (and the data keys it reads)."""
    c, d = cfg.classification, cfg.data
    need(
        0.0 < d.val_fraction < 1.0, "data.val_fraction", f"must be in (0, 1), got {d.val_fraction}"
    )
    need(d.root is None or d.root.strip() != "", "data.root", "must be a path or null, got ''")
    need(
        c.in_channels in (1, 3),
        "classification.in_channels",
        f"must be 1 or 3, got {c.in_channels}",
    )
    for key, values in (("classification.mean", c.mean), ("classification.std", c.std)):
        need(
            len(values) == c.in_channels,
            key,
            f"needs one value per input channel ({c.in_channels}), got {list(values)}",
        )
    need(all(v > 0 for v in c.std), "classification.std", f"must be > 0, got {list(c.std)}")
    need(
        0.0 <= c.label_smoothing < 1.0,
        "classification.label_smoothing",
        f"must be in [0, 1), got {c.label_smoothing}",
    )
    need(0.0 <= c.rotation <= 180.0, "classification.rotation", "must be in [0, 180] degrees")
    need(0.0 <= c.translate < 1.0, "classification.translate", "must be in [0, 1)")
    need(
        len(c.scale) == 2 and 0 < c.scale[0] <= c.scale[1],
        "classification.scale",
        f"must be [min, max] with 0 < min <= max, got {list(c.scale)}",
    )
    need(
        len(c.topk) > 0 and all(k >= 1 for k in c.topk) and len(set(c.topk)) == len(c.topk),
        "classification.topk",
        f"must be distinct integers >= 1, got {list(c.topk)}",
    )


def _check_homography_eval(cfg: Config, need: Callable[[bool, str, str], None]) -> None:
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


def _check_adaptation(cfg: Config, need: Callable[[bool, str, str], None]) -> None:
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


def _check_superpoint(cfg: Config, need: Callable[[bool, str, str], None]) -> None:
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
    if cfg.task != "superpoint":
        return
    # Existence is checked when the data is built (named errors from the photo folder and the
    # label store), so that `pointforge config` works before the data is prepared.
    for key, how in (("root", "pointforge data photos"), ("labels", "pointforge export-labels")):
        need(
            getattr(cfg.data, key) is not None,
            f"data.{key}",
            f"must be set for task superpoint (make it with `{how}`)",
        )


def check_registered_names(cfg: Config) -> None:
    """Fail at load time, not mid-build, on an unknown task, model or dataset name."""
    import pointforge.tasks  # noqa: F401  (lazy: registers everything; avoids an import cycle)
    from pointforge.registry import DATASETS, MODELS, TASKS, RegistryError

    for registry, key, name in (
        (TASKS, "task", cfg.task),
        (MODELS, "model.name", cfg.model.name),
        (DATASETS, "data.name", cfg.data.name),
    ):
        try:
            registry.get(name)
        except RegistryError as exc:
            raise ConfigError(f"config key '{key}': {exc}") from None


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """The one entry point: defaults ← YAML ← overrides → validated, resolved, frozen."""
    data = load_yaml(path) if path is not None else {}
    data = apply_overrides(data, overrides or [])
    cfg = resolve(from_dict(Config, data), path)
    check_registered_names(cfg)
    return cfg


def dump_config(cfg: Config) -> str:
    """YAML text of a resolved config (what gets written to ``output_dir/config.yaml``)."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
