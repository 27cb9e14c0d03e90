"""The per-variant prediction cache: one parquet file per finished variant under ``root/<key digest>/``.

The key is :meth:`EvalConfig.prediction_key` (model identity + the choices that change a prediction); with
the variant's data fingerprint in the file name, a rerun is instant and a killed run resumes at the first
unfinished variant. Written by the main process through :mod:`in9_builder.atomic`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from evaluator.results.schema import PREDICTION_SCHEMA
from in9_builder.atomic import atomic_write, atomic_write_text


@dataclass
class PredictionCache:
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
        atomic_write_text(self.folder / "key.json", json.dumps(self.key, indent=1, sort_keys=True))
        atomic_write(self.path(variant, fingerprint), lambda tmp: pq.write_table(table, tmp))
