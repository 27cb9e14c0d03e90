"""The class table and the ImageNet-1k -> IN-9 mapping: exact counts, names, folders."""

from __future__ import annotations

import numpy as np
import pytest

from in9_builder.classes import (
    CLASS_FOLDERS,
    CLASS_NAMES,
    CONFIGS,
    IMAGE_VARIANTS,
    IN1K_TO_IN9,
    MIXED_VARIANTS,
    class_index,
    folder_index,
    in1k_indices,
    mapped_wnids,
)


def test_class_names_and_release_folders_in_order():
    assert CLASS_NAMES == (
        "dog",
        "bird",
        "wheeled vehicle",
        "reptile",
        "carnivore",
        "insect",
        "musical instrument",
        "primate",
        "fish",
    )
    assert CLASS_FOLDERS[2] == "02_wheeled vehicle" and CLASS_FOLDERS[6] == "06_musical instrument"
    assert [folder_index(f) for f in CLASS_FOLDERS] == list(range(9))
    assert folder_index("02_wheeled_vehicle") is None  # release folders match exactly (with the space)


def test_variants_and_configs():
    assert len(IMAGE_VARIANTS) == 8 and CONFIGS == IMAGE_VARIANTS + ("fg_mask",)
    assert set(MIXED_VARIANTS) < set(IMAGE_VARIANTS)


def test_mapping_counts_per_class_exactly_as_the_paper():
    counts = [len(in1k_indices(c)) for c in range(9)]
    assert counts == [116, 52, 42, 36, 35, 27, 26, 20, 16]
    assert int((IN1K_TO_IN9 >= 0).sum()) == 370 and IN1K_TO_IN9.shape == (1000,)


@pytest.mark.parametrize("index", [171, 172, 281, 282, 283, 284, 285, 999])
def test_deliberately_unmapped_classes(index):
    assert IN1K_TO_IN9[index] == -1


def test_mapping_spot_checks_and_read_only():
    assert IN1K_TO_IN9[0] == 8 and IN1K_TO_IN9[151] == 0 and IN1K_TO_IN9[407] == 2 and IN1K_TO_IN9[889] == 6
    with pytest.raises(ValueError):
        IN1K_TO_IN9[0] = 1
    assert IN1K_TO_IN9.dtype == np.int64


@pytest.mark.parametrize(
    "spelling, index",
    [
        ("Wheeled_Vehicle", 2),
        ("wheeled-vehicle", 2),
        ("02_wheeled vehicle", 2),
        ("vehicle", 2),
        ("Instrument", 6),
        ("FISH", 8),
        ("cat", None),
    ],
)
def test_class_index_any_spelling(spelling, index):
    assert class_index(spelling) == index


def test_mapped_wnids_offline():
    wnids = mapped_wnids()
    assert len(wnids) == 370
    assert wnids["n01440764"] == 8  # tench
    assert np.bincount(list(wnids.values()), minlength=9).tolist() == [116, 52, 42, 36, 35, 27, 26, 20, 16]
