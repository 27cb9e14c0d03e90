"""The accelerate prediction loop over the IN-9 variants.

Images are decoded into uint8 batches (:mod:`evaluator.runtime.decode`; in DataLoader workers beside a GPU,
by the inference streams themselves on CPU, :mod:`evaluator.runtime.streams`); preprocessing, the forward and
the label mapping happen batched on the device (:class:`evaluator.forward.Forward`).
``accelerator.prepare_data_loader`` shards the loader across processes and ``gather_for_metrics`` collects
every row exactly once. A finished variant is stored in the :class:`~evaluator.cache.PredictionCache`.
"""

from __future__ import annotations

import gc

import numpy as np
import pyarrow as pa
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from evaluator.cache import PredictionCache
from evaluator.forward import Forward
from evaluator.results.schema import PREDICTION_SCHEMA
from evaluator.runtime import streams
from evaluator.runtime.decode import DecodedImages, collate


def _loader(dataset, *, batch_size: int, num_workers: int, threads: int) -> tuple[DecodedImages, DataLoader]:
    decoded = DecodedImages(dataset, threads=threads)
    loader = DataLoader(
        decoded,
        batch_size=batch_size,
        shuffle=False,
        collate_fn=collate,
        num_workers=num_workers,
        persistent_workers=False,
        prefetch_factor=4 if num_workers else None,
    )
    return decoded, loader


def _run_streams(run: streams.BatchStreams, decoded: DecodedImages, count: int, threads: int) -> None:
    """One stream, or two batches on one stream first (the first pays one-off set-up) and then several
    streams if decoding is a real share of the forward, else the rest on this one with threaded decoding."""
    if count == 1:
        run.run()
        return
    probe = run.run(budget=2)
    if probe is None:
        return
    decode_s, forward_s = probe
    if decode_s >= streams.STREAMS_MIN_DECODE_SHARE * forward_s:
        run.run_parallel(count, max(1, threads // count))
    else:
        decoded.threads = min(8, threads)
        run.run()


def predict_dataset(
    forward: Forward,
    dataset,
    *,
    batch_size: int,
    num_workers: int = 0,
    progress: bool = True,
    desc: str = "",
) -> dict[str, np.ndarray]:
    """Predict every row of ``dataset`` on all processes; every process returns all rows in row order."""
    accelerator = forward.accelerator
    count = streams.inference_streams(accelerator, num_workers)
    threads = torch.get_num_threads()
    # Streams decode with one thread each; one stream in the main process uses the model's threads (<= 8).
    decoded, loader = _loader(
        dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        threads=1 if num_workers or count > 1 else min(8, threads),
    )
    device = accelerator.device

    def score(indices, images) -> tuple:
        out = forward(images)
        return indices.to(device), out.pred, out.raw_top1, out.scores

    # A single process has nothing to gather; skipping it also keeps accelerate's end-of-loader trimming
    # (meant for the last batch) away from a batch another stream finishes after the loader ran out.
    gather = accelerator.gather_for_metrics if accelerator.num_processes > 1 else (lambda t: t)
    disable = not (progress and accelerator.is_main_process)
    try:
        with tqdm(total=len(dataset), desc=desc, unit="img", leave=False, disable=disable) as bar:
            run = streams.BatchStreams(iter(accelerator.prepare_data_loader(loader)), score, gather, bar)
            _run_streams(run, decoded, count, threads)
    finally:
        decoded.close()  # the decode threads end with the variant, also when a run is interrupted
    return _in_row_order(run.parts, len(dataset))


def _in_row_order(parts: list[tuple], num_rows: int) -> dict[str, np.ndarray]:
    if not parts:
        return {
            "prediction": np.zeros(0, np.int64),
            "raw_top1": np.zeros(0, np.int64),
            "scores": np.zeros((0, 9), np.float32),
        }
    index, pred, raw, scores = (torch.cat(p).numpy() for p in zip(*parts, strict=True))
    order = np.argsort(index, kind="stable")
    if not np.array_equal(index[order], np.arange(num_rows)):
        raise RuntimeError(f"gathered {len(index)} predictions for {num_rows} rows: rows lost or doubled")
    return {"prediction": pred[order], "raw_top1": raw[order], "scores": scores[order].astype(np.float32)}


def predictions_table(variant: str, dataset, columns: dict[str, np.ndarray]) -> pa.Table:
    n = len(dataset)
    names = [c for c in ("image_id", "fg_image_id", "label") if c in dataset.column_names]
    # One arrow read of the identity columns (row selection applied; row-by-row Python iteration is slow),
    # then copied: a zero-copy slice would keep the variant's whole memory map, images included, resident for
    # as long as the predictions live.
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
    forward: Forward,
    data,
    variants: list[str],
    *,
    batch_size: int,
    cache: PredictionCache | None,
    num_workers: int = 0,
    progress: bool = True,
) -> tuple[pa.Table, dict[str, str]]:
    """Predictions of every variant (from the cache where finished), and which came from where."""
    accelerator = forward.accelerator
    options = dict(batch_size=batch_size, num_workers=num_workers, progress=progress)
    tables, origin = [], {}
    quiet = not (progress and accelerator.is_main_process)
    for variant in tqdm(variants, desc="variants", unit="variant", disable=quiet):
        table, origin[variant] = _variant_predictions(forward, data, variant, cache, **options)
        tables.append(table)
        data.release(variant)  # unmap the scored variant: memory stays that of one variant
        gc.collect()
    return pa.concat_tables(tables) if tables else PREDICTION_SCHEMA.empty_table(), origin


def _variant_predictions(
    forward: Forward, data, variant: str, cache: PredictionCache | None, **options
) -> tuple[pa.Table, str]:
    """One variant's predictions table, and whether it came from the cache or was computed (and stored)."""
    dataset = data.variant(variant)
    fingerprint = data.fingerprint(variant)
    table = cache.load(variant, fingerprint) if cache is not None else None
    if table is not None and table.num_rows == len(dataset):
        return table, "cache"
    table = predictions_table(variant, dataset, predict_dataset(forward, dataset, desc=variant, **options))
    if cache is not None and forward.accelerator.is_main_process:
        cache.store(variant, fingerprint, table)
    forward.accelerator.wait_for_everyone()
    return table, "computed"
