"""The accelerate prediction loop over the IN-9 variants.

Images are decoded into uint8 batches (:mod:`evaluator.runtime.decode`; in DataLoader workers beside a GPU,
by the inference streams themselves on CPU, :mod:`evaluator.runtime.streams`); preprocessing, the forward and
the label mapping happen batched on the device (:class:`evaluator.forward.Forward`).
``accelerator.prepare_data_loader`` shards the loader across processes and ``gather_for_metrics`` collects
every row exactly once. A finished variant is stored in the :class:`~evaluator.cache.PredictionCache`.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from evaluator.cache import PredictionCache
from evaluator.forward import Forward
from evaluator.images import RunImages
from evaluator.results.schema import PREDICTION_SCHEMA
from evaluator.runtime import streams
from evaluator.runtime.decode import DecodedImages, collate
from in9_builder.classes import MIXED_VARIANTS


def _loader(items, *, batch_size: int, num_workers: int) -> DataLoader:
    return DataLoader(
        items,
        batch_size=batch_size,
        shuffle=False,
        collate_fn=collate,
        num_workers=num_workers,
        persistent_workers=False,
        prefetch_factor=4 if num_workers else None,
    )


def _run_streams(run: streams.BatchStreams, items, count: int, threads: int) -> None:
    """One stream, or two batches on one stream first (the first pays one-off set-up) and then:
    - images decoded as the loop goes: several streams if decoding is a real share of the forward, else the
      rest on this one with threaded decoding;
    - images decoded before (a sweep): whichever of one stream and several is faster for this model's forward,
      timed on the next batches (small models often run faster as two single-threaded streams)."""
    if count == 1:
        run.run()
        return
    probe = run.run(budget=2)
    if probe is None:
        return
    decode_s, forward_s = probe
    share = max(1, threads // count)
    if not isinstance(items, DecodedImages):
        # Each stream's last probe batch (the first pays the stream's set-up): `count` batches at a time.
        probes = run.run_parallel(count, share, budget=2)
        if any(p is None for p in probes):
            return
        parallel_s = sum(p[1] for p in probes) / count**2  # per batch, the streams running together
        run.run_parallel(count, share) if parallel_s < forward_s else run.run()
    elif decode_s >= streams.STREAMS_MIN_DECODE_SHARE * forward_s:
        run.run_parallel(count, share)
    else:
        items.threads = min(8, threads)
        run.run()


def predict_dataset(
    forward: Forward,
    dataset,
    *,
    batch_size: int,
    num_workers: int = 0,
    progress: bool = True,
    desc: str = "",
    items=None,
) -> dict[str, np.ndarray]:
    """Predict every row of ``dataset`` on all processes; every process returns all rows in row order.

    ``items`` (a dataset of (row index, uint8 HWC image), e.g. pixels decoded before) replaces decoding the
    ``image`` column of ``dataset`` as the loop goes.
    """
    accelerator = forward.accelerator
    count = streams.inference_streams(accelerator, num_workers)
    threads = torch.get_num_threads()
    if items is None:
        # Streams decode with one thread each; one stream in the main process uses the model's threads (<= 8).
        items = DecodedImages(dataset, threads=1 if num_workers or count > 1 else min(8, threads))
    loader = _loader(items, batch_size=batch_size, num_workers=num_workers)
    device, num_rows = accelerator.device, len(items)

    def score(indices, images) -> tuple:
        out = forward(images)
        return indices.to(device), out.pred, out.raw_top1, out.scores

    # A single process has nothing to gather; skipping it also keeps accelerate's end-of-loader trimming
    # (meant for the last batch) away from a batch another stream finishes after the loader ran out.
    gather = accelerator.gather_for_metrics if accelerator.num_processes > 1 else (lambda t: t)
    disable = not (progress and accelerator.is_main_process)
    try:
        with tqdm(total=num_rows, desc=desc, unit="img", leave=False, disable=disable) as bar:
            run = streams.BatchStreams(iter(accelerator.prepare_data_loader(loader)), score, gather, bar)
            _run_streams(run, items, count, threads)
    finally:
        items.close()  # the decode threads end with the variant, also when a run is interrupted
    return _in_row_order(run.parts, num_rows)


def predict_halving(forward: Forward, dataset, *, batch_size: int, **options) -> tuple[dict, int]:
    """:func:`predict_dataset`, with the batch halved and the variant retried after a device out-of-memory
    error; returns the predictions and the batch size that ran."""
    while True:
        try:
            return predict_dataset(forward, dataset, batch_size=batch_size, **options), batch_size
        except torch.OutOfMemoryError:
            if batch_size == 1:
                raise
            batch_size = max(1, batch_size // 2)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()


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


def identity_columns(dataset) -> dict[str, list]:
    """``image_id``, ``fg_image_id`` (mixed variants) and ``label`` of every row of ``dataset``."""
    names = [c for c in ("image_id", "fg_image_id", "label") if c in dataset.column_names]
    # One arrow read of the identity columns (row selection applied; row-by-row Python iteration is slow),
    # then copied: a zero-copy slice would keep the variant's whole memory map, images included, resident for
    # as long as the predictions live.
    return dataset.select_columns(names).with_format("arrow")[:].to_pydict()


def predictions_table(
    variant: str, rows: dict[str, list], columns: dict[str, np.ndarray], seed: int | None = None
) -> pa.Table:
    """The predictions.parquet rows of one variant: its identity ``rows`` and the model's ``columns``."""
    n = len(rows["label"])
    return pa.table(
        {
            "variant": [variant] * n,
            "seed": pa.array([seed] * n, pa.int64()),
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


@dataclass
class _Unit:
    """One pass of the loop: a variant of the data, or a mixed variant re-rendered with a seed."""

    name: str  # the cache and prediction_origin key: the variant, or "<variant>@seed<N>"
    variant: str
    seed: int | None
    dataset: Any  # the variant's rows (decoded as the loop goes when items is None)
    items: Any  # the loader's (index, image) items made before, or None
    rows: Callable[[], dict[str, list]]  # the identity columns, read only when predictions are computed
    fingerprint: str | None  # None: not cached


def _data_unit(data, variant: str, images: RunImages | None) -> _Unit:
    dataset = data.variant(variant)
    items = images.for_prediction(variant) if images is not None else None
    return _Unit(
        variant, variant, None, dataset, items, lambda: identity_columns(dataset), data.fingerprint(variant)
    )


def _seeded_unit(images: RunImages, variant: str, seed: int) -> _Unit:
    seeded = images.seeded(variant, seed)
    return _Unit(
        f"{variant}@seed{seed}", variant, seed, None, seeded.images, lambda: seeded.rows, seeded.fingerprint
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
    images: RunImages | None = None,
    seeds: tuple[int, ...] = (),
) -> tuple[pa.Table, dict[str, str], dict[str, int]]:
    """Predictions of every variant and, for each of ``seeds``, of every mixed variant re-rendered with that
    draw (``images`` renders them); from the cache where finished. Also returns which came from where
    (``prediction_origin``) and the passes whose batch was halved after running out of device memory."""
    accelerator = forward.accelerator
    options = dict(num_workers=num_workers, progress=progress)
    plan: list[tuple[str, int | None]] = [(v, None) for v in variants]
    plan += [(v, s) for s in seeds for v in variants if v in MIXED_VARIANTS]
    if seeds and images is None:
        raise ValueError("predict_variants: seeds need images= (a RunImages) to render the draws")
    tables, origin, halved = [], {}, {}
    quiet = not (progress and accelerator.is_main_process)
    for variant, seed in tqdm(plan, desc="variants", unit="variant", disable=quiet):
        unit = _data_unit(data, variant, images) if seed is None else _seeded_unit(images, variant, seed)
        table, origin[unit.name], ran = _unit_predictions(forward, unit, cache, batch_size, **options)
        if ran != batch_size:
            halved[unit.name] = ran
        tables.append(table)
        data.release(variant)  # unmap the scored variant: memory stays that of one variant
        gc.collect()
    return pa.concat_tables(tables) if tables else PREDICTION_SCHEMA.empty_table(), origin, halved


def _unit_predictions(
    forward: Forward, unit: _Unit, cache: PredictionCache | None, batch_size: int, **options
) -> tuple[pa.Table, str, int]:
    """One pass's predictions table, whether it came from the cache or was computed (and stored), and the
    batch size that ran."""
    count = len(unit.items) if unit.items is not None else len(unit.dataset)
    cached = cache is not None and unit.fingerprint is not None
    table = cache.load(unit.name, unit.fingerprint) if cached else None
    if table is not None and table.num_rows == count:
        return table, "cache", batch_size
    columns, ran = predict_halving(
        forward, unit.dataset, batch_size=batch_size, items=unit.items, desc=unit.name, **options
    )
    table = predictions_table(unit.variant, unit.rows(), columns, seed=unit.seed)
    if cached and forward.accelerator.is_main_process:
        cache.store(unit.name, unit.fingerprint, table)
    forward.accelerator.wait_for_everyone()
    return table, "computed", ran
