"""The release source, end to end on the fake tarball: byte-for-byte files, provenance, every bad input."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from in9_builder.builder import In9
from in9_builder.classes import CLASS_FOLDERS, CONFIGS, MIXED_VARIANTS
from in9_builder.errors import In9Error
from in9_builder.export import export
from in9_builder.sources.release import ReleaseSource, extract_tarball, locate_release, parse_mixed_name
from in9_builder.sources.synthetic import SyntheticSource

PER_CLASS = 2


@pytest.fixture(scope="module")
def fake_tarball(tmp_path_factory) -> Path:
    return SyntheticSource(per_class=PER_CLASS, size=32, scene_seed=7).write_release(
        tmp_path_factory.mktemp("fake_release"), tarball=True
    )


@pytest.fixture(scope="module")
def tar_members(fake_tarball) -> dict[str, bytes]:
    with tarfile.open(fake_tarball) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


@pytest.fixture(scope="module")
def official_export(fake_tarball, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("official")
    return export(
        "release",
        tmp / "in9",
        data_dir=fake_tarball,
        source_kwargs={"per_class": PER_CLASS},
        num_proc=1,
        cache_dir=tmp / "cache",
    )


@pytest.fixture()
def release_copy(fake_tarball, tmp_path) -> Path:
    """A private extracted copy to break."""
    with tarfile.open(fake_tarball) as tar:
        tar.extractall(tmp_path / "copy", filter="data")
    return tmp_path / "copy" / "bg_challenge"


def _rows(export_dir: Path, config: str) -> list[dict]:
    return [
        r for f in sorted((export_dir / config).glob("test-*.parquet")) for r in pq.read_table(f).to_pylist()
    ]


def test_official_edition_is_byte_identical_to_the_tarball(official_export, tar_members):
    for config in CONFIGS:
        rows = _rows(official_export, config)
        assert len(rows) == 9 * PER_CLASS
        for row in rows:
            folder = CLASS_FOLDERS[row["label"]]
            variant = "original" if config == "fg_mask" else config
            member = f"bg_challenge/{variant}/val/{folder}/{row['image_id']}.JPEG"
            assert row["image"]["bytes"] == tar_members[member], member
            if config == "fg_mask":
                npy = np.load(
                    io.BytesIO(tar_members[f"bg_challenge/fg_mask/val/{folder}/{row['image_id']}.npy"])
                )
                assert np.array_equal(np.asarray(Image.open(io.BytesIO(row["mask"]["bytes"]))), npy)


def test_official_mixed_rows_carry_provenance_parsed_from_names(official_export):
    labels = {r["image_id"]: r["label"] for r in _rows(official_export, "original")}
    for config in MIXED_VARIANTS:
        for row in _rows(official_export, config):
            assert (row["fg_image_id"], row["bg_image_id"]) == parse_mixed_name(row["image_id"])
            assert row["bg_label"] == labels[row["bg_image_id"]]
            if config == "mixed_next":
                assert row["bg_label"] == (row["label"] + 1) % 9


def test_parse_mixed_name():
    assert parse_mixed_name("fg_n01440764_00153_bg_n02084071_00007") == ("n01440764_00153", "n02084071_00007")
    assert parse_mixed_name("n01440764_00153") is None


def test_seeded_release_re_renders_mixed_pixel_exact(fake_tarball, tmp_path, release_copy):
    out = export(
        "release",
        tmp_path / "in9",
        seed=3,
        data_dir=release_copy.parent,
        variants=["mixed_rand", "only_fg"],
        source_kwargs={"per_class": PER_CLASS},
        num_proc=1,
        cache_dir=tmp_path / "cache",
    )

    def pixels(path):
        return np.asarray(Image.open(path).convert("RGB"))

    source = ReleaseSource(release_copy, per_class=PER_CLASS)
    folders = {stem: CLASS_FOLDERS[label] for stem, label in source.labels().items()}
    for row in _rows(out, "mixed_rand"):
        fg, bg = row["fg_image_id"], row["bg_image_id"]
        image = pixels(release_copy / "original" / "val" / folders[fg] / f"{fg}.JPEG")
        mask = np.load(release_copy / "fg_mask" / "val" / folders[fg] / f"{fg}.npy")[..., None]
        background = pixels(release_copy / "only_bg_t" / "val" / folders[bg] / f"{bg}.JPEG")
        expected = image * mask + background * (1 - mask)
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(row["image"]["bytes"]))), expected)
    assert all(r["image"]["bytes"].startswith(b"\x89PNG") for r in _rows(out, "only_fg"))


def test_locate_release_from_tarball_parent_folder_or_bg_challenge(fake_tarball, release_copy, tmp_path):
    assert locate_release(release_copy) == release_copy
    assert locate_release(release_copy.parent) == release_copy
    found = locate_release(fake_tarball, _FakeDownloadManager(fake_tarball, tmp_path))
    assert found.name == "bg_challenge" and (found / "fg_mask" / "val" / "08_fish").is_dir()


class _FakeDownloadManager:
    """Stands in for datasets' DownloadManager: 'downloads' any URL to the local fake tarball."""

    def __init__(self, tarball: Path, cache: Path):
        self.tarball, self.urls = tarball, []
        self.download_config = type("Config", (), {"cache_dir": str(cache)})()

    def download(self, url):
        self.urls.append(url)
        return str(self.tarball)


