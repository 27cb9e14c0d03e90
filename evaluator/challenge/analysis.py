"""Per-background attack success rates and the paper's Figures 3/4 (``challenge_analysis=True``).

The attack success rate (ASR) of a background is the share of the foregrounds of other classes that it
turns into its own class (the paper's Section 5 and Appendix G). It needs the prediction of every
(foreground, background) pair, so it is optional and can run on a seeded sample of foregrounds
(``analysis_sample=N``). The figures
(:mod:`.figures`): the most fooling backgrounds per class with their rates (Figure 3), and the histogram of
the rates (Figure 4).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from evaluator.challenge.figures import draw_histogram, draw_top_backgrounds
from in9_builder.atomic import atomic_write
from in9_builder.classes import CLASS_NAMES, NUM_CLASSES
from in9_builder.errors import In9Error

SAMPLE_SEED = 0
TOP_K = 5
HISTOGRAM_BINS = 20
FIGURE_TOP = "challenge_top_backgrounds.png"
FIGURE_HISTOGRAM = "challenge_asr_histogram.png"
BACKGROUNDS_PARQUET = "challenge_backgrounds.parquet"


def sample_foregrounds(fg_labels: Sequence[int] | np.ndarray, sample: int | None) -> np.ndarray:
    """Indices of the foregrounds to analyse: all, or ``sample`` drawn with a fixed seed, in data order."""
    count = len(fg_labels)
    if sample is None or sample >= count:
        return np.arange(count)
    if sample < 1:
        raise In9Error(
            f"analysis_sample={sample}: use a positive number of foregrounds", argument="analysis_sample"
        )
    rng = np.random.default_rng(SAMPLE_SEED)
    return np.sort(rng.choice(count, size=sample, replace=False))


def attack_success_rates(
    preds: np.ndarray, fg_labels: np.ndarray, pool_labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per background: (ASR, number of other-class foregrounds it was tried on). ASR is NaN when that is 0."""
    fg_labels, pool_labels = np.asarray(fg_labels), np.asarray(pool_labels)
    other = fg_labels[:, None] != pool_labels[None, :]
    hits = (preds == pool_labels[None, :]) & other
    tried = other.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(tried > 0, hits.sum(axis=0) / np.maximum(tried, 1), np.nan)
    return rates, tried


def class_fool_rates(preds: np.ndarray, fg_labels: np.ndarray, pool_labels: np.ndarray) -> dict[int, float]:
    """Per background class c: share of other-class foregrounds that some background of c turns into c."""
    out = {}
    for cls in range(NUM_CLASSES):
        columns = pool_labels == cls
        rows = fg_labels != cls
        if columns.any() and rows.any():
            out[cls] = float((preds[np.ix_(rows, columns)] == cls).any(axis=1).mean())
    return out


def analyse(
    preds: np.ndarray,
    fg_labels: np.ndarray,
    pool_labels: np.ndarray,
    pool_ids: Sequence[str],
    pool_images: np.ndarray,
    *,
    output_dir: Path | None = None,
    top_k: int = TOP_K,
) -> dict:
    """Summarise an (N, M) pair-prediction matrix; with ``output_dir`` also write the figures and a parquet.

    pool_images: (M, H, W, 3) uint8, used only for the Figure 3 grid.
    """
    fg_labels, pool_labels = np.asarray(fg_labels), np.asarray(pool_labels)
    rates, tried = attack_success_rates(preds, fg_labels, pool_labels)
    fool_rates = class_fool_rates(preds, fg_labels, pool_labels)
    per_class: dict[str, dict] = {}
    top: dict[int, list[int]] = {}
    for cls in range(NUM_CLASSES):
        members = np.flatnonzero((pool_labels == cls) & ~np.isnan(rates))
        if not len(members):
            continue
        ranked = members[np.lexsort((members, -rates[members]))][:top_k]  # rate desc, then pool order
        top[cls] = [int(b) for b in ranked]
        per_class[CLASS_NAMES[cls]] = {
            "mean_asr": float(rates[members].mean()),
            "max_asr": float(rates[members].max()),
            "class_fool_rate": fool_rates.get(cls),
            "top": [{"bg_image_id": pool_ids[b], "asr": float(rates[b])} for b in ranked],
        }
    valid = rates[~np.isnan(rates)]
    counts, edges = np.histogram(valid, bins=HISTOGRAM_BINS, range=(0.0, 1.0))
    summary = {
        "num_foregrounds": int(len(fg_labels)),
        "pool_size": int(len(pool_labels)),
        "sample_seed": SAMPLE_SEED,
        "mean_asr": float(valid.mean()) if len(valid) else None,
        "per_class": per_class,
        "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
        "figures": {},
    }
    if output_dir is not None:
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        write_backgrounds_parquet(pool_ids, pool_labels, rates, tried, output_dir / BACKGROUNDS_PARQUET)
        draw_top_backgrounds(pool_images, top, rates, pool_ids).save(output_dir / FIGURE_TOP)
        draw_histogram(counts, edges, len(fg_labels)).save(output_dir / FIGURE_HISTOGRAM)
        summary["figures"] = {"top_backgrounds": FIGURE_TOP, "histogram": FIGURE_HISTOGRAM}
        summary["backgrounds"] = BACKGROUNDS_PARQUET
    return summary


def write_backgrounds_parquet(
    pool_ids: Sequence[str], pool_labels: np.ndarray, rates: np.ndarray, tried: np.ndarray, path: Path
) -> None:
    table = pa.table(
        {
            "bg_image_id": pa.array(list(pool_ids), pa.string()),
            "bg_label": pa.array(pool_labels.astype(np.int64)),
            "attack_success_rate": pa.array([None if np.isnan(r) else float(r) for r in rates], pa.float64()),
            "num_other_class_foregrounds": pa.array(tried.astype(np.int64)),
        }
    )
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))
