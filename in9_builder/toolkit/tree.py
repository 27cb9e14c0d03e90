"""The ImageNet folder -> the build's index: every candidate image of the 370 mapped classes, in a fixed
order.

Splits: ``test`` comes from ImageNet ``val/`` (as the release did: its stems are ``<wnid>_<last 5 digits of
the val file number>``), ``train`` from ``train/``. ``val/`` may hold one folder per wnid or be flat as
ImageNet ships it (the wnid then comes from the image's box annotation). The index is sorted by (split,
label, image id) and fingerprinted, so that every shard of a cluster build cuts it into the same chunks.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..classes import imagenet1k_wnids, mapped_wnids
from ..errors import In9Error
from .boxes import AnnotationRef, load_annotation, open_boxes

SPLIT_FOLDERS = {"test": "val", "train": "train"}
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
_VAL_STEM = re.compile(r"^ILSVRC2012_val_(\d{8})$")


@dataclass(frozen=True)
class Record:
    """One candidate image: where it is, what it is, and the reference to its boxes."""

    split: str
    image_id: str
    label: int
    path: str  # relative to the ImageNet root, '/'-separated
    annotation: AnnotationRef


@dataclass
class Index:
    records: list[Record]
    unmapped: dict[str, int]  # split -> images in ImageNet classes that IN-9 does not map
    fingerprint: str


def _image_files(folder: Path) -> list[str]:
    return sorted(
        n for n in os.listdir(folder) if n.lower().endswith(IMAGE_SUFFIXES) and not n.startswith(".")
    )


def _image_id(split: str, wnid: str, stem: str) -> str:
    match = _VAL_STEM.match(stem)
    if split == "test" and match:
        return f"{wnid}_{match.group(1)[-5:]}"  # the release's naming: wnid + last 5 digits of the val number
    return stem if stem.startswith(f"{wnid}_") else f"{wnid}_{stem}"


def _scan_split(root: Path, boxes: str | Path | None, split: str) -> tuple[list[Record], int]:
    folder = root / SPLIT_FOLDERS[split]
    if not folder.is_dir():
        raise In9Error(
            f"imagenet={root}: no folder {SPLIT_FOLDERS[split]}/ (expected ImageNet's "
            f"{SPLIT_FOLDERS[split]}/<wnid>/*.JPEG); pass the ImageNet root folder",
            argument="imagenet",
        )
    box_index = open_boxes(boxes, SPLIT_FOLDERS[split]) if boxes is not None else None
    all_wnids, mapping = set(imagenet1k_wnids()), mapped_wnids()
    records, unmapped = [], 0

    def ref(stem: str) -> AnnotationRef:
        return box_index.ref(stem) if box_index is not None else None

    entries = sorted(e for e in os.listdir(folder) if not e.startswith("."))
    flat = [e for e in entries if (folder / e).is_file() and e.lower().endswith(IMAGE_SUFFIXES)]
    for name in entries:
        if not (folder / name).is_dir():
            continue
        if name not in all_wnids:
            raise In9Error(
                f"{folder / name}: class folder {name!r} is not an ImageNet-1k wnid (like n01440764); "
                "remove or rename it"
            )
        if name not in mapping:
            unmapped += len(_image_files(folder / name))
            continue
        for file in _image_files(folder / name):
            stem = os.path.splitext(file)[0]
            records.append(
                Record(
                    split,
                    _image_id(split, name, stem),
                    mapping[name],
                    f"{SPLIT_FOLDERS[split]}/{name}/{file}",
                    ref(stem),
                )
            )
    for file in flat:  # flat val/: the label comes from the box annotation
        stem = os.path.splitext(file)[0]
        annotation = load_annotation(ref(stem))  # parsed here: the class decides whether it is a candidate
        wnid = annotation.wnids[0] if annotation is not None and annotation.wnids else None
        if wnid is None:
            raise In9Error(
                f"{folder / file}: a flat {SPLIT_FOLDERS[split]}/ folder needs a box annotation to know "
                f"the image's class, and this image has none; sort {SPLIT_FOLDERS[split]}/ into wnid folders"
            )
        if wnid not in mapping:
            unmapped += 1
            continue
        records.append(
            Record(
                split,
                _image_id(split, wnid, stem),
                mapping[wnid],
                f"{SPLIT_FOLDERS[split]}/{file}",
                annotation,
            )
        )
    return records, unmapped


def fingerprint_records(records: list[Record]) -> str:
    digest = hashlib.sha256()
    for r in records:
        digest.update(f"{r.split}\t{r.image_id}\t{r.label}\t{r.path}\t".encode())
        ann = r.annotation
        digest.update((os.path.basename(ann) if isinstance(ann, str) else repr(ann)).encode() + b"\n")
    return digest.hexdigest()


def scan(
    imagenet: str | Path, boxes: str | Path | None, splits: tuple[str, ...] = ("test", "train")
) -> Index:
    """Index the candidate images of ``splits`` (sorted by split, label, image id)."""
    root = Path(imagenet)
    if not root.is_dir():
        raise In9Error(
            f"imagenet={root}: no such folder; pass the ImageNet root (the one holding train/ and val/)",
            argument="imagenet",
        )
    records: list[Record] = []
    unmapped: dict[str, int] = {}
    for split in sorted(splits):
        split_records, unmapped[split] = _scan_split(root, boxes, split)
        records.extend(sorted(split_records, key=lambda r: (r.label, r.image_id)))
    seen: dict[str, str] = {}
    for r in records:
        key = f"{r.split}/{r.image_id}"
        if key in seen:
            raise In9Error(
                f"{root / r.path} and {root / seen[key]} both become image id {r.image_id}; "
                "remove the duplicate"
            )
        seen[key] = r.path
    return Index(records, unmapped, fingerprint_records(records))
