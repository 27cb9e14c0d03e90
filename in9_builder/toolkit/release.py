"""The release layout on disk: what the original tarballs held, rebuilt from any scene source.

``OUT/bg_challenge/<variant>/val/<NN_name>/<stem>.JPEG`` and ``OUT/bg_challenge/fg_mask/val/...npy`` for the
test split (the GitHub release's layout, readable by the ``release`` source and the original scripts);
``OUT/<variant>/train/<NN_name>/...`` for the IN-9 training sets (the layout of the dead Dropbox tarballs,
plus the training masks that never existed) and ``OUT/in9l/train/<NN_name>/...`` for IN-9L. Mixed files are
named ``fg_<stem>_bg_<stem>.JPEG``. Written into a temporary sibling folder and renamed into place when
complete.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..classes import CLASS_FOLDERS, IMAGE_VARIANTS, MIXED_VARIANTS
from ..errors import In9Error
from ..render import draw_backgrounds, render_variant

JPEG_QUALITY = 75  # PIL's default, what the authors' script saved with
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
            Image.fromarray(pixels).save(job.path(variant, class_folder, stem, "JPEG"), quality=job.quality)
    return len(ids)


def _write_batch(ids: list[str]) -> int:
    return _write_scenes(_JOB, ids)


def _write_split(job: _SplitJob, num_proc: int) -> int:
    """Write every scene of the split. Each file is a pure function of its scene: any process count gives
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


def write_release_layout(
    source,
    out: str | Path,
    *,
    seed: int = 0,
    variants: tuple[str, ...] = IMAGE_VARIANTS,
    overwrite: bool = False,
    quality: int = JPEG_QUALITY,
    num_proc: int = 1,
) -> Path:
    """Write every split of ``source`` in the release layout into ``out`` (atomically). Returns ``out``."""
    out = Path(out).absolute()
    if out.exists() and not overwrite:
        raise In9Error(f"{out} already exists; pass --overwrite to replace it or choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        counts = {}
        for split in source.splits():
            if split == "train" and getattr(source, "train_set", "in9") == "in9l":
                job = _SplitJob(
                    source, split, staging, "train", ("original",), {}, quality, False, {"original": "in9l"}
                )
                counts["in9l"] = _write_split(job, num_proc)
                continue
            labels = source.labels(split)
            pairings = {v: draw_backgrounds(seed, labels, v) for v in variants if v in MIXED_VARIANTS}
            root, split_folder = (staging / "bg_challenge", "val") if split == "test" else (staging, split)
            job = _SplitJob(source, split, root, split_folder, tuple(variants), pairings, quality, True)
            counts[split] = _write_split(job, num_proc)
        record = {
            "schema": "in9-toolkit-release/1",
            "seed": seed,
            "jpeg_quality": quality,
            "images": counts,
            "source_params": source.params(),
        }
        (staging / "toolkit_summary.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out
