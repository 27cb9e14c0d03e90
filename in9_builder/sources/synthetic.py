"""The synthetic source: procedural IN-9-like scenes, no download.

Each class has its own foreground *shape* (random colour, position, scale and rotation, so the outline is
the only foreground cue) and its own background *texture family and palette*. With probability
``bg_correlation`` a scene's background comes from its own class's family, otherwise from a uniformly drawn
other class: backgrounds are a strong, easy cue, which lets the offline demo reproduce the paper's finding.

Every scene is a pure function of (scene_seed, split, label, index), so any scene can be regenerated on demand
(the mixed variants use that to fetch backgrounds without holding the set in memory). ``scene_seed`` fixes the
scenes only; the background draws of the mixed variants have their own ``seed`` (the builder's and export's).
"""

from __future__ import annotations

import colorsys
import functools
import math
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..classes import NUM_CLASSES
from ..errors import In9Error
from ..release_layout import JPEG_QUALITY, write_test_release
from ..scene import Scene

# Fake ImageNet-style WordNet ids, one per class, so that ids look like real stems (n99000003_00012).
FAKE_WNIDS: tuple[str, ...] = tuple(f"n{99_000_000 + c:08d}" for c in range(NUM_CLASSES))
_TRAIN_INDEX_OFFSET = 50_000  # train stems never collide with test stems
_ID_RE = re.compile(r"^n(\d{8})_(\d{5})$")
_SPLIT_CODES = {"test": 1, "train": 2}


def synthetic_image_id(label: int, index: int, split: str = "test") -> str:
    """The stem of scene ``index`` of class ``label``: ``<fake wnid>_<5 digits>``."""
    offset = _TRAIN_INDEX_OFFSET if split == "train" else 0
    return f"{FAKE_WNIDS[label]}_{index + offset:05d}"


def _parse_image_id(image_id: str) -> tuple[int, int]:
    match = _ID_RE.match(image_id)
    if not match or match.group(0)[:9] not in FAKE_WNIDS:
        raise In9Error(f"{image_id!r} is not a synthetic image id (expected e.g. {synthetic_image_id(0, 7)})")
    label = FAKE_WNIDS.index(image_id[:9])
    index = int(match.group(2)) % _TRAIN_INDEX_OFFSET
    return label, index


def _rgb(hue: float, sat: float, val: float) -> np.ndarray:
    rgb = colorsys.hsv_to_rgb(hue % 1.0, min(max(sat, 0.0), 1.0), min(max(val, 0.0), 1.0))
    return np.array(rgb, dtype=np.float32) * np.float32(255.0)


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    # A Python float: a numpy float64 scalar would promote the float32 arrays it touches to float64 (slow).
    return float(rng.uniform(low, high))


# Backgrounds are drawn through a palette lookup: the texture value t in [0, 1] becomes a level of a 64-step
# ramp from the light to the dark colour (extended past both ends so that noise is not clipped on one side).
_LEVELS, _T_LOW, _T_HIGH = 64, 8, 55


@functools.lru_cache(maxsize=8)
def _noise_tile(size: int) -> np.ndarray:
    """A fixed 2x-size field of sensor-like noise (in palette levels); a scene reads a random window of it."""
    noise = np.random.default_rng(0x5EED).standard_normal((2 * size, 2 * size), dtype=np.float32) * 2.5
    noise.setflags(write=False)
    return noise


def _palette(light: np.ndarray, dark: np.ndarray) -> np.ndarray:
    steps = (np.arange(_LEVELS, dtype=np.float32) - _T_LOW) / (_T_HIGH - _T_LOW)
    return np.clip(np.rint(light + (dark - light) * steps[:, None]), 0, 255).astype(np.uint8)


