"""Is a submission what it claims? Every check of one results.json, as small rules.

A submission is an ``in9-eval`` output folder: ``results.json`` with ``predictions.parquet`` (and
``challenge.parquet`` when the challenge ran) beside it. Validation trusts nothing it can recompute. A rule is
a function ``(claim) -> list[Problem]``; the rules run in four groups:

1. :data:`STRUCTURE`: the blocks the other rules read are JSON objects (when not, nothing else runs);
2. :data:`HEADER`: the schema version, the model id and a pinned revision, a known protocol, the full test set
   (no ``--limit``), the three variants of the BG-gap;
3. :data:`COMPLETE` (only when the header is clean): every field the evaluator's own reader requires;
4. :data:`EVIDENCE`: the data fingerprints against the canonical registry (:mod:`.registry`) for the edition
   claimed; every metric recomputed from ``predictions.parquet`` with :mod:`evaluator.metrics` (the functions
   that produced them; the bootstrap is seeded, so recomputation is exact); the challenge counts recomputed
   from ``challenge.parquet``.

Importing this module loads no torch and none of the model-running code: validation needs only the files.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluator import metrics
from evaluator.config import LABEL_MODES, PREPROCESS_PROTOCOLS
from evaluator.leaderboard.registry import (
    edition_key,
    edition_label,
    export_fingerprints,
    load_registry,
    registry_label,
)
from evaluator.results.schema import (
    CHALLENGE_FILE,
    PREDICTIONS_FILE,
    RESULTS_FILE,
    SCHEMA,
    check_document,
    from_predictions,
)
from in9_builder.classes import CLASS_NAMES, IMAGE_VARIANTS
from in9_builder.errors import In9Error

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


@dataclass(frozen=True)
class Claim:
    """What every rule reads: one results.json document and what it is checked against."""

    file: Path
    doc: Mapping[str, Any]
    registry: Mapping[str, Any]
    registry_name: str
    allow_unpinned: bool = False

    def block(self, name: str) -> Mapping[str, Any]:
        """A top-level block (``model``, ``protocol``, ``data``, ``metrics``); empty when absent."""
        return self.doc.get(name) or {}

    @property
    def variants(self) -> Mapping[str, Any]:
        return self.block("data").get("variants") or {}


Rule = Callable[[Claim], list[Problem]]


# ----------------------------------------------------------------------------------------------------
# 1. Structure


def blocks_are_objects(claim: Claim) -> list[Problem]:
    """Every block that later rules read must be a JSON object: one problem per block that is not."""
    file, doc = claim.file, claim.doc
    out = []
    for key in ("model", "protocol", "data", "metrics"):
        if key in doc and not isinstance(doc[key], Mapping):
            out.append(Problem(file, key, f"must be a JSON object, got {type(doc[key]).__name__}"))
    if out:
        return out
    nested = {
        "data.variants": claim.block("data").get("variants"),
        "metrics.accuracy": claim.block("metrics").get("accuracy"),
        "metrics.bg_gap": claim.block("metrics").get("bg_gap"),
        "metrics.challenge": claim.block("metrics").get("challenge"),
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


# ----------------------------------------------------------------------------------------------------
# 2. Header


def schema_is_current(claim: Claim) -> list[Problem]:
    schema = claim.doc.get("schema")
    if schema == SCHEMA:
        return []
    return [Problem(claim.file, "schema", f"{schema!r} is not {SCHEMA!r}; re-run a current in9-eval")]


def model_is_named(claim: Claim) -> list[Problem]:
    model_id = claim.block("model").get("id")
    if isinstance(model_id, str) and model_id:
        return []
    return [Problem(claim.file, "model.id", "missing; a submission must name the model it scored")]


def weights_are_pinned(claim: Claim) -> list[Problem]:
    """A Hub commit sha (or a content hash) names the exact weights; local models only with allow_unpinned."""
    revision = claim.block("model").get("revision")
    if revision is None or revision == "":
        if claim.allow_unpinned:
            return []
        return [
            Problem(
                claim.file,
                "model.revision",
                "missing; the weights must be pinned: evaluate a Hub "
                "model (in9-eval records its commit sha) or pass --allow-unpinned for local runs",
            )
        ]
    if isinstance(revision, str) and (_GIT_SHA.match(revision) or revision.startswith("sha256:")):
        return []
    return [Problem(claim.file, "model.revision", f"{revision!r} is not a commit sha; pin the exact weights")]


def num_params_is_a_count(claim: Claim) -> list[Problem]:
    params = claim.block("model").get("num_params")
    if params is None or (isinstance(params, int) and not isinstance(params, bool) and params >= 0):
        return []
    return [Problem(claim.file, "model.num_params", f"{params!r} is not a parameter count")]


def created_at_is_text(claim: Claim) -> list[Problem]:
    created = claim.doc.get("created_at", "")
    if isinstance(created, str):
        return []
    return [Problem(claim.file, "created_at", f"{created!r} is not an ISO-8601 time string")]


def protocol_is_known(claim: Claim) -> list[Problem]:
    protocol = claim.block("protocol")
    out = []
    for key, known in (("label_mode", LABEL_MODES), ("preprocess", PREPROCESS_PROTOCOLS)):
        if protocol.get(key) not in known:
            out.append(
                Problem(
                    claim.file, f"protocol.{key}", f"{protocol.get(key)!r} is not one of {', '.join(known)}"
                )
            )
    return out


def full_test_set(claim: Claim) -> list[Problem]:
    limit = claim.block("protocol").get("limit")
    if limit is None:
        return []
    return [
        Problem(
            claim.file,
            "protocol.limit",
            f"{limit}: a submission must cover the full test set; re-run without --limit",
        )
    ]


def bg_gap_variants_scored(claim: Claim) -> list[Problem]:
    return [
        Problem(
            claim.file,
            f"data.variants.{name}",
            "missing; a submission needs original, mixed_same and mixed_rand (the BG-gap)",
        )
        for name in REQUIRED_VARIANTS
        if name not in claim.variants
    ]


# ----------------------------------------------------------------------------------------------------
# 3. Complete


def fields_are_complete(claim: Claim) -> list[Problem]:
    """The rest of the schema, as the evaluator's own reader checks it."""
    try:
        check_document(claim.doc, source=str(claim.file))
    except In9Error as e:
        return [Problem(claim.file, "schema", str(e).removeprefix(f"{claim.file}: "))]
    return []


