"""The ``results.json`` schema ``in9-results/1`` (docs/CONTRACTS.md) in one place: build, write, read,
recompute.

A results folder holds ``results.json``, ``predictions.parquet`` (one row per (variant, image_id)),
``summary.md`` and, after the challenge, ``challenge.parquet``. :func:`from_predictions` recomputes the
variant metrics from a predictions table with :mod:`evaluator.metrics`; the evaluator itself uses it, so a
validator that calls it gets the identical numbers.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from evaluator.metrics import variant_metrics
from in9_builder.classes import CLASS_NAMES, IMAGE_VARIANTS
from in9_builder.errors import In9Error

SCHEMA = "in9-results/1"
RESULTS_FILE = "results.json"
PREDICTIONS_FILE = "predictions.parquet"
SUMMARY_FILE = "summary.md"
CHALLENGE_FILE = "challenge.parquet"
PREDICTION_SCHEMA = pa.schema(
    [
        ("variant", pa.string()),
        ("image_id", pa.string()),
        ("fg_image_id", pa.string()),
        ("label", pa.int64()),
        ("prediction", pa.int64()),
        ("raw_top1", pa.int64()),
        ("scores", pa.list_(pa.float32(), 9)),
    ]
)
TOP_LEVEL = ("schema", "model", "protocol", "data", "metrics", "environment", "created_at")
def from_predictions(table: pa.Table) -> dict:
    """The variant metrics (accuracy, bg_gap, bg_reliance) recomputed from a predictions table."""
    columns = table.select(["variant", "fg_image_id", "label", "prediction"]).to_pydict()
    by_variant: dict[str, dict[str, list]] = {}
    for i, variant in enumerate(columns["variant"]):
        cols = by_variant.setdefault(variant, {"prediction": [], "label": [], "fg_image_id": []})
        for name in cols:
            cols[name].append(columns[name][i])
    ordered = {v: by_variant[v] for v in IMAGE_VARIANTS if v in by_variant}
    return variant_metrics(ordered)


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
    def from_dict(cls, doc: dict, *, source: str = "results.json") -> Results:
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
            raise In9Error(f"{file}: not found; pass an in9-eval output folder or its results.json") from None
        except json.JSONDecodeError as exc:
            raise In9Error(f"{file}: not valid JSON ({exc})") from None
        results = cls.from_dict(doc, source=str(file))
        predictions = file.parent / PREDICTIONS_FILE
        if predictions.is_file():
            results.predictions = pq.read_table(predictions)
        results.output_dir = file.parent
        return results

    def write(self, output_dir: str | os.PathLike) -> Path:
        """Write results.json, predictions.parquet, summary.md (and challenge.parquet) into ``output_dir``.

        Each file goes to a temporary name first and is renamed into place, so no half-written file is left.
        """
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        if self.predictions is not None:
            _atomic(out / PREDICTIONS_FILE, lambda p: pq.write_table(self.predictions, p))
        if self.challenge_rows is not None:
            from evaluator.challenge.run import write_challenge_parquet

            write_challenge_parquet(self.challenge_rows, out / CHALLENGE_FILE)
        _atomic(out / SUMMARY_FILE, lambda p: Path(p).write_text(summary_markdown(self)))
        _atomic(out / RESULTS_FILE, lambda p: Path(p).write_text(self.to_json() + "\n"))
        self.output_dir = out
        return out / RESULTS_FILE


def _atomic(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are meant to be shared
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_document(doc: Any, source: str = "results.json") -> None:
    """Structural check of a results.json document; an :class:`In9Error` names the first bad field."""
    if not isinstance(doc, dict):
        raise In9Error(f"{source}: expected a JSON object")
    if doc.get("schema") != SCHEMA:
        raise In9Error(f"{source}: field 'schema' is {doc.get('schema')!r}, expected {SCHEMA!r}")
    for key in TOP_LEVEL:
        if key not in doc:
            raise In9Error(f"{source}: missing field {key!r}")
    for key in ("id", "revision", "num_labels", "label_space"):
        if key not in doc["model"]:
            raise In9Error(f"{source}: missing field 'model.{key}'")
    for key in ("label_mode", "preprocess", "precision", "batch_size"):
        if key not in doc["protocol"]:
            raise In9Error(f"{source}: missing field 'protocol.{key}'")
    for key in ("source", "edition", "variants"):
        if key not in doc["data"]:
            raise In9Error(f"{source}: missing field 'data.{key}'")
    if "accuracy" not in doc["metrics"]:
        raise In9Error(f"{source}: missing field 'metrics.accuracy'")


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def summary_rows(results: Results) -> list[tuple[str, str, str, str]]:
    """(variant, accuracy %, 95 % CI, correct/count) per evaluated variant, in the paper's order."""
    acc = results.metrics.get("accuracy", {})
    return [
        (v, _pct(a["value"]), f"[{_pct(a['ci95'][0])}, {_pct(a['ci95'][1])}]", f"{a['correct']}/{a['count']}")
        for v in IMAGE_VARIANTS
        if (a := acc.get(v))
    ]


