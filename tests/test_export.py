"""The export folder: layout, summary, card, offline loading, fingerprints."""

from __future__ import annotations

import json

import datasets
import pytest

from in9_builder.classes import CLASS_NAMES, CONFIGS, MIXED_VARIANTS, NUM_CLASSES
from in9_builder.fingerprint import dataset_fingerprint
from tests.fixtures_builder import SYNTHETIC_PER_CLASS

ROWS = SYNTHETIC_PER_CLASS * NUM_CLASSES


def _load(export_dir, config, split, tmp_path):
    return datasets.load_dataset(str(export_dir), config, split=split, cache_dir=str(tmp_path / "cache"))


def test_layout_and_summary(synthetic_export):
    assert synthetic_export.name == "in9"
    names = sorted(p.name for p in synthetic_export.iterdir())
    assert names == sorted([*CONFIGS, "README.md", "in9_export.json", "gallery.png", "eval.yaml"])
    for config in CONFIGS:
        files = sorted(p.name for p in (synthetic_export / config).iterdir())
        assert files == ["test-00000-of-00001.parquet", "train-00000-of-00001.parquet"]
    summary = json.loads((synthetic_export / "in9_export.json").read_text())
    assert summary["schema"] == "in9-export/1"
    assert (summary["source"], summary["edition"], summary["seed"]) == ("synthetic", "seeded", 0)
    assert list(summary["configs"]) == list(CONFIGS)
    for entry in summary["configs"].values():
        assert entry["num_rows"] == {"test": ROWS, "train": ROWS}
        assert entry["fingerprint"].startswith("sha256:") and len(entry["fingerprint"]) == 7 + 64
    assert summary["source_params"]["per_class"] == SYNTHETIC_PER_CLASS


def test_card_has_configs_and_fingerprints(synthetic_export):
    card = (synthetic_export / "README.md").read_text()
    assert card.startswith("---\n")
    assert "config_name: mixed_rand" in card and "path: mixed_rand/test-*" in card
    assert "dataset_info:" in card
    summary = json.loads((synthetic_export / "in9_export.json").read_text())
    for entry in summary["configs"].values():
        assert entry["fingerprint"] in card


@pytest.mark.parametrize("config", CONFIGS)
def test_load_dataset_offline_every_config(synthetic_export, config, tmp_path):
    ds = _load(synthetic_export, config, "test", tmp_path)
    assert ds.num_rows == ROWS
    assert ds.features["label"].names == list(CLASS_NAMES)
    keys = [(row["label"], row["image_id"]) for row in ds.select_columns(["label", "image_id"])]
    assert keys == sorted(keys)
    expected = {"image", "label", "image_id"}
    if config in MIXED_VARIANTS:
        expected |= {"fg_image_id", "bg_image_id", "bg_label"}
    if config == "fg_mask":
        expected |= {"mask"}
    assert set(ds.column_names) == expected
    summary = json.loads((synthetic_export / "in9_export.json").read_text())
    assert dataset_fingerprint(ds) == summary["configs"][config]["fingerprint"]


def test_load_by_name_from_parent_folder(synthetic_export, tmp_path, monkeypatch):
    monkeypatch.chdir(synthetic_export.parent)
    ds = datasets.load_dataset("in9", "mixed_rand", split="test", cache_dir=str(tmp_path / "cache"))
    assert ds.num_rows == ROWS
    assert ds.features["bg_label"].names == list(CLASS_NAMES)
    row = ds[0]
    assert row["image_id"] == f"fg_{row['fg_image_id']}_bg_{row['bg_image_id']}"
    assert row["image"].size == (64, 64) and row["image"].format == "PNG"


def test_fg_mask_mask_is_binary_and_matches_original(synthetic_export, tmp_path):
    import numpy as np

    masks = _load(synthetic_export, "fg_mask", "test", tmp_path)
    original = _load(synthetic_export, "original", "test", tmp_path)
    assert masks["image_id"] == original["image_id"]
    for m, o in zip(masks.select(range(3)), original.select(range(3)), strict=True):
        mask = np.asarray(m["mask"])
        assert m["mask"].mode in ("L", "1") and set(np.unique(mask)) <= {0, 1} and mask.any()
        assert np.array_equal(np.asarray(m["image"]), np.asarray(o["image"]))