# ----------------------------------------------------------------------------------------------------
# 4. Evidence: the data and the files behind the numbers


def data_is_canonical(claim: Claim) -> list[Problem]:
    """Every variant claimed has the fingerprint and row count of one registered entry of its edition."""
    file, data, variants = claim.file, claim.block("data"), claim.variants
    if not variants:
        return []
    label = edition_label(data)
    candidates = [e for e in claim.registry.get("editions", []) if edition_key(e) == edition_key(data)]
    if not candidates:
        return [
            Problem(
                file,
                "data",
                f"no canonical fingerprints registered for edition '{label}' in {claim.registry_name}; "
                "register the edition's export with `in9-leaderboard register EXPORT_DIR`",
            )
        ]

    def mismatches(entry: Mapping[str, Any]) -> list[Problem]:
        out = []
        for name, claimed in sorted(variants.items()):
            canon = entry["configs"].get(name)
            where = f"data.variants.{name}"
            if canon is None:
                out.append(Problem(file, where, f"config not in the canonical edition '{label}'"))
            elif claimed.get("fingerprint") != canon["fingerprint"]:
                out.append(
                    Problem(
                        file,
                        f"{where}.fingerprint",
                        f"{claimed.get('fingerprint')} is not the canonical {canon['fingerprint']} of "
                        f"edition '{label}'; evaluate on the canonical data",
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


def _read_table(path: Path, missing: str):
    """(the parquet table, []) or (None, the one problem of a missing or unreadable file)."""
    if not path.exists():
        return None, [Problem(path, "file", f"missing; {missing}")]
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path), []
    except Exception as e:  # a damaged parquet file is a user input error, not a crash
        return None, [Problem(path, "file", f"not a readable parquet file ({type(e).__name__}: {e})")]


def _seeded_rows(claim: Claim, path: Path, ids: dict[str, list[str]]) -> list[Problem]:
    """Each seeded draw of a mixed variant has one row per foreground (``data.variants.fg_mask.count``)."""
    foregrounds = (claim.variants.get("fg_mask") or {}).get("count")
    out = []
    for name, rows in sorted(ids.items()):
        if len(rows) != foregrounds:
            out.append(
                Problem(path, name, f"{len(rows)} rows, but data.variants.fg_mask.count is {foregrounds}")
            )
        elif len(set(rows)) != len(rows):
            out.append(Problem(path, name, "an image_id appears twice"))
    return out


def _prediction_rows(claim: Claim, path: Path, table) -> list[Problem]:
    """The rows are those results.json describes: known variants, each complete, unique ids, valid labels."""
    ids: dict[str, list[str]] = {}
    seeded: dict[str, list[str]] = {}  # "<variant> seed <N>" -> ids of a --seeds draw
    seeds = table["seed"].to_pylist() if "seed" in table.column_names else [None] * table.num_rows
    for variant, seed, image_id in zip(
        table["variant"].to_pylist(), seeds, table["image_id"].to_pylist(), strict=True
    ):
        if seed is None:
            ids.setdefault(str(variant), []).append(image_id)
        else:
            seeded.setdefault(f"variant {variant} seed {seed}", []).append(image_id)
    unknown = sorted(set(ids) - set(IMAGE_VARIANTS))
    if unknown:
        return [
            Problem(path, "variant", f"unknown variant(s) {', '.join(unknown)}; expected IN-9 config names")
        ]
    out: list[Problem] = []
    # Variants scored (an accuracy claimed) must have all their rows; a variant recorded in data.variants only
    # as the challenge's background pool (only_bg_t without --variants only_bg_t) has none.
    variants = claim.variants
    scored = set(claim.block("metrics").get("accuracy") or {})
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
    out += _seeded_rows(claim, path, seeded)
    labels, predictions = table["label"].to_pylist(), table["prediction"].to_pylist()
    if not all(isinstance(y, int) and 0 <= y < len(CLASS_NAMES) for y in labels) or not all(
        isinstance(p, int) and -1 <= p < len(CLASS_NAMES) for p in predictions
    ):
        out.append(Problem(path, "label/prediction", "values outside 0..8 (labels) or -1..8 (predictions)"))
    return out


def predictions_reproduce_metrics(claim: Claim) -> list[Problem]:
    """predictions.parquet is complete and the claimed variant metrics are its recomputation."""
    path = claim.file.parent / PREDICTIONS_FILE
    table, out = _read_table(path, "a submission ships the predictions its metrics come from")
    if table is None:
        return out
    required = ("variant", "image_id", "fg_image_id", "label", "prediction")
    missing = [c for c in required if c not in table.column_names]
    if missing:
        return [Problem(path, "columns", f"missing {', '.join(missing)}; expected the in9-eval schema")]
    out = _prediction_rows(claim, path, table)
    if out:
        return out
    claimed = claim.block("metrics")
    # the evaluator's own recomputation (evaluator.results.schema.from_predictions over evaluator.metrics)
    recomputed = from_predictions(table)
    for name, value in recomputed["accuracy"].items():
        out += _compare(
            claim.file,
            f"metrics.accuracy.{name}",
            (claimed.get("accuracy") or {}).get(name),
            value,
            PREDICTIONS_FILE,
            required=("value", "ci95", "correct", "count"),
        )
    out += _seeds_reproduce(claim.file, claimed.get("seeds"), recomputed.get("seeds"))
    for block, required in (("bg_gap", ("value", "ci95", "n_pairs")), ("bg_reliance", ())):
        if recomputed.get(block) is not None:
            out += _compare(
                claim.file,
                f"metrics.{block}",
                claimed.get(block),
                recomputed[block],
                PREDICTIONS_FILE,
                required=required,
            )
    return out


def _seeds_reproduce(file: Path, claimed: Any, recomputed: Any) -> list[Problem]:
    """``metrics.seeds`` is exactly the recomputation from the seeded rows, every seed and key included."""
    if recomputed is None:
        if claimed is None:
            return []
        return [Problem(file, "metrics.seeds", f"claimed, but {PREDICTIONS_FILE} has no seeded rows")]
    out = _compare(
        file,
        "metrics.seeds",
        claimed,
        recomputed,
        PREDICTIONS_FILE,
        required=("seeds", "per_seed", "summary"),
    )
    if not out and not _close(claimed, recomputed):  # a seed or variant added or left out
        out = [
            Problem(
                file,
                "metrics.seeds",
                f"claimed {_short(claimed)}, recomputed from {PREDICTIONS_FILE}: {_short(recomputed)}",
            )
        ]
    return out


def challenge_reproduces_metrics(claim: Claim) -> list[Problem]:
    """challenge.parquet has one consistent row per foreground and metrics.challenge is its recomputation."""
    file, claimed = claim.file, claim.block("metrics").get("challenge")
    if not claimed:
        return []
    path = file.parent / CHALLENGE_FILE
    table, out = _read_table(path, "metrics.challenge needs the per-foreground outcomes")
    if table is None:
        return out
    rows = table.to_pylist()
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
    pool = (claim.variants.get("only_bg_t") or {}).get("count")
    if claimed.get("pool_size") is not None and pool is not None and claimed["pool_size"] != pool:
        out.append(
            Problem(
                file,
                "metrics.challenge.pool_size",
                f"{claimed['pool_size']}, but the challenge uses "
                f"every only_bg_t background: data.variants.only_bg_t.count is {pool}",
            )
        )
    fg_count = (claim.variants.get("fg_mask") or {}).get("count")
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
    required = (
        "challenge_accuracy",
        "vulnerable_fraction",
        "bg_class_fooling_rate",
        "num_foregrounds",
        "num_vulnerable",
    )
    return out + _compare(file, "metrics.challenge", claimed, recomputed, CHALLENGE_FILE, required=required)


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


# ----------------------------------------------------------------------------------------------------
# The rules, in the order their problems are reported

STRUCTURE: tuple[Rule, ...] = (blocks_are_objects,)
HEADER: tuple[Rule, ...] = (
    schema_is_current,
    model_is_named,
    weights_are_pinned,
    num_params_is_a_count,
    created_at_is_text,
    protocol_is_known,
    full_test_set,
    bg_gap_variants_scored,
)
COMPLETE: tuple[Rule, ...] = (fields_are_complete,)
EVIDENCE: tuple[Rule, ...] = (data_is_canonical, predictions_reproduce_metrics, challenge_reproduces_metrics)


def _apply(rules: Iterable[Rule], claim: Claim) -> list[Problem]:
    return [problem for rule in rules for problem in rule(claim)]


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


def validate_submission(
    path: str | os.PathLike,
    *,
    registry: Mapping[str, Any] | None = None,
    registry_name: str | None = None,
    allow_unpinned: bool = False,
) -> Submission:
    """Every rule on one results.json (or the folder holding it); ``Submission.problems`` is empty when it is
    valid. ``registry`` defaults to :func:`~evaluator.leaderboard.registry.load_registry` ()."""
    file = Path(path)
    if file.is_dir():
        file = file / RESULTS_FILE
    doc, problems = _read_json(file)
    if doc is None:
        return Submission(file, {}, problems)
    if registry is None:
        registry, registry_name = load_registry(), registry_label()
    claim = Claim(file, doc, registry, registry_name or "the registry", allow_unpinned)
    problems = _apply(STRUCTURE, claim)
    if problems:
        return Submission(file, doc, problems)
    problems = _apply(HEADER, claim)
    if not problems and (problems := _apply(COMPLETE, claim)):
        return Submission(file, doc, problems)
    return Submission(file, doc, problems + _apply(EVIDENCE, claim))


def validate_files(
    paths: Iterable[str | os.PathLike],
    *,
    registry_path: str | os.PathLike | None = None,
    extra_exports: Sequence[str | os.PathLike] = (),
    allow_unpinned: bool = False,
) -> list[Submission]:
    """Validate several submissions against the registry (plus editions recomputed from ``extra_exports``)."""
    registry = load_registry(registry_path)
    name = registry_label(registry_path)
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
