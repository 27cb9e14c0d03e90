"""Benchmark: the synthetic export against a plain Pillow transcode of the same number of images, same run.

    python benchmarks/bench_build.py                 # the full setting: 450 per class (4,050 scenes),
                                                     # 224 px, all 9 configs (36,450 images), 2 processes
    python benchmarks/bench_build.py --per-class 20  # a quick look

Prints images per second for the export (scene generation, rendering, PNG encoding, parquet writing,
fingerprints, card) and for a plain single-process Pillow loop that decodes a JPEG and encodes it as PNG,
for the same number of images, plus the ratio (target: export >= 0.5x the plain rate) and the peak resident
memory of the export's whole process tree (target: < 2 GB; the export streams and never holds the set).
The plain loop runs twice: at Pillow's default PNG setting (what "plain" means) and at the export's own
``compress_level`` (a like-for-like encoder), so the ratio cannot hide behind a cheaper encoder setting.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
from PIL import Image

from in9_builder.classes import CLASS_NAMES, CONFIGS, MIXED_VARIANTS, NUM_CLASSES
from in9_builder.encode import PNG_COMPRESS_LEVEL

GB = 1024**3


class PeakTreeMemory:
    """Samples the summed RSS of this process and its descendants (the datasets workers) every 0.1 s."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _children(pid: int) -> list[int]:
        kids = []
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    kids += [int(k) for k in f.read().split()]
        except OSError:
            pass
        return kids

    @staticmethod
    def _rss(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            return 0

    def _tree_rss(self) -> int:
        total, todo = 0, [os.getpid()]
        while todo:
            pid = todo.pop()
            total += self._rss(pid)
            todo += self._children(pid)
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._tree_rss())
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_export(out: Path, per_class: int, size: int, num_proc: int) -> tuple[float, int]:
    from in9_builder.export import export  # imports datasets, which main() configures first

    start = time.perf_counter()
    with PeakTreeMemory() as memory:
        export(
            "synthetic",
            out,
            seed=0,
            source_kwargs={"per_class": per_class, "size": size, "train_per_class": 0},
            num_proc=num_proc,
            cache_dir=out.parent / "cache",
        )
    return time.perf_counter() - start, memory.peak


def check_load_dataset(export_dir: Path, scenes: int) -> None:
    """Untimed: ``load_dataset("in9", config)`` from the parent folder, fresh cache, for every config."""
    import datasets  # after main() has set HF_HUB_OFFLINE, which datasets reads at import

    cwd = os.getcwd()
    os.chdir(export_dir.parent)
    try:
        for config in CONFIGS:
            ds = datasets.load_dataset(
                "in9", config, split="test", cache_dir=str(export_dir.parent / "load_cache")
            )
            assert ds.num_rows == scenes, (config, ds.num_rows)
            assert ds.features["label"].names == list(CLASS_NAMES)
            assert config not in MIXED_VARIANTS or {"fg_image_id", "bg_image_id", "bg_label"} <= set(
                ds.column_names
            )
            del ds
    finally:
        os.chdir(cwd)
    shutil.rmtree(export_dir.parent / "load_cache", ignore_errors=True)
    print(
        f"load_dataset('in9', c) from the parent folder, fresh cache: {scenes} rows and the 9 class names "
        f"in each of the {len(CONFIGS)} configs"
    )


def jpeg_inputs(export_dir: Path) -> list[bytes]:
    """The exported originals as JPEG (quality 95, like the release's files): the plain loop's input."""
    inputs = []
    for shard in sorted((export_dir / "original").glob("test-*.parquet")):
        for batch in pq.ParquetFile(shard).iter_batches(batch_size=256, columns=["image"]):
            for cell in batch.column("image").to_pylist():
                buffer = io.BytesIO()
                Image.open(io.BytesIO(cell["bytes"])).save(buffer, format="JPEG", quality=95)
                inputs.append(buffer.getvalue())
    return inputs


def run_plain(inputs: list[bytes], count: int, compress_level: int | None) -> float:
    """Seconds for ``count`` decode + PNG encode round trips in one process (cycling through ``inputs``)."""
    options = {} if compress_level is None else {"compress_level": compress_level}
    start = time.perf_counter()
    for i in range(count):
        with Image.open(io.BytesIO(inputs[i % len(inputs)])) as image:
            image.load()
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", **options)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--per-class", type=int, default=450)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--num-proc", type=int, default=2)
    parser.add_argument("--work-dir", help="where to write the export (default: a temporary folder)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import datasets  # after HF_HUB_OFFLINE is set: datasets reads it at import

    datasets.disable_progress_bars()

    with tempfile.TemporaryDirectory(dir=args.work_dir) as tmp:
        out = Path(tmp) / "in9"
        scenes = args.per_class * NUM_CLASSES
        images = scenes * len(CONFIGS)
        print(
            f"export: synthetic, {scenes} scenes x {len(CONFIGS)} configs = {images} images, "
            f"{args.size}px, {args.num_proc} processes, cpu count {os.cpu_count()}"
        )
        export_s, peak = run_export(out, args.per_class, args.size, args.num_proc)
        size_mb = sum(p.stat().st_size for p in out.rglob("*.parquet")) / 1e6
        check_load_dataset(out, scenes)
        inputs = jpeg_inputs(out)
        plain_default_s = run_plain(inputs, images, None)
        plain_level_s = run_plain(inputs, images, PNG_COMPRESS_LEVEL)

    export_rate = images / export_s
    default_rate, level_rate = images / plain_default_s, images / plain_level_s
    print(f"export            {export_s:8.1f} s  {export_rate:7.1f} images/s  ({size_mb:.0f} MB of parquet)")
    print(
        f"plain (default)   {plain_default_s:8.1f} s  {default_rate:7.1f} images/s  "
        f"Pillow JPEG decode + PNG encode, 1 process"
    )
    print(
        f"plain (level {PNG_COMPRESS_LEVEL})   {plain_level_s:8.1f} s  {level_rate:7.1f} images/s  "
        f"same, at the export's PNG compress_level"
    )
    ratio_default, ratio_level = export_rate / default_rate, export_rate / level_rate
    print(
        f"ratio export/plain: {ratio_default:.2f}x (default PNG), {ratio_level:.2f}x (same compress level); "
        f"target >= 0.5x: {'PASS' if min(ratio_default, ratio_level) >= 0.5 else 'FAIL'}"
    )
    print(
        f"peak memory of the export's process tree: {peak / GB:.2f} GB; target < 2 GB: "
        f"{'PASS' if peak < 2 * GB else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
