"""The toolkit's pure parts: crop geometry, box readers, filters, GrabCut determinism, balancing."""

from __future__ import annotations

import numpy as np
import pytest

from in9_builder.errors import In9Error
from in9_builder.toolkit.balance import balance
from in9_builder.toolkit.boxes import Annotation, open_boxes, read_loc_csv, read_voc_xml
from in9_builder.toolkit.fake_tree import voc_xml
from in9_builder.toolkit.filters import check_annotation, check_geometry, check_size, clip_box
from in9_builder.toolkit.geometry import box_through_crop, crop_offsets, resize_crop, resized_size
from in9_builder.toolkit.segment import grabcut_mask


def test_resize_and_crop_follow_torchvision_rules():
    assert resized_size(500, 375) == (341, 256)  # int(256 * 500 / 375) = 341 (truncated)
    assert resized_size(375, 500) == (256, 341)
    assert resized_size(64, 64) == (256, 256)
    # round(58.5) = 58: Python rounds half to even, like torchvision
    assert crop_offsets(341, 256) == (58, 16)
    assert crop_offsets(257, 257) == (16, 16)  # round(16.5) = 16
    assert resize_crop(np.zeros((375, 500, 3), np.uint8)).shape == (224, 224, 3)


def test_box_through_crop_counts_pixels_exactly():
    # 256x256 image: no resize; the crop is rows/cols 16..239. A box over cols 0..31 keeps cols 16..31.
    box, in_crop, after_resize = box_through_crop(256, 256, (0, 100, 31, 109))
    assert box == (0, 84, 15, 93)
    assert (in_crop, after_resize) == (16 * 10, 32 * 10)


def test_geometry_filters():
    box, in_crop, _ = box_through_crop(64, 64, (5, 5, 59, 59))  # the planted "95 %" box of the test tree
    assert (
        round(in_crop / 224**2, 3) == 0.965 and check_geometry((5, 5, 59, 59), 64, 64)[0] == "box_too_large"
    )
    assert check_geometry((6, 6, 59, 59), 64, 64)[0] == "box_too_large"  # 93.0 %
    assert check_geometry((7, 7, 59, 59), 64, 64) == (None, (12, 12, 223, 223))  # 89.6 %: kept
    assert check_geometry((0, 0, 250, 250), 256, 256)[0] == "box_too_large"  # 224*224 of 224*224 in the crop
    assert check_geometry((0, 100, 30, 150), 256, 256)[0] == "box_cropped"  # keeps 15 of 31 columns: < 50 %
    assert check_geometry((0, 100, 32, 150), 256, 256)[0] is None  # keeps 17 of 33 columns: >= 50 %
    reason, box = check_geometry((100, 100, 139, 139), 256, 256)
    assert reason is None and box == (84, 84, 123, 123)


def test_annotation_filters():
    assert check_annotation(None) == ("no_annotation", None)
    assert check_annotation(Annotation((), ()))[0] == "zero_boxes"
    assert check_annotation(Annotation(((1, 1, 5, 5), (2, 2, 6, 6)), ("n1", "n1")))[0] == "multiple_boxes"
    assert check_annotation(Annotation(((1, 1, 5, 5),), ("n1",))) == (None, (1, 1, 5, 5))
    assert check_size(Annotation((), (), 10, 20), 10, 20) is None
    assert check_size(Annotation((), (), 10, 20), 20, 10) == "size_mismatch"
    assert check_size(Annotation((), ()), 20, 10) is None  # the CSV has no size to compare
    assert clip_box((-3, 0, 64, 63), 64, 64) == (0, 0, 63, 63)  # ImageNet boxes may end one past the image
    assert clip_box((40, 20, 30, 43), 64, 64) is None


def test_voc_xml_reader(tmp_path):
    path = tmp_path / "a.xml"
    path.write_text(voc_xml(500, 375, [(1, 2, 30, 40), (5, 6, 7, 8)], "n01440764"))
    ann = read_voc_xml(path)
    assert ann == Annotation(((1, 2, 30, 40), (5, 6, 7, 8)), ("n01440764", "n01440764"), 500, 375)


