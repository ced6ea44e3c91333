"""Read an image file, refusing truncated JPEG/PNG files that OpenCV would half-decode.

Why: ``cv2.imread`` of a JPEG cut short (an interrupted download or copy) returns an image
whose lower part is grey or repeated rows, with at most a libjpeg warning on stderr, and a
truncated PNG can come back partially filled too. Training on such an image teaches the model
garbage under boxes that no longer match the pixels. So before decoding, the bytes are checked
structurally: a JPEG must end with its End-Of-Image marker ``FF D9`` and a PNG with its ``IEND``
chunk, allowing trailing padding bytes that some writers append (NUL, ``0xFF`` fill,
whitespace). Every failure raises :class:`UnreadableImageError` naming the file and the reason,
so datasets can apply their ``on_bad_image`` policy (error, or skip + log + count).

:func:`check_image_file` runs the same checks on the file's head and tail only (no decode), which
is cheap enough for a dataset to run over every image at construction time.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

JPEG_MAGIC = b"\xff\xd8\xff"
JPEG_EOI = b"\xff\xd9"  # End Of Image marker (ITU-T T.81, Table B.1)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# The IEND chunk: zero length, type "IEND", CRC-32 of "IEND" (PNG spec, section 11.2.5).
PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
# Bytes tolerated after the end marker: NUL padding, JPEG 0xFF fill bytes, line ends/space.
TRAILING_PADDING = b"\x00\xff\r\n\t "
TAIL_BYTES = 4096  # how much of the file end check_image_file reads


class UnreadableImageError(ValueError):
    """An image file that is missing, empty, truncated or cannot be decoded.

    ``.path`` is the file, ``.reason`` a short phrase ("truncated JPEG: ...")."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"unreadable image {self.path}: {reason}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # picklable across DataLoader workers
        return (type(self), (self.path, self.reason))


def _check_bytes(path: str | Path, head: bytes, tail: bytes) -> None:
    """Raise if a JPEG/PNG (recognised by ``head``) lacks its end marker at ``tail``."""
    end = tail.rstrip(TRAILING_PADDING)
    if head.startswith(JPEG_MAGIC):
        # D9 is not a padding byte, so stripping never eats into a real end marker.
        if not end.endswith(JPEG_EOI):
            raise UnreadableImageError(
                path, "truncated JPEG: no end-of-image marker (FF D9) at the end of the file"
            )
    elif head.startswith(PNG_MAGIC) and not end.endswith(PNG_IEND):
        raise UnreadableImageError(path, "truncated PNG: no IEND chunk at the end of the file")


def check_image_file(path: str | Path) -> None:
    """Cheap structural check (exists, non-empty, JPEG/PNG end marker present); no decoding.

    Other formats (BMP, WebP, TIFF...) pass here and are checked by decoding in
    :func:`read_image`."""
    try:
        size = os.path.getsize(path)
        if size == 0:
            raise UnreadableImageError(path, "empty file")
        with open(path, "rb") as f:
            head = f.read(16)
            f.seek(max(0, size - TAIL_BYTES))
            tail = f.read()
    except FileNotFoundError:
        raise UnreadableImageError(path, "file does not exist") from None
    except IsADirectoryError:
        raise UnreadableImageError(path, "is a directory") from None
    except OSError as exc:
        raise UnreadableImageError(path, f"cannot be read ({exc.strerror or exc})") from exc
    _check_bytes(path, head, tail)


def read_image(path: str | Path, grey: bool = False) -> np.ndarray:
    """Decode ``path`` to ``uint8`` BGR ``(H, W, 3)``, or grey ``(H, W)`` when ``grey``.

    Raises :class:`UnreadableImageError` for a missing, empty, truncated (JPEG without
    ``FF D9``, PNG without ``IEND``) or undecodable file. 16-bit PNGs are converted to 8 bit by
    OpenCV's ``IMREAD_COLOR`` / ``IMREAD_GRAYSCALE`` flags (it keeps the high byte)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise UnreadableImageError(path, "file does not exist") from None
    except IsADirectoryError:
        raise UnreadableImageError(path, "is a directory") from None
    except OSError as exc:
        raise UnreadableImageError(path, f"cannot be read ({exc.strerror or exc})") from exc
    if not data:
        raise UnreadableImageError(path, "empty file")
    _check_bytes(path, data[:16], data[-TAIL_BYTES:])
    flags = cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    if image is None:
        raise UnreadableImageError(path, "OpenCV cannot decode it (unknown format or corrupt)")
    return image
