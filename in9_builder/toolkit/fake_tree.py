"""A small ImageNet-shaped tree of given photos, for the toolkit's tests and benchmarks.

``imagenet/train/<wnid>/<wnid>_<n>.JPEG`` and ``imagenet/val/<wnid>/ILSVRC2012_val_000NNNNN.JPEG``, boxes as
``boxes_xml/train/<wnid>/<stem>.xml`` and flat ``boxes_xml/val/<stem>.xml`` (ImageNet's layout) or as
``boxes_csv/LOC_<split>_solution.csv``. The writer remembers the truth (true masks) for the checks.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from ..classes import NUM_CLASSES, mapped_wnids


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
    """Writes images and annotations into an ImageNet-shaped tree under ``root``."""

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
        """Add one image (``boxes=None``: no annotation); returns the image id the toolkit will give it."""
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