@pytest.mark.parametrize(
    "text, needle",
    [
        ("<annotation><size><width>5", "malformed box annotation"),
        ("<annotation><object><bndbox><xmin>1</xmin></bndbox></object></annotation>", "<size>"),
        (voc_xml(5, 5, [(1, 1, 3, 3)], "n1").replace("<ymax>3</ymax>", "<ymax>x</ymax>"), "<ymax>"),
    ],
)
def test_malformed_voc_xml_is_a_clear_error(tmp_path, text, needle):
    path = tmp_path / "bad.xml"
    path.write_text(text)
    with pytest.raises(In9Error, match=needle) as info:
        read_voc_xml(path)
    assert str(path) in str(info.value)


def test_loc_csv_reader_and_errors(tmp_path):
    good = tmp_path / "LOC_val_solution.csv"
    good.write_text(
        "ImageId,PredictionString\nILSVRC2012_val_00000001,n01751748 111 18 484 296 \n"
        "ILSVRC2012_val_00000002,n09193705 1 2 3 4 n09193705 5 6 7 8\n"
    )
    annotations = read_loc_csv(good)
    assert annotations["ILSVRC2012_val_00000001"] == Annotation(((111, 18, 484, 296),), ("n01751748",))
    assert len(annotations["ILSVRC2012_val_00000002"].boxes) == 2
    bad_header = tmp_path / "h" / "LOC_val_solution.csv"
    bad_header.parent.mkdir()
    bad_header.write_text("id,boxes\n")
    with pytest.raises(In9Error, match="header"):
        read_loc_csv(bad_header)
    bad_row = tmp_path / "r.csv"
    bad_row.write_text("ImageId,PredictionString\nx,n1 1 2 3\n")
    with pytest.raises(In9Error, match=r"r\.csv:2: field PredictionString"):
        read_loc_csv(bad_row)


def test_open_boxes_errors(tmp_path):
    with pytest.raises(In9Error, match="boxes=.*no such file or folder"):
        open_boxes(tmp_path / "missing", "val")
    with pytest.raises(In9Error, match="neither LOC_val_solution.csv nor a folder val/"):
        open_boxes(tmp_path, "val")


def _photo(seed: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 80, (64, 64, 3), dtype=np.uint8)
    image[16:48, 20:44] = rng.integers(170, 255, 3, dtype=np.uint8)
    return image, (14, 10, 49, 53)


def test_grabcut_is_deterministic_and_finds_the_object():
    image, box = _photo(0)
    mask, tries = grabcut_mask(image, box, "n01440764_1")
    again, _ = grabcut_mask(image, box, "n01440764_1")
    assert tries == 1 and np.array_equal(mask, again)
    truth = np.zeros((64, 64), np.uint8)
    truth[16:48, 20:44] = 1
    assert (mask & truth).sum() / (mask | truth).sum() > 0.9


def test_grabcut_fails_on_a_blank_image_after_ten_tries():
    assert grabcut_mask(np.full((64, 64, 3), 90, np.uint8), (10, 10, 50, 50), "blank") == (None, 10)


def test_balance_is_seeded_and_sorted():
    ids = [[f"a{i:02d}" for i in range(10)], [f"b{i:02d}" for i in range(4)], [f"c{i:02d}" for i in range(6)]]
    first = balance(ids, seed=0, split="train")
    assert [len(k) for k in first] == [4, 4, 4] and first[1] == ids[1]
    assert all(k == sorted(k) for k in first)
    assert balance(ids, seed=0, split="train") == first
    assert balance(ids, seed=1, split="train")[0] != first[0]
    assert [len(k) for k in balance(ids, seed=0, split="train", per_class=2)] == [2, 2, 2]
    with pytest.raises(In9Error, match="per_class_train=5: class 'bird' has only 4") as caught:
        balance(ids, seed=0, split="train", per_class=5, argument="per_class_train")
    assert caught.value.for_cli({"per_class_train": "--per-class-train"}).startswith("--per-class-train 5:")
