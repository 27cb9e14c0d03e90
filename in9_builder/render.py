"""Pure functions that turn scenes into IN-9 variants (the rules of the paper and of the
authors' scripts in github.com/MadryLab/backgrounds_challenge).

Everything works on uint8 numpy arrays (H x W x 3 images, H x W {0,1} masks) and never touches disk.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence

import numpy as np

from .classes import MIXED_VARIANTS, NUM_CLASSES
from .errors import In9Error
from .scene import BBox, Scene


def composite(fg: np.ndarray, mask: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """``fg * mask + bg * (1 - mask)`` per pixel in uint8 space (the variants' and the challenge's rule)."""
    if fg.shape != bg.shape or fg.shape[:2] != mask.shape:
        raise ValueError(f"composite: shapes differ: fg {fg.shape}, mask {mask.shape}, bg {bg.shape}")
    return np.where(mask[..., None].astype(bool), fg, bg)


def only_fg(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The foreground on black."""
    return image * mask[..., None].astype(np.uint8)


def no_fg(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The image with the foreground blacked out."""
    return image * (1 - mask[..., None].astype(np.uint8))


def only_bg_b(image: np.ndarray, bbox: BBox) -> np.ndarray:
    """The image with its bounding box (inclusive) filled with black."""
    xmin, ymin, xmax, ymax = bbox
    out = image.copy()
    out[ymin : ymax + 1, xmin : xmax + 1] = 0
    return out


def tile_background(image: np.ndarray, bbox: BBox) -> np.ndarray:
    """Only-BG-T: fill the bounding box by tiling the largest strip outside it.

    Same rule as the authors' script: margins left=xmin, right=W-xmax, top=ymin, bottom=H-ymax; a full-height
    strip wins only when its area is strictly larger; the left (top) strip only when strictly wider (taller);
    the strip is tiled from (0, 0) and pasted into the inclusive box.
    """
    height, width = image.shape[:2]
    xmin, ymin, xmax, ymax = bbox
    left, right, top, bottom = xmin, width - xmax, ymin, height - ymax
    x_area, y_area = max(left, right) * height, max(top, bottom) * width
    if max(x_area, y_area) <= 0:
        raise In9Error(f"bounding box {bbox} covers the whole {width}x{height} image: no background to tile")
    if x_area > y_area:
        strip = image[:, :xmin] if left > right else image[:, xmax:]
    else:
        strip = image[:ymin] if top > bottom else image[ymax:]
    reps = (-(-height // strip.shape[0]), -(-width // strip.shape[1]), 1)
    tiled = np.tile(strip, reps)[:height, :width]
    out = image.copy()
    out[ymin : ymax + 1, xmin : xmax + 1] = tiled[ymin : ymax + 1, xmin : xmax + 1]
    return out


def _draw_rng(seed: int, variant: str, ids: Sequence[str]) -> np.random.Generator:
    # The draw depends on the seed, the variant and the exact (sorted) id list, and nothing else.
    ids_crc = zlib.crc32("\n".join(ids).encode())
    variant_code = zlib.crc32(variant.encode())
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, variant_code, ids_crc])))


def draw_backgrounds(seed: int, labels: Mapping[str, int], variant: str) -> dict[str, str]:
    """The seeded background pairing for a mixed variant: ``{fg image_id: bg image_id}``.

    A pure function of (seed, sorted image ids with their labels, variant): any process count or generation
    order gives the same pairing. The pool is the same set's Only-BG-T images.
      mixed_same: a uniform image of the same class, never the image itself;
      mixed_rand: a uniform class, then a uniform image of it, never the image itself;
      mixed_next: a uniform image of class (y + 1) mod 9.
    """
    if variant not in MIXED_VARIANTS:
        raise In9Error(
            f"draw_backgrounds: {variant!r} is not a mixed variant; choose one of {MIXED_VARIANTS}"
        )
    ids = sorted(labels)
    by_class: list[list[str]] = [[] for _ in range(NUM_CLASSES)]
    for image_id in ids:
        by_class[labels[image_id]].append(image_id)
    rng = _draw_rng(seed, variant, ids)
    pairing: dict[str, str] = {}
    for image_id in ids:
        label = labels[image_id]
        if variant == "mixed_next":
            candidates = by_class[(label + 1) % NUM_CLASSES]
        else:
            cls = label if variant == "mixed_same" else int(rng.integers(NUM_CLASSES))
            candidates = [c for c in by_class[cls] if c != image_id]
            if variant == "mixed_rand":
                while not candidates:  # a class with no other image: draw the class again
                    candidates = [c for c in by_class[int(rng.integers(NUM_CLASSES))] if c != image_id]
        if not candidates:
            raise In9Error(
                f"{variant}: no background image available for {image_id} (class {label} is too small)"
            )
        pairing[image_id] = candidates[int(rng.integers(len(candidates)))]
    return pairing


def render_variant(variant: str, scene: Scene, bg_scene: Scene | None = None) -> np.ndarray:
    """One variant image of ``scene``; mixed variants take the background drawn by ``draw_backgrounds``."""
    if variant == "original":
        return scene.image
    if variant == "only_fg":
        return only_fg(scene.image, scene.mask)
    if variant == "no_fg":
        return no_fg(scene.image, scene.mask)
    if variant in ("only_bg_b", "only_bg_t"):
        if scene.bbox is None:
            raise In9Error(f"{variant} of {scene.image_id} needs a bounding box, and this source has none")
        fill = only_bg_b if variant == "only_bg_b" else tile_background
        return fill(scene.image, scene.bbox)
    if variant in MIXED_VARIANTS:
        if bg_scene is None:
            raise ValueError(f"{variant} needs a background scene")
        return composite(scene.image, scene.mask, render_variant("only_bg_t", bg_scene))
    raise In9Error(f"unknown variant {variant!r}")
