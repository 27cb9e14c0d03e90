"""The release layout on disk: what the original tarballs held, written from any scene source.

```
OUT/bg_challenge/<variant>/val/<NN_name>/<stem>.JPEG   the test split (the GitHub release's layout)
OUT/bg_challenge/fg_mask/val/<NN_name>/<stem>.npy      its masks
OUT/<variant>/train/<NN_name>/...                      an IN-9 training set (the dead Dropbox tarballs'
                                                       layout, plus the training masks that never existed)
OUT/in9l/train/<NN_name>/<stem>.JPEG                   IN-9L (original images only, no masks)
OUT/toolkit_summary.json                               seed, JPEG quality, counts, the source's parameters
```
Mixed files are named ``fg_<stem>_bg_<stem>.JPEG``. The ``release`` source and the original scripts read it.
:func:`write_tree` is the one place that lays the files out; :func:`write_release_layout` writes a whole
folder with it, :func:`write_test_release` only ``bg_challenge/`` or the tarball of the real download (a
source's fake release). Every output is replaced atomically.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import atomic_write, check_overwrite, replace_folder, swap_folder
from .classes import CLASS_FOLDERS, IMAGE_VARIANTS, MIXED_VARIANTS
from .encode import save_jpeg
from .render import draw_backgrounds, render_variant

# PIL's default, the quality the authors' script saved the release's files with: a rebuilt release carries the
# same JPEG artefacts as the files that the published numbers were measured on.
JPEG_QUALITY = 75
SUMMARY_FILE = "toolkit_summary.json"
RELEASE_TARBALL = "backgrounds_challenge_data.tar.gz"  # the name of the real download
BATCH = 32  # scenes per worker task


@dataclass
class _SplitJob:
    """What a worker needs to write the files of some scenes of one split (forked workers inherit it)."""

    source: object
    split: str
    root: Path  # files go to root / <variant folder> / split_folder / <class folder> / <stem>.<ext>
    split_folder: str
    variants: tuple[str, ...]
    pairings: dict[str, dict[str, str]]
    quality: int
    with_masks: bool
    rename: dict[str, str] = field(default_factory=dict)  # variant -> folder name where they differ (in9l)

    def path(self, variant: str, class_folder: str, stem: str, ext: str) -> Path:
        return (
            self.root / self.rename.get(variant, variant) / self.split_folder / class_folder / f"{stem}.{ext}"
        )


_JOB: _SplitJob | None = None  # set in the parent just before forking the pool


def _write_scenes(job: _SplitJob, ids: list[str]) -> int:
    for image_id in ids:
        scene = job.source.scene(job.split, image_id)
        class_folder = CLASS_FOLDERS[scene.label]
        if job.with_masks:
            np.save(job.path("fg_mask", class_folder, image_id, "npy"), scene.mask)
        for variant in job.variants:
            if variant in MIXED_VARIANTS:
                bg_id = job.pairings[variant][image_id]
                pixels = render_variant(variant, scene, job.source.scene(job.split, bg_id))
                stem = f"fg_{image_id}_bg_{bg_id}"
            else:
                pixels, stem = render_variant(variant, scene), image_id
            save_jpeg(pixels, job.path(variant, class_folder, stem, "JPEG"), job.quality)
    return len(ids)


def _write_batch(ids: list[str]) -> int:
    return _write_scenes(_JOB, ids)


def _write_split(job: _SplitJob, num_proc: int) -> int:
    """Write every scene of the split; each file is a pure function of its scene, so any process count gives
    the same bytes."""
    global _JOB
    for variant in (*job.variants, *(("fg_mask",) if job.with_masks else ())):
        for class_folder in CLASS_FOLDERS:
            job.path(variant, class_folder, "-", "-").parent.mkdir(parents=True, exist_ok=True)
    labels = job.source.labels(job.split)
    ids = sorted(labels, key=lambda i: (labels[i], i))
    if num_proc <= 1 or len(ids) < 2 * BATCH:
        return _write_scenes(job, ids)
    _JOB = job
    try:
        # fork: the workers inherit the prepared source (its kept images and masks) instead of re-reading it.
        with multiprocessing.get_context("fork").Pool(num_proc) as pool:
            batches = [ids[i : i + BATCH] for i in range(0, len(ids), BATCH)]
            return sum(pool.imap_unordered(_write_batch, batches))
    finally:
        _JOB = None


def write_tree(
    source,
    root: str | os.PathLike,
    *,
    seed: int = 0,
    variants: tuple[str, ...] = IMAGE_VARIANTS,
    splits: tuple[str, ...] | None = None,
    quality: int = JPEG_QUALITY,
    num_proc: int = 1,
) -> dict[str, int]:
    """Write ``splits`` (default: all the source has) of ``source`` in the release layout into the folder
    ``root``; ``seed`` draws the mixed backgrounds. Returns the number of scenes per set (test, train, in9l).

    A source whose ``train_set`` is ``"in9l"`` gets its train split written as IN-9L (original only).
    """
    root = Path(root)
    counts = {}
    for split in splits or source.splits():
        if split == "train" and getattr(source, "train_set", "in9") == "in9l":
            job = _SplitJob(
                source, split, root, "train", ("original",), {}, quality, False, {"original": "in9l"}
            )
            counts["in9l"] = _write_split(job, num_proc)
            continue
        labels = source.labels(split)
        pairings = {v: draw_backgrounds(seed, labels, v) for v in variants if v in MIXED_VARIANTS}
        split_root, split_folder = (root / "bg_challenge", "val") if split == "test" else (root, split)
        job = _SplitJob(source, split, split_root, split_folder, tuple(variants), pairings, quality, True)
        counts[split] = _write_split(job, num_proc)
    return counts


def write_release_layout(
    source,
    out: str | os.PathLike,
    *,
    seed: int = 0,
    variants: tuple[str, ...] = IMAGE_VARIANTS,
    overwrite: bool = False,
    quality: int = JPEG_QUALITY,
    num_proc: int = 1,
) -> Path:
    """Write every split of ``source`` in the release layout, with its summary, as the folder ``out``.

    Atomic: built in a temporary sibling and swapped in when complete (an existing ``out`` is replaced only
    with ``overwrite=True``, and survives any failure). Returns ``out``.
    """
    out = Path(out).absolute()
    with replace_folder(out, overwrite=overwrite, what="release layout") as staging:
        counts = write_tree(source, staging, seed=seed, variants=variants, quality=quality, num_proc=num_proc)
        record = {
            "schema": "in9-toolkit-release/1",
            "seed": seed,
            "jpeg_quality": quality,
            "images": counts,
            "source_params": source.params(),
        }
        (staging / SUMMARY_FILE).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return out


def write_test_release(
    source,
    out: str | os.PathLike,
    *,
    seed: int = 0,
    tarball: bool = False,
    overwrite: bool = False,
    quality: int = JPEG_QUALITY,
) -> Path:
    """The test split of ``source`` as ``out/bg_challenge`` or, with ``tarball``, as
    ``out/backgrounds_challenge_data.tar.gz`` (like the real download). Returns the tarball, or ``out``.

    Anything else in ``out`` is left alone; the target is replaced atomically (``overwrite=True``).
    """
    out = Path(out).absolute()
    target = out / (RELEASE_TARBALL if tarball else "bg_challenge")
    check_overwrite(target, overwrite, "release")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".in9-release.partial-", dir=out) as tmp:
        write_tree(source, tmp, seed=seed, splits=("test",), quality=quality)
        tree = Path(tmp) / "bg_challenge"
        if tarball:
            atomic_write(target, lambda path: _pack(tree, path))
        else:
            swap_folder(tree, target)
    return target if tarball else out


def _pack(tree: Path, path: Path) -> None:
    with tarfile.open(path, "w:gz") as tar:
        tar.add(tree, arcname="bg_challenge")
