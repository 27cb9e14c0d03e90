"""The toolkit end to end on a tiny ImageNet tree: filters, GrabCut quality, errors, summary, layouts."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from in9_builder.classes import CLASS_FOLDERS, IMAGE_VARIANTS, NUM_CLASSES
from in9_builder.cli import main
from in9_builder.errors import In9Error
from in9_builder.release_layout import write_release_layout
from in9_builder.sources import get_source
from in9_builder.sources.imagenet import ImagenetSource
from in9_builder.sources.synthetic import SyntheticSource
from in9_builder.toolkit.balance import format_summary
from in9_builder.toolkit.geometry import resize_crop
from in9_builder.toolkit.shards import collect
from tests.fixtures_toolkit import PER_CLASS


@pytest.fixture(scope="module")
def built(toolkit_tree, tmp_path_factory):
    """The XML-box source of the session tree, segmented once for this module."""
    writer, expected, boxes = toolkit_tree
    source = ImagenetSource(writer.root / "imagenet", boxes, work_dir=tmp_path_factory.mktemp("work"))
    source.summary()
    return writer, expected, source


def _reasons(source: ImagenetSource) -> dict[str, str | None]:
    source.summary()  # segments, if not done yet
    outcomes = collect(source.index(), [source.work_dir])
    return {o["image_id"]: o["reason"] for o in outcomes}


def test_every_planted_image_is_rejected_for_its_reason(built):
    writer, expected, source = built
    reasons = _reasons(source)
    assert {image_id: reasons[image_id] for image_id in expected} == expected
    # The synthetic photos pass every filter; GrabCut may miss a few of them (a 64 px scene can be hard).
    synthetic = {i: reasons[i] for i in writer.true_masks}
    assert set(synthetic.values()) <= {None, "grabcut_failed"}
    assert sum(r is not None for r in synthetic.values()) <= len(synthetic) // 5
    test = source.summary()["sets"]["test"]
    test_reasons = [reasons[r.image_id] for r in source.index().records if r.split == "test"]
    assert test["candidates"] == NUM_CLASSES * PER_CLASS + len(expected) == len(test_reasons)
    assert test["rejected"] == {r: sum(t == r for t in test_reasons) for r in test["rejected"]}
    assert all(test["rejected"][r] == 1 for r in expected.values() if r != "grabcut_failed")
    assert test["accepted"] == sum(n for n in test["accepted_per_class"]) == test_reasons.count(None)
    assert test["kept"] == NUM_CLASSES * min(test["accepted_per_class"])
    train = source.summary()["sets"]["train"]
    assert train["unmapped"] == 1 and train["rejected"]["no_annotation"] == NUM_CLASSES
    table = format_summary(source.summary())
    for reason, count in test["rejected"].items():
        assert f"{count:>8}  {reason}" in table


def test_csv_boxes_give_the_same_outcomes_but_cannot_check_the_size(toolkit_tree, tmp_path):
    writer, expected, boxes = toolkit_tree
    xml_source = ImagenetSource(writer.root / "imagenet", boxes, work_dir=tmp_path / "xml")
    csv_source = ImagenetSource(writer.root / "imagenet", writer.write_csv(), work_dir=tmp_path / "csv")
    xml_reasons, csv_reasons = _reasons(xml_source), _reasons(csv_source)
    size_planted = next(i for i, r in expected.items() if r == "size_mismatch")
    assert csv_reasons[size_planted] != "size_mismatch"  # LOC_*_solution.csv records no image size
    del xml_reasons[size_planted], csv_reasons[size_planted]
    assert csv_reasons == xml_reasons


def test_grabcut_masks_match_the_true_masks(built):
    writer, _, source = built
    ious = []
    for split in ("test", "train"):
        for scene in source.scenes(split):
            truth = resize_crop(writer.true_masks[scene.image_id])
            ious.append((truth & scene.mask).sum() / (truth | scene.mask).sum())
    assert len(ious) == len(source.labels("test")) + len(source.labels("train")) >= NUM_CLASSES * 3
    assert np.median(ious) >= 0.85


def test_scenes_are_224_sorted_and_balanced(built):
    _, _, source = built
    scenes = list(source.scenes("test"))
    assert [(s.label, s.image_id) for s in scenes] == sorted((s.label, s.image_id) for s in scenes)
    per_class = min(source.summary()["sets"]["test"]["accepted_per_class"])
    assert per_class >= 1 and np.bincount([s.label for s in scenes]).tolist() == [per_class] * NUM_CLASSES
    scene = scenes[0]
    assert scene.image.shape == (224, 224, 3) and scene.mask.shape == (224, 224) and scene.mask.max() == 1
    xmin, ymin, xmax, ymax = scene.bbox
    assert scene.mask[:ymin].sum() == 0 and scene.mask[ymax + 1 :].sum() == 0  # the mask lies inside the box
    assert set(source.labels("test")) == {s.image_id for s in scenes}
    assert len(source.labels("train")) == NUM_CLASSES * min(
        source.summary()["sets"]["train"]["accepted_per_class"]
    )


def test_registered_as_the_imagenet_source(toolkit_tree, tmp_path):
    writer, _, boxes = toolkit_tree
    source = get_source(
        "imagenet", data_dir=str(writer.root / "imagenet"), boxes=str(boxes), work_dir=tmp_path
    )
    assert source.name == "imagenet" and source.splits() == ["test", "train"]


def test_in9l_keeps_every_image_of_the_mapped_classes(toolkit_tree, tmp_path):
    writer, _, boxes = toolkit_tree
    source = ImagenetSource(
        writer.root / "imagenet", boxes, work_dir=tmp_path, train_set="in9l", splits=("train",)
    )
    in9l = source.summary()["sets"]["in9l"]
    # boxed or not, all are in; the unmapped cat is not
    assert in9l["candidates"] == NUM_CLASSES * (PER_CLASS + 1)
    assert in9l["per_class"] == PER_CLASS + 1 and in9l["unmapped"] == 1
    scene = next(source.scenes("train"))
    assert scene.bbox is None and scene.image.shape == (224, 224, 3)
    assert not any(tmp_path.glob("index-*/chunk-*"))  # nothing segmented


# --- bad input


def test_a_class_folder_that_is_not_a_wnid_is_an_error(tree_copy, tmp_path):
    imagenet, boxes = tree_copy
    (imagenet / "train" / "cats").mkdir()
    with pytest.raises(In9Error, match=r"train/cats: class folder 'cats' is not an ImageNet-1k wnid"):
        ImagenetSource(imagenet, boxes, work_dir=tmp_path / "w").summary()


def test_an_unreadable_image_is_an_error_that_names_it(tree_copy, tmp_path):
    imagenet, boxes = tree_copy
    victim = sorted((imagenet / "val").rglob("*.JPEG"))[0]
    victim.write_bytes(victim.read_bytes()[:200])  # truncated
    with pytest.raises(In9Error, match=f"{victim.name}: unreadable image"):
        ImagenetSource(imagenet, boxes, work_dir=tmp_path / "w").summary()


def test_a_malformed_box_file_is_an_error_that_names_it(tree_copy, tmp_path):
    imagenet, boxes = tree_copy
    victim = sorted((boxes / "val").glob("*.xml"))[0]
    victim.write_text("<annotation><size>")
    with pytest.raises(In9Error, match=f"{victim.name}: malformed box annotation"):
        ImagenetSource(imagenet, boxes, work_dir=tmp_path / "w").summary()


def test_cli_errors_are_one_line_and_exit_2(tree_copy, tmp_path, capsys):
    imagenet, boxes = tree_copy
    code = main(
        [
            "toolkit",
            "--imagenet",
            str(imagenet),
            "--boxes",
            str(tmp_path / "nope"),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: --boxes") and err.count("\n") == 1
    assert main(["toolkit", "--imagenet", str(imagenet), "--boxes", str(boxes)]) == 2
    assert "--out is required" in capsys.readouterr().err


# --- layouts


def test_release_layout(built, tmp_path):
    _, _, source = built
    out = main_release(source, tmp_path / "release")
    test_root = out / "bg_challenge"
    for variant in (*IMAGE_VARIANTS, "fg_mask"):
        files = sorted((test_root / variant / "val").rglob("*.*"))
        assert len(files) == len(source.labels("test")), variant
        assert {f.parent.name for f in files} == set(CLASS_FOLDERS)
    mixed = sorted((test_root / "mixed_rand" / "val").rglob("*.JPEG"))[0].stem
    assert mixed.startswith("fg_") and "_bg_" in mixed
    scene = next(source.scenes("test"))
    mask = np.load(test_root / "fg_mask" / "val" / CLASS_FOLDERS[scene.label] / f"{scene.image_id}.npy")
    assert np.array_equal(mask, scene.mask)
    with Image.open(
        test_root / "original" / "val" / CLASS_FOLDERS[scene.label] / f"{scene.image_id}.JPEG"
    ) as im:
        assert im.size == (224, 224)
    assert len(list((out / "only_bg_t" / "train").rglob("*.JPEG"))) == len(source.labels("train"))
    summary = json.loads((out / "toolkit_summary.json").read_text())
    assert summary["images"] == {"test": len(source.labels("test")), "train": len(source.labels("train"))}
    assert summary["source_params"]["summary"] == source.summary()


def test_release_layout_of_in9l(toolkit_tree, tmp_path):
    writer, _, boxes = toolkit_tree
    source = ImagenetSource(
        writer.root / "imagenet", boxes, work_dir=tmp_path / "w", train_set="in9l", splits=("train",)
    )
    out = main_release(source, tmp_path / "release")
    files = sorted((out / "in9l" / "train").rglob("*.JPEG"))
    assert len(files) == NUM_CLASSES * (PER_CLASS + 1)
    assert sorted(p.name for p in out.iterdir()) == ["in9l", "toolkit_summary.json"]


def test_a_release_layout_replacement_that_fails_midway_keeps_the_old_one(tmp_path, fail_renaming_into):
    source = SyntheticSource(per_class=2, size=32, train_per_class=2)  # any source: no GrabCut needed here
    out = write_release_layout(source, tmp_path / "release", seed=0)
    before = _files(out)
    failed = fail_renaming_into(out)
    with pytest.raises(OSError, match="disk gone"):
        write_release_layout(source, out, seed=1, overwrite=True)
    assert failed, "the new folder was never renamed in"
    assert _files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["release"]  # no temporary folder left


def _files(root):
    return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def main_release(source: ImagenetSource, out):
    return write_release_layout(source, out, seed=0)


def test_hub_layout_through_the_cli(built, tmp_path):
    writer, _, source = built
    boxes = source.boxes
    out = tmp_path / "in9"
    args = [
        "toolkit",
        "--imagenet",
        str(writer.root / "imagenet"),
        "--boxes",
        str(boxes),
        "--out",
        str(out),
        "--work-dir",
        str(tmp_path / "work"),
        "--variants",
        "original,fg_mask",
        "--splits",
        "test",
        "--quiet",
        "--num-proc",
        "1",
    ]
    assert main(args) == 0
    summary = json.loads((out / "in9_export.json").read_text())
    assert summary["source"] == "imagenet"
    assert summary["configs"]["original"]["num_rows"] == {"test": len(source.labels("test"))}
    assert summary["source_params"]["summary"]["sets"]["test"]["rejected"]["box_too_large"] == 1
    shutil.rmtree(out)


def test_flat_val_folder_takes_the_class_from_the_boxes(built, tree_copy, tmp_path):
    _, expected, sorted_source = built
    imagenet, boxes = tree_copy
    for path in sorted((imagenet / "val").glob("*/*.JPEG")):  # ImageNet ships val/ flat
        path.rename(imagenet / "val" / path.name)
    classless = {i: r for i, r in expected.items() if r in ("no_annotation", "zero_boxes")}
    with pytest.raises(In9Error, match="a flat val/ folder needs a box annotation"):
        ImagenetSource(imagenet, boxes, work_dir=tmp_path / "w1", splits=("test",)).summary()
    for image_id in classless:
        (imagenet / "val" / f"ILSVRC2012_val_000{image_id[-5:]}.JPEG").unlink()
    flat = ImagenetSource(imagenet, boxes, work_dir=tmp_path / "w2", splits=("test",))
    assert flat.labels("test") == sorted_source.labels("test")
    rejected = {
        r: 0 if r in classless.values() else n
        for r, n in sorted_source.summary()["sets"]["test"]["rejected"].items()
    }
    assert flat.summary()["sets"]["test"]["rejected"] == rejected
