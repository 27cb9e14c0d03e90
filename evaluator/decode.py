"""Encoded image cell -> uint8 (H, W, 3) RGB array: the pixels ``datasets.Image`` decodes, decoded faster.

Decoding is most of what ``in9-eval`` adds to a small model's forward on CPU. Plain 8-bit RGB PNGs and 8-bit
three-component JPEGs without EXIF or Adobe markers (all of IN-9, release and synthetic) are decoded by OpenCV
when it is installed: one C call that releases the GIL, so decoding threads scale with cores, and 0.40 instead
of 0.78 ms per 224 px JPEG with Pillow. Both wrap libjpeg-turbo / libpng with their default settings, and the
pixels are equal (tested against ``datasets.Image.decode_example`` on every case below). Anything else (other
modes and bit depths, EXIF orientation, CMYK, paths without bytes) goes through ``decode_example`` itself.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_FRAMES = (0xC0, 0xC1, 0xC2)  # baseline, extended and progressive Huffman frames
JPEG_STANDALONE = (0x01, *range(0xD0, 0xD8))  # markers without a length field


@functools.cache
def _opencv():
    try:
        import cv2
    except ImportError:
        return None
    if not hasattr(cv2, "IMREAD_COLOR_RGB"):  # OpenCV < 4.10 decodes only to BGR
        return None
    cv2.setNumThreads(1)  # the decoding threads are the parallelism
    return cv2


def _plain_png(data: bytes) -> bool:
    """8-bit RGB, not interlaced, no eXIf chunk (datasets would apply its orientation)."""
    return (
        data[:8] == PNG_SIGNATURE
        and data[12:16] == b"IHDR"
        and data[24:26] == b"\x08\x02"
        and data[28] == 0
        and b"eXIf" not in data
    )


def _plain_jpeg(data: bytes) -> bool:
    """8-bit, 3 components, Huffman coded, no EXIF (orientation) or Adobe (colour transform) segment."""
    if data[:2] != b"\xff\xd8":
        return False
    pos, end = 2, len(data) - 4
    while pos < end:
        if data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in JPEG_STANDALONE:
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        segment = data[pos + 4 : pos + 2 + length]
        exif = marker == 0xE1 and segment.startswith(b"Exif")
        if exif or (marker == 0xEE and segment.startswith(b"Adobe")):
            return False
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start of frame
            return marker in JPEG_FRAMES and segment[:1] == b"\x08" and segment[5:6] == b"\x03"
        pos += 2 + length
    return False


def opencv_decodable(data: bytes) -> bool:
    """Whether OpenCV decodes ``data`` to exactly the pixels of ``datasets.Image`` + ``convert("RGB")``."""
    return _plain_png(data) or _plain_jpeg(data)


def decode_rgb(value: Any, feature: Any) -> np.ndarray:
    """One stored ``{bytes, path}`` cell of an ``Image`` column (``feature``) -> uint8 (H, W, 3) RGB."""
    data = value.get("bytes") if isinstance(value, dict) else None
    cv2 = _opencv()
    if cv2 is not None and data and feature.mode in (None, "RGB") and opencv_decodable(data):
        # RGB straight from the decoder: a reversed-channel view of BGR would make batching 5x slower.
        flags = cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION
        rgb = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
        if rgb is not None:
            return rgb
    return to_uint8_hwc(feature.decode_example(value))


def to_uint8_hwc(image) -> np.ndarray:
    """A decoded PIL image -> uint8 (H, W, 3) array."""
    return np.asarray(image.convert("RGB") if image.mode != "RGB" else image)
