"""Toolkit throughput: GrabCut-segmented images per second per core, and what IN-9L-sized builds would take.

Synthetic scenes are written as an ImageNet tree (JPEG + VOC XML) and pushed through the toolkit's per-image
pipeline (``process_record``: filters, decode, GrabCut with retries, crop). Baseline, measured in the same
run on the same files: decode + Resize(256)/CenterCrop(224) alone (what every image costs without
segmentation, and all that IN-9L itself needs). Sizes: 224 px (the release's size) and 500x375 (ImageNet's
typical photo, the 224 px scenes upscaled), since GrabCut's cost grows with the pixel count. Rates are given
by the wall clock and by the process's CPU time: on a shared machine the CPU-time rate is what one dedicated
core does, and the projections (linear in cores: every image is independent) use it.

    python benchmarks/bench_toolkit.py [--per-class 8] [--images 180000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from in9_builder.sources.synthetic import SyntheticSource
from in9_builder.toolkit import shards
from in9_builder.toolkit.fake_tree import TreeWriter, class_wnids
from in9_builder.toolkit.geometry import resize_crop
from in9_builder.toolkit.process import crop_image, process_record, unpack_mask
from in9_builder.toolkit.tree import scan


def write_tree(root: Path, per_class: int, size: tuple[int, int] | None) -> TreeWriter:
    """Synthetic 224 px scenes as ImageNet val files, optionally upscaled (with their boxes) to ``size``."""
    writer, wnids = TreeWriter(root), class_wnids()
    for scene in SyntheticSource(per_class=per_class, size=224, scene_seed=11).scenes("test"):
        image, mask, box = scene.image, scene.mask, list(scene.bbox)
        if size is not None:
            sx, sy = size[0] / 224, size[1] / 224
            image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
            mask = np.asarray(Image.fromarray(mask).resize(size, Image.Resampling.NEAREST))
            box = [int(box[0] * sx), int(box[1] * sy), int((box[2] + 1) * sx) - 1, int((box[3] + 1) * sy) - 1]
        writer.add("val", wnids[scene.label], image, [box], mask=mask)
    writer.write_xml()
    return writer


def _rates(fn, count: int) -> tuple[float, float, object]:
    """(images/s by the wall clock, images/s by this process's CPU time, fn's result)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return count / (time.perf_counter() - wall), count / (time.process_time() - cpu), result


def measure(root: Path) -> dict:
    import cv2

    imagenet = root / "imagenet"
    index = scan(imagenet, root / "boxes_xml", ("test",))
    records = index.records
    base_wall, base_cpu, _ = _rates(lambda: [crop_image(imagenet / r.path) for r in records], len(records))
    cv2.setNumThreads(1)
    seg_wall, seg_cpu, outcomes = _rates(lambda: [process_record(imagenet, r) for r in records], len(records))
    shards.CHUNK_SIZE = max(1, len(records) // 8)
    cores = os.cpu_count() or 1
    start = time.perf_counter()
    shards.run_shard(index, imagenet, root / "work", num_proc=cores, progress=False)
    all_cores = len(records) / (time.perf_counter() - start)
    return {
        "n": len(records),
        "cores": cores,
        "base_wall": base_wall,
        "base_cpu": base_cpu,
        "seg_wall": seg_wall,
        "seg_cpu": seg_cpu,
        "all_cores": all_cores,
        "accepted": sum(o["reason"] is None for o in outcomes),
        "outcomes": outcomes,
    }


def iou_median(writer: TreeWriter, outcomes: list[dict]) -> float:
    ious = []
    for outcome in outcomes:
        if outcome["reason"] is None:
            truth, found = resize_crop(writer.true_masks[outcome["image_id"]]), unpack_mask(outcome["mask"])
            ious.append((truth & found).sum() / (truth | found).sum())
    return float(np.median(ious))


def hours(images: int, rate: float) -> str:
    seconds = images / rate
    return f"{seconds / 3600:6.2f} h" if seconds >= 3600 else f"{seconds / 60:6.1f} min"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=8, help="synthetic photos per class (x9)")
    parser.add_argument("--images", type=int, default=180_000, help="images to project for (IN-9L ~180k)")
    args = parser.parse_args()
    print(
        f"toolkit benchmark: {9 * args.per_class} synthetic photos per size, {os.cpu_count()} CPU cores here"
    )
    for label, size in (("224x224", None), ("500x375", (500, 375))):
        with tempfile.TemporaryDirectory() as tmp:
            writer = write_tree(Path(tmp), args.per_class, size)
            m = measure(Path(tmp))
            iou = iou_median(writer, m["outcomes"])
        print(f"\n[{label}] {m['n']} photos, {m['accepted']} accepted, GrabCut median IoU {iou:.3f}")
        print("  images/s per core                              wall clock   CPU time (= a dedicated core)")
        print(f"  segmented: filters+decode+GrabCut+crop        {m['seg_wall']:10.2f}   {m['seg_cpu']:10.2f}")
        print(
            f"  baseline: decode+Resize(256)+CenterCrop(224)  {m['base_wall']:10.2f}   {m['base_cpu']:10.2f}"
        )
        print(f"  ratio segmented / baseline (CPU time)          {m['seg_cpu'] / m['base_cpu']:10.4f}")
        print(
            f"  {m['cores']} processes (run_shard), wall clock: {m['all_cores']:.2f} images/s = "
            f"{m['all_cores'] / m['seg_wall'] / m['cores']:.0%} of linear (the cores here are shared)"
        )
        for cores in (m["cores"], 64):
            print(
                f"  projected {args.images:,} images on {cores:>2} dedicated cores (linear): "
                f"segmented {hours(args.images, m['seg_cpu'] * cores)}, "
                f"decode+crop only {hours(args.images, m['base_cpu'] * cores)}"
            )


if __name__ == "__main__":
    main()
