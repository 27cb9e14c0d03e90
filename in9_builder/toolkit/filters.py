"""The per-image filters of the paper's App. A and the authors' script, each rejection with a named reason.

The checks run cheapest first, so an image is opened only when its annotation passes, and decoded and
segmented only when its box survives the crop geometry.
"""

from __future__ import annotations

from ..scene import BBox
from .boxes import Annotation
from .geometry import CROP, box_through_crop

MAX_BOX_FRACTION = 0.9  # Only-BG: the box may cover at most 90 % of the 224 crop
MIN_BOX_KEPT = 0.5  # foreground variants: the crop must keep at least half of the (resized) box

# Reason codes in the order the checks run, with the line the build summary prints for each.
REASONS: dict[str, str] = {
    "no_annotation": "no bounding-box annotation for this image",
    "zero_boxes": "annotation holds no box (exactly one is required)",
    "multiple_boxes": "annotation holds 2 or more boxes (exactly one is required)",
    "size_mismatch": "annotated width/height differ from the image file",
    "invalid_box": "box is empty or lies outside the image",
    "box_too_large": f"box covers more than {MAX_BOX_FRACTION:.0%} of the {CROP} px crop",
    "box_cropped": f"the centre crop cuts away {1 - MIN_BOX_KEPT:.0%} or more of the box",
    "grabcut_failed": "GrabCut found a foreground under 10 % of the box in every try",
}


def check_annotation(annotation: Annotation | None) -> tuple[str | None, BBox | None]:
    """Exactly one box: (reason, None) on rejection, else (None, the box as annotated)."""
    if annotation is None:
        return "no_annotation", None
    if not annotation.boxes:
        return "zero_boxes", None
    if len(annotation.boxes) > 1:
        return "multiple_boxes", None
    return None, annotation.boxes[0]


def check_size(annotation: Annotation, width: int, height: int) -> str | None:
    """The authors' script drops images whose XML size is not the file's (the CSV records no size)."""
    if annotation.width is None or annotation.height is None:
        return None
    return None if (annotation.width, annotation.height) == (width, height) else "size_mismatch"


def clip_box(bbox: BBox, width: int, height: int) -> BBox | None:
    """The box clipped to the image (ImageNet boxes sometimes end one pixel past it), or None when empty."""
    xmin, ymin = max(bbox[0], 0), max(bbox[1], 0)
    xmax, ymax = min(bbox[2], width - 1), min(bbox[3], height - 1)
    if xmax <= xmin or ymax <= ymin:
        return None
    return xmin, ymin, xmax, ymax


def check_geometry(bbox: BBox, width: int, height: int) -> tuple[str | None, BBox | None]:
    """The two crop filters on the box drawn as a mask through Resize(256, NEAREST)+CenterCrop(224).

    Returns (reason, None) on rejection, else (None, the box in 224-crop coordinates).
    """
    cropped_box, in_crop, after_resize = box_through_crop(width, height, bbox)
    if in_crop > MAX_BOX_FRACTION * CROP * CROP:
        return "box_too_large", None
    if cropped_box is None or in_crop < MIN_BOX_KEPT * after_resize:
        return "box_cropped", None
    return None, cropped_box
