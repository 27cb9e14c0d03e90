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
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from ..classes import CLASS_FOLDERS, IMAGE_VARIANTS, MIXED_VARIANTS
from ..errors import In9Error
from ..render import draw_backgrounds, render_variant

JPEG_QUALITY = 75  # PIL's default, what the authors' script saved with


def _write_split(
    source, split: str, root: Path, folder_split: str, variants: tuple[str, ...], seed: int, quality: int
) -> int:
    labels = source.labels(split)
    pairings = {v: draw_backgrounds(seed, labels, v) for v in variants if v in MIXED_VARIANTS}
    for variant in (*variants, "fg_mask"):
        for folder in CLASS_FOLDERS:
            (root / variant / folder_split / folder).mkdir(parents=True, exist_ok=True)
    count = 0
    for scene in source.scenes(split):
        folder = CLASS_FOLDERS[scene.label]
        np.save(root / "fg_mask" / folder_split / folder / f"{scene.image_id}.npy", scene.mask)
        for variant in variants:
            if variant in MIXED_VARIANTS:
                bg_id = pairings[variant][scene.image_id]
                pixels = render_variant(variant, scene, source.scene(split, bg_id))
                stem = f"fg_{scene.image_id}_bg_{bg_id}"
            else:
                pixels, stem = render_variant(variant, scene), scene.image_id
            Image.fromarray(pixels).save(
                root / variant / folder_split / folder / f"{stem}.JPEG", quality=quality
            )
        count += 1
    return count


def _write_in9l(source, root: Path, quality: int) -> int:
    for folder in CLASS_FOLDERS:
        (root / "in9l" / "train" / folder).mkdir(parents=True, exist_ok=True)
    count = 0
    for scene in source.scenes("train"):
        path = root / "in9l" / "train" / CLASS_FOLDERS[scene.label] / f"{scene.image_id}.JPEG"
        Image.fromarray(scene.image).save(path, quality=quality)
        count += 1
    return count


def write_release_layout(
    source,
    out: str | Path,
    *,
    seed: int = 0,
    variants: tuple[str, ...] = IMAGE_VARIANTS,
    overwrite: bool = False,
    quality: int = JPEG_QUALITY,
    summary: dict | None = None,
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
                counts["in9l"] = _write_in9l(source, staging, quality)
            elif split == "test":
                counts["test"] = _write_split(
                    source, split, staging / "bg_challenge", "val", variants, seed, quality
                )
            else:
                counts[split] = _write_split(source, split, staging, split, variants, seed, quality)
        record = {
            "schema": "in9-toolkit-release/1",
            "seed": seed,
            "jpeg_quality": quality,
            "images": counts,
            "source_params": source.params() if summary is None else summary,
        }
        (staging / "toolkit_summary.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out
