"""Deterministic OpenCV GrabCut, as in the authors' script.

Rect initialisation with the box, 5 iterations, foreground = definite or probable foreground, a try fails
when it raises or when the foreground covers under 10 % of the box, up to 10 tries. GrabCut's GMM
initialisation draws from OpenCV's RNG (k-means++), so each try seeds it from (image id, try number): the
same image always gets the same mask, on any machine and in any worker, and a retry is a genuinely different
draw.
"""

from __future__ import annotations

import zlib

import numpy as np

from ..errors import In9Error
from ..scene import BBox

ITERATIONS = 5
MAX_TRIES = 10
MIN_MASK_FRACTION = 0.1


def _cv2():
    try:
        import cv2  # the toolkit's optional dependency (the [toolkit] extra)
    except ImportError:
        raise In9Error(
            "the toolkit needs OpenCV: pip install 'in9-bench[toolkit]' (opencv-python-headless)"
        ) from None
    return cv2


def grabcut_seed(image_id: str, attempt: int) -> int:
    """OpenCV RNG seed of try ``attempt`` (0-based) of image ``image_id``."""
    return zlib.crc32(f"{image_id}#{attempt}".encode()) & 0x7FFFFFFF  # cv2.setRNGSeed takes a C int


def grabcut_once(image: np.ndarray, bbox: BBox, seed: int) -> np.ndarray | None:
    """One GrabCut try on an HxWx3 uint8 image: the HxW {0,1} mask, or None when OpenCV gives up."""
    cv2 = _cv2()
    xmin, ymin, xmax, ymax = bbox
    labels = np.zeros(image.shape[:2], np.uint8)
    bg_model, fg_model = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(seed)
    try:
        cv2.grabCut(
            np.ascontiguousarray(image),
            labels,
            (xmin, ymin, xmax - xmin, ymax - ymin),
            bg_model,
            fg_model,
            ITERATIONS,
            cv2.GC_INIT_WITH_RECT,
        )
    except cv2.error:  # e.g. no background pixels to model, or a colourless image
        return None
    return ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)).astype(np.uint8)


def grabcut_mask(image: np.ndarray, bbox: BBox, image_id: str) -> tuple[np.ndarray | None, int]:
    """GrabCut with retries: (mask, tries used), or (None, MAX_TRIES) when every try failed."""
    xmin, ymin, xmax, ymax = bbox
    box_area = (xmax - xmin) * (ymax - ymin)  # the authors' denominator (exclusive of the far edge)
    for attempt in range(MAX_TRIES):
        mask = grabcut_once(image, bbox, grabcut_seed(image_id, attempt))
        if mask is not None and mask.sum(dtype=np.int64) >= MIN_MASK_FRACTION * box_area:
            return mask, attempt + 1
    return None, MAX_TRIES
