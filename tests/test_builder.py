"""The In9 builder: direct use, features, row order, pixel-exact variants, seeds, plug-in sources."""

from __future__ import annotations

import io
from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from in9_builder.builder import In9, generate_rows
from in9_builder.classes import CLASS_NAMES, MIXED_VARIANTS
from in9_builder.errors import In9Error
from in9_builder.export import export
from in9_builder.render import composite
from in9_builder.sources import register_source
from in9_builder.sources.synthetic import SyntheticSource


def _table(export_dir: Path, config: str, split: str = "test") -> list[dict]:
    files = sorted((export_dir / config).glob(f"{split}-*.parquet"))
    return [r for f in files for r in pq.read_table(f).to_pylist()]


def _pixels(cell: dict) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(cell["bytes"])))


def test_builder_used_directly(tmp_path):
    builder = In9(
        config_name="mixed_rand",
        source="synthetic",
        seed=1,
        source_kwargs={"per_class": 3, "size": 32, "train_per_class": 0},
        cache_dir=str(tmp_path),
    )
    builder.download_and_prepare()
    ds = builder.as_dataset("test")
    assert ds.num_rows == 27 and list(builder.as_dataset()) == ["test"]
    assert ds.features["label"] == datasets.ClassLabel(names=list(CLASS_NAMES))
    assert ds.features["bg_label"].names == list(CLASS_NAMES)
    assert ds.features["image"] == datasets.Image()
    assert [r["fg_image_id"] for r in ds.select_columns(["fg_image_id"])] == sorted(
        SyntheticSource(per_class=3, size=32).labels("test"), key=lambda i: (int(i[1:9]), i)
    )


@pytest.mark.parametrize("split", ["test", "train"])
def test_every_mixed_row_is_the_composite_of_its_recorded_fg_and_bg(synthetic_export, split):
    originals = {r["image_id"]: r for r in _table(synthetic_export, "fg_mask", split)}
    backgrounds = {r["image_id"]: _pixels(r["image"]) for r in _table(synthetic_export, "only_bg_t", split)}
    for config in MIXED_VARIANTS:
        rows = _table(synthetic_export, config, split)
        assert len(rows) == len(originals)
        for row in rows:
            fg = originals[row["fg_image_id"]]
            expected = composite(_pixels(fg["image"]), _pixels(fg["mask"]), backgrounds[row["bg_image_id"]])
            assert np.array_equal(_pixels(row["image"]), expected), row["image_id"]
            assert row["label"] == fg["label"]
            assert row["bg_label"] == originals[row["bg_image_id"]]["label"]  # drawn from the same split


def test_foreground_variants_follow_the_mask(synthetic_export):
    masks = {r["image_id"]: r for r in _table(synthetic_export, "fg_mask")}
    for config, keep in (("only_fg", 1), ("no_fg", 0)):
        for row in _table(synthetic_export, config):
            source = masks[row["image_id"]]
            image, mask = _pixels(source["image"]), _pixels(source["mask"])
            expected = image * (mask == keep)[..., None]
            assert np.array_equal(_pixels(row["image"]), expected)


def test_mixed_same_never_own_background_mixed_next_is_next_class(synthetic_export):
    for row in _table(synthetic_export, "mixed_same"):
        assert row["bg_image_id"] != row["fg_image_id"] and row["bg_label"] == row["label"]
    for row in _table(synthetic_export, "mixed_next"):
        assert row["bg_label"] == (row["label"] + 1) % 9


def test_seed_none_is_seed_zero_without_official_files():
    source = SyntheticSource(per_class=2, size=32, train_per_class=0)
    ids = list(source.labels("test"))[:4]
    rows_none = list(generate_rows(source, "mixed_same", "test", ids, None))
    rows_zero = list(generate_rows(source, "mixed_same", "test", ids, 0))
    assert rows_none == rows_zero


def test_jpeg_on_request_png_by_default():
    source = SyntheticSource(per_class=2, size=32, train_per_class=0)
    ids = list(source.labels("test"))[:1]
    assert next(generate_rows(source, "only_bg_t", "test", ids, 0))["image"]["bytes"].startswith(b"\x89PNG")
    jpeg = next(generate_rows(source, "only_bg_t", "test", ids, 0, "jpeg"))["image"]["bytes"]
    assert jpeg.startswith(b"\xff\xd8")
    with pytest.raises(In9Error, match="image_format='gif': choose png or jpeg"):
        In9(config_name="original", source="synthetic", image_format="gif")


def test_unknown_config_and_split_are_clear_errors(tmp_path):
    with pytest.raises(In9Error, match="unknown variant 'orignal'"):
        In9(config_name="orignal", source="synthetic")
    builder = In9(
        config_name="original",
        source="synthetic",
        splits=("validation",),
        source_kwargs={"per_class": 2, "size": 32},
        cache_dir=str(tmp_path),
    )
    with pytest.raises(In9Error, match="no split 'validation'"):
        builder.download_and_prepare()


class PlugInSource:
    """A minimal third-party source: labels + scene only (no background(), no resolve_kwargs)."""

    name = "plugin"
    has_bboxes = True
    has_official_files = False

    def __init__(self, count: int = 2):
        self._inner = SyntheticSource(per_class=count, size=32, train_per_class=0, scene_seed=11)

    def splits(self):
        return ["test"]

    def labels(self, split):
        return self._inner.labels(split)

    def scene(self, split, image_id):
        return self._inner.scene(split, image_id)

    def params(self):
        return {"count": self._inner.per_class}


def test_a_registered_source_exports_without_export_changes(tmp_path):
    register_source("plugin-test", f"{__name__}:PlugInSource")
    out = export(
        "plugin-test",
        tmp_path / "in9",
        variants=["mixed_next", "fg_mask"],
        source_kwargs={"count": 2},
        num_proc=1,
        cache_dir=tmp_path / "cache",
    )
    reference = SyntheticSource(per_class=2, size=32, train_per_class=0, scene_seed=11)
    rows = _table(out, "mixed_next")
    assert len(rows) == 18
    row = rows[0]
    fg, bg = reference.scene("test", row["fg_image_id"]), reference.scene("test", row["bg_image_id"])
    from in9_builder.render import render_variant

    assert np.array_equal(_pixels(row["image"]), render_variant("mixed_next", fg, bg))
