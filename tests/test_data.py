"""open_data: export folders, synthetic, limits, fingerprints, errors."""

import json
import shutil

import pytest

from evaluator.data import first_per_class, open_data
from in9_builder.errors import In9Error


def test_export_folder_variants_and_fingerprints(synthetic_export, tmp_path):
    data = open_data(str(synthetic_export), cache_dir=tmp_path)
    summary = json.loads((synthetic_export / "in9_export.json").read_text())
    ds = data.variant("mixed_rand")
    assert len(ds) == 36
    assert {"image", "label", "image_id", "fg_image_id", "bg_image_id", "bg_label"} <= set(ds.column_names)
    assert data.fingerprint("mixed_rand") == summary["configs"]["mixed_rand"]["fingerprint"]
    assert set(data.variant("fg_mask").column_names) >= {"image", "mask", "label", "image_id"}
    block = data.describe(["mixed_rand"])
    assert block["source"] == "synthetic" and block["edition"] == "seeded" and block["seed"] == 0
    assert block["variants"] == {
        "mixed_rand": {"fingerprint": summary["configs"]["mixed_rand"]["fingerprint"], "count": 36}
    }


def test_limit_takes_the_first_n_per_class(synthetic_export, tmp_path):
    full = open_data(str(synthetic_export), cache_dir=tmp_path).variant("original")
    limited = open_data(str(synthetic_export), limit=2, cache_dir=tmp_path)
    ds = limited.variant("original")
    assert len(ds) == 18
    expected = [full[i]["image_id"] for i in first_per_class(full["label"], 2)]
    assert ds["image_id"] == expected
    assert sorted(ds["label"]) == sorted(list(range(9)) * 2)
    # The fingerprint is of the rows evaluated, so a limited run never claims the full export's.
    assert limited.fingerprint("original") != open_data(
        str(synthetic_export), cache_dir=tmp_path
    ).fingerprint("original")


def test_first_per_class():
    assert first_per_class([0, 0, 0, 1, 2, 2, 1], 2) == [0, 1, 3, 4, 5, 6]


def test_modified_export_is_refused(synthetic_export, tmp_path):
    copy = tmp_path / "in9"
    shutil.copytree(synthetic_export, copy)
    summary = json.loads((copy / "in9_export.json").read_text())
    summary["configs"]["original"]["fingerprint"] = "sha256:" + "0" * 64
    summary["configs"]["original"]["fingerprints"]["test"] = "sha256:" + "0" * 64
    (copy / "in9_export.json").write_text(json.dumps(summary))
    with pytest.raises(
        In9Error, match="config 'original' has fingerprint .* in9_export.json records sha256:000"
    ):
        open_data(str(copy), cache_dir=tmp_path / "c").fingerprint("original")


def test_synthetic_spec_and_its_export_record_the_same_data(tmp_path):
    from tests.fixtures_builder import make_synthetic_export

    variants = ["original", "mixed_rand"]
    export_dir = make_synthetic_export(
        tmp_path, per_class=2, size=32, scene_seed=3, train_per_class=0, variants=variants
    )
    spec = "synthetic:per_class=2,size=32,scene_seed=3"
    through_builder = open_data(spec, cache_dir=tmp_path / "c1").describe(variants)
    from_export = open_data(str(export_dir), cache_dir=tmp_path / "c2").describe(variants)
    assert (through_builder.pop("location"), from_export.pop("location")) == (spec, str(export_dir))
    assert through_builder == from_export
    assert through_builder["seed"] == 0  # the background draw; the scene seed is in the fingerprints
    other_scenes = open_data("synthetic:per_class=2,size=32", cache_dir=tmp_path / "c3")
    assert other_scenes.fingerprint("original") != through_builder["variants"]["original"]["fingerprint"]


def test_synthetic_source_through_the_builder(tmp_path):
    data = open_data("synthetic:per_class=2,size=32", cache_dir=tmp_path)
    ds = data.variant("mixed_same")
    assert len(ds) == 18 and ds[0]["image"].size == (32, 32)
    again = open_data("synthetic:per_class=2,size=32", cache_dir=tmp_path / "other")
    assert again.fingerprint("mixed_same") == data.fingerprint("mixed_same")
    assert data.describe()["edition"] == "seeded"


@pytest.mark.parametrize(
    ("data", "kwargs", "match"),
    [
        ("/nonexistent/in9", {}, r"data=/nonexistent/in9: no such file or folder"),
        ("synthetic:per_class=x", {}, r"expected synthetic\[:per_class=N"),
        ("synthetic", {"limit": 0}, r"limit=0"),
    ],
)
def test_bad_data_arguments(data, kwargs, match):
    with pytest.raises(In9Error, match=match):
        open_data(data, **kwargs)


def test_missing_variant_in_export(synthetic_export, tmp_path):
    copy = tmp_path / "in9"
    shutil.copytree(synthetic_export, copy)
    shutil.rmtree(copy / "mixed_next")
    with pytest.raises(In9Error, match="the export has no 'mixed_next' test split"):
        open_data(str(copy), cache_dir=tmp_path / "c").variant("mixed_next")


def test_release_tarball_official_edition(tmp_path):
    from in9_builder.sources.synthetic import SyntheticSource

    source = SyntheticSource(per_class=2, size=32, scene_seed=3)
    tarball = source.write_release(tmp_path / "rel", tarball=True)
    data = open_data(str(tarball), cache_dir=tmp_path / "c", source_kwargs={"per_class": 2})
    ds = data.variant("mixed_rand")
    assert len(ds) == 18
    # The official mixed files carry provenance only in their names; the builder parses it for pairing.
    assert (
        all(ds["fg_image_id"]) and ds["image_id"][0] == f"fg_{ds['fg_image_id'][0]}_bg_{ds['bg_image_id'][0]}"
    )
    block = data.describe()
    assert (block["source"], block["edition"], block["seed"]) == ("release", "official", None)


def test_official_release_offline_is_a_clear_error(tmp_path):
    with pytest.raises(In9Error, match=r"--data in9: cannot download the release .*--data "):
        open_data("in9", cache_dir=tmp_path).variant("original")


def test_release_drops_a_scored_variant_but_keeps_its_record(synthetic_export, tmp_path):
    data = open_data(str(synthetic_export), limit=3, cache_dir=tmp_path)
    fingerprint = data.fingerprint("no_fg")
    data.release("no_fg")
    assert "no_fg" not in data._datasets
    assert data.describe()["variants"] == {"no_fg": {"fingerprint": fingerprint, "count": 27}}
    assert "no_fg" not in data._datasets  # describing did not reload it
    assert len(data.variant("no_fg")) == 27
