"""The ``imagenet`` source: the paper's toolkit (its App. A) as scenes for the renderer and the export.

ImageNet ``val/`` becomes the ``test`` split, ImageNet ``train/`` the ``train`` split: IN-9's training set
(``train_set="in9"``: the same filters and GrabCut as the test set) or IN-9L (``train_set="in9l"``: every
image of the 370 mapped classes, no filter, no mask, for the ``original`` config only). Every set is
class-balanced by a seeded draw. Segmentation runs once into a work folder (chunked, resumable, shardable: see
``in9_builder.toolkit.shards``); scenes are then read back one at a time, their 224 px pixels re-derived
from the ImageNet files.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..classes import NUM_CLASSES
from ..errors import In9Error
from ..scene import Scene
from ..toolkit.balance import balance, per_class_counts, reason_counts
from ..toolkit.geometry import CROP
from ..toolkit.process import crop_image, unpack_mask
from ..toolkit.shards import collect, run_shard
from ..toolkit.tree import Index, scan

TRAIN_SETS = ("in9", "in9l")
_PREPARED: dict[tuple, tuple[dict, dict]] = {}  # per-process memo of finished preparations


def default_work_dir(imagenet: Path, boxes: Path) -> Path:
    """A per-(ImageNet, boxes) folder in the user cache, so that a rerun resumes and never mixes two trees."""
    cache = Path(os.environ.get("IN9_CACHE", Path.home() / ".cache" / "in9"))
    key = hashlib.sha256(f"{imagenet.resolve()}\n{boxes.resolve()}".encode()).hexdigest()[:16]
    return cache / "toolkit" / key


class ImagenetSource:
    """IN-9 scenes from an ImageNet tree and its bounding boxes.

    data_dir: the ImageNet root (``train/``, ``val/``); boxes: the folder with ``LOC_*_solution.csv`` or the
    VOC XML folders; work_dir: where the per-chunk segmentation results go (default: the user cache);
    balance_seed: the class-balancing draw (the mixed backgrounds have the builder's own ``seed``);
    per_class_test / per_class_train: images kept per class (default: the smallest class); merge: work
    folders of finished shards to merge instead of segmenting here.
    """

    name = "imagenet"
    has_bboxes = True
    has_official_files = False

    def __init__(
        self,
        data_dir: str | Path | None = None,
        boxes: str | Path | None = None,
        *,
        work_dir: str | Path | None = None,
        balance_seed: int = 0,
        per_class_test: int | None = None,
        per_class_train: int | None = None,
        train_set: str = "in9",
        splits: tuple[str, ...] = ("test", "train"),
        num_proc: int = 1,
        merge: list[str | Path] | None = None,
        progress: bool = False,
    ) -> None:
        if data_dir is None:
            raise In9Error(
                "data_dir=None: the imagenet source needs the ImageNet root folder (holding train/ and val/)",
                argument="data_dir",
            )
        if boxes is None:
            raise In9Error(
                "boxes=None: the imagenet source needs the bounding boxes (the folder with "
                "LOC_*_solution.csv or the VOC XML folders train/ and val/)",
                argument="boxes",
            )
        if train_set not in TRAIN_SETS:
            raise In9Error(
                f"train_set={train_set!r}: choose one of {', '.join(TRAIN_SETS)}", argument="train_set"
            )
        unknown = set(splits) - {"test", "train"}
        if unknown or not splits:
            raise In9Error(f"splits={list(splits)}: choose among 'test' and 'train'", argument="splits")
        self.imagenet, self.boxes = Path(data_dir), Path(boxes)
        self.work_dir = Path(work_dir) if work_dir else default_work_dir(self.imagenet, self.boxes)
        self.balance_seed, self.train_set = int(balance_seed), train_set
        self.num_proc, self.progress = int(num_proc), progress
        self.per_class = {"test": per_class_test, "train": per_class_train}
        self._splits = tuple(s for s in ("test", "train") if s in splits)
        # merge=[]: merge the shards found in work_dir.
        self.merge = None if merge is None else [Path(m) for m in merge]
        self._kept: dict[str, dict[str, object]] | None = None
        self._summary: dict | None = None

    # --- preparation: index, segment (or merge), balance

    def _segmented_splits(self) -> tuple[str, ...]:
        return tuple(s for s in self._splits if s == "test" or self.train_set == "in9")

    def index(self) -> Index:
        """The candidates that go through the filters and GrabCut (IN-9L images never do)."""
        return scan(self.imagenet, self.boxes, self._segmented_splits())

    def segment(self, *, num_shards: int = 1, shard_index: int = 0) -> int:
        """Segment this machine's shard into the work folder (resumable). Returns the number of chunks
        computed."""
        return run_shard(
            self.index(),
            self.imagenet,
            self.work_dir,
            num_shards=num_shards,
            shard_index=shard_index,
            num_proc=self.num_proc,
            progress=self.progress,
        )

    def _memo_key(self) -> tuple:
        merge = None if self.merge is None else tuple(str(m.resolve()) for m in self.merge)
        return (
            str(self.imagenet.resolve()),
            str(self.boxes.resolve()),
            str(self.work_dir.resolve()),
            self.balance_seed,
            self.per_class["test"],
            self.per_class["train"],
            self.train_set,
            self._splits,
            merge,
        )

    def _prepare(self) -> None:
        if self._kept is not None:
            return
        # The builder makes one instance per config and per worker: prepare once per process (and inherit it
        # in forked workers) instead of re-scanning the tree and re-reading every chunk each time.
        if self._memo_key() in _PREPARED:
            self._kept, self._summary = _PREPARED[self._memo_key()]
            return
        index = self.index()
        if self.merge is None:
            run_shard(index, self.imagenet, self.work_dir, num_proc=self.num_proc, progress=self.progress)
        outcomes = collect(index, self.merge or [self.work_dir])
        kept: dict[str, dict[str, object]] = {}
        sets: dict[str, dict] = {}
        for split in self._splits:
            if split == "train" and self.train_set == "in9l":
                in9l = scan(self.imagenet, None, ("train",))
                records = {r.image_id: (r, None) for r in in9l.records}
                accepted, counts, unmapped = list(in9l.records), {}, in9l.unmapped["train"]
            else:
                pairs = [(r, o) for r, o in zip(index.records, outcomes, strict=True) if r.split == split]
                records = {r.image_id: (r, o) for r, o in pairs if o["reason"] is None}
                accepted = [r for r, o in pairs if o["reason"] is None]
                counts, unmapped = reason_counts([o for _, o in pairs]), index.unmapped[split]
            by_class: list[list[str]] = [[] for _ in range(NUM_CLASSES)]
            for record in accepted:
                by_class[record.label].append(record.image_id)
            kept_ids = balance(
                by_class,
                seed=self.balance_seed,
                split=split,
                per_class=self.per_class[split],
                argument=f"per_class_{split}",
            )
            kept[split] = {i: records[i] for ids in kept_ids for i in ids}
            name = "in9l" if split == "train" and self.train_set == "in9l" else split
            sets[name] = {
                "split": split,
                "from": "ImageNet " + ("val" if split == "test" else "train"),
                "candidates": len(records)
                if name == "in9l"
                else sum(r.split == split for r in index.records),
                "unmapped": unmapped,
                "rejected": counts,
                "accepted": len(accepted),
                "accepted_per_class": per_class_counts([r.label for r in accepted]),
                "per_class": len(kept_ids[0]),
                "kept": sum(map(len, kept_ids)),
            }
        self._kept = kept
        self._summary = {
            "index_fingerprint": index.fingerprint,
            "balance_seed": self.balance_seed,
            "sets": sets,
        }
        _PREPARED[self._memo_key()] = (self._kept, self._summary)

    def summary(self) -> dict:
        """Candidates, rejections by reason, acceptances and kept counts per set (the build summary)."""
        self._prepare()
        return self._summary

    # --- the source protocol

    def params(self) -> dict:
        """What determines the data; GrabCut's masks may change with the OpenCV version, so it is recorded."""
        import cv2  # the toolkit's optional dependency, only needed once segmentation has run

        return {
            "opencv": cv2.__version__,
            "train_set": self.train_set,
            "balance_seed": self.balance_seed,
            "per_class_test": self.per_class["test"],
            "per_class_train": self.per_class["train"],
            "boxes": self.boxes.name,
            "summary": self.summary(),
        }

    def splits(self) -> list[str]:
        return list(self._splits)

    def _kept_split(self, split: str) -> dict[str, object]:
        if split not in self._splits:
            raise In9Error(f"imagenet source has no split {split!r}; choose one of {list(self._splits)}")
        self._prepare()
        return self._kept[split]

    def labels(self, split: str) -> dict[str, int]:
        return {image_id: record.label for image_id, (record, _) in self._kept_split(split).items()}

    def scene(self, split: str, image_id: str) -> Scene:
        kept = self._kept_split(split)
        if image_id not in kept:
            raise In9Error(f"{image_id} is not in the {split} split of this imagenet build")
        record, outcome = kept[image_id]
        image = crop_image(self.imagenet / record.path)
        if outcome is None:  # IN-9L: no box, no segmentation
            return Scene(image_id, record.label, image, np.zeros((CROP, CROP), np.uint8), None)
        return Scene(image_id, record.label, image, unpack_mask(outcome["mask"]), tuple(outcome["bbox"]))

    def scenes(self, split: str) -> Iterator[Scene]:
        kept = self._kept_split(split)
        for image_id in sorted(kept, key=lambda i: (kept[i][0].label, i)):
            yield self.scene(split, image_id)
