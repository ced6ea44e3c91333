"""A small reader for binary PCD files, enough for the nuScenes radar sweeps.

Why: nuScenes stores each radar sweep as a PCD v0.7 file with an ASCII header and a
``DATA binary`` body of packed records (x y z dyn_prop id rcs vx vy vx_comp vy_comp
is_quality_valid ambig_state x_rms y_rms invalid_state pdh0 vx_rms vy_rms, mixed float32 and
small integers). Only the format is needed, not a point-cloud library: the header gives the
field names, byte sizes, types (F float, I signed, U unsigned) and counts, from which a NumPy
structured dtype reads the body in one call.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

_KINDS = {"F": "f", "I": "i", "U": "u"}


def read_pcd(path: str | Path) -> np.ndarray:
    """Read a binary PCD file → structured array (POINTS,) with one named field per PCD field
    (fields with COUNT > 1 become sub-arrays). Raises ValueError naming the file for a
    malformed header, an unsupported ``DATA`` mode or a truncated body."""
    path = Path(path)
    raw = path.read_bytes()
    header: dict[str, list[str]] = {}
    pos = 0
    while True:
        end = raw.find(b"\n", pos)
        if end < 0:
            raise ValueError(f"{path}: PCD header has no 'DATA' line")
        line = raw[pos:end].decode("ascii", errors="replace").strip()
        pos = end + 1
        if not line or line.startswith("#"):
            continue
        key, *values = line.split()
        header[key.upper()] = values
        if key.upper() == "DATA":
            break
    mode = header["DATA"][0] if header["DATA"] else ""
    if mode != "binary":
        raise ValueError(f"{path}: PCD 'DATA {mode}' is not supported (only 'DATA binary')")
    try:
        fields = header["FIELDS"]
        sizes = [int(s) for s in header["SIZE"]]
        types = header["TYPE"]
        counts = [int(c) for c in header.get("COUNT", ["1"] * len(fields))]
        n = int(header["POINTS"][0])
    except (KeyError, IndexError, ValueError) as e:
        raise ValueError(f"{path}: malformed PCD header ({type(e).__name__}: {e})") from e
    if not len(fields) == len(sizes) == len(types) == len(counts):
        raise ValueError(f"{path}: PCD FIELDS/SIZE/TYPE/COUNT lengths differ")
    dtype_fields = []
    for name, size, kind, count in zip(fields, sizes, types, counts):
        if kind not in _KINDS or (kind == "F" and size not in (4, 8)) or size not in (1, 2, 4, 8):
            raise ValueError(f"{path}: PCD field {name!r} has unsupported TYPE {kind} SIZE {size}")
        fmt = f"<{_KINDS[kind]}{size}"
        dtype_fields.append((name, fmt) if count == 1 else (name, fmt, (count,)))
    dtype = np.dtype(dtype_fields)
    need = n * dtype.itemsize
    if len(raw) - pos < need:
        raise ValueError(
            f"{path}: PCD body has {len(raw) - pos} bytes, {n} points need {need} (truncated?)"
        )
    return np.frombuffer(raw, dtype=dtype, count=n, offset=pos).copy()
