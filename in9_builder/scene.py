"""A scene: what every source yields and every renderer consumes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BBox = tuple[int, int, int, int]  # (xmin, ymin, xmax, ymax), inclusive pixel coordinates, as in PASCAL VOC


@dataclass
class Scene:
    """One photo with its foreground.

    image: H x W x 3 uint8 RGB; mask: H x W uint8 in {0, 1} (1 = foreground); bbox: the object's box or None
    when the source does not know it (the release); label: IN-9 index; image_id: the stem, e.g.
    n01440764_00153.
    """

    image_id: str
    label: int
    image: np.ndarray
    mask: np.ndarray
    bbox: BBox | None = None
