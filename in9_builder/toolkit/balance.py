"""Seeded class balancing (the paper: "randomly removing images" down to the smallest class) and the
summary."""

from __future__ import annotations

import zlib

import numpy as np

from ..classes import CLASS_NAMES, NUM_CLASSES
from ..errors import In9Error
from .filters import REASONS


def balance(
    ids_by_class: list[list[str]],
    *,
    seed: int,
    split: str,
    per_class: int | None = None,
    argument: str = "per_class",
) -> list[list[str]]:
    """Keep ``per_class`` (default: the smallest class's count) ids of every class, drawn by a seeded
    permutation.

    A pure function of (seed, split, the sorted ids): the kept ids come back sorted.
    """
    smallest = min(len(ids) for ids in ids_by_class)
    if per_class is None:
        per_class = smallest
    elif per_class > smallest:
        worst = int(np.argmin([len(ids) for ids in ids_by_class]))
        raise In9Error(
            f"{argument}={per_class}: class {CLASS_NAMES[worst]!r} has only {smallest} usable {split} "
            "images; "
            f"pass at most {smallest} or leave `{argument}` out to balance down to the smallest class",
            argument=argument,
        )
    kept = []
    for label, ids in enumerate(ids_by_class):
        ids = sorted(ids)
        rng = np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(split.encode()), label]))
        chosen = rng.permutation(len(ids))[:per_class]
        kept.append(sorted(ids[i] for i in chosen))
    return kept


def reason_counts(outcomes: list[dict]) -> dict[str, int]:
    counts = {reason: 0 for reason in REASONS}
    for outcome in outcomes:
        if outcome["reason"]:
            counts[outcome["reason"]] += 1
    return counts


def format_summary(summary: dict) -> str:
    """The build summary as a plain-text table: candidates, rejections by reason, kept per class."""
    lines = []
    for name, part in summary["sets"].items():
        lines.append(
            f"{name}: {part['candidates']} candidates, {part['accepted']} accepted, "
            f"{part['kept']} kept after balancing ({part['per_class']} per class)"
        )
        if part.get("unmapped"):
            lines.append(
                f"  {part['unmapped']:>8}  images of ImageNet classes outside the 370 mapped (not candidates)"
            )
        for reason, count in part.get("rejected", {}).items():
            lines.append(f"  {count:>8}  {reason:<15} {REASONS[reason]}")
        lines.append(
            "  accepted per class: "
            + ", ".join(f"{CLASS_NAMES[c]} {n}" for c, n in enumerate(part["accepted_per_class"]))
        )
    return "\n".join(lines)


def per_class_counts(labels: list[int]) -> list[int]:
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=NUM_CLASSES).tolist()
