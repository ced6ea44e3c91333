"""Whether bf16 arithmetic is fast on a device, and a warning where it is not.

On CUDA, and on CPUs where oneDNN has a bf16 path (x86 with AVX-512 BW/VL/DQ, fastest with
the AVX-512 BF16 or AMX extensions; Arm with BF16), bf16 autocast runs natively and roughly
halves a SuperPoint forward on AVX-512 BF16. On other CPUs (AVX2-only parts, most laptops)
PyTorch emulates bf16 and the same forward is about 6× *slower* than float32
(measured with ``benchmarks/bench_predictor.py``; docs/keypoints.md, "Speed on CPU"). A user
who asks for bf16 there is asking for speed and would silently get the opposite, so the
trainer, the predictor and label export warn, naming the setting to change. They still do
what was asked: the numbers of a run must not depend on which machine it landed on.
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger("pointforge")


def native_bf16(device: torch.device | str) -> bool:
    """True where bf16 convolutions run natively: any CUDA device, or a CPU for which PyTorch
    reports oneDNN's bf16 path (``torch.ops.mkldnn._is_mkldnn_bf16_supported``: AVX-512
    BW/VL/DQ on x86, BF16 on Arm). False on other CPUs, where bf16 is emulated."""
    kind = torch.device(device).type
    if kind != "cpu":
        return kind == "cuda"
    mkldnn = torch.backends.mkldnn.is_available()
    return bool(mkldnn and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def warn_if_emulated_bf16(device: torch.device | str, setting: str) -> bool:
    """Log a warning naming ``setting`` (e.g. ``"train.amp=bf16"``) when bf16 is emulated on
    ``device``; returns whether it warned."""
    if native_bf16(device):
        return False
    log.warning(
        "%s on a CPU without native bf16 (no AVX-512 or Arm BF16): PyTorch emulates it, which is "
        "several times slower than float32 here, not faster. Use float32 on this machine "
        "(docs/keypoints.md, 'Speed on CPU').",
        setting,
    )
    return True
