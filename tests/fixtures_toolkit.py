"""A tiny ImageNet-shaped tree for the toolkit tests: synthetic scenes as ImageNet files with VOC XML boxes.

``train/<wnid>/<wnid>_<n>.JPEG`` and ``val/<wnid>/ILSVRC2012_val_000NNNNN.JPEG`` for one real mapped wnid per
IN-9 class, boxes as ``boxes/train/<wnid>/<stem>.xml`` and flat ``boxes/val/<stem>.xml`` (ImageNet's layout)
or as ``LOC_<split>_solution.csv``; plus one planted image per rejection reason in the val split.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from in9_builder.classes import NUM_CLASSES, mapped_wnids
from in9_builder.sources.synthetic import SyntheticSource

TREE_SIZE = 64  # px: GrabCut on 64 px photos takes milliseconds
PER_CLASS = 3
UNMAPPED_WNID = "n02123045"  # tabby cat: an ImageNet-1k class that IN-9 deliberately leaves out


def class_wnids() -> list[str]:
    """One real mapped wnid per IN-9 class (the first in ImageNet order)."""
    by_class: dict[int, str] = {}
    for wnid, label in mapped_wnids().items():
        by_class.setdefault(label, wnid)
    return [by_class[c] for c in range(NUM_CLASSES)]


def voc_xml(width: int, height: int, boxes: list[tuple[int, int, int, int]], wnid: str) -> str:
    objects = "".join(
        f"<object><name>{wnid}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
        f"<ymax>{b[3]}</ymax></bndbox></object>"
        for b in boxes
    )
    size = f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>"
    return f"<annotation>{size}{objects}</annotation>"


class TreeWriter:
    """Writes images and annotations into an ImageNet-shaped tree and remembers the truth for the tests."""

    def __init__(self, root: Path):
        self.root = root
        self.boxes: dict[str, dict[str, tuple[int, int, list]]] = {
            "train": {},
            "val": {},
        }  # stem -> (w, h, boxes)
        self.wnid_of: dict[str, str] = {}
        self.true_masks: dict[str, np.ndarray] = {}  # image id -> full-size true mask
        self._val_number = 0

    def add(
        self, split: str, wnid: str, image: np.ndarray, boxes: list | None, *, xml_size=None, mask=None
    ) -> str:
        """Add one image; ``boxes=None`` writes no annotation. Returns the image id the toolkit will give
        it."""
        if split == "val":
            self._val_number += 1
            stem, image_id = f"ILSVRC2012_val_{self._val_number:08d}", f"{wnid}_{self._val_number:05d}"
        else:
            count = sum(1 for s in self.wnid_of if s.startswith(wnid))
            stem = image_id = f"{wnid}_{count + 1}"
        folder = self.root / "imagenet" / split / wnid
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{stem}.JPEG", format="JPEG", quality=95)
        self.wnid_of[stem] = wnid
        if boxes is not None:
            height, width = image.shape[:2]
            self.boxes[split][stem] = (*(xml_size or (width, height)), boxes)
        if mask is not None:
            self.true_masks[image_id] = mask
        return image_id

    def write_xml(self) -> Path:
        out = self.root / "boxes_xml"
        for split, entries in self.boxes.items():
            for stem, (width, height, boxes) in entries.items():
                wnid = self.wnid_of[stem]
                folder = out / split / (wnid if split == "train" else "")
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{stem}.xml").write_text(voc_xml(width, height, boxes, wnid))
        return out

    def write_csv(self) -> Path:
        out = self.root / "boxes_csv"
        out.mkdir(parents=True, exist_ok=True)
        for split, entries in self.boxes.items():
            with open(out / f"LOC_{split}_solution.csv", "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["ImageId", "PredictionString"])
                for stem, (_, _, boxes) in entries.items():
                    writer.writerow(
                        [stem, " ".join(f"{self.wnid_of[stem]} {b[0]} {b[1]} {b[2]} {b[3]}" for b in boxes)]
                    )
        return out


def write_tree(root: Path, *, planted: bool = True) -> tuple[TreeWriter, dict[str, str]]:
    """The standard test tree. Returns the writer and {planted image id: expected reason}."""
    writer = TreeWriter(root)
    wnids = class_wnids()
    source = SyntheticSource(per_class=PER_CLASS, size=TREE_SIZE, seed=3)
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
