"""bf16 is fast only where the hardware has it: the capability check and its warning."""

from __future__ import annotations

import logging

import pytest
import torch

from pointforge.engine import precision
from pointforge.engine.precision import native_bf16, warn_if_emulated_bf16


def test_native_bf16_follows_the_device_and_the_cpu_flags() -> None:
    assert native_bf16("cuda") and native_bf16(torch.device("cuda", 0))
    assert not native_bf16("meta")
    # Implications that hold on every x86 host: without AVX-512 oneDNN has no bf16 path
    # (bf16 is emulated), and with AVX-512 BF16 it has the native one.
    if not torch.cpu._is_avx512_supported():
        assert not native_bf16("cpu")
    if torch.cpu._is_avx512_bf16_supported():
        assert native_bf16("cpu")


@pytest.mark.parametrize("native", [False, True])
def test_warning_names_the_setting_only_where_bf16_is_emulated(
    native: bool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(precision, "native_bf16", lambda device: native)
    with caplog.at_level(logging.WARNING, logger="pointforge"):
        warned = warn_if_emulated_bf16("cpu", "train.amp=bf16")
    assert warned is (not native)
    if native:
        assert caplog.text == ""
    else:
        assert "train.amp=bf16" in caplog.text and "slower than float32" in caplog.text
