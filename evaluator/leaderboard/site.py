"""The leaderboard page: every submission under a folder validated, one row per model and protocol, written as
``index.html`` (self-contained) and ``leaderboard.md`` by the renderers of :mod:`hub_cards.leaderboard_page`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from evaluator.leaderboard.registry import edition_label
from evaluator.leaderboard.validate import Submission, validate_files
from evaluator.results.schema import RESULTS_FILE
from hub_cards import leaderboard_page, published_rows
from in9_builder.atomic import atomic_write_text
from in9_builder.errors import In9Error


def _acc(doc: Mapping[str, Any], variant: str) -> float | None:
    entry = ((doc.get("metrics") or {}).get("accuracy") or {}).get(variant)
    return None if entry is None else 100.0 * float(entry["value"])


# The results.json ``metrics.seeds.summary`` entries the page shows (fractions there, percent in a row).
SEED_METRICS = ("mixed_same", "mixed_rand", "mixed_next", "bg_gap")


def display_name(model: Mapping[str, Any]) -> str:
    """How the page names a results.json ``model`` block: a local folder by its last path component (its
    absolute path means nothing to a reader), a Hub id (``org/name``) as it is."""
    model_id = str(model["id"])
    # PureWindowsPath splits on both separators: a folder named on Windows or POSIX.
    return (PureWindowsPath(model_id).name or model_id) if is_local(model) else model_id


def is_local(model: Mapping[str, Any]) -> bool:
    """A model loaded from a folder: ``source`` says so; in files without it, an absolute path."""
    if model.get("source") is not None:
        return model["source"] == "local"
    model_id = str(model["id"])
    return PurePosixPath(model_id).is_absolute() or PureWindowsPath(model_id).is_absolute()


def seed_summary(metrics: Mapping[str, Any]) -> dict[str, Any] | None:
    """``metrics.seeds`` (the same model on the mixed variants of several background draws) as
    ``{"n", "seeds", <metric>: {"mean", "std"}}`` in percent; ``std`` None with one seed; None without the
    block. Read, not validated: an entry that is not a number is left out rather than shown."""
    block = metrics.get("seeds")
    if not isinstance(block, Mapping):
        return None
    seeds = list(block.get("seeds") or sorted(block.get("per_seed") or {}))
    summary = block.get("summary") or {}
    out: dict[str, Any] = {"n": len(seeds), "seeds": seeds}
    for key in SEED_METRICS:
        entry = summary.get(key)
        if isinstance(entry, Mapping) and isinstance(entry.get("mean"), (int, float)):
            std = entry.get("std")
            out[key] = {
                "mean": 100.0 * entry["mean"],
                "std": 100.0 * std if isinstance(std, (int, float)) else None,
            }
    return out


def reproduced_row(sub: Submission) -> dict[str, Any]:
    """A validated submission as a leaderboard row (accuracies in percent). The headline numbers are the
    submission's own data's; ``seeds`` (where present) summarises other background draws beside them."""
    doc = sub.doc
    metrics = doc.get("metrics") or {}
    gap = metrics.get("bg_gap") or {}
    challenge = metrics.get("challenge") or {}
    revision = doc["model"].get("revision")
    return {
        "model": doc["model"]["id"],
        "model_name": display_name(doc["model"]),
        "local": is_local(doc["model"]),
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
        # A zero-shot model's classifier is its prompts: two prompt sets are two rows, not duplicates.
        "prompts": _prompts_digest(doc["model"].get("prompts")),
        "seeds": seed_summary(metrics),
        "edition": edition_label(doc["data"]),
        "created_at": doc.get("created_at") or "",
        "path": str(sub.path),
    }


def _prompts_digest(prompts: Any) -> str | None:
    if prompts is None:
        return None
    return hashlib.sha256(json.dumps(prompts, sort_keys=True).encode()).hexdigest()[:12]


def _duplicate_key(row: Mapping[str, Any]) -> tuple:
    return (
        row["edition"],
        row["model"],
        row["revision"],
        row["label_mode"],
        row["preprocess"],
        row["precision"],
        row.get("prompts"),
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


def find_submissions(results_dir: str | os.PathLike) -> list[Path]:
    """Every results.json under a folder, in path order."""
    root = Path(results_dir)
    if not root.is_dir():
        raise In9Error(
            f"{root}: not a folder; pass the folder that holds in9-eval output folders",
            argument="results_dir",
        )
    return sorted(root.rglob(RESULTS_FILE))


@dataclass
class BuildReport:
    index_html: Path
    leaderboard_md: Path
    rows: list[dict[str, Any]]
    dropped: list[dict[str, Any]]
    rejected: list[Submission]


def build_site(
    results_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    registry_path: str | os.PathLike | None = None,
    extra_exports: Sequence[str | os.PathLike] = (),
    allow_unpinned: bool = False,
) -> BuildReport:
    """Validate every submission under ``results_dir`` and write ``leaderboard.md`` and a self-contained
    ``index.html`` into ``out``. Rejected submissions are listed on the page with their reasons, unranked."""
    subs = validate_files(
        find_submissions(results_dir),
        registry_path=registry_path,
        extra_exports=extra_exports,
        allow_unpinned=allow_unpinned,
    )
    rows, dropped = deduplicate([reproduced_row(s) for s in subs if s.ok])
    rejected = [s for s in subs if not s.ok]
    reported = published_rows()
    site = Path(out)
    pages = {
        "leaderboard.md": leaderboard_page.render_markdown(rows, reported, rejected, dropped),
        "index.html": leaderboard_page.render_html(rows, reported, rejected, dropped),
    }
    try:
        for name, text in pages.items():
            atomic_write_text(site / name, text)
    except OSError as e:
        raise In9Error(f"out={site}: cannot write the page there ({e.strerror})", argument="out") from None
    return BuildReport(site / "index.html", site / "leaderboard.md", rows, dropped, rejected)