def _headline(results: Results) -> list[tuple[str, str]]:
    m = results.metrics
    lines = []
    if gap := m.get("bg_gap"):
        lines.append(
            (
                "BG-Gap (Mixed-Same − Mixed-Rand)",
                f"{_pct(gap['value'])} pp [{_pct(gap['ci95'][0])}, {_pct(gap['ci95'][1])}], "
                f"{gap['n_pairs']} pairs",
            )
        )
    rel = m.get("bg_reliance", {})
    if "original_minus_only_fg" in rel:
        lines.append(("Original − Only-FG", f"{_pct(rel['original_minus_only_fg'])} pp"))
    if "only_bg_t" in rel:
        lines.append(("Only-BG-T (chance 11.1)", f"{_pct(rel['only_bg_t'])} %"))
    if ch := m.get("challenge"):
        lines.append(
            (
                "Challenge accuracy",
                f"{_pct(ch.get('challenge_accuracy'))} % "
                f"({ch.get('num_foregrounds')} foregrounds, {ch.get('forward_passes')} forward passes)",
            )
        )
        lines.append(("BG-class fooling rate", f"{_pct(ch.get('bg_class_fooling_rate'))} %"))
    return lines


def _context(results: Results) -> str:
    model, proto, data = results.model, results.protocol, results.data
    revision = model.get("revision") or "none (local folder or in-memory module)"
    edition = data.get("edition") or "?"
    if data.get("seed") is not None:
        edition += f", seed {data['seed']}"
    limit = f", first {proto['limit']} per class" if proto.get("limit") else ""
    return (
        f"model {model['id']} (revision {revision}; {model['label_space']} head, {model['num_labels']} "
        f"labels)\nprotocol: label mode {proto['label_mode']}, preprocess {proto['preprocess']}, precision "
        f"{proto['precision']}, batch size {proto['batch_size']}{limit}\ndata: {data['source']} ({edition})"
    )


def console_table(results: Results) -> str:
    """The human summary printed at the end of a run."""
    rows = [("variant", "acc %", "95% CI", "correct")] + summary_rows(results)
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [_context(results), ""]
    for i, row in enumerate(rows):
        lines.append(
            "  ".join(
                c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines += [f"{name}: {value}" for name, value in _headline(results)]
    return "\n".join(lines)


def summary_markdown(results: Results) -> str:
    """summary.md: the same as the console table, as Markdown, plus per-class accuracy."""
    lines = [
        "# IN-9 results",
        "",
        *(f"- {line}" for line in _context(results).splitlines()),
        "",
        "| variant | accuracy % | 95 % CI | correct |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {v} | {a} | {ci} | {c} |" for v, a, ci, c in summary_rows(results)]
    if headline := _headline(results):
        lines += ["", "| metric | value |", "|---|---|"] + [f"| {n} | {v} |" for n, v in headline]
    acc = results.metrics.get("accuracy", {})
    variants = [v for v in IMAGE_VARIANTS if v in acc]
    if variants:
        lines += [
            "",
            "## Per-class accuracy %",
            "",
            "| class | " + " | ".join(variants) + " |",
            "|---|" + "---:|" * len(variants),
        ]
        for name in CLASS_NAMES:
            cells = [_pct(acc[v]["per_class"].get(name)) for v in variants]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    created = results.created_at
    env = results.environment
    lines += [
        "",
        f"Run {created} on {env.get('device')} × {env.get('num_processes')}; "
        + ", ".join(f"{k} {v}" for k, v in env.get("packages", {}).items() if v)
        + ".",
    ]
    return "\n".join(lines) + "\n"
