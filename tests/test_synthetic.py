"""The synthetic source: deterministic scenes, exact masks and boxes, splits, the fake release layout."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest

from in9_builder.classes import CLASS_FOLDERS, CONFIGS
from in9_builder.errors import In9Error
from in9_builder.sources import get_source
from in9_builder.sources.release import parse_mixed_name
from in9_builder.sources.synthetic import FAKE_WNIDS, SyntheticSource, synthetic_image_id


def _bytes(scenes):
    return [(s.image_id, s.label, s.image.tobytes(), s.mask.tobytes(), s.bbox) for s in scenes]


def test_same_scene_seed_same_scenes_different_scene_seed_different_scenes():
    a = _bytes(SyntheticSource(per_class=2, size=32, scene_seed=5).scenes("test"))
    b = _bytes(SyntheticSource(per_class=2, size=32, scene_seed=5).scenes("test"))
    c = _bytes(SyntheticSource(per_class=2, size=32, scene_seed=6).scenes("test"))
    assert a == b
    assert all(x[2] != y[2] for x, y in zip(a, c, strict=True))


def test_scenes_sorted_by_label_and_id_with_imagenet_like_stems():
    source = SyntheticSource(per_class=3, size=32)
    scenes = list(source.scenes("test"))
    assert len(scenes) == 27
    keys = [(s.label, s.image_id) for s in scenes]
    assert keys == sorted(keys)
    assert scenes[0].image_id == f"{FAKE_WNIDS[0]}_00000" == "n99000000_00000"
    assert source.labels("test") == {s.image_id: s.label for s in scenes}


def test_random_access_equals_iteration():
    source = SyntheticSource(per_class=2, size=32, scene_seed=1)
    for scene in source.scenes("train"):
        again = source.scene("train", scene.image_id)
        assert np.array_equal(again.image, scene.image) and again.bbox == scene.bbox


def test_train_split_holds_different_scenes():
    source = SyntheticSource(per_class=2, size=32, train_per_class=3)
    assert source.splits() == ["test", "train"]
    test_ids, train_ids = set(source.labels("test")), set(source.labels("train"))
    assert len(train_ids) == 27 and not test_ids & train_ids
    assert synthetic_image_id(4, 1, "train") in train_ids
    assert SyntheticSource(per_class=2, size=32, train_per_class=0).splits() == ["test"]


def test_mask_is_exact_binary_foreground_and_bbox_is_its_inclusive_extent():
    for scene in SyntheticSource(per_class=2, size=48).scenes("test"):
        assert scene.image.shape == (48, 48, 3) and scene.image.dtype == np.uint8
        assert scene.mask.dtype == np.uint8 and set(np.unique(scene.mask)) == {0, 1}
        rows, cols = np.flatnonzero(scene.mask.any(1)), np.flatnonzero(scene.mask.any(0))
        assert scene.bbox == (cols[0], rows[0], cols[-1], rows[-1])
        xmin, ymin, xmax, ymax = scene.bbox
        assert (xmax - xmin + 1) * (ymax - ymin + 1) < 0.9 * 48 * 48  # Only-BG-T always has a strip


def test_background_is_class_correlated():
    # bg_correlation=1: a class's backgrounds share its palette, so mean background colours cluster by class.
    source = SyntheticSource(per_class=6, size=32, bg_correlation=1.0)
    means = {}
    for scene in source.scenes("test"):
        means.setdefault(scene.label, []).append(scene.image[scene.mask == 0].mean(0))
    centroids = np.array([np.mean(v, 0) for v in means.values()])
    spread_within = np.mean(
        [
            np.linalg.norm(np.array(v) - c, axis=1).mean()
            for v, c in zip(means.values(), centroids, strict=True)
        ]
    )
    spread_between = np.linalg.norm(centroids[:, None] - centroids[None], axis=-1).sum() / (9 * 8)
    assert spread_between > 2 * spread_within


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"per_class": 1}, "per_class=1"),
        ({"size": 8}, "size=8"),
        ({"bg_correlation": 1.5}, "bg_correlation"),
        ({"train_per_class": 1}, "train_per_class=1"),
    ],
)
def test_bad_parameters_are_clear_errors(kwargs, message):
    with pytest.raises(In9Error, match=message):
        SyntheticSource(**kwargs)


def test_unknown_split_and_foreign_id_are_errors():
    source = SyntheticSource(per_class=2, size=32, train_per_class=0)
    with pytest.raises(In9Error, match="no split 'train'"):
        source.labels("train")
    with pytest.raises(In9Error, match="not a synthetic image id"):
        source.scene("test", "n01440764_00001")
    with pytest.raises(In9Error, match="data_dir='/somewhere': the synthetic source reads no data"):
        type(source).resolve_kwargs("/somewhere", {}, None)


def test_registered_as_synthetic():
    assert isinstance(get_source("synthetic", per_class=2, size=32), SyntheticSource)
    with pytest.raises(In9Error, match="unknown source 'nope'"):
        get_source("nope")


def test_write_release_exact_layout(tmp_path):
    out = SyntheticSource(per_class=2, size=32).write_release(tmp_path / "fake")
    root = out / "bg_challenge"
    assert sorted(p.name for p in root.iterdir()) == sorted(CONFIGS)
    for variant in CONFIGS:
        assert sorted(p.name for p in (root / variant / "val").iterdir()) == sorted(CLASS_FOLDERS)
        suffix = ".npy" if variant == "fg_mask" else ".JPEG"
        for folder in CLASS_FOLDERS:
            files = list((root / variant / "val" / folder).iterdir())
            assert len(files) == 2 and all(f.suffix == suffix for f in files)
    assert (root / "original" / "val" / "02_wheeled vehicle" / "n99000002_00001.JPEG").is_file()
    mask = np.load(root / "fg_mask" / "val" / "00_dog" / "n99000000_00000.npy")
    assert mask.shape == (32, 32) and set(np.unique(mask)) == {0, 1}
    mixed = sorted((root / "mixed_next" / "val" / "08_fish").iterdir())[0].stem
    fg, bg = parse_mixed_name(mixed)
    assert fg == "n99000008_00000" and bg.startswith(FAKE_WNIDS[0])  # next class of fish wraps to dog


def test_write_release_tarball_and_refuses_to_overwrite(tmp_path):
    source = SyntheticSource(per_class=2, size=32)
    tarball = source.write_release(tmp_path, tarball=True)
    assert tarball.name == "backgrounds_challenge_data.tar.gz"
    assert sorted(p.name for p in tmp_path.iterdir()) == [tarball.name]  # no staging or bg_challenge left
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    assert "bg_challenge/only_bg_t/val/06_musical instrument/n99000006_00001.JPEG" in names
    assert len([n for n in names if n.endswith((".JPEG", ".npy"))]) == 9 * 9 * 2
    with pytest.raises(In9Error, match="already exists; pass overwrite=True"):
        source.write_release(tmp_path, tarball=True)
    source.write_release(tmp_path, tarball=True, overwrite=True)


def test_a_replacement_that_fails_midway_keeps_the_old_release(tmp_path, fail_renaming_into):
    source = SyntheticSource(per_class=2, size=32, train_per_class=0)
    source.write_release(tmp_path)
    root = tmp_path / "bg_challenge"
    before = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    calls = fail_renaming_into(root)
    with pytest.raises(OSError, match="disk gone"):
        source.write_release(tmp_path, seed=1, overwrite=True)
    assert calls, "the new folder was never renamed in"
    assert {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bg_challenge"]  # no temporary folder left
