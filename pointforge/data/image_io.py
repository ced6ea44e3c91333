"""One image reader for every dataset and command: refuses truncated, empty and undecodable files.

Why not plain ``cv2.imread``: libjpeg decodes a truncated JPEG as far as the data goes and
fills the rest with grey, printing only "Premature end of JPEG file" (no file name) on stderr;
``imread`` then returns a normal-looking array, and keypoints found along the fake grey edge go
silently into labels and results. So before decoding, :func:`check_complete` walks the file's
structure and requires the format's end marker: JPEG's EOI (``FF D9``) after the last scan, PNG's
``IEND`` chunk. Trailing bytes after the end marker (padding, or the video that "motion photos"
append to a JPEG) are allowed; a missing end marker is not. Checking first also keeps libjpeg's
and libpng's unnamed warnings off stderr. Other formats (PPM, BMP, TIFF, WebP) are left to
OpenCV, whose decoders return nothing for truncated files of those formats.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

_JPEG_SOI = b"\xff\xd8"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class UnreadableImageError(ValueError):
    """An image file that is missing, empty, truncated or undecodable; ``.path`` names it."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot read image {path}: {reason}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # picklable across DataLoader workers
        return (type(self), (str(self.path), self.reason))


def _jpeg_problem(data: bytes) -> str | None:
    """``None`` if the JPEG's marker structure reaches EOI after image data, else why not.

    Marker segments carry a 2-byte big-endian length (ITU-T T.81 §B.1.1.4); after an SOS header
    comes entropy-coded data, in which a literal ``FF`` is stuffed as ``FF 00`` and restart
    markers ``FF D0``–``FF D7`` may occur, so the next other ``FF xx`` is the next marker.
    Progressive JPEGs hold several scans; all are walked. An EXIF thumbnail (a whole JPEG inside
    an APP1 segment) is skipped with its segment, so its EOI does not count.
    """
    n, pos, scans = len(data), 2, 0
    while True:
        if pos >= n:
            return "truncated (the JPEG end marker FFD9 is missing)"
        if data[pos] != 0xFF:
            return f"corrupt JPEG structure (no marker at byte {pos})"
        while pos < n and data[pos] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos >= n:
            return "truncated (the JPEG end marker FFD9 is missing)"
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI
            return None if scans else "no image data before the JPEG end marker"
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # TEM, RSTn: no length
            continue
        if pos + 2 > n:
            return "truncated (the JPEG end marker FFD9 is missing)"
        pos += int.from_bytes(data[pos : pos + 2], "big")
        if marker != 0xDA:  # not SOS: the segment is all there is
            continue
        scans += 1
        while True:  # entropy-coded data up to the next real marker
            pos = data.find(b"\xff", pos)
            if pos < 0 or pos + 1 >= n:
                return "truncated (the JPEG end marker FFD9 is missing)"
            nxt = data[pos + 1]
            if nxt == 0x00 or 0xD0 <= nxt <= 0xD7:
                pos += 2
                continue
            break


def _png_problem(data: bytes) -> str | None:
    """``None`` if the PNG's chunks reach ``IEND``, else why not (PNG spec §5.3: each chunk is
    length (4 bytes), type (4), data (length), CRC (4))."""
    n, pos = len(data), len(_PNG_SIGNATURE)
    while pos + 8 <= n:
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        pos += 12 + length
        if pos > n:
            break
        if kind == b"IEND":
            return None
    return "truncated (the PNG IEND chunk is missing)"


def check_complete(data: bytes) -> str | None:
    """Why the encoded image ``data`` is empty or truncated, or ``None`` when it looks complete.

    Only JPEG and PNG (recognised by their signatures, whatever the file name) are checked for
    truncation; any other non-empty data passes and is left to the decoder.
    """
    if not data:
        return "empty file (0 bytes)"
    if data.startswith(_JPEG_SOI):
        return _jpeg_problem(data)
    if data.startswith(_PNG_SIGNATURE):
        return _png_problem(data)
    return None


# How much of a file's end check_image_file reads; trailing bytes a writer may leave after the
# end marker (padding) are allowed.
_TAIL_BYTES = 4096
_TRAILING_PADDING = b"\x00\xff\r\n\t "


def check_image_file(path: str | Path) -> None:
    """A cheap check for datasets to run on every file when they are built (no decoding, two
    small reads): the file exists, is not empty, and a JPEG/PNG ends with its end marker
    (``FF D9`` / ``IEND``, trailing padding allowed). :func:`read_image` checks the whole
    structure when the file is loaded."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(16)
            f.seek(max(0, size - _TAIL_BYTES))
            tail = f.read().rstrip(_TRAILING_PADDING)
    except FileNotFoundError:
        raise UnreadableImageError(path, "no such file") from None
    except OSError as exc:
        raise UnreadableImageError(path, f"{type(exc).__name__}: {exc.strerror or exc}") from None
    if size == 0:
        raise UnreadableImageError(path, "empty file (0 bytes)")
    if head.startswith(_JPEG_SOI) and not tail.endswith(b"\xff\xd9"):
        raise UnreadableImageError(path, "truncated JPEG: no end-of-image marker (FF D9)")
    if head.startswith(_PNG_SIGNATURE) and not tail.endswith(b"IEND\xaeB`\x82"):
        raise UnreadableImageError(path, "truncated PNG: no IEND chunk at the end")


def read_image(path: str | Path, grey: bool = False) -> np.ndarray:
    """Decode ``path`` to uint8 ``(H, W, 3)`` BGR, or ``(H, W)`` grey when ``grey``.

    Colour is always decoded as BGR (alpha dropped, grey files replicated to 3 channels) and
    16-bit files are scaled to 8 bits, so callers see one layout. Raises
    :class:`UnreadableImageError` naming ``path`` for a missing, empty, truncated or
    undecodable file.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UnreadableImageError(path, "no such file") from None
    except OSError as exc:
        raise UnreadableImageError(path, f"{type(exc).__name__}: {exc.strerror or exc}") from None
    problem = check_complete(data)
    if problem is not None:
        raise UnreadableImageError(path, problem)
    flag = cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        raise UnreadableImageError(path, "not an image OpenCV can decode (corrupt or unsupported)")
    return image
