"""The dataset card, eval.yaml, the gallery and the published rows, as a Hub reader sees them; hub_cards is
templates and renderers only (data in, text out)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from huggingface_hub import DatasetCard
from PIL import Image

import hub_cards
from hub_cards import (
    CONFIG_DEFINITIONS,
    class_table,
    gallery_from_export,
    make_gallery,
    published_rows,
    render_dataset_card,
)
from in9_builder.classes import CLASSES, CONFIGS, IMAGE_VARIANTS
from in9_builder.errors import In9Error
from tests.fixtures_leaderboard import imported_modules


def test_exported_card_states_every_config_count_and_fingerprint(synthetic_export):
    card = DatasetCard.load(synthetic_export / "README.md")
    summary = json.loads((synthetic_export / "in9_export.json").read_text())
    assert [c["config_name"] for c in card.data.configs] == list(CONFIGS)
    assert card.data.license == "mit"  # synthetic images: no ImageNet terms
    assert "imagenet-1k" not in (card.data.source_datasets or [])
    for name in CONFIGS:
        entry = summary["configs"][name]
        line = next(x for x in card.text.splitlines() if x.startswith(f"| `{name}` |"))
        assert CONFIG_DEFINITIONS[name] in line
        assert (
            f"| {entry['num_rows']['test']} | {entry['num_rows']['train']} | `{entry['fingerprint']}` |"
            in line
        )
    assert "| seed | `0` |" in card.text and "**Seeded edition** (seed 0)" in card.text
    assert "![The same foregrounds in every config](gallery.png)" in card.text
    assert (synthetic_export / "gallery.png").exists()
    assert "@inproceedings{xiao2021noise," in card.text


def test_card_class_table_is_the_package_mapping():
    rows = class_table()
    assert [r["name"] for r in rows] == [c.name for c in CLASSES]
    assert sum(r["num_in1k"] for r in rows) == 370
    assert rows[0]["in1k"] == "151-170, 173-268" and rows[8]["in1k"] == "0-6, 389-397"


def test_official_card_has_imagenet_terms():
    context = {
        "source": "release",
        "edition": "official",
        "seed": None,
        "source_params": {},
        "configs": {"original": {"fingerprint": "sha256:ab", "num_rows": {"test": 4050}}},
    }
    text = render_dataset_card({}, context)
    card = DatasetCard(text)
    assert card.data.license == "other" and card.data.license_name == "imagenet-terms-of-access"
    assert card.data.source_datasets == ["imagenet-1k"]
    assert "**Official edition**: every image is the file of the original release" in card.text
    assert "[ImageNet terms of access](https://image-net.org/download.php)" in card.text
    assert "| `original` | Original | the unmodified image | 4050 | `sha256:ab` |" in card.text


def test_eval_yaml_has_one_task_per_variant(synthetic_export):
    data = yaml.safe_load((synthetic_export / "eval.yaml").read_text())
    assert data["evaluation_framework"] == "in9-bench"
    assert data["tasks"] == [{"id": v, "config": v, "split": "test"} for v in IMAGE_VARIANTS]


def test_gallery_is_made_from_the_data_and_deterministic(tmp_path, synthetic_export):
    a = gallery_from_export(synthetic_export, tmp_path / "a.png", examples=2, tile=32)
    b = gallery_from_export(synthetic_export, tmp_path / "b.png", examples=2, tile=32)
    assert a.read_bytes() == b.read_bytes()
    image = Image.open(a).convert("RGB")
    assert image.size == (9 * 34 + 2, 18 + 2 * 34 + 2)  # 9 configs x 2 examples, 32 px tiles, 2 px gaps
    # the top-left tile is the first 'original' image (class 0), resized with NEAREST
    first = pq.read_table(sorted((synthetic_export / "original").glob("test-*.parquet"))[0]).slice(0, 1)
    source = Image.open(io.BytesIO(first.column("image")[0].as_py()["bytes"])).convert("RGB")
    expected = source.resize((32, 32), Image.Resampling.NEAREST)
    assert image.crop((2, 20, 34, 52)).tobytes() == expected.tobytes()
    # the fg_mask column shows the mask as black/white
    mask_tile = image.crop((2 + 8 * 34, 20, 34 + 8 * 34, 52))
    colours = {tuple(px) for px in np.asarray(mask_tile).reshape(-1, 3).tolist()}
    assert colours == {(0, 0, 0), (255, 255, 255)}


def test_gallery_errors_are_one_line(tmp_path):
    with pytest.raises(In9Error, match="no 'original' config folder; pass an in9-build export folder"):
        gallery_from_export(tmp_path)
    with pytest.raises(In9Error, match="gallery: no configs to draw"):
        make_gallery({}, tmp_path / "x.png")


def test_published_rows_are_the_spec_numbers():
    rows = published_rows()
    assert len(rows) == 17
    for r in rows:  # the published BG-gap is Mixed-Same - Mixed-Rand, to the printed precision
        assert abs(r["mixed_same"] - r["mixed_rand"] - r["bg_gap"]) < 0.011, r["model"]
        assert r["source_url"].startswith("https://")
    readme = {r["model"]: r for r in rows if r["source"] == "madry-readme"}
    assert (readme["ResNet-50"]["original"], readme["ResNet-50"]["challenge_accuracy"]) == (95.6, 22.3)
    assert readme["ResNet-50 (IN-9L)"]["challenge_accuracy"] == 12.0
    third = {r["model"]: r for r in rows if r["source"] == "robustness-vit"}
    assert (third["ViT-L/16"]["challenge_accuracy"], third["BiT-M R101x3"]["challenge_accuracy"]) == (
        20.02,
        3.78,
    )


def test_hub_cards_never_import_the_evaluator_but_the_metric_module_reads_its_metrics():
    imports = imported_modules(Path(hub_cards.__file__).parent)
    evaluator = {
        file: sorted(n for n in names if n.split(".")[0] == "evaluator") for file, names in imports.items()
    }
    assert {file: names for file, names in evaluator.items() if names} == {
        "metric/in9_metric.py": ["evaluator", "evaluator.metrics"]
    }
