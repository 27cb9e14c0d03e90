"""The export folder: layout, summary, card, offline loading, fingerprints."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from in9_builder.classes import CLASS_NAMES, CONFIGS, MIXED_VARIANTS, NUM_CLASSES
from in9_builder.errors import In9Error
from in9_builder.export import export
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


# --- determinism, seeds, atomicity ----------------------------------------------------------------------

SMALL = {"per_class": 3, "size": 32, "train_per_class": 0}


def _small_export(tmp_path, name, **kwargs):
    kwargs.setdefault("num_proc", 1)
    return export(
        "synthetic", tmp_path / name / "in9", source_kwargs=SMALL, cache_dir=tmp_path / "cache", **kwargs
    )


def _fingerprints(export_dir):
    return {
        c: e["fingerprint"]
        for c, e in json.loads((export_dir / "in9_export.json").read_text())["configs"].items()
    }


@pytest.fixture(scope="module")
def seed0_export(tmp_path_factory):
    return _small_export(tmp_path_factory.mktemp("seed0"), "a", seed=0)


@pytest.mark.slow  # worker processes build the data several times over
def test_same_seed_same_fingerprints_with_one_or_two_processes(seed0_export, tmp_path):
    two = _small_export(tmp_path, "b", seed=0, num_proc=2)
    assert _fingerprints(two) == _fingerprints(seed0_export)
    assert len(list((two / "mixed_rand").glob("test-*.parquet"))) == 2  # really written by two workers


def test_seeds_change_every_mixed_config_and_nothing_else(seed0_export, tmp_path):
    seed1 = _fingerprints(_small_export(tmp_path, "c", seed=1))
    seed0 = _fingerprints(seed0_export)
    for config in CONFIGS:
        assert (seed1[config] != seed0[config]) == (config in MIXED_VARIANTS), config


def test_existing_output_needs_overwrite_and_is_replaced_atomically(seed0_export, tmp_path):
    out = _small_export(tmp_path, "d", seed=0, variants=["original"])
    with pytest.raises(In9Error, match=r"already exists; pass overwrite=True"):
        _small_export(tmp_path, "d", seed=0, variants=["original"])
    (out / "marker").write_text("old")
    export(
        "synthetic",
        out,
        seed=0,
        variants=["no_fg"],
        source_kwargs=SMALL,
        num_proc=1,
        overwrite=True,
        cache_dir=tmp_path / "cache",
    )
    assert (out / "no_fg").is_dir() and not (out / "original").exists() and not (out / "marker").exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["in9"]


@pytest.mark.parametrize(
    "failure, raised",
    [
        (RuntimeError("disk full"), datasets.exceptions.DatasetGenerationError),
        (KeyboardInterrupt(), KeyboardInterrupt),
    ],
)
def test_failed_or_interrupted_export_leaves_nothing_and_keeps_the_old_one(
    tmp_path, monkeypatch, failure, raised
):
    import in9_builder.builder as builder_module

    out = _small_export(tmp_path, "e", seed=0, variants=["original"])
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    original_rows = builder_module.generate_rows
    produced = []

    def failing_rows(*args, **kwargs):
        for row in original_rows(*args, **kwargs):
            produced.append(row["image_id"])
            if len(produced) == 32:  # in the second config, after the first has been written
                raise failure
            yield row

    monkeypatch.setattr(builder_module, "generate_rows", failing_rows)
    with pytest.raises(raised):
        export(
            "synthetic",
            out,
            seed=0,
            variants=["original", "no_fg"],
            source_kwargs=SMALL,
            num_proc=1,
            overwrite=True,
            cache_dir=tmp_path / "cache",
        )
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["in9"]  # no staging folder left


def test_jpeg_export_and_bad_arguments(tmp_path):
    out = _small_export(tmp_path, "f", seed=0, variants="only_bg_b", image_format="jpeg")
    assert json.loads((out / "in9_export.json").read_text())["image_format"] == "jpeg"
    import pyarrow.parquet as pq

    cell = pq.read_table(next((out / "only_bg_b").glob("*.parquet"))).to_pylist()[0]["image"]
    assert cell["bytes"].startswith(b"\xff\xd8")
    with pytest.raises(In9Error, match="image_format='webp'"):
        _small_export(tmp_path, "g", image_format="webp")
    with pytest.raises(In9Error, match="num_proc=0"):
        _small_export(tmp_path, "h", num_proc=0)
    with pytest.raises(In9Error, match="variants: unknown variant 'mixed'"):
        _small_export(tmp_path, "i", variants=["original", "mixed"])


def test_push_to_hub_uploads_the_finished_folder(tmp_path, monkeypatch):
    import huggingface_hub

    calls = []

    class FakeApi:
        def create_repo(self, repo_id, **kwargs):
            calls.append(("create", repo_id, kwargs["repo_type"]))

        def upload_folder(self, *, repo_id, folder_path, repo_type, **kwargs):
            calls.append(("upload", repo_id, repo_type, sorted(p.name for p in Path(folder_path).iterdir())))
            return "commit-url"

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    out = _small_export(tmp_path, "p", seed=0, variants=["original"], push_to_hub="my-org/in9")
    assert calls[0] == ("create", "my-org/in9", "dataset")
    assert calls[1][:3] == ("upload", "my-org/in9", "dataset") and "README.md" in calls[1][3]
    assert (
        "my-org/in9" in (out / "eval.yaml").read_text()
        and 'load_dataset("my-org/in9"' in (out / "README.md").read_text()
    )
    with pytest.raises(In9Error, match="push_to_hub='in9': give the dataset repository as ORG/NAME"):
        _small_export(tmp_path, "q", push_to_hub="in9")
    assert not (tmp_path / "q").exists()
