"""Leaderboard submissions: validate them (spec §7) and build the static page.

A submission is an ``in9-eval`` output folder: ``results.json`` with ``predictions.parquet`` (and
``challenge.parquet`` when the challenge ran) beside it. Validation trusts nothing it can recompute:

- the schema version, the model id and a pinned revision, a known protocol, the full test set (no
  ``--limit``);
- the data fingerprints against the canonical registry (``hub_cards/canonical_fingerprints.json``) for the
  edition claimed. The official fingerprints can only come from the release files, so the registry is
  filled by ``in9-leaderboard register EXPORT_DIR`` on an ``in9-build export --source release`` folder; seeded
  and synthetic editions are registered the same way from any export of them (they are recomputable: same
  seed, same bytes). Registering recomputes every fingerprint from the parquet files, never copies the
  export's claim;
- every metric recomputed from ``predictions.parquet`` with :mod:`evaluator.metrics` (the same functions that
  produced them; the bootstrap is seeded, so recomputation is exact);
- the challenge counts recomputed from ``challenge.parquet``.

This module never imports the model-running code (models, predict, challenge search): validation and the page
need only the files.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluator.config import LABEL_MODES, PREPROCESS_PROTOCOLS
from evaluator.results import CHALLENGE_FILE, PREDICTIONS_FILE, SCHEMA, check_document, from_predictions
from hub_cards import CANONICAL_FINGERPRINTS, published_rows
from in9_builder.classes import CLASS_NAMES, IMAGE_VARIANTS
from in9_builder.errors import In9Error

REGISTRY_SCHEMA = "in9-canonical/1"
REQUIRED_VARIANTS = ("original", "mixed_same", "mixed_rand")
# Recomputed numbers must equal the claimed ones; this only absorbs float printing, never a real difference.
TOLERANCE = 1e-9
_GIT_SHA = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class Problem:
    """One reason a submission is rejected: the file, the field, what is wrong."""

    file: Path
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.message}"


@dataclass
class Submission:
    path: Path  # the results.json
    doc: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# ----------------------------------------------------------------------------------------------------
# Canonical fingerprints registry


def load_registry(path: str | Path | None = None) -> dict[str, Any]:
    """The registry of canonical fingerprints (default: the one packaged in ``hub_cards``)."""
    path = Path(path) if path is not None else CANONICAL_FINGERPRINTS
    if not path.exists():
        return {"schema": REGISTRY_SCHEMA, "editions": []}
    try:
        registry = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise In9Error(f"{path}: not valid JSON ({e.msg}, line {e.lineno}); restore it from git") from None
    if registry.get("schema") != REGISTRY_SCHEMA:
        raise In9Error(f"{path}: schema {registry.get('schema')!r} is not {REGISTRY_SCHEMA!r}")
    return registry


def _edition_key(data: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    return (data.get("source"), data.get("edition"), data.get("seed"))


def _edition_label(data: Mapping[str, Any]) -> str:
    seed = "" if data.get("seed") is None else f" seed={data.get('seed')}"
    return f"{data.get('source')} {data.get('edition')}{seed}"


def export_fingerprints(export_dir: str | Path) -> dict[str, Any]:
    """An export folder's edition and per-config test fingerprints, recomputed from its parquet files and
    checked against the folder's own ``in9_export.json``."""
    from in9_builder.fingerprint import parquet_fingerprint

    folder = Path(export_dir)
    summary_path = folder / "in9_export.json"
    if not summary_path.exists():
        raise In9Error(f"{folder}: no in9_export.json; pass a folder written by `in9-build export`")
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    configs: dict[str, Any] = {}
    for name, claimed in sorted(summary.get("configs", {}).items()):
        shards = sorted(str(p) for p in (folder / name).glob("test-*.parquet"))
        if not shards:
            raise In9Error(f"{folder / name}: no test-*.parquet shards for config {name!r}")
        fingerprint, rows = parquet_fingerprint(shards)
        if fingerprint != claimed.get("fingerprint"):
            raise In9Error(
                f"{summary_path}: configs.{name}.fingerprint {claimed.get('fingerprint')} does not match the "
                f"parquet files ({fingerprint}); the export is damaged, rebuild it"
            )
        configs[name] = {"fingerprint": fingerprint, "count": rows}
    return {
        "source": summary.get("source"),
        "edition": summary.get("edition"),
        "seed": summary.get("seed"),
        "source_params": summary.get("source_params", {}),
        "configs": configs,
    }


