"""The accelerate prediction loop (spec §6.4) and the per-variant prediction cache (spec §6.5).

Images are decoded once into uint8 tensors (:mod:`evaluator.decode`; in DataLoader workers beside a GPU, by
the inference streams themselves on CPU); resizing and normalising happen batched on the device
(:mod:`evaluator.preprocess`). ``accelerator.prepare`` shards the loader across processes and
``gather_for_metrics`` collects every row exactly once. A finished variant is written to the cache under a
key of (model weights, protocol, label mode, precision, data fingerprint), so a rerun is instant and a
killed run resumes at the first unfinished variant.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from evaluator.cpu_allocator import tune_cpu_allocator
from evaluator.decode import decode_rgb, to_uint8_hwc
from evaluator.labels import logits_to_in9
from evaluator.models import LoadedModel
from evaluator.config import PRECISIONS
from evaluator.results.schema import PREDICTION_SCHEMA
from in9_builder.errors import In9Error


def default_cache_dir() -> Path:
    base = (
        os.environ.get("IN9_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "in9"
    )
    return Path(base) / "predictions"


def make_accelerator(precision: str = "no", *, cpu: bool | None = None):
    """An ``Accelerator`` for inference; without a GPU ``cpu=True`` (so torchrun gives MULTI_CPU)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    if precision not in PRECISIONS:
        raise In9Error(f"--precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if cpu is None:
        cpu = not torch.cuda.is_available()
    if precision == "fp16" and cpu:
        raise In9Error("--precision fp16 needs a GPU; on CPU use --precision bf16 or no")
    AcceleratorState._reset_state()  # keep the process group, allow another precision in the same process
    return Accelerator(cpu=cpu, mixed_precision=precision)


class DecodedImages(torch.utils.data.Dataset):
    """Row index + uint8 image of a ``datasets.Dataset``; decoding happens here, in the loader workers.

    With ``threads > 1`` a batch is decoded by that many threads (the decoders release the GIL): for a run
    in the main process with a single inference stream; CPU runs with two streams decode with one thread each.
    """

    def __init__(self, dataset, column: str = "image", threads: int = 1) -> None:
        import datasets

        self.dataset = dataset.select_columns([column])
        self.feature = self.dataset.features[column]
        if isinstance(self.feature, datasets.Image) and self.feature.decode:
            # Hand out the stored {bytes, path} and decode them in whichever thread asks: the same pixels
            # as datasets' decoding (evaluator.decode), without its serial loop.
            raw = datasets.Image(mode=self.feature.mode, decode=False)
            self.dataset = self.dataset.cast_column(column, raw)
        else:
            self.feature = None
        self.column = column
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_pool": None}  # a worker process makes its own

    def _decode(self, value) -> np.ndarray:
        return decode_rgb(value, self.feature) if self.feature is not None else to_uint8_hwc(value)

    def __getitem__(self, index: int):
        return index, self._decode(self.dataset[index][self.column])

    def __getitems__(self, indices: list[int]):
        values = self.dataset[list(indices)][self.column]
        if self.threads > 1 and len(values) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="in9-decode")
            arrays = list(self._pool.map(self._decode, values))
        else:
            arrays = [self._decode(value) for value in values]
        return list(zip(indices, arrays, strict=True))

    def close(self) -> None:
        """End the decode threads and drop the dataset: ``accelerator.prepare_data_loader`` keeps every loader
        it prepared (``Accelerator._dataloaders``), and through it this object, for the whole run; holding the
        rows here would keep each scored variant's memory map resident (+200 MB per variant)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        self.dataset = None


def collate(items):
    indices = torch.tensor([i for i, _ in items], dtype=torch.int64)
    images = [img for _, img in items]
    # np.stack of (H, W, 3) images then a permute gives an NCHW view in channels-last memory: one copy
    # (numpy's stack is several times faster than torch.stack on uint8), in the layout convolutions like.
    if all(img.shape == images[0].shape for img in images):
        return indices, torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
    return indices, [torch.from_numpy(np.array(img)).permute(2, 0, 1) for img in images]


def preprocess_batch(preprocess, images) -> torch.Tensor:
    if isinstance(images, torch.Tensor):
        return preprocess(images)
    return torch.cat([preprocess(img[None]) for img in images])


def weights_digest(module: torch.nn.Module) -> str:
    """sha256 of the state dict (names, shapes, dtypes, bytes): the weights whatever their origin."""
    sha = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous().reshape(-1)
        sha.update(f"{name}|{tuple(tensor.shape)}|{t.dtype}".encode())
        sha.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return sha.hexdigest()


@dataclass
class PredictionCache:
    """One parquet file per finished variant under ``root/<key>/``; written atomically by the main process."""

    root: Path
    key: dict

    @property
    def folder(self) -> Path:
        digest = hashlib.sha256(json.dumps(self.key, sort_keys=True).encode()).hexdigest()[:24]
        return Path(self.root) / digest

    def path(self, variant: str, fingerprint: str) -> Path:
        return self.folder / f"{variant}-{fingerprint.removeprefix('sha256:')[:16]}.parquet"

    def load(self, variant: str, fingerprint: str) -> pa.Table | None:
        path = self.path(variant, fingerprint)
        if not path.is_file():
            return None
        try:
            return pq.read_table(path, schema=PREDICTION_SCHEMA)
        except (OSError, pa.ArrowInvalid):
            return None  # a damaged entry is recomputed, never trusted

    def store(self, variant: str, fingerprint: str, table: pa.Table) -> None:
        path = self.path(variant, fingerprint)
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "key.json").write_text(json.dumps(self.key, indent=1, sort_keys=True))
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        pq.write_table(table, tmp)
        os.replace(tmp, path)


def cache_key(loaded: LoadedModel, *, label_mode: str, precision: str) -> dict:
    return {
        "model": loaded.model_id if loaded.source == "hub" else None,
        "revision": loaded.revision,
        "weights": weights_digest(loaded.model),
        "preprocess": repr(loaded.preprocess),
        "to_in9": hashlib.sha256(np.asarray(loaded.label_space.to_in9, dtype=np.int64).tobytes()).hexdigest(),
        "label_mode": label_mode,
        "precision": precision,
    }


# Two streams pay off when decoding a batch takes at least this share of its forward: tiny ResNet 0.3-0.7
# (2 streams 1.1-1.3x faster end to end), ResNet-50 ~0.02 (one stream on all threads as fast or faster).
STREAMS_MIN_DECODE_SHARE = 0.1


def inference_streams(accelerator, num_workers: int = 0) -> int:
    """How many batches a CPU process may work on at once, each stream on its share of the cores.

    One process on a CPU with >= 2 threads may run 2 streams that each decode and forward their own batches:
    one stream's decoding and Python overhead then fill the cores while the other computes, where a single
    stream leaves them to the model's threads waiting (``predict_dataset`` keeps one stream when decoding
    is cheap next to the forward). Elsewhere (a GPU, several processes, decoding worker processes) one.
    """
    if accelerator.device.type != "cpu" or accelerator.num_processes > 1 or num_workers:
        return 1
    return 2 if torch.get_num_threads() >= 2 else 1


class BatchStreams:
    """Pulls batches from one loader and scores them, from one or several threads; collects the rows."""

    def __init__(self, batches, score, gather, bar) -> None:
        self.batches, self.score, self.gather, self.bar = batches, score, gather, bar
        self.lock, self.stop = threading.Lock(), threading.Event()
        self.parts: list[tuple] = []

    def run(self, budget: int | None = None, num_threads: int | None = None) -> tuple[float, float] | None:
        """Score up to ``budget`` batches (all if None); (decode s, forward s) of the last, None when done."""
        if num_threads is not None:
            torch.set_num_threads(num_threads)  # this thread's share (thread-local)
        last: tuple[float, float] | None = None
        try:
            with torch.inference_mode():
                while not self.stop.is_set() and budget != 0:
                    t0 = time.perf_counter()
                    with self.lock:  # the loader decodes here: a stream decodes while the others compute
                        batch = next(self.batches, None)
                    if batch is None:
                        return None
                    t1 = time.perf_counter()
                    scored = self.score(*batch)
                    last = (t1 - t0, time.perf_counter() - t1)
                    with self.lock:
                        gathered = self.gather(scored)
                        self.parts.append(tuple(t.cpu() for t in gathered))
                        self.bar.update(len(gathered[0]))
                    budget = None if budget is None else budget - 1
        except BaseException:
            self.stop.set()  # the other streams stop at their next batch; this error is the run's
            raise
        return last

    def run_parallel(self, streams: int, num_threads: int) -> None:
        with ThreadPoolExecutor(streams, thread_name_prefix="in9-stream") as pool:
            for future in [pool.submit(self.run, None, num_threads) for _ in range(streams)]:
                future.result()


def predict_dataset(
    loaded: LoadedModel,
    dataset,
    *,
    accelerator,
    model,
    label_mode: str,
    batch_size: int,
    num_workers: int = 0,
    progress: bool = True,
    desc: str = "",
) -> dict[str, np.ndarray]:
    """Predict every row of ``dataset`` on all processes; every process returns all rows in row order."""
    streams = inference_streams(accelerator, num_workers)
    threads = torch.get_num_threads()
    # Streams decode with one thread each; one stream in the main process uses the model's threads (<= 8).
    decoded = DecodedImages(dataset, threads=1 if num_workers or streams > 1 else min(8, threads))
    loader = DataLoader(
        decoded,
        batch_size=batch_size,
        shuffle=False,
        collate_fn=collate,
        num_workers=num_workers,
        persistent_workers=False,
        prefetch_factor=4 if num_workers else None,
    )
    device = accelerator.device

    def score(indices, images) -> tuple:
        x = preprocess_batch(loaded.preprocess, images).contiguous(memory_format=torch.channels_last)
        with accelerator.autocast():
            logits = model(x)
        out = logits_to_in9(logits.float(), loaded.label_space, label_mode)
        return indices.to(device), out.pred, out.raw_top1, out.scores

    # A single process has nothing to gather; skipping it also keeps accelerate's end-of-loader trimming
    # (meant for the last batch) away from a batch another stream finishes after the loader ran out.
    gather = accelerator.gather_for_metrics if accelerator.num_processes > 1 else (lambda t: t)
    disable = not (progress and accelerator.is_main_process)
    try:
        with tqdm(total=len(dataset), desc=desc, unit="img", leave=False, disable=disable) as bar:
            run = BatchStreams(iter(accelerator.prepare_data_loader(loader)), score, gather, bar)
            if streams == 1:
                run.run()
            # Two batches on one stream first (the first pays one-off set-up); then streams if decoding is
            # a real share of the forward, else the rest on this one with threaded decoding.
            elif (probe := run.run(budget=2)) is not None:
                decode_s, forward_s = probe
                if decode_s >= STREAMS_MIN_DECODE_SHARE * forward_s:
                    run.run_parallel(streams, max(1, threads // streams))
                else:
                    decoded.threads = min(8, threads)
                    run.run()
    finally:
        decoded.close()  # the decode threads end with the variant, also when a run is interrupted
    parts = run.parts
    if not parts:
        return {
            "prediction": np.zeros(0, np.int64),
            "raw_top1": np.zeros(0, np.int64),
            "scores": np.zeros((0, 9), np.float32),
        }
    index, pred, raw, scores = (torch.cat(p).numpy() for p in zip(*parts, strict=True))
    order = np.argsort(index, kind="stable")
    if not np.array_equal(index[order], np.arange(len(dataset))):
        raise RuntimeError(f"gathered {len(index)} predictions for {len(dataset)} rows: rows lost or doubled")
    return {"prediction": pred[order], "raw_top1": raw[order], "scores": scores[order].astype(np.float32)}


def predictions_table(variant: str, dataset, columns: dict[str, np.ndarray]) -> pa.Table:
    n = len(dataset)
    names = [c for c in ("image_id", "fg_image_id", "label") if c in dataset.column_names]
    # One arrow read of the identity columns (row selection applied; iterating them row by row in Python
    # cost 0.4 s per 4,050-row variant), then copied: a zero-copy slice would keep the variant's whole memory
    # map, images included, resident for as long as the predictions live.
    rows = dataset.select_columns(names).with_format("arrow")[:].to_pydict()
    return pa.table(
        {
            "variant": [variant] * n,
            "image_id": [str(x) for x in rows["image_id"]],
            "fg_image_id": rows.get("fg_image_id", [None] * n),
            "label": np.asarray(rows["label"], dtype=np.int64),
            "prediction": columns["prediction"].astype(np.int64),
            "raw_top1": columns["raw_top1"].astype(np.int64),
            "scores": pa.FixedSizeListArray.from_arrays(
                pa.array(columns["scores"].reshape(-1), pa.float32()), 9
            ),
        },
        schema=PREDICTION_SCHEMA,
    )


def predict_variants(
    loaded: LoadedModel,
    data,
    variants: list[str],
    *,
    accelerator,
    label_mode: str,
    batch_size: int,
    cache: PredictionCache | None,
    num_workers: int = 0,
    progress: bool = True,
) -> tuple[pa.Table, dict[str, str]]:
    """Predictions of every variant (from the cache where finished), and which came from where."""
    tune_cpu_allocator(accelerator.device)
    model = accelerator.prepare_model(loaded.model, evaluation_mode=True)
    model = model.to(memory_format=torch.channels_last)
    options = dict(
        accelerator=accelerator,
        model=model,
        label_mode=label_mode,
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress,
    )
    tables, origin = [], {}
    # What exists now (model, libraries: ~400k objects) outlives the run; frozen, the collection after each
    # variant visits only the variant's own objects (0.27 s -> ~0 per variant).
    gc.freeze()
    try:
        quiet = not (progress and accelerator.is_main_process)
        for variant in tqdm(variants, desc="variants", unit="variant", disable=quiet):
            table, origin[variant] = _variant_predictions(loaded, data, variant, cache, **options)
            tables.append(table)
            if hasattr(data, "release"):  # unmap the scored variant: memory stays that of one variant
                data.release(variant)
                gc.collect()
    finally:
        gc.unfreeze()
    return pa.concat_tables(tables) if tables else PREDICTION_SCHEMA.empty_table(), origin


def _variant_predictions(
    loaded: LoadedModel, data, variant: str, cache: PredictionCache | None, *, accelerator, **options
) -> tuple[pa.Table, str]:
    """One variant's predictions table, and whether it came from the cache or was computed (and stored)."""
    dataset = data.variant(variant)
    fingerprint = data.fingerprint(variant)
    table = cache.load(variant, fingerprint) if cache is not None else None
    if table is not None and table.num_rows == len(dataset):
        return table, "cache"
    columns = predict_dataset(loaded, dataset, accelerator=accelerator, desc=variant, **options)
    table = predictions_table(variant, dataset, columns)
    if cache is not None and accelerator.is_main_process:
        cache.store(variant, fingerprint, table)
    accelerator.wait_for_everyone()
    return table, "computed"