def _texture(family: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A background of texture family ``family`` (0..8): the pattern t (H x W float32 in [0, 1], possibly a
    broadcast view) and the family's palette (``_LEVELS`` x 3 uint8).

    Built from 1-D profiles broadcast to 2-D wherever the pattern is separable: scenes are regenerated for
    every config of an export, so this is on the export's hot path.
    """
    axis = np.arange(size, dtype=np.float32) / np.float32(size)
    y, x = axis[:, None], axis[None, :]
    freq = _uniform(rng, 3.0, 7.0)
    phase = _uniform(rng, 0, 2 * math.pi)
    angle = _uniform(rng, 0, math.pi)
    k = 2 * math.pi * freq
    if family == 0:  # horizontal stripes
        t = np.sin(k * y + phase) > 0
    elif family == 1:  # vertical stripes
        t = np.sin(k * x + phase) > 0
    elif family == 2:  # checkerboard
        t = (np.floor(x * freq + phase) % 2 == 0) ^ (np.floor(y * freq) % 2 == 0)
    elif family == 3:  # diagonal stripes: sin(a x + a y + p), expanded into outer products
        a = k / math.sqrt(2)
        t = np.sin(a * x) * np.cos(a * y + phase) + np.cos(a * x) * np.sin(a * y + phase) > 0
    elif family == 4:  # dot grid
        t = ((x * freq + phase) % 1 - 0.5) ** 2 + ((y * freq) % 1 - 0.5) ** 2 < 0.08
    elif family == 5:  # concentric rings around a random centre
        cx, cy = _uniform(rng, 0, 1), _uniform(rng, 0, 1)
        t = np.sin(k * np.sqrt((x - cx) ** 2 + (y - cy) ** 2) + phase) > 0
    elif family == 6:  # smooth linear gradient at a random angle
        t = np.clip(0.5 + math.cos(angle) * (x - 0.5) + math.sin(angle) * (y - 0.5), 0, 1)
    elif family == 7:  # soft blobs
        t = 0.5 + 0.5 * np.sin(k / 2 * x + phase) * np.sin(k / 2 * y + angle)
    else:  # wavy stripes
        t = np.sin(k * (y + 0.08 * np.sin(4 * math.pi * x + angle)) + phase) > 0
    hue = family / NUM_CLASSES + _uniform(rng, -0.02, 0.02)
    light = _rgb(hue, 0.45 + _uniform(rng, -0.1, 0.1), 0.9 + _uniform(rng, -0.08, 0.08))
    dark = _rgb(hue, 0.85 + _uniform(rng, -0.1, 0.1), 0.45 + _uniform(rng, -0.1, 0.1))
    return np.broadcast_to(t, (size, size)).astype(np.float32), _palette(light, dark)


def _shape_mask(label: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """The class's shape at a random position, scale and rotation: H x W bool."""
    radius = _uniform(rng, 0.18, 0.34) * size
    cx, cy = _uniform(rng, radius + 1, size - radius - 2), _uniform(rng, radius + 1, size - radius - 2)
    rot = _uniform(rng, 0, 2 * math.pi)
    # Every shape lies within 1.05 radii of its centre: evaluate only that window.
    reach = 1.1 * radius
    x0, x1 = max(0, int(cx - reach)), min(size, int(cx + reach) + 2)
    y0, y1 = max(0, int(cy - reach)), min(size, int(cy + reach) + 2)
    dx = (np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5 - cx) / radius
    dy = (np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5 - cy) / radius
    u = math.cos(rot) * dx + math.sin(rot) * dy
    v = -math.sin(rot) * dx + math.cos(rot) * dy
    rho = np.sqrt(u * u + v * v)

    def polygon(sides: int) -> np.ndarray:
        sector = 2 * math.pi / sides
        return rho * np.cos((np.arctan2(v, u) % sector) - sector / 2) <= math.cos(sector / 2)

    if label == 0:  # dog: disc
        inside = rho <= 0.9
    elif label == 1:  # bird: triangle
        inside = polygon(3)
    elif label == 2:  # wheeled vehicle: square
        inside = polygon(4)
    elif label == 3:  # reptile: plus-shaped cross
        inside = ((np.abs(u) <= 0.3) & (np.abs(v) <= 1)) | ((np.abs(v) <= 0.3) & (np.abs(u) <= 1))
    elif label == 4:  # carnivore: ring
        inside = (rho <= 1) & (rho >= 0.55)
    elif label == 5:  # insect: five-pointed star
        inside = rho <= 0.55 + 0.45 * np.cos(5 * np.arctan2(v, u))
    elif label == 6:  # musical instrument: hexagon
        inside = polygon(6)
    elif label == 7:  # primate: crescent
        inside = (rho <= 1) & ((u - 0.45) ** 2 + v * v > 0.64)
    else:  # fish: elongated ellipse
        inside = u * u + (v / 0.42) ** 2 <= 1
    mask = np.zeros((size, size), dtype=bool)
    mask[y0:y1, x0:x1] = inside
    return mask


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


class SyntheticSource:
    """Procedural scenes for every class, deterministic in ``scene_seed``.

    per_class: test scenes per class (the release has 450); train_per_class: train scenes per class (None =
    the same as per_class, 0 = no train split); size: square image side; bg_correlation: probability that a
    scene's background family is its own class's; fg_hue_correlation: probability that a foreground's hue is
    its class's own (a foreground cue besides the outline that a small CPU model learns quickly; 0 = random).
    """

    name = "synthetic"
    has_bboxes = True
    has_official_files = False

    def __init__(
        self,
        per_class: int = 450,
        size: int = 224,
        scene_seed: int = 0,
        bg_correlation: float = 0.9,
        train_per_class: int | None = None,
        fg_hue_correlation: float = 0.0,
    ) -> None:
        if per_class < 2:
            raise In9Error(
                f"per_class={per_class}: the synthetic source needs at least 2 "
                "(mixed_same needs two of each class)",
                argument="per_class",
            )
        if size < 16:
            raise In9Error(f"size={size}: the synthetic source needs at least 16 pixels", argument="size")
        for name, value in (("bg_correlation", bg_correlation), ("fg_hue_correlation", fg_hue_correlation)):
            if not 0.0 <= value <= 1.0:
                raise In9Error(f"{name}={value}: must be between 0 and 1 (a probability)", argument=name)
        if train_per_class is not None and (train_per_class < 0 or train_per_class == 1):
            raise In9Error(
                f"train_per_class={train_per_class}: use 0 (no train split) or 2 or more",
                argument="train_per_class",
            )
        self.per_class = int(per_class)
        self.size = int(size)
        self.scene_seed = int(scene_seed)
        self.bg_correlation = float(bg_correlation)
        self.fg_hue_correlation = float(fg_hue_correlation)
        self.train_per_class = self.per_class if train_per_class is None else int(train_per_class)

    @classmethod
    def resolve_kwargs(cls, data_dir, source_kwargs: dict, dl_manager=None) -> dict:
        if data_dir is not None:
            raise In9Error(
                f"data_dir={str(data_dir)!r}: the synthetic source reads no data; drop `data_dir` "
                "(or use the release source)",
                argument="data_dir",
            )
        return dict(source_kwargs)

    def params(self) -> dict:
        """The parameters that determine the data (recorded in the export summary)."""
        return {
            "per_class": self.per_class,
            "train_per_class": self.train_per_class,
            "size": self.size,
            "scene_seed": self.scene_seed,
            "bg_correlation": self.bg_correlation,
            "fg_hue_correlation": self.fg_hue_correlation,
        }

    def splits(self) -> list[str]:
        return ["test", "train"] if self.train_per_class else ["test"]

    def _count(self, split: str) -> int:
        if split not in self.splits():
            raise In9Error(f"synthetic source has no split {split!r}; choose one of {self.splits()}")
        return self.per_class if split == "test" else self.train_per_class

    def labels(self, split: str) -> dict[str, int]:
        """``{image_id: label}`` of the split (cheap: no image is generated)."""
        count = self._count(split)
        return {synthetic_image_id(c, i, split): c for c in range(NUM_CLASSES) for i in range(count)}

    def scene(self, split: str, image_id: str) -> Scene:
        """Scene ``image_id`` of ``split``, regenerated from (scene_seed, split, label, index)."""
        label, index = _parse_image_id(image_id)
        if index >= self._count(split):
            raise In9Error(f"{image_id} is not in the {split} split of this synthetic source")
        return self._make_scene(split, label, index)

    def scenes(self, split: str) -> Iterator[Scene]:
        """All scenes of ``split`` sorted by (label, image_id), generated one at a time."""
        count = self._count(split)
        for label in range(NUM_CLASSES):
            for index in range(count):
                yield self._make_scene(split, label, index)

    def _make_scene(self, split: str, label: int, index: int) -> Scene:
        rng = np.random.Generator(
            np.random.PCG64(
                np.random.SeedSequence([self.scene_seed, _SPLIT_CODES[split], label, index, 0x1A9])
            )
        )
        if rng.random() < self.bg_correlation:
            family = label
        else:
            family = int((label + 1 + rng.integers(NUM_CLASSES - 1)) % NUM_CLASSES)
        size = self.size
        pattern, palette = _texture(family, size, rng)
        oy, ox = (int(o) for o in rng.integers(0, size, size=2))
        levels = pattern * np.float32(_T_HIGH - _T_LOW) + np.float32(_T_LOW + 0.5)
        levels += _noise_tile(size)[oy : oy + size, ox : ox + size]
        image = palette[np.clip(levels, 0, _LEVELS - 1, out=levels).astype(np.uint8)]  # H x W x 3 uint8
        shape = _shape_mask(label, size, rng)
        hue = _uniform(rng, 0, 1)
        # Drawn only when enabled, so that the default's scenes stay byte-identical.
        if self.fg_hue_correlation > 0 and rng.random() < self.fg_hue_correlation:
            # the class's own hue band, halfway between two background palettes' hues
            hue = (label + 0.5) / NUM_CLASSES + 0.3 * (hue - 0.5) / NUM_CLASSES
        colour = _rgb(hue, _uniform(rng, 0.3, 1.0), _uniform(rng, 0.35, 1.0))
        shading = np.linspace(1.0, 0.8, size, dtype=np.float32)[:, None, None]
        np.copyto(image, np.rint(colour * shading).astype(np.uint8), where=shape[..., None])
        mask = shape.astype(np.uint8)
        return Scene(synthetic_image_id(label, index, split), label, image, mask, _bbox(shape))

    # --- the fake release ---------------------------------------------------------------------------------

    def write_release(
        self,
        out: str | Path,
        *,
        seed: int = 0,
        tarball: bool = False,
        quality: int = JPEG_QUALITY,
        overwrite: bool = False,
    ) -> Path:
        """The test split in the exact layout of the original release (``seed`` draws the mixed backgrounds).

        ``out/bg_challenge/<variant>/val/<NN_name>/<stem>.JPEG`` for the 8 variants (mixed files named
        ``fg_<stem>_bg_<stem>.JPEG``), masks as ``fg_mask/val/<NN_name>/<stem>.npy``; with ``tarball``,
        ``out/backgrounds_challenge_data.tar.gz`` instead, like the real download. Replaced atomically.
        Returns ``out`` (the folder that holds ``bg_challenge``) or the tarball path.
        """
        return write_test_release(self, out, seed=seed, tarball=tarball, overwrite=overwrite, quality=quality)