def register_export(export_dir: str | Path, registry_path: str | Path | None = None) -> dict[str, Any]:
    """Add an export's recomputed fingerprints to the registry as a canonical edition (replacing an entry with
    the same source, edition, seed and source parameters). Returns the entry."""
    registry_path = Path(registry_path) if registry_path is not None else CANONICAL_FINGERPRINTS
    registry = load_registry(registry_path)
    entry = export_fingerprints(export_dir)
    same = (_edition_key(entry), json.dumps(entry["source_params"], sort_keys=True))
    registry["editions"] = [
        e
        for e in registry["editions"]
        if (_edition_key(e), json.dumps(e.get("source_params", {}), sort_keys=True)) != same
    ] + [entry]
    # written beside and renamed into place: an interrupted register never leaves a truncated registry
    partial = registry_path.with_name(f".{registry_path.name}.partial")
    partial.write_text(json.dumps(registry, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    partial.replace(registry_path)
    return entry


def _check_fingerprints(
    file: Path, data: Mapping[str, Any], registry: Mapping[str, Any], registry_name: str
) -> list[Problem]:
    variants = data.get("variants") or {}
    candidates = [e for e in registry.get("editions", []) if _edition_key(e) == _edition_key(data)]
    if not candidates:
        return [
            Problem(
                file,
                "data",
                f"no canonical fingerprints registered for edition "
                f"'{_edition_label(data)}' in {registry_name}; register the edition's export with "
                "`in9-leaderboard register EXPORT_DIR`",
            )
        ]

    def mismatches(entry: Mapping[str, Any]) -> list[Problem]:
        out = []
        for name, claimed in sorted(variants.items()):
            canon = entry["configs"].get(name)
            where = f"data.variants.{name}"
            if canon is None:
                out.append(
                    Problem(file, where, f"config not in the canonical edition '{_edition_label(data)}'")
                )
                continue
            if claimed.get("fingerprint") != canon["fingerprint"]:
                out.append(
                    Problem(
                        file,
                        f"{where}.fingerprint",
                        f"{claimed.get('fingerprint')} is not the canonical {canon['fingerprint']} of "
                        f"edition '{_edition_label(data)}'; evaluate on the canonical data",
                    )
                )
            elif claimed.get("count") != canon["count"]:
                out.append(
                    Problem(
                        file,
                        f"{where}.count",
                        f"{claimed.get('count')} is not the canonical "
                        f"{canon['count']} rows; evaluate on the full test set",
                    )
                )
        return out

    # Several entries can share (source, edition, seed) (e.g. synthetic exports of different sizes): the
    # submission must match one of them entirely; report against the closest.
    return min((mismatches(e) for e in candidates), key=len)


# ----------------------------------------------------------------------------------------------------
# Validation


def _read_json(path: Path) -> tuple[dict[str, Any] | None, list[Problem]]:
    if not path.exists():
        return None, [Problem(path, "file", "does not exist")]
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        return None, [Problem(path, "file", f"not valid JSON ({e})")]
    if not isinstance(doc, dict):
        return None, [Problem(path, "file", "not a results.json object")]
    return doc, []


def _check_shapes(file: Path, doc: Mapping[str, Any]) -> list[Problem]:
    """Every block that later checks read must be a JSON object: one problem per block that is not."""
    out = []
    for key in ("model", "protocol", "data", "metrics"):
        if key in doc and not isinstance(doc[key], Mapping):
            out.append(Problem(file, key, f"must be a JSON object, got {type(doc[key]).__name__}"))
    if out:
        return out
    nested = {
        "data.variants": (doc.get("data") or {}).get("variants"),
        "metrics.accuracy": (doc.get("metrics") or {}).get("accuracy"),
        "metrics.bg_gap": (doc.get("metrics") or {}).get("bg_gap"),
        "metrics.challenge": (doc.get("metrics") or {}).get("challenge"),
    }
    for name, value in nested.items():
        if value is not None and not isinstance(value, Mapping):
            out.append(Problem(file, name, f"must be a JSON object, got {type(value).__name__}"))
    for group in ("data.variants", "metrics.accuracy"):
        for key, value in (nested[group] if isinstance(nested[group], Mapping) else {}).items():
            if not isinstance(value, Mapping):
                out.append(
                    Problem(file, f"{group}.{key}", f"must be a JSON object, got {type(value).__name__}")
                )
    return out


def _check_header(file: Path, doc: Mapping[str, Any], allow_unpinned: bool) -> list[Problem]:
    out = []
    if doc.get("schema") != SCHEMA:
        out.append(
            Problem(file, "schema", f"{doc.get('schema')!r} is not {SCHEMA!r}; re-run a current in9-eval")
        )
    model = doc.get("model") or {}
    if not isinstance(model.get("id"), str) or not model.get("id"):
        out.append(Problem(file, "model.id", "missing; a submission must name the model it scored"))
    revision = model.get("revision")
    if revision is None or revision == "":
        if not allow_unpinned:
            out.append(
                Problem(
                    file,
                    "model.revision",
                    "missing; the weights must be pinned: evaluate a Hub "
                    "model (in9-eval records its commit sha) or pass --allow-unpinned for local runs",
                )
            )
    elif not isinstance(revision, str) or not (_GIT_SHA.match(revision) or revision.startswith("sha256:")):
        out.append(
            Problem(file, "model.revision", f"{revision!r} is not a commit sha; pin the exact weights")
        )
    params = model.get("num_params")
    if params is not None and (not isinstance(params, int) or isinstance(params, bool) or params < 0):
        out.append(Problem(file, "model.num_params", f"{params!r} is not a parameter count"))
    if not isinstance(doc.get("created_at", ""), str):
        out.append(Problem(file, "created_at", f"{doc.get('created_at')!r} is not an ISO-8601 time string"))
    protocol = doc.get("protocol") or {}
    if protocol.get("label_mode") not in LABEL_MODES:
        out.append(
            Problem(
                file,
                "protocol.label_mode",
                f"{protocol.get('label_mode')!r} is not one of {', '.join(LABEL_MODES)}",
            )
        )
    if protocol.get("preprocess") not in PREPROCESS_PROTOCOLS:
        out.append(
            Problem(
                file,
                "protocol.preprocess",
                f"{protocol.get('preprocess')!r} is not one of {', '.join(PREPROCESS_PROTOCOLS)}",
            )
        )
    if protocol.get("limit") is not None:
        out.append(
            Problem(
                file,
                "protocol.limit",
                f"{protocol.get('limit')}: a submission must cover the full test set; re-run without --limit",
            )
        )
    variants = (doc.get("data") or {}).get("variants") or {}
    for name in REQUIRED_VARIANTS:
        if name not in variants:
            out.append(
                Problem(
                    file,
                    f"data.variants.{name}",
                    "missing; a submission needs original, mixed_same and mixed_rand (the BG-gap)",
                )
            )
    return out


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return set(a) == set(b) and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(float(a) - float(b)) <= TOLERANCE
    return a == b


def _compare(
    file: Path, prefix: str, claimed: Any, recomputed: Any, what: str, required: Sequence[str] = ()
) -> list[Problem]:
    """Field-by-field comparison of a claimed metric block with its recomputation; one problem per leaf.
    Keys in ``required`` must be claimed; other recomputed keys are compared when the claim has them."""
    if isinstance(recomputed, Mapping):
        if not isinstance(claimed, Mapping):
            return [Problem(file, prefix, f"missing; recomputed from {what}: {_short(recomputed)}")]
        out = []
        for key, value in recomputed.items():
            if key not in claimed and key not in required:
                continue
            out += _compare(file, f"{prefix}.{key}", claimed.get(key), value, what)
        return out
    if not _close(claimed, recomputed):
        return [
            Problem(file, prefix, f"claimed {_short(claimed)}, recomputed from {what}: {_short(recomputed)}")
        ]
    return []


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    text = json.dumps(value) if isinstance(value, Mapping) else repr(value)
    return text if len(text) < 80 else text[:77] + "..."


def _check_predictions(file: Path, doc: Mapping[str, Any]) -> list[Problem]:
    path = file.parent / PREDICTIONS_FILE
    if not path.exists():
        return [Problem(path, "file", "missing; a submission ships the predictions its metrics come from")]
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as e:  # a damaged parquet file is a user input error, not a crash
        return [Problem(path, "file", f"not a readable parquet file ({type(e).__name__}: {e})")]
    required = ("variant", "image_id", "fg_image_id", "label", "prediction")
    missing = [c for c in required if c not in table.column_names]
    if missing:
        return [Problem(path, "columns", f"missing {', '.join(missing)}; expected the in9-eval schema")]
    variants = (doc.get("data") or {}).get("variants") or {}
    ids: dict[str, list[str]] = {}
    for variant, image_id in zip(table["variant"].to_pylist(), table["image_id"].to_pylist(), strict=True):
        ids.setdefault(str(variant), []).append(image_id)
    unknown = sorted(set(ids) - set(IMAGE_VARIANTS))
    if unknown:
        return [
            Problem(path, "variant", f"unknown variant(s) {', '.join(unknown)}; expected IN-9 config names")
        ]
    out: list[Problem] = []
    # Variants scored (an accuracy claimed) must have all their rows; a variant recorded in data.variants only
    # as the challenge's background pool (only_bg_t without --variants only_bg_t) has none.
    scored = set((doc.get("metrics") or {}).get("accuracy") or {})
    for name in sorted(set(ids) | {v for v in variants if v in IMAGE_VARIANTS and v in scored}):
        rows = ids.get(name, [])
        claimed = (variants.get(name) or {}).get("count")
        if len(rows) != claimed:
            out.append(
                Problem(
                    path,
                    f"variant {name}",
                    f"{len(rows)} rows, but results.json data.variants.{name}.count is {claimed}",
                )
            )
        elif len(set(rows)) != len(rows):
            out.append(Problem(path, f"variant {name}", "an image_id appears twice"))
    labels, predictions = table["label"].to_pylist(), table["prediction"].to_pylist()
    if not all(isinstance(y, int) and 0 <= y < len(CLASS_NAMES) for y in labels) or not all(
        isinstance(p, int) and -1 <= p < len(CLASS_NAMES) for p in predictions
    ):
        out.append(Problem(path, "label/prediction", "values outside 0..8 (labels) or -1..8 (predictions)"))
    if out:
        return out
    claimed_metrics = doc.get("metrics") or {}
    # the evaluator's own recomputation (evaluator.results.from_predictions over evaluator.metrics)
    recomputed = from_predictions(table)
    what = PREDICTIONS_FILE
    for name in recomputed["accuracy"]:
        out += _compare(
            file,
            f"metrics.accuracy.{name}",
            (claimed_metrics.get("accuracy") or {}).get(name),
            recomputed["accuracy"][name],
            what,
            required=("value", "ci95", "correct", "count"),
        )
    for block, required in (("bg_gap", ("value", "ci95", "n_pairs")), ("bg_reliance", ())):
        if recomputed.get(block) is not None:
            out += _compare(
                file,
                f"metrics.{block}",
                claimed_metrics.get(block),
                recomputed[block],
                what,
                required=required,
            )
    return out


def _check_challenge(file: Path, doc: Mapping[str, Any]) -> list[Problem]:
    from evaluator import metrics

    claimed = (doc.get("metrics") or {}).get("challenge")
    if not claimed:
        return []
    path = file.parent / CHALLENGE_FILE
    if not path.exists():
        return [Problem(path, "file", "missing; metrics.challenge needs the per-foreground outcomes")]
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as e:
        return [Problem(path, "file", f"not a readable parquet file ({type(e).__name__}: {e})")]
    out: list[Problem] = []
    ids = [r.get("fg_image_id") for r in rows]
    if len(set(ids)) != len(ids):
        out.append(Problem(path, "fg_image_id", "a foreground appears twice"))
    for r in rows:
        if bool(r.get("vulnerable")) != (r.get("fooling_bg_image_id") is not None):
            out.append(
                Problem(
                    path,
                    f"row {r.get('fg_image_id')}",
                    "vulnerable and fooling_bg_image_id "
                    "disagree (a vulnerable foreground names the background that fooled it)",
                )
            )
            break
    data_variants = (doc.get("data") or {}).get("variants") or {}
    pool = data_variants.get("only_bg_t", {}).get("count")
    if claimed.get("pool_size") is not None and pool is not None and claimed["pool_size"] != pool:
        out.append(
            Problem(
                file,
                "metrics.challenge.pool_size",
                f"{claimed['pool_size']}, but the challenge uses "
                f"every only_bg_t background: data.variants.only_bg_t.count is {pool}",
            )
        )
    fg_count = data_variants.get("fg_mask", {}).get("count")
    if fg_count is not None and len(rows) != fg_count:
        out.append(
            Problem(path, "rows", f"{len(rows)} foregrounds, but data.variants.fg_mask.count is {fg_count}")
        )
    try:
        recomputed = metrics.challenge_metrics(
            [r.get("label") for r in rows],
            [bool(r.get("vulnerable")) for r in rows],
            [bool(r.get("bg_class_fooled")) for r in rows],
        )
    except (ValueError, TypeError) as e:
        return out + [Problem(path, "rows", str(e))]
    out += _compare(
        file,
        "metrics.challenge",
        claimed,
        recomputed,
        CHALLENGE_FILE,
        required=(
            "challenge_accuracy",
            "vulnerable_fraction",
            "bg_class_fooling_rate",
            "num_foregrounds",
            "num_vulnerable",
        ),
    )
    return out


def validate_submission(
    path: str | Path,
    *,
    registry: Mapping[str, Any] | None = None,
    registry_name: str | None = None,
    allow_unpinned: bool = False,
) -> Submission:
    """All checks of spec §7 on one results.json; ``Submission.problems`` is empty when it is valid."""
    file = Path(path)
    if file.is_dir():
        file = file / "results.json"
    doc, problems = _read_json(file)
    if doc is None:
        return Submission(file, {}, problems)
    if registry is None:
        registry, registry_name = load_registry(), str(CANONICAL_FINGERPRINTS)
    problems = _check_shapes(file, doc)
    if problems:
        return Submission(file, doc, problems)
    problems = _check_header(file, doc, allow_unpinned)
    if not problems:
        try:  # the rest of the schema, as the evaluator's own reader checks it
            check_document(doc, source=str(file))
        except In9Error as e:
            return Submission(file, doc, [Problem(file, "schema", str(e).removeprefix(f"{file}: "))])
    if (doc.get("data") or {}).get("variants"):
        problems += _check_fingerprints(file, doc["data"], registry, registry_name or "the registry")
    problems += _check_predictions(file, doc)
    problems += _check_challenge(file, doc)
    return Submission(file, doc, problems)


def validate_files(
    paths: Iterable[str | Path],
    *,
    registry_path: str | Path | None = None,
    extra_exports: Sequence[str | Path] = (),
    allow_unpinned: bool = False,
) -> list[Submission]:
    """Validate several submissions against the registry (plus editions recomputed from ``extra_exports``)."""
    registry = load_registry(registry_path)
    name = str(registry_path or CANONICAL_FINGERPRINTS)
    if extra_exports:
        registry = {
            **registry,
            "editions": list(registry["editions"]) + [export_fingerprints(e) for e in extra_exports],
        }
        name += " + " + ", ".join(str(e) for e in extra_exports)
    return [
        validate_submission(p, registry=registry, registry_name=name, allow_unpinned=allow_unpinned)
        for p in paths
    ]


# ----------------------------------------------------------------------------------------------------
# Rows of the page


def _acc(doc: Mapping[str, Any], variant: str) -> float | None:
    entry = ((doc.get("metrics") or {}).get("accuracy") or {}).get(variant)
    return None if entry is None else 100.0 * float(entry["value"])


def reproduced_row(sub: Submission) -> dict[str, Any]:
    """A validated submission as a leaderboard row (accuracies in percent)."""
    doc = sub.doc
    metrics = doc.get("metrics") or {}
    gap = metrics.get("bg_gap") or {}
    challenge = metrics.get("challenge") or {}
    revision = doc["model"].get("revision")
    return {
        "model": doc["model"]["id"],
        "revision": revision or "unpinned",
        "revision_short": (revision or "unpinned").removeprefix("sha256:")[:12],
        "params": doc["model"].get("num_params"),
        "original": _acc(doc, "original"),
        "mixed_same": _acc(doc, "mixed_same"),
        "mixed_rand": _acc(doc, "mixed_rand"),
        "bg_gap": None if "value" not in gap else 100.0 * gap["value"],
        "bg_gap_ci": None if "ci95" not in gap else [100.0 * x for x in gap["ci95"]],
        "only_bg_t": _acc(doc, "only_bg_t"),
        "challenge_accuracy": None
        if "challenge_accuracy" not in challenge
        else 100.0 * challenge["challenge_accuracy"],
        "label_mode": doc["protocol"]["label_mode"],
        "preprocess": doc["protocol"]["preprocess"],
        "precision": doc["protocol"].get("precision"),
        "edition": _edition_label(doc["data"]),
        "created_at": doc.get("created_at") or "",
        "path": str(sub.path),
    }


def _duplicate_key(row: Mapping[str, Any]) -> tuple:
    return (
        row["edition"],
        row["model"],
        row["revision"],
        row["label_mode"],
        row["preprocess"],
        row["precision"],
    )


def deduplicate(rows: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One row per (data edition, model, revision, protocol): the newest ``created_at`` wins (ties: the later
    path). Returns (kept, dropped)."""
    best: dict[tuple, dict[str, Any]] = {}
    dropped = []
    for row in sorted(rows, key=lambda r: (r["created_at"], r["path"])):
        key = _duplicate_key(row)
        if key in best:
            dropped.append(best[key])
        best[key] = row
    kept = sorted(best.values(), key=lambda r: (r["edition"], -(r["original"] or 0), r["model"]))
    return kept, dropped


def find_submissions(results_dir: str | Path) -> list[Path]:
    """Every results.json under a folder, in path order."""
    root = Path(results_dir)
    if not root.is_dir():
        raise In9Error(f"{root}: not a folder; pass the folder that holds in9-eval output folders")
    return sorted(root.rglob("results.json"))


@dataclass
class BuildReport:
    index_html: Path
    leaderboard_md: Path
    rows: list[dict[str, Any]]
    dropped: list[dict[str, Any]]
    rejected: list[Submission]


def build_site(
    results_dir: str | Path,
    out: str | Path,
    *,
    registry_path: str | Path | None = None,
    extra_exports: Sequence[str | Path] = (),
    allow_unpinned: bool = False,
) -> BuildReport:
    """Validate every submission under ``results_dir`` and write ``leaderboard.md`` and a self-contained
    ``index.html`` into ``out``. Rejected submissions are listed on the page with their reasons, unranked."""
    from hub_cards import leaderboard_page

    paths = find_submissions(results_dir)
    subs = validate_files(
        paths, registry_path=registry_path, extra_exports=extra_exports, allow_unpinned=allow_unpinned
    )
    rows, dropped = deduplicate([reproduced_row(s) for s in subs if s.ok])
    rejected = [s for s in subs if not s.ok]
    reported = published_rows()
    site = Path(out)
    site.mkdir(parents=True, exist_ok=True)
    md_path = site / "leaderboard.md"
    md_path.write_text(leaderboard_page.render_markdown(rows, reported, rejected, dropped), encoding="utf-8")
    html_path = site / "index.html"
    html_path.write_text(leaderboard_page.render_html(rows, reported, rejected, dropped), encoding="utf-8")
    return BuildReport(html_path, md_path, rows, dropped, rejected)


__all__ = [
    "BuildReport",
    "Problem",
    "Submission",
    "build_site",
    "deduplicate",
    "export_fingerprints",
    "find_submissions",
    "load_registry",
    "register_export",
    "reproduced_row",
    "validate_files",
    "validate_submission",
]
