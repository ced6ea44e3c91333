"""Import MagicLeap's public SuperPoint v1 weights (``superpoint_v1.pth``) as a pointforge file.

Why a converter when our model already uses the v1 parameter names: the v1 file is a bare
state dict with no record of where it came from, and a silently truncated or re-exported file
(a missing descriptor head, another descriptor size, BatchNorm keys) would only fail later, deep
inside ``load_state_dict``. Converting checks every key and shape against an explicit table of
the v1 layout *and* against our ``superpoint`` model, then writes our checkpoint format
(``{"model": state dict, ...}``, readable by ``pointforge.load_predictor`` and
``model.weights``) with provenance: the source file's name and SHA-256.

The table maps each v1 name to our name and the expected shape. The names are identical today;
keeping the mapping explicit means a future rename on our side is one edit here, not a silent
incompatibility.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from pointforge.engine.checkpoint import FORMAT_VERSION, atomic_save
from pointforge.models.loading import MAX_KEYS_SHOWN, WeightsError
from pointforge.models.superpoint import superpoint


def _conv(v1: str, c_out: int, c_in: int, k: int) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Weight and bias rows of one conv layer: v1 name → (our name, shape)."""
    return {
        f"{v1}.weight": (f"{v1}.weight", (c_out, c_in, k, k)),
        f"{v1}.bias": (f"{v1}.bias", (c_out,)),
    }


# v1 name → (pointforge name, expected shape). Layout from docs/keypoints.md: encoder 64-64-64-64-
# 128-128-128-128 (3×3), detector head 3×3→256 then 1×1→65, descriptor head 3×3→256 then 1×1→256.
MAGICLEAP_V1_TABLE: dict[str, tuple[str, tuple[int, ...]]] = {
    **_conv("conv1a", 64, 1, 3),
    **_conv("conv1b", 64, 64, 3),
    **_conv("conv2a", 64, 64, 3),
    **_conv("conv2b", 64, 64, 3),
    **_conv("conv3a", 128, 64, 3),
    **_conv("conv3b", 128, 128, 3),
    **_conv("conv4a", 128, 128, 3),
    **_conv("conv4b", 128, 128, 3),
    **_conv("convPa", 256, 128, 3),
    **_conv("convPb", 65, 256, 1),
    **_conv("convDa", 256, 128, 3),
    **_conv("convDb", 256, 256, 1),
}


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _names(keys: list[str]) -> str:
    more = len(keys) - MAX_KEYS_SHOWN
    return ", ".join(keys[:MAX_KEYS_SHOWN]) + (f", ... (+{more} more)" if more > 0 else "")


def read_magicleap_v1(path: str | Path) -> dict[str, torch.Tensor]:
    """The v1 state dict in ``path``, renamed to our names and checked key by key.

    Loads with ``torch.load(weights_only=True)``; a DDP ``module.`` prefix is stripped. Raises
    :class:`WeightsError` naming the file and every missing, unexpected or mis-shaped key.
    Tensors come back as contiguous float32 on the CPU.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MagicLeap weights file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(
            f"cannot load MagicLeap weights {path}: corrupt, truncated or not a torch file "
            f"({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        hint = (
            " (it looks like a pointforge checkpoint already)"
            if isinstance(obj, dict) and "model" in obj
            else ""
        )
        raise WeightsError(
            f"{path} is not a MagicLeap v1 state dict (expected tensors by name, got "
            f"{type(obj).__name__}){hint}"
        )
    state = {k.removeprefix("module."): v for k, v in obj.items()}
    missing = [k for k in MAGICLEAP_V1_TABLE if k not in state]
    unexpected = [k for k in state if k not in MAGICLEAP_V1_TABLE]
    mismatched = [
        f"{k} {list(state[k].shape)} (expected {list(shape)})"
        for k, (_, shape) in MAGICLEAP_V1_TABLE.items()
        if k in state and tuple(state[k].shape) != shape
    ]
    not_float = [k for k in MAGICLEAP_V1_TABLE if k in state and not state[k].is_floating_point()]
    problems = [
        f"{label}: {_names(keys)}"
        for label, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("wrong shapes", mismatched),
            ("non-float tensors", not_float),
        )
        if keys
    ]
    if problems:
        raise WeightsError(f"{path} is not a MagicLeap v1 SuperPoint file: " + "; ".join(problems))
    return {
        ours: state[v1].detach().to(torch.float32).contiguous()
        for v1, (ours, _) in MAGICLEAP_V1_TABLE.items()
    }


def check_against_model(state: dict[str, torch.Tensor], source: str) -> None:
    """Fail unless ``state`` fits our registered ``superpoint`` model exactly (strict load).

    This guards the table itself: if ``models/superpoint.py`` changes, conversion stops with
    the keys that differ instead of writing a file nothing can load.
    """
    own = superpoint().state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        f"{k} {list(state[k].shape)} vs model {list(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or mismatched:
        raise WeightsError(
            f"converted weights from {source} do not fit the pointforge superpoint model "
            f"(missing {_names(missing)}; unexpected {_names(unexpected)}; "
            f"mismatched {_names(mismatched)})"
        )


def convert_magicleap(src: str | Path, dst: str | Path) -> dict[str, str]:
    """Convert ``src`` (MagicLeap v1 ``.pth``) to a pointforge weights file at ``dst``.

    ``dst`` holds ``model`` (the state dict), ``format_version`` and ``provenance`` (source
    file name, SHA-256, source format) and is written atomically. Returns the provenance.
    """
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise ValueError(f"convert: destination {dst} is the source file; choose another path")
    state = read_magicleap_v1(src)
    check_against_model(state, str(src))
    provenance = {
        "source_file": src.name,
        "source_sha256": sha256_of(src),
        "source_format": "magicleap_superpoint_v1",
        "converted_by": "pointforge convert magicleap",
    }
    atomic_save({"model": state, "format_version": FORMAT_VERSION, "provenance": provenance}, dst)
    return provenance
