"""Bounding boxes as ImageNet ships them: one PASCAL VOC XML per image, or the Kaggle
``LOC_<split>_solution.csv``.

``boxes`` (``--boxes DIR``) is a folder that holds, per split, either ``LOC_<split>_solution.csv`` or a folder
``<split>/`` of XML files (flat, or one sub-folder per wnid, as in ``ILSVRC/Annotations/CLS-LOC``). Images
are matched to their annotation by file stem (``n01440764_10026``, ``ILSVRC2012_val_00000293``).
"""

from __future__ import annotations

import csv
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from ..errors import In9Error
from ..scene import BBox

CSV_HEADER = ["ImageId", "PredictionString"]


@dataclass(frozen=True)
class Annotation:
    """The boxes of one image. ``width``/``height`` are the annotated image size (None for the CSV, which
    has none)."""

    boxes: tuple[BBox, ...]
    wnids: tuple[str, ...]
    width: int | None = None
    height: int | None = None


# What a record carries to the worker: the parsed CSV annotation, the XML path to parse there, or None (no
# box).
AnnotationRef = Annotation | str | None


def _int_field(node: ET.Element, field: str, path: str) -> int:
    text = node.findtext(field)
    try:
        return int(float(text))  # a few ImageNet files write coordinates as "12.0"
    except (TypeError, ValueError):
        raise In9Error(
            f"{path}: field <{field}> is missing or not a number ({text!r}); "
            "re-extract the box annotations or remove this file"
        ) from None


def read_voc_xml(path: str | Path) -> Annotation:
    """Parse one VOC XML annotation; a malformed file is an ``In9Error`` that names it."""
    path = str(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise In9Error(f"{path}: malformed box annotation ({exc}); re-extract the box annotations") from None
    size = root.find("size")
    if size is None:
        raise In9Error(f"{path}: field <size> is missing; re-extract the box annotations or remove this file")
    boxes, wnids = [], []
    for obj in root.findall("object"):
        bndbox = obj.find("bndbox")
        if bndbox is None:
            raise In9Error(f"{path}: an <object> has no <bndbox>; re-extract the box annotations")
        boxes.append(tuple(_int_field(bndbox, f, path) for f in ("xmin", "ymin", "xmax", "ymax")))
        wnids.append((obj.findtext("name") or "").strip())
    return Annotation(
        tuple(boxes), tuple(wnids), _int_field(size, "width", path), _int_field(size, "height", path)
    )


def read_loc_csv(path: str | Path) -> dict[str, Annotation]:
    """Parse ``LOC_<split>_solution.csv`` (``ImageId,PredictionString`` with ``wnid xmin ymin xmax ymax``
    groups)."""
    annotations: dict[str, Annotation] = {}
    try:
        with open(path, newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header != CSV_HEADER:
                raise In9Error(
                    f"{path}: header is {header!r}, expected {','.join(CSV_HEADER)} "
                    "(the Kaggle LOC_*_solution.csv format)"
                )
            for line_no, row in enumerate(reader, start=2):
                tokens = row[1].split() if len(row) == 2 else []
                if len(row) != 2 or len(tokens) % 5 != 0:
                    raise In9Error(
                        f"{path}:{line_no}: field PredictionString must hold groups of "
                        f"'wnid xmin ymin xmax ymax', got {row!r}; fix or re-download the file"
                    )
                try:
                    boxes = tuple(
                        tuple(int(float(t)) for t in tokens[i + 1 : i + 5]) for i in range(0, len(tokens), 5)
                    )
                except ValueError:
                    raise In9Error(
                        f"{path}:{line_no}: a box coordinate is not a number: {row[1]!r}"
                    ) from None
                annotations[row[0]] = Annotation(boxes, tuple(tokens[0::5]))
    except OSError as exc:
        raise In9Error(f"{path}: cannot read the box file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise In9Error(f"{path}: not a text CSV file; pass the LOC_*_solution.csv from ImageNet") from None
    return annotations


class BoxIndex:
    """The annotations of one split: ``ref(stem)`` is what a worker needs to get that image's boxes."""

    def __init__(self, source: str, refs: dict[str, AnnotationRef]):
        self.source = source  # the file or folder read, for the summary
        self._refs = refs

    def ref(self, stem: str) -> AnnotationRef:
        return self._refs.get(stem)

    def __len__(self) -> int:
        return len(self._refs)


def _xml_files(folder: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith(".xml"):
                found[name[:-4]] = os.path.join(dirpath, name)
    return found


def open_boxes(boxes: str | Path, split: str) -> BoxIndex:
    """The box index of ImageNet split ``split`` ("train" or "val") under ``boxes``."""
    root = Path(boxes)
    if not root.exists():
        raise In9Error(
            f"boxes={root}: no such file or folder; pass the folder holding LOC_{split}_solution.csv "
            f"or the VOC XML folder {split}/",
            argument="boxes",
        )
    csv_path = root if root.is_file() else root / f"LOC_{split}_solution.csv"
    if root.is_file() and root.name != f"LOC_{split}_solution.csv":
        raise In9Error(
            f"boxes={root}: a file must be named LOC_{split}_solution.csv; "
            "pass the folder that holds LOC_train_solution.csv and LOC_val_solution.csv",
            argument="boxes",
        )
    if csv_path.is_file():
        return BoxIndex(str(csv_path), dict(read_loc_csv(csv_path)))
    xml_dir = root / split
    if not xml_dir.is_dir():
        raise In9Error(
            f"boxes={root}: found neither LOC_{split}_solution.csv nor a folder {split}/ of VOC XML "
            "files; pass the folder that holds the ImageNet bounding boxes",
            argument="boxes",
        )
    return BoxIndex(str(xml_dir), dict(_xml_files(xml_dir)))


def load_annotation(ref: AnnotationRef) -> Annotation | None:
    """Resolve a record's reference (in the worker, so that XML parsing runs in parallel)."""
    return read_voc_xml(ref) if isinstance(ref, str) else ref
