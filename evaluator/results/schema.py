"""The files of a results folder, in one place: the ``results.json`` schema ``in9-results/1`` and the two
parquet schemas (docs/CONTRACTS.md).

A results folder holds ``results.json``, ``predictions.parquet`` (one row per (variant, image_id)),
``summary.md`` and, after the challenge, ``challenge.parquet``. :func:`from_predictions` recomputes the
variant metrics from a predictions table with :mod:`evaluator.metrics`; the evaluator itself uses it, so a
validator that calls it gets the identical numbers.

Nothing here runs a model: the prediction loop and the challenge search import these schemas, never the other
way round.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from evaluator.metrics import accuracy, seed_metrics, variant_metrics
from evaluator.results.report import summary_markdown
from in9_builder.atomic import atomic_write, atomic_write_text
from in9_builder.classes import IMAGE_VARIANTS
from in9_builder.errors import In9Error

SCHEMA = "in9-results/1"
RESULTS_FILE = "results.json"
PREDICTIONS_FILE = "predictions.parquet"
SUMMARY_FILE = "summary.md"
CHALLENGE_FILE = "challenge.parquet"
TOP_LEVEL = ("schema", "model", "protocol", "data", "metrics", "environment", "created_at")
# The keys check_document requires inside each block.
REQUIRED_FIELDS = {
    "model": ("id", "revision", "num_labels", "label_space"),
    "protocol": ("label_mode", "preprocess", "precision", "batch_size"),
    "data": ("source", "edition", "variants"),
    "metrics": ("accuracy",),
}

# predictions.parquet: one row per (variant, seed, image_id); prediction -1 = a class outside IN-9. ``seed``
# is the background draw a ``--seeds`` sweep rendered the row's mixed image with; null for the data's own
# images (whose draw, if any, is ``data.seed``).
PREDICTION_SCHEMA = pa.schema(
    [
        ("variant", pa.string()),
        ("seed", pa.int64()),
        ("image_id", pa.string()),
        ("fg_image_id", pa.string()),
        ("label", pa.int64()),
        ("prediction", pa.int64()),
        ("raw_top1", pa.int64()),
        ("scores", pa.list_(pa.float32(), 9)),
    ]
)

# challenge.parquet: one row per foreground of the challenge search.
CHALLENGE_SCHEMA = pa.schema(
    [
        ("fg_image_id", pa.string()),
        ("label", pa.int64()),
        ("vulnerable", pa.bool_()),
        ("fooling_bg_image_id", pa.string()),
        ("fooling_prediction", pa.int64()),
        ("bg_class_fooled", pa.bool_()),
        ("forward_passes", pa.int64()),
    ]
)
CHALLENGE_COLUMNS = tuple(CHALLENGE_SCHEMA.names)


def model_slug(model_id: str) -> str:
    """The output folder name of a model (``results/<slug>/``): its id's last part."""
    return Path(str(model_id).rstrip("/")).name.replace(" ", "_") or "model"


def write_challenge_parquet(rows: Sequence[dict], path: str | os.PathLike) -> Path:
    """``challenge.parquet``: one row per foreground, the :data:`CHALLENGE_COLUMNS`; written atomically."""
    table = pa.Table.from_pylist(
        [{c: row[c] for c in CHALLENGE_COLUMNS} for row in rows], schema=CHALLENGE_SCHEMA
    )
    return atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def from_predictions(table: pa.Table) -> dict:
    """The variant metrics (accuracy, bg_gap, bg_reliance, and ``seeds`` when the table has seeded rows)
    recomputed from a predictions table; the headline metrics come from the rows without a seed."""
    names = ["variant", "fg_image_id", "label", "prediction"]
    seeded = "seed" in table.column_names
    columns = table.select(names + (["seed"] if seeded else [])).to_pydict()
    seeds = columns.pop("seed") if seeded else [None] * table.num_rows
    groups: dict[int | None, dict[str, dict[str, list]]] = {}
    for i, variant in enumerate(columns["variant"]):
        cols = groups.setdefault(seeds[i], {}).setdefault(
            variant, {"prediction": [], "label": [], "fg_image_id": []}
        )
        for name in cols:
            cols[name].append(columns[name][i])

    def ordered(by_variant: dict) -> dict:
        return {v: by_variant[v] for v in IMAGE_VARIANTS if v in by_variant}

    metrics = variant_metrics(ordered(groups.pop(None, {})))
    if groups:
        metrics["seeds"] = seed_metrics(
            {
                seed: {v: accuracy(c["prediction"], c["label"])["value"] for v, c in ordered(by).items()}
                for seed, by in groups.items()
            }
        )
    return metrics


