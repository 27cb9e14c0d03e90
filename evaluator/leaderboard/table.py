"""``in9-leaderboard table``: one row per results.json under a folder, as CSV (exact) or markdown (people).

Nothing is validated: a table shows whatever results are there (``in9-leaderboard validate`` says which ones
would count). The CSV keeps every number exactly as results.json stores it (fractions in [0, 1], the float's
``repr``, which reads back to the same float); the markdown table shows percentages with one decimal, the
BG-gap with its 95 % CI and the seed summaries as ``mean ± std``. Pure: documents in, rows, text out.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluator.leaderboard.registry import edition_label
from evaluator.leaderboard.site import display_name, find_submissions
from evaluator.results.schema import SCHEMA
from hub_cards import CONFIG_TITLES
from in9_builder.atomic import atomic_write_text
from in9_builder.classes import IMAGE_VARIANTS, MIXED_VARIANTS
from in9_builder.errors import In9Error

SEEDED = (*MIXED_VARIANTS, "bg_gap")  # what metrics.seeds.summary may hold
METRIC_COLUMNS = (
    *IMAGE_VARIANTS,
    "bg_gap",
    "bg_gap_ci95_low",
    "bg_gap_ci95_high",
    "original_minus_only_fg",
    "challenge_accuracy",
    "bg_class_fooling_rate",
)
SEED_COLUMNS = tuple(f"{name}_seed_{stat}" for name in SEEDED for stat in ("mean", "std"))
# The columns that hold numbers (sorted highest first); the others are text.
NUMBER_COLUMNS = ("params", *METRIC_COLUMNS, *SEED_COLUMNS)
# The CSV columns, in order; --sort takes any of them.
COLUMNS: tuple[str, ...] = (
    *("model", "revision", "params", "input_size", "preprocess", "label_mode", "precision"),
    *METRIC_COLUMNS,
    "seeds",
    *SEED_COLUMNS,
    "edition",
    "path",
)
FORMATS = {".csv": "csv", ".md": "md"}


@dataclass(frozen=True)
class Document:
    path: Path  # the results.json file
    doc: dict[str, Any]


def read_documents(results_dir: str | os.PathLike) -> list[Document]:
    """Every results.json under ``results_dir`` (path order), parsed; an :class:`In9Error` names the first
    file that is not JSON or not schema ``in9-results/1``."""
    files = find_submissions(results_dir)
    if not files:
        raise In9Error(f"{results_dir}: no results.json under it; pass the folder that holds in9-eval output")
    return [Document(file, _read(file)) for file in files]


def _read(file: Path) -> dict[str, Any]:
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise In9Error(f"{file}: not valid JSON ({e}); fix or remove it") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        found = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise In9Error(f"{file}: schema {found!r}, expected {SCHEMA!r}; not an in9-eval results.json")
    return doc


def _block(mapping: Any, *keys: str) -> dict[str, Any]:
    """``mapping[k1][k2]...`` when each level is an object, else ``{}`` (the table never validates)."""
    for key in keys:
        mapping = mapping.get(key) if isinstance(mapping, Mapping) else None
    return mapping if isinstance(mapping, dict) else {}


def input_size(model: Mapping[str, Any], protocol: Mapping[str, Any]) -> str | None:
    """``HxW`` where results.json records the model's input size (timm models: the pretrained_cfg the
    preprocessing was checked against), else None: transformers and zero-shot records do not state it."""
    candidates = (
        model.get("input_size"),
        protocol.get("input_size"),
        _block(model, "preprocessing").get("input_size"),
        _block(model, "preprocessing", "pretrained_cfg").get("input_size"),
    )
    for size in candidates:
        if isinstance(size, int):
            return f"{size}x{size}"
        if isinstance(size, Sequence) and not isinstance(size, str) and len(size) >= 2:
            return "x".join(str(v) for v in size[-2:])  # (C, H, W) or (H, W)
    return None


def _seed_columns(metrics: Mapping[str, Any]) -> dict[str, Any]:
    seeds = _block(metrics, "seeds")
    summary = _block(seeds, "summary")
    out: dict[str, Any] = {"seeds": " ".join(str(s) for s in seeds.get("seeds") or []) or None}
    for name in SEEDED:
        stats = _block(summary, name)
        out[f"{name}_seed_mean"] = stats.get("mean")
        out[f"{name}_seed_std"] = stats.get("std")
    return out


def table_row(document: Document, root: str | os.PathLike | None = None) -> dict[str, Any]:
    """One results.json as a row of :data:`COLUMNS`: the stored values (fractions), None where absent."""
    doc = document.doc
    model, protocol, metrics = _block(doc, "model"), _block(doc, "protocol"), _block(doc, "metrics")
    accuracy, gap = _block(metrics, "accuracy"), _block(metrics, "bg_gap")
    reliance, challenge = _block(metrics, "bg_reliance"), _block(metrics, "challenge")
    ci = gap.get("ci95") if isinstance(gap.get("ci95"), list) and len(gap["ci95"]) == 2 else [None, None]
    row = {
        "model": model.get("id"),
        # What the markdown shows (a local folder by its name, as the page does); the CSV keeps the id.
        "model_name": display_name(model) if model.get("id") is not None else None,
        "revision": model.get("revision"),
        "params": model.get("num_params"),
        "input_size": input_size(model, protocol),
        "preprocess": protocol.get("preprocess"),
        "label_mode": protocol.get("label_mode"),
        "precision": protocol.get("precision"),
        **{v: _block(accuracy, v).get("value") for v in IMAGE_VARIANTS},
        "bg_gap": gap.get("value"),
        "bg_gap_ci95_low": ci[0],
        "bg_gap_ci95_high": ci[1],
        "original_minus_only_fg": reliance.get("original_minus_only_fg"),
        "challenge_accuracy": challenge.get("challenge_accuracy"),
        "bg_class_fooling_rate": challenge.get("bg_class_fooling_rate"),
        **_seed_columns(metrics),
        "edition": edition_label(_block(doc, "data")),
        "path": _relative(document.path, root),
    }
    if row["only_bg_t"] is None:  # bg_reliance.only_bg_t is the same accuracy, stored twice
        row["only_bg_t"] = reliance.get("only_bg_t")
    return row


def _relative(path: Path, root: str | os.PathLike | None) -> str:
    if root is None:
        return path.as_posix()
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def check_sort(column: str | None) -> None:
    if column is not None and column not in COLUMNS:
        raise In9Error(f"sort={column}: not a column; choose one of {', '.join(COLUMNS)}", argument="sort")


def sort_rows(rows: Sequence[dict[str, Any]], column: str | None) -> list[dict[str, Any]]:
    """Rows by ``column``: numbers descending (best first), text ascending, missing values last; ties and
    ``column=None`` keep the given order."""
    check_sort(column)
    if column is None:
        return list(rows)
    numeric = column in NUMBER_COLUMNS
    keys = [(_number(r[column]) if numeric else r[column], r) for r in rows]
    present = [(k, r) for k, r in keys if not _missing(k)]
    present.sort(key=lambda kr: -kr[0] if numeric else str(kr[0]))
    return [r for _, r in present] + [r for k, r in keys if _missing(k)]


def _number(value: Any) -> float | None:
    """A stored number as a float; anything else (absent, a string in a hand-edited file) sorts as missing."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back to the identical float
    return str(value)


