"""How generated pixels are stored: Image cells for the builder (PNG by default, JPEG on request), masks
(always PNG), and the JPEG files of the release layout.

Official release files never come through here: the builder passes them through byte for byte.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .errors import In9Error

IMAGE_FORMATS = ("png", "jpeg")
PNG_COMPRESS_LEVEL = 1  # lossless at any level; level 1 encodes much faster than the default 6
JPEG_QUALITY = 95  # a jpeg export's Image cells: close to lossless, still much smaller than PNG


def check_image_format(image_format: str) -> str:
    if image_format not in IMAGE_FORMATS:
        raise In9Error(f"image_format={image_format!r}: choose png or jpeg", argument="image_format")
    return image_format


def encode_image(pixels: np.ndarray, image_format: str = "png") -> dict[str, Any]:
    """An Image cell with embedded bytes: PNG (lossless) or JPEG, from a uint8 H x W [x 3] array."""
    buffer = io.BytesIO()
    if image_format == "png":
        Image.fromarray(pixels).save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    else:
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return {"bytes": buffer.getvalue(), "path": None}


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """A mask cell: PNG mode L with values 0/1 (always lossless)."""
    return encode_image(mask.astype(np.uint8), "png")


def save_jpeg(pixels: np.ndarray, path: Path, quality: int) -> None:
    """One ``.JPEG`` file of the release layout."""
    Image.fromarray(pixels).save(path, format="JPEG", quality=quality)
