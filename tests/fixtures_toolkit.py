"""A tiny ImageNet-shaped tree for the toolkit tests: synthetic scenes as ImageNet files with VOC XML boxes
(written by ``in9_builder.toolkit.fake_tree``), one real mapped wnid per IN-9 class, plus one planted image
per rejection reason in the val split.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from in9_builder.classes import NUM_CLASSES
from in9_builder.sources.synthetic import SyntheticSource
from in9_builder.toolkit.fake_tree import TreeWriter, class_wnids

TREE_SIZE = 64  # px: GrabCut on 64 px photos takes milliseconds
PER_CLASS = 3
UNMAPPED_WNID = "n02123045"  # tabby cat: an ImageNet-1k class that IN-9 deliberately leaves out


def write_tree(root: Path, *, planted: bool = True) -> tuple[TreeWriter, dict[str, str]]:
    """The standard test tree. Returns the writer and {planted image id: expected reason}."""
    writer = TreeWriter(root)
    wnids = class_wnids()
    source = SyntheticSource(per_class=PER_CLASS, size=TREE_SIZE, scene_seed=3)
    for split, synthetic_split in (("val", "test"), ("train", "train")):
        for scene in source.scenes(synthetic_split):
            writer.add(split, wnids[scene.label], scene.image, [scene.bbox], mask=scene.mask)
    # A few train images without boxes: IN-9L keeps them, IN-9 rejects them.
    noise = np.random.default_rng(5)
    for label in range(NUM_CLASSES):
        writer.add("train", wnids[label], noise.integers(0, 255, (TREE_SIZE, 48, 3), dtype=np.uint8), None)
    (root / "imagenet" / "train" / UNMAPPED_WNID).mkdir(parents=True)
    Image.new("RGB", (32, 32)).save(root / "imagenet" / "train" / UNMAPPED_WNID / f"{UNMAPPED_WNID}_1.JPEG")
    expected: dict[str, str] = {}
    if planted:
        expected = plant_rejections(writer, wnids[0])
    return writer, expected


def plant_rejections(writer: TreeWriter, wnid: str) -> dict[str, str]:
    """One val image per rejection reason, all of class dog."""
    rng = np.random.default_rng(7)
    photo = rng.integers(0, 255, (TREE_SIZE, TREE_SIZE, 3), dtype=np.uint8)
    photo[20:44, 20:44] = (250, 30, 30)
    box = [20, 20, 43, 43]
    tall = rng.integers(
        0, 255, (160, TREE_SIZE, 3), dtype=np.uint8
    )  # 64 wide, 160 tall: the crop keeps the middle
    tall[2:30, 10:50] = (30, 250, 30)
    planted = {
        writer.add("val", wnid, photo, None): "no_annotation",
        writer.add("val", wnid, photo, []): "zero_boxes",
        writer.add("val", wnid, photo, [box, [2, 2, 12, 12]]): "multiple_boxes",
        writer.add("val", wnid, photo, [box], xml_size=(TREE_SIZE + 1, TREE_SIZE)): "size_mismatch",
        writer.add("val", wnid, photo, [[40, 20, 30, 43]]): "invalid_box",
        writer.add("val", wnid, photo, [[5, 5, 59, 59]]): "box_too_large",  # 96.5 % of the crop
        writer.add("val", wnid, tall, [[10, 2, 49, 29]]): "box_cropped",  # mostly above the centre crop
        writer.add("val", wnid, np.full((TREE_SIZE, TREE_SIZE, 3), 128, np.uint8), [box]): "grabcut_failed",
    }
    return planted


@pytest.fixture(scope="session")
def toolkit_tree(tmp_path_factory) -> tuple[TreeWriter, dict[str, str], Path]:
    """(writer, planted rejections, XML boxes folder), built once per session; tests must not modify it."""
    root = tmp_path_factory.mktemp("imagenet_tree")
    writer, expected = write_tree(root)
    return writer, expected, writer.write_xml()


@pytest.fixture
def tree_copy(toolkit_tree, tmp_path) -> tuple[Path, Path]:
    """A private copy of the tree (imagenet folder, XML boxes folder) that a test may break."""
    writer, _, boxes = toolkit_tree
    shutil.copytree(writer.root / "imagenet", tmp_path / "imagenet")
    shutil.copytree(boxes, tmp_path / "boxes")
    return tmp_path / "imagenet", tmp_path / "boxes"