def render_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """The table as CSV: :data:`COLUMNS`, values exactly as stored (fractions), empty where absent."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_csv_cell(row[c]) for c in COLUMNS])
    return buffer.getvalue()


def _pct(value: Any) -> str:
    number = _number(value)
    return "–" if _missing(number) else f"{100 * number:.1f}"


def _params(value: Any) -> str:
    value = _number(value)
    if not value:
        return "–"
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.1f}{unit}"
    return str(int(value))


def _gap_cell(row: Mapping[str, Any]) -> str:
    if _missing(row["bg_gap"]):
        return "–"
    if _missing(row["bg_gap_ci95_low"]) or _missing(row["bg_gap_ci95_high"]):
        return _pct(row["bg_gap"])
    return f"{_pct(row['bg_gap'])} [{_pct(row['bg_gap_ci95_low'])}, {_pct(row['bg_gap_ci95_high'])}]"


def _seed_cell(row: Mapping[str, Any], name: str) -> str:
    mean, std = row[f"{name}_seed_mean"], row[f"{name}_seed_std"]
    if _missing(mean):
        return "–"
    return _pct(mean) if _missing(std) else f"{_pct(mean)} ± {_pct(std)}"


def _text(value: Any) -> str:
    return "–" if value is None else str(value)


# (header, cell) of the markdown table: CSV columns merged where a person reads them together.
MD_COLUMNS = (
    ("Model", lambda r: _text(r.get("model_name") or r["model"])),
    ("Revision", lambda r: _text(r["revision"] and str(r["revision"]).removeprefix("sha256:")[:12])),
    ("Params", lambda r: _params(r["params"])),
    ("Input", lambda r: _text(r["input_size"])),
    ("Preprocess", lambda r: _text(r["preprocess"])),
    ("Label mode", lambda r: _text(r["label_mode"])),
    ("Precision", lambda r: _text(r["precision"])),
    *((CONFIG_TITLES[v], lambda r, v=v: _pct(r[v])) for v in IMAGE_VARIANTS),
    ("BG-gap [95 % CI]", _gap_cell),
    ("Orig − Only-FG", lambda r: _pct(r["original_minus_only_fg"])),
    ("Challenge", lambda r: _pct(r["challenge_accuracy"])),
    ("Fooling rate", lambda r: _pct(r["bg_class_fooling_rate"])),
    ("Seeds", lambda r: _text(r["seeds"])),
    *((f"{CONFIG_TITLES.get(n, 'BG-gap')} (seeds)", lambda r, n=n: _seed_cell(r, n)) for n in SEEDED),
    ("Edition", lambda r: _text(r["edition"])),
)
MD_NOTE = (
    "Accuracies and rates in %, one decimal; BG-gap = Mixed-Same − Mixed-Rand in points with its 95 % "
    "paired-bootstrap CI; fooling rate = share of foregrounds some background of another class turns into "
    "that class; (seeds) = mean ± sample std over the background seeds. Exact stored values: the CSV table."
)


def render_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The table for people: percentages with one decimal, a note on the units above it. A column empty in
    every row (no seeds, no challenge run) is left out: 25 columns are already a wide table."""
    cells = [[cell(row).replace("|", "\\|") for _, cell in MD_COLUMNS] for row in rows]
    keep = [i for i in range(len(MD_COLUMNS)) if not cells or any(c[i] != "–" for c in cells)]
    lines = [MD_NOTE, "", "| " + " | ".join(MD_COLUMNS[i][0] for i in keep) + " |", "|" + "---|" * len(keep)]
    lines += ["| " + " | ".join(c[i] for i in keep) + " |" for c in cells]
    return "\n".join(lines) + "\n"


def table_format(out: str | os.PathLike) -> str:
    """``csv`` or ``md`` from the suffix of ``out``; anything else is an :class:`In9Error` about ``out``."""
    suffix = Path(out).suffix.lower()
    if suffix not in FORMATS:
        raise In9Error(f"out={out}: write a .csv or .md file (the suffix picks the format)", argument="out")
    return FORMATS[suffix]


def write_table(
    results_dir: str | os.PathLike, out: str | os.PathLike, *, sort: str | None = None
) -> list[dict[str, Any]]:
    """Read every results.json under ``results_dir`` and write the table to ``out`` (``.csv`` or ``.md``),
    atomically; every argument is checked before anything is written. Returns the rows written."""
    fmt = table_format(out)
    check_sort(sort)
    rows = sort_rows([table_row(d, results_dir) for d in read_documents(results_dir)], sort)
    text = render_csv(rows) if fmt == "csv" else render_markdown(rows)
    try:
        atomic_write_text(out, text)
    except OSError as e:
        raise In9Error(f"out={out}: cannot write the table there ({e.strerror})", argument="out") from None
    return rows
