"""Weight-loading policy: read a checkpoint, fit it to a model, report once, fail loudly.

Why not ``load_state_dict(strict=False)``: it silently leaves layers at their random init, and
``strict=True`` refuses the legitimate case of fine-tuning with a new head (a classifier with a
different number of classes). The policy here is explicit instead:

* every key is classified as loaded, missing (in the model, not the file), unexpected (in the
  file, not the model) or shape-mismatched;
* a key that does not load (missing, unexpected or shape-mismatched) and matches one of the
  ``reinit`` regex patterns (``re.match``, anchored at the start of the key, e.g. ``fc\\.``)
  keeps the model's fresh initialisation (an unexpected one is dropped); keys that fit are
  always loaded, so the same pattern is harmless when the head happens to fit;
* keys matching an ``allow_unexpected`` pattern may be present in the file and are ignored (a
  detector-only model reading full SuperPoint weights ignores the descriptor head);
* anything else that does not load is an error naming the keys and the file.

One summary table goes to the ``pointforge`` logger instead of a wall of warnings.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger("pointforge")

# How many key names a report line shows before summarising the rest as "(+N more)".
MAX_KEYS_SHOWN = 8


class WeightsError(ValueError):
    """Weights that cannot be read, or that do not fit the model under the loading policy."""


_REFUSED_GLOBAL = re.compile(r"(?:unsupported GLOBAL|Unsupported global: GLOBAL) ([\w.]+)")


def torch_load_problem(exc: BaseException) -> str:
    """What a ``torch.load(..., weights_only=True)`` failure means, in a few words.

    The safe unpickler refuses any class or function a pickle names (``os.system`` in a hostile
    file, a custom class in a careless one); torch words that as a long advice to retry with
    ``weights_only=False``, which is exactly what must not be done with an untrusted file. So
    name the refused object and say why, and keep "corrupt or truncated" for the rest.
    """
    found = _REFUSED_GLOBAL.search(str(exc))
    if found:
        return (
            f"it holds objects that are not tensors ({found.group(1)}), refused for safety: "
            "pointforge loads only tensors and plain containers (torch.load weights_only=True), "
            "so a pickle cannot run code here; if you trust the file, re-save its state dict"
        )
    # torch's own text runs over many lines of advice; its first line says what failed.
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    if first.startswith("Weights only load failed"):
        detail = str(exc).split("WeightsUnpickler error:")[-1].strip().splitlines()
        first = detail[0].strip() if detail else first
    return f"corrupt, truncated or not a torch file ({type(exc).__name__}: {first})"


def read_state_dict(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """Tensors by name from a pointforge checkpoint (key ``model``, or ``ema`` when the run kept
    an EMA of its weights), a plain or DDP state dict, or a training script's checkpoint that
    nests it under ``state_dict``.

    Loads with ``weights_only=True`` (no arbitrary code from a pickle) and strips a leading
    ``module.`` that ``DistributedDataParallel`` adds. Errors name the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise WeightsError(f"cannot load weights {path}: {torch_load_problem(exc)}") from None
    state = obj.get("model", obj.get("state_dict", obj)) if isinstance(obj, dict) else None
    if isinstance(obj, dict) and isinstance(obj.get("ema"), dict):
        # A run with train.ema.enabled evaluated its EMA weights; deploy and fine-tune those.
        state = obj["ema"].get("model")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"weights file {path} holds no state dict (expected tensors by name)")
    return {k.removeprefix("module."): v for k, v in state.items()}


@dataclass
class LoadReport:
    """What happened to every key; ``mismatched`` maps key → (file shape, model shape)."""

    source: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)
    # Keys (of any category above except ``loaded``) that a reinit pattern kept at fresh init.
    reinitialized: list[str] = field(default_factory=list)
    # Unexpected keys ignored because an ``allow_unexpected`` pattern covers them.
    ignored: list[str] = field(default_factory=list)

    def table(self) -> str:
        """A compact multi-line summary: one row per category with a count and key names."""
        mism = [f"{k} {list(a)}->{list(b)}" for k, (a, b) in self.mismatched.items()]
        rows = [
            ("loaded", self.loaded, False),
            ("missing", self.missing, True),
            ("unexpected", self.unexpected, True),
            ("shape-mismatched", mism, True),
            ("kept fresh init", self.reinitialized, True),
            ("ignored", self.ignored, True),
        ]
        lines = [f"weights {self.source}:"]
        for label, keys, show in rows:
            lines.append(f"  {label:<17}{len(keys):>6}  {_short(keys) if show else ''}".rstrip())
        return "\n".join(lines)