@dataclass
class Results:
    """One evaluation: the results.json document plus the predictions it was computed from."""

    model: dict
    protocol: dict
    data: dict
    metrics: dict
    environment: dict
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    predictions: pa.Table | None = None
    challenge_rows: list[dict] | None = None
    output_dir: Path | None = None

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA,
            "model": self.model,
            "protocol": self.protocol,
            "data": self.data,
            "metrics": self.metrics,
            "environment": self.environment,
            "created_at": self.created_at,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    def accuracy(self, variant: str) -> float:
        return self.metrics["accuracy"][variant]["value"]

    @classmethod
    def from_dict(cls, doc: dict, *, source: str = RESULTS_FILE) -> Results:
        check_document(doc, source)
        return cls(
            model=doc["model"],
            protocol=doc["protocol"],
            data=doc["data"],
            metrics=doc["metrics"],
            environment=doc["environment"],
            created_at=doc["created_at"],
        )

    @classmethod
    def read(cls, path: str | os.PathLike) -> Results:
        """Read a results.json (or the folder holding it) and its predictions.parquet when present."""
        path = Path(path)
        file = path / RESULTS_FILE if path.is_dir() else path
        try:
            doc = json.loads(file.read_text())
        except FileNotFoundError:
            raise In9Error(
                f"{file}: not found; pass an in9-eval output folder or its results.json", argument="path"
            ) from None
        except json.JSONDecodeError as exc:
            raise In9Error(f"{file}: not valid JSON ({exc})", argument="path") from None
        results = cls.from_dict(doc, source=str(file))
        predictions = file.parent / PREDICTIONS_FILE
        if predictions.is_file():
            results.predictions = pq.read_table(predictions)
        results.output_dir = file.parent
        return results

    def write(self, output_dir: str | os.PathLike) -> Path:
        """Write results.json, predictions.parquet, summary.md (and challenge.parquet) into ``output_dir``.

        Each file is written atomically (:mod:`in9_builder.atomic`), results.json last: a folder whose
        results.json is there holds the files it describes.
        """
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        if self.predictions is not None:
            atomic_write(out / PREDICTIONS_FILE, lambda tmp: pq.write_table(self.predictions, tmp))
        if self.challenge_rows is not None:
            write_challenge_parquet(self.challenge_rows, out / CHALLENGE_FILE)
        atomic_write_text(out / SUMMARY_FILE, summary_markdown(self))
        atomic_write_text(out / RESULTS_FILE, self.to_json() + "\n")
        self.output_dir = out
        return out / RESULTS_FILE


def check_document(doc: Any, source: str = RESULTS_FILE) -> None:
    """Structural check of a results.json document; an :class:`In9Error` names the first bad field."""
    if not isinstance(doc, dict):
        raise In9Error(f"{source}: expected a JSON object")
    if doc.get("schema") != SCHEMA:
        raise In9Error(f"{source}: field 'schema' is {doc.get('schema')!r}, expected {SCHEMA!r}")
    for key in TOP_LEVEL:
        if key not in doc:
            raise In9Error(f"{source}: missing field {key!r}")
    for block, keys in REQUIRED_FIELDS.items():
        for key in keys:
            if key not in doc[block]:
                raise In9Error(f"{source}: missing field '{block}.{key}'")