def test_default_location_is_the_official_url_through_the_download_manager(fake_tarball, tmp_path):
    manager = _FakeDownloadManager(fake_tarball, tmp_path)
    kwargs = ReleaseSource.resolve_kwargs(None, {"per_class": PER_CLASS}, manager)
    assert manager.urls == [
        "https://github.com/MadryLab/backgrounds_challenge/releases/download/data/backgrounds_challenge_data.tar.gz"
    ]
    assert len(ReleaseSource(**kwargs).official_ids("original")) == 9 * PER_CLASS


def test_release_has_450_per_class_by_default(release_copy):
    with pytest.raises(In9Error, match="holds 2 .JPEG files, expected 450 per class"):
        ReleaseSource(release_copy).official_ids("original")


# --- bad input: one clear line naming the file, and nothing half-written ------------------------------------


def _export_fails(data_dir, tmp_path, variants, message, **kwargs):
    out = tmp_path / "in9"
    with pytest.raises(In9Error, match=message) as caught:
        export(
            "release",
            out,
            data_dir=data_dir,
            variants=variants,
            source_kwargs={"per_class": PER_CLASS},
            num_proc=1,
            cache_dir=tmp_path / "cache",
            **kwargs,
        )
    assert "\n" not in str(caught.value)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".in9")]
    return str(caught.value)


def test_missing_variant_folder(release_copy, tmp_path):
    shutil.rmtree(release_copy / "mixed_same")
    message = _export_fails(release_copy, tmp_path, ["mixed_same"], "missing variant folder")
    assert str(release_copy / "mixed_same" / "val") in message


def test_missing_class_folder(release_copy, tmp_path):
    shutil.rmtree(release_copy / "original" / "val" / "05_insect")
    _export_fails(release_copy, tmp_path, ["original"], "05_insect: missing class folder")


def test_wrong_count_per_class(release_copy, tmp_path):
    next((release_copy / "only_fg" / "val" / "00_dog").iterdir()).unlink()
    _export_fails(release_copy, tmp_path, ["only_fg"], "00_dog: holds 1 .JPEG files, expected 2 per class")


def test_corrupt_or_truncated_jpeg(release_copy, tmp_path):
    victim = sorted((release_copy / "mixed_rand" / "val" / "03_reptile").iterdir())[1]
    victim.write_bytes(victim.read_bytes()[:200])
    _export_fails(release_copy, tmp_path, ["mixed_rand"], f"{victim.name}: corrupt or truncated image")


def test_mask_shape_differs_from_image(release_copy, tmp_path):
    victim = sorted((release_copy / "fg_mask" / "val" / "01_bird").iterdir())[0]
    np.save(victim, np.ones((16, 32), np.uint8))
    _export_fails(release_copy, tmp_path, ["fg_mask"], rf"{victim.name}: mask shape \(16, 32\) differs")


def test_mask_not_zero_one(release_copy, tmp_path):
    victim = sorted((release_copy / "fg_mask" / "val" / "07_primate").iterdir())[0]
    np.save(victim, np.load(victim) * 255)
    _export_fails(release_copy, tmp_path, ["fg_mask"], rf"{victim.name}: mask values must be 0/1.*\[255\]")


def test_mask_without_original(release_copy, tmp_path):
    victim = sorted((release_copy / "fg_mask" / "val" / "04_carnivore").iterdir())[0]
    victim.rename(victim.with_name("n99000004_09999.npy"))
    _export_fails(release_copy, tmp_path, ["fg_mask"], "n99000004_09999.npy: mask without an original")


def test_truncated_tarball(fake_tarball, tmp_path):
    broken = tmp_path / "backgrounds_challenge_data.tar.gz"
    broken.write_bytes(fake_tarball.read_bytes()[: fake_tarball.stat().st_size // 2])
    (tmp_path / "work").mkdir()
    _export_fails(broken, tmp_path / "work", ["original"], "truncated or corrupt, download it again")
    assert not list((tmp_path / "work" / "cache").rglob("*.JPEG"))  # no partial extraction kept


def test_no_such_data_dir_and_folder_without_release(tmp_path):
    _export_fails(tmp_path / "nowhere", tmp_path, ["original"], "no such file or folder")
    (tmp_path / "empty").mkdir()
    _export_fails(tmp_path / "empty", tmp_path, ["original"], "no bg_challenge/ folder")


def test_unknown_variant_name():
    with pytest.raises(In9Error, match="unknown variant 'mixed_random'"):
        In9(config_name="mixed_random", source="release")
    with pytest.raises(In9Error, match="variants: unknown variant 'mixed_random'"):
        export("release", "/nonexistent/in9", variants=["mixed_random"])


def test_extraction_is_cached(fake_tarball, tmp_path):
    first = extract_tarball(fake_tarball, tmp_path)
    marker = first / "marker"
    marker.touch()
    assert extract_tarball(fake_tarball, tmp_path) == first and marker.exists()
