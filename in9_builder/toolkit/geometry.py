"""The paper's crop geometry: torchvision ``Resize(256, NEAREST)`` then ``CenterCrop(224)``, without
torchvision.

The authors' script decides its filters on this geometry, and the released 224 px images are its output.
Images, masks and boxes all go through the same PIL nearest-neighbour resize, so they stay aligned pixel for
pixel.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..scene import BBox

RESIZE = 256
CROP = 224


def resized_size(width: int, height: int, size: int = RESIZE) -> tuple[int, int]:
    """torchvision's ``Resize(size)``: the short side becomes ``size``, the long side ``int(size * long /
    short)``."""
    if width <= height:
        return size, int(size * height / width)
    return int(size * width / height), size


def crop_offsets(width: int, height: int, crop: int = CROP) -> tuple[int, int]:
    """torchvision's ``CenterCrop``: (left, top) = ``int(round((dim - crop) / 2))`` (Python's round half to
    even)."""
    return int(round((width - crop) / 2.0)), int(round((height - crop) / 2.0))


def resize_crop(array: np.ndarray) -> np.ndarray:
    """Resize (nearest, short side 256) and centre-crop to 224x224 an HxW or HxWx3 uint8 array."""
    height, width = array.shape[:2]
    new_w, new_h = resized_size(width, height)
    resized = np.asarray(Image.fromarray(array).resize((new_w, new_h), Image.Resampling.NEAREST))
    left, top = crop_offsets(new_w, new_h)
    return np.ascontiguousarray(resized[top : top + CROP, left : left + CROP])


def box_mask(width: int, height: int, bbox: BBox) -> np.ndarray:
    """An HxW uint8 {0,1} mask of the inclusive box (what the authors drew as a white rectangle)."""
    xmin, ymin, xmax, ymax = bbox
    mask = np.zeros((height, width), np.uint8)
    mask[ymin : ymax + 1, xmin : xmax + 1] = 1
    return mask


def mask_extent(mask: np.ndarray) -> BBox | None:
    """The inclusive bounding box of the nonzero pixels of ``mask``, or None when it is empty."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def box_through_crop(width: int, height: int, bbox: BBox) -> tuple[BBox | None, int, int]:
    """Where the box lands in the 224 crop: (box in crop or None, box pixels in the crop, box pixels after
    resize)."""
    new_w, new_h = resized_size(width, height)
    resized = np.asarray(
        Image.fromarray(box_mask(width, height, bbox)).resize((new_w, new_h), Image.Resampling.NEAREST)
    )
    left, top = crop_offsets(new_w, new_h)
    cropped = resized[top : top + CROP, left : left + CROP]
    return mask_extent(cropped), int(cropped.sum(dtype=np.int64)), int(resized.sum(dtype=np.int64))
