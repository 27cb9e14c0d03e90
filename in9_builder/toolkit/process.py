"""One candidate image -> its outcome: the rejection reason, or the 224 px box and GrabCut mask.

The outcome holds no pixels: the 224 px image is re-derived from the ImageNet file when scenes are read
(decode + the same crop), so the work folder stays small (a packed mask is 6 KB) even for a full-ImageNet
build.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import In9Error
from .boxes import load_annotation
from .filters import check_annotation, check_geometry, check_size, clip_box
from .geometry import CROP, resize_crop
from .segment import grabcut_mask
from .tree import Record


def open_image(path: Path) -> Image.Image:
    """Open an image lazily (header only); an unreadable file is an ``In9Error`` that names it."""
    try:
        return Image.open(path)
    except (OSError, UnidentifiedImageError) as exc:
        raise In9Error(
            f"{path}: unreadable image ({exc.__class__.__name__}); re-download or remove it"
        ) from None


def decode_rgb(path: Path, image: Image.Image | None = None) -> np.ndarray:
    """Decode to HxWx3 uint8 RGB (ImageNet has a few grayscale and CMYK files)."""
    image = image if image is not None else open_image(path)
    try:
        return np.asarray(image.convert("RGB"))
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt data shows up at decode time
        raise In9Error(f"{path}: unreadable image ({exc}); re-download or remove it") from None


def crop_image(path: Path) -> np.ndarray:
    """The 224x224 scene image of an ImageNet file (Resize(256, NEAREST) + CenterCrop(224))."""
    return resize_crop(decode_rgb(path))


def process_record(root: Path, record: Record) -> dict:
    """Every filter of App. A and GrabCut on one image: a plain dict (pickled into the chunk file)."""
    outcome: dict = {"image_id": record.image_id, "reason": None, "bbox": None, "mask": None, "tries": 0}
    annotation = load_annotation(record.annotation)
    outcome["reason"], bbox = check_annotation(annotation)
    if outcome["reason"]:
        return outcome
    path = root / record.path
    image = open_image(path)
    width, height = image.size
    outcome["reason"] = check_size(annotation, width, height)
    if outcome["reason"]:
        return outcome
    bbox = clip_box(bbox, width, height)
    if bbox is None:
        outcome["reason"] = "invalid_box"
        return outcome
    outcome["reason"], bbox_224 = check_geometry(bbox, width, height)
    if outcome["reason"]:
        return outcome
    mask, outcome["tries"] = grabcut_mask(decode_rgb(path, image), bbox, record.image_id)
    if mask is None:
        outcome["reason"] = "grabcut_failed"
        return outcome
    outcome["bbox"] = bbox_224
    outcome["mask"] = np.packbits(resize_crop(mask)).tobytes()
    return outcome


def unpack_mask(packed: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(packed, np.uint8), count=CROP * CROP).reshape(CROP, CROP)