def _short(keys: Sequence[str]) -> str:
    shown = ", ".join(keys[:MAX_KEYS_SHOWN])
    more = len(keys) - MAX_KEYS_SHOWN
    return shown + (f", ... (+{more} more)" if more > 0 else "")


def _compile(patterns: Sequence[str], what: str) -> list[re.Pattern[str]]:
    out = []
    for p in patterns:
        try:
            out.append(re.compile(p))
        except re.error as exc:
            raise WeightsError(f"{what}: invalid regex {p!r}: {exc}") from None
    return out


def fit_state_dict(
    model: nn.Module,
    state: dict[str, torch.Tensor],
    source: str = "<state dict>",
    reinit: Sequence[str] = (),
    allow_unexpected: Sequence[str] = (),
    hint: str | None = None,
) -> LoadReport:
    """Copy ``state`` into ``model`` under the policy in the module docstring.

    ``model`` is changed only when the whole policy check passes, so a failed load never leaves
    a half-loaded model behind. Returns the :class:`LoadReport` (also logged as one table).
    ``hint`` replaces the error's advice (by default: how ``model.load.reinit_mismatched`` keeps
    a mismatched head fresh, which only applies to ``model.weights``).
    """
    reinit_re = _compile(reinit, "model.load.reinit_mismatched")
    allow_re = _compile(allow_unexpected, "allow_unexpected")

    def covered(key: str, pats: list[re.Pattern[str]]) -> bool:
        return any(p.match(key) for p in pats)

    own = model.state_dict()
    report = LoadReport(source=source)
    to_load: dict[str, torch.Tensor] = {}
    for key, value in own.items():
        if key not in state:
            report.missing.append(key)
        elif tuple(state[key].shape) != tuple(value.shape):
            report.mismatched[key] = (tuple(state[key].shape), tuple(value.shape))
        else:
            to_load[key] = state[key]
            report.loaded.append(key)
    report.unexpected = [k for k in state if k not in own]

    bad: list[str] = []
    for label, keys in (
        ("missing", report.missing),
        ("unexpected", report.unexpected),
        ("shape-mismatched", list(report.mismatched)),
    ):
        for key in keys:
            if covered(key, reinit_re):
                report.reinitialized.append(key)
            elif label == "unexpected" and covered(key, allow_re):
                report.ignored.append(key)
            else:
                bad.append(f"{label} {key}")
    log.info("%s", report.table())
    if bad:
        if hint is None:
            hint = (
                " (list the keys in model.load.reinit_mismatched to keep their fresh init)"
                if report.mismatched or report.missing
                else ""
            )
        raise WeightsError(
            f"weights {source} do not fit model {type(model).__name__}: "
            f"{len(bad)} key(s) not loaded: {_short(bad)}{hint}"
        )
    # Every model key is either loaded or deliberately left at init, so strict=False only
    # skips those; nothing slips through unreported.
    model.load_state_dict(to_load, strict=False)
    return report


def load_weights(
    model: nn.Module,
    path: str | Path,
    reinit: Sequence[str] = (),
    allow_unexpected: Sequence[str] = (),
    map_location: str | torch.device = "cpu",
) -> LoadReport:
    """Read ``path`` (see :func:`read_state_dict`) and fit it to ``model`` (:func:`fit_state_dict`).

    This is what tasks call from ``build_model``, e.g.
    ``load_weights(model, cfg.model.weights, reinit=cfg.model.load.reinit_mismatched)``.
    """
    state = read_state_dict(path, map_location=map_location)
    return fit_state_dict(model, state, str(path), reinit, allow_unexpected)
