"""Chunked, resumable, shardable processing of the index, and the merge of the shards' chunks.

The sorted index is cut into fixed chunks of ``CHUNK_SIZE`` images; shard ``i`` of ``K`` owns the chunks whose
number is ``i`` mod ``K``. Each chunk's outcomes go into one file, written atomically
(``in9_builder.atomic``), so a killed build resumes at the first missing chunk, and any set of shards merges
into exactly what one machine would have produced: a chunk file is a pure function of its images.
"""

from __future__ import annotations

import json
import multiprocessing
import pickle
import sys
from collections.abc import Iterable
from pathlib import Path

from tqdm.auto import tqdm

from ..atomic import atomic_write_bytes, atomic_write_text
from ..errors import In9Error
from .process import process_record
from .tree import Index, Record

CHUNK_SIZE = 64


def num_chunks(index: Index) -> int:
    return -(-len(index.records) // CHUNK_SIZE)


def shard_chunks(total: int, num_shards: int, shard_index: int) -> list[int]:
    """The chunk numbers shard ``shard_index`` of ``num_shards`` owns."""
    if num_shards < 1:
        raise In9Error(f"num_shards={num_shards}: must be at least 1", argument="num_shards")
    if not 0 <= shard_index < num_shards:
        raise In9Error(
            f"shard_index={shard_index}: must be between 0 and {num_shards - 1} ({num_shards} shards)",
            argument="shard_index",
        )
    return list(range(shard_index, total, num_shards))


def chunk_folder(work_dir: str | Path, index: Index) -> Path:
    # One folder per index fingerprint: a changed ImageNet tree never mixes with chunks of an old one.
    return Path(work_dir) / f"index-{index.fingerprint[:16]}"


def chunk_path(folder: Path, chunk: int) -> Path:
    return folder / f"chunk-{chunk:06d}.pkl"


def _init_worker() -> None:
    import cv2  # the toolkit's optional dependency; only workers that segment need it

    cv2.setNumThreads(1)  # one core per process; the processes are the parallelism


def _run_chunk(task: tuple[str, str, int, list[Record], str]) -> int:
    root, fingerprint, chunk, records, path = task
    outcomes = [process_record(Path(root), r) for r in records]
    payload = {"fingerprint": fingerprint, "chunk": chunk, "outcomes": outcomes}
    atomic_write_bytes(path, pickle.dumps(payload, protocol=4))
    return len(records)


def run_shard(
    index: Index,
    imagenet: str | Path,
    work_dir: str | Path,
    *,
    num_shards: int = 1,
    shard_index: int = 0,
    num_proc: int = 1,
    progress: bool = True,
) -> int:
    """Process the missing chunks of one shard into ``work_dir``. Returns the number of chunks computed."""
    folder = chunk_folder(work_dir, index)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"fingerprint": index.fingerprint, "num_records": len(index.records), "chunk_size": CHUNK_SIZE}
    atomic_write_text(folder / "index.json", json.dumps(meta, indent=1) + "\n")
    todo = [
        c
        for c in shard_chunks(num_chunks(index), num_shards, shard_index)
        if not chunk_path(folder, c).exists()
    ]
    tasks = [
        (
            str(imagenet),
            index.fingerprint,
            c,
            index.records[c * CHUNK_SIZE : (c + 1) * CHUNK_SIZE],
            str(chunk_path(folder, c)),
        )
        for c in todo
    ]
    if not tasks:
        return 0
    bar = _progress(len(tasks), f"toolkit shard {shard_index}/{num_shards}", progress)
    if num_proc <= 1:
        _init_worker()
        for task in tasks:
            _run_chunk(task)
            bar.update()
    else:
        with multiprocessing.get_context("spawn").Pool(num_proc, initializer=_init_worker) as pool:
            for _ in pool.imap_unordered(_run_chunk, tasks):
                bar.update()
    bar.close()
    return len(tasks)


def _progress(total: int, desc: str, enabled: bool):
    return tqdm(total=total, desc=desc, unit="chunk", disable=not enabled, file=sys.stderr)


def collect(index: Index, work_dirs: Iterable[str | Path]) -> list[dict]:
    """The outcomes of every image in index order, from the chunks of all shards (the merge)."""
    folders = [chunk_folder(w, index) for w in work_dirs]
    outcomes: list[dict] = []
    missing: list[int] = []
    for chunk in range(num_chunks(index)):
        path = next((chunk_path(f, chunk) for f in folders if chunk_path(f, chunk).exists()), None)
        if path is None:
            missing.append(chunk)
            continue
        payload = pickle.loads(path.read_bytes())
        expected = [r.image_id for r in index.records[chunk * CHUNK_SIZE : (chunk + 1) * CHUNK_SIZE]]
        if (
            payload.get("fingerprint") != index.fingerprint
            or [o["image_id"] for o in payload["outcomes"]] != expected
        ):
            raise In9Error(
                f"{path}: chunk was built from another ImageNet tree or box set; delete the work folder "
                "and rebuild"
            )
        outcomes.extend(payload["outcomes"])
    if missing:
        others = [p for w in work_dirs for p in Path(w).glob("index-*") if p not in folders]
        if len(missing) == num_chunks(index) and others:
            raise In9Error(
                f"{', '.join(str(w) for w in work_dirs)} holds shards of another index ({others[0].name}): "
                "run the shards and the merge on the same ImageNet tree, boxes, splits and train set"
            )
        raise In9Error(
            f"{len(missing)} of {num_chunks(index)} chunks are not built yet (first: chunk {missing[0]}, "
            f"in {', '.join(str(f) for f in folders)}); run every shard index before the merge"
        )
    return outcomes
