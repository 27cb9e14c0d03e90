"""The per-config content fingerprint: the one definition, used by the export and recomputed by the evaluator.

sha256 over the rows in their stored order: for each row its ``image_id`` (UTF-8) and the stored image bytes
(and the stored mask bytes for ``fg_mask``), each length-prefixed so that no two different row lists collide.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

PREFIX = "sha256:"


def _stored_bytes(value: Any, field: str, image_id: str) -> bytes:
    # An image cell as stored in parquet is {"bytes": ..., "path": ...}; accept raw bytes too.
    data = value.get("bytes") if isinstance(value, Mapping) else value
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(
            f"fingerprint: row {image_id!r} field {field!r} holds no embedded bytes; "
            "load the column undecoded (datasets.Image(decode=False)) from an export with embedded images"
        )
    return bytes(data)


class FingerprintHasher:
    """Incremental :func:`config_fingerprint`: ``update(row)`` per row in order, then ``hexdigest()``."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self.num_rows = 0

    def _field(self, data: bytes) -> None:
        self._sha.update(len(data).to_bytes(8, "little"))
        self._sha.update(data)

    def update(self, row: Mapping[str, Any]) -> None:
        image_id = str(row["image_id"])
        self._field(image_id.encode("utf-8"))
        self._field(_stored_bytes(row["image"], "image", image_id))
        if row.get("mask") is not None:
            self._field(_stored_bytes(row["mask"], "mask", image_id))
        self.num_rows += 1

    def hexdigest(self) -> str:
        return PREFIX + self._sha.hexdigest()


def config_fingerprint(rows: Iterable[Mapping[str, Any]]) -> str:
    """``sha256:<hex>`` of the ordered rows (each with ``image_id``, ``image`` and, for fg_mask, ``mask``)."""
    hasher = FingerprintHasher()
    for row in rows:
        hasher.update(row)
    return hasher.hexdigest()


def parquet_fingerprint(paths: Iterable[str], *, batch_rows: int = 256) -> tuple[str, int]:
    """Fingerprint and row count of parquet shards read in the given order, streaming in small batches."""
    import pyarrow.parquet as pq  # heavy; the hasher alone is used by light tools

    hasher = FingerprintHasher()
    for path in paths:
        parquet = pq.ParquetFile(path)
        columns = [c for c in ("image_id", "image", "mask") if c in parquet.schema_arrow.names]
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
            for row in batch.to_pylist():
                hasher.update(row)
    return hasher.hexdigest(), hasher.num_rows


def dataset_fingerprint(dataset, *, batch_rows: int = 256) -> str:
    """Fingerprint of a loaded ``datasets.Dataset`` (a config of an export), without decoding the images."""
    import datasets  # heavy; the hasher alone is used by light tools

    columns = [c for c in ("image_id", "image", "mask") if c in dataset.column_names]
    undecoded = dataset.select_columns(columns)
    for column in ("image", "mask"):
        if column in columns:
            undecoded = undecoded.cast_column(column, datasets.Image(decode=False))
    hasher = FingerprintHasher()
    for batch in undecoded.iter(batch_size=batch_rows):
        for i in range(len(batch["image_id"])):
            hasher.update({c: batch[c][i] for c in columns})
    return hasher.hexdigest()
