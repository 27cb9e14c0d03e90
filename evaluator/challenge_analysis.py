"""Per-background attack success rates and the paper's Figures 3/4 (``--challenge-analysis``).

The attack success rate (ASR) of a background is the share of the foregrounds of other classes that it
turns into its own class (paper §5, App. G). It needs the prediction of every (foreground, background) pair,
so it is optional and can run on a seeded sample of foregrounds (``--analysis-sample N``). Figures are drawn
with Pillow: the most fooling backgrounds per class as an image grid with their rates (Figure 3), and the
histogram of the rates (Figure 4).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

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
        raise In9Error(f"--analysis-sample must be at least 1, got {sample}")
    rng = np.random.default_rng(SAMPLE_SEED)
    return np.sort(rng.choice(count, size=sample, replace=False))


def attack_success_rates(preds: np.ndarray, fg_labels: np.ndarray, pool_labels: np.ndarray
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


def analyse(preds: np.ndarray, fg_labels: np.ndarray, pool_labels: np.ndarray, pool_ids: Sequence[str],
            pool_images: np.ndarray, *, output_dir: Path | None = None, top_k: int = TOP_K) -> dict:
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


def write_backgrounds_parquet(pool_ids: Sequence[str], pool_labels: np.ndarray, rates: np.ndarray,
                              tried: np.ndarray, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({
        "bg_image_id": pa.array(list(pool_ids), pa.string()),
        "bg_label": pa.array(pool_labels.astype(np.int64)),
        "attack_success_rate": pa.array([None if np.isnan(r) else float(r) for r in rates], pa.float64()),
        "num_other_class_foregrounds": pa.array(tried.astype(np.int64)),
    })
    pq.write_table(table, path)


def _font() -> ImageFont.ImageFont:
    return ImageFont.load_default()


def draw_top_backgrounds(pool_images: np.ndarray, top: dict[int, list[int]], rates: np.ndarray,
                         pool_ids: Sequence[str], *, cell: int = 112) -> Image.Image:
    """Figure 3: a row per class, its most fooling backgrounds left to right, each captioned with its ASR."""
    font = _font()
    label_w, caption_h, pad = 150, 30, 6
    columns = max((len(v) for v in top.values()), default=1)
    rows = sorted(top)
    width = label_w + columns * (cell + pad) + pad
    height = 40 + max(len(rows), 1) * (cell + caption_h + pad)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((pad, 10), "Most fooling backgrounds per class (attack success rate)", fill="black", font=font)
    for r, cls in enumerate(rows):
        y = 40 + r * (cell + caption_h + pad)
        draw.text((pad, y + cell // 2 - 6), CLASS_NAMES[cls], fill="black", font=font)
        for c, b in enumerate(top[cls]):
            x = label_w + c * (cell + pad)
            thumb = Image.fromarray(pool_images[b]).resize((cell, cell), Image.Resampling.BILINEAR)
            canvas.paste(thumb, (x, y))
            draw.text((x, y + cell + 2), f"{100 * rates[b]:.1f}%", fill="black", font=font)
            draw.text((x, y + cell + 15), str(pool_ids[b])[:18], fill="gray", font=font)
    return canvas


def draw_histogram(counts: np.ndarray, edges: np.ndarray, num_foregrounds: int, *, width: int = 640,
                   height: int = 400) -> Image.Image:
    """Figure 4: how many backgrounds reach each attack success rate."""
    font = _font()
    left, right, top, bottom = 60, 20, 56, 50
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((left, 10), f"Attack success rate of each background ({num_foregrounds} foregrounds)",
              fill="black", font=font)
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(int(np.max(counts)) if len(counts) else 0, 1)
    draw.line([(left, top), (left, top + plot_h), (left + plot_w, top + plot_h)], fill="black")
    bar_w = plot_w / max(len(counts), 1)
    for i, count in enumerate(counts):
        h = plot_h * count / peak
        x0 = left + i * bar_w
        draw.rectangle([x0 + 1, top + plot_h - h, x0 + bar_w - 1, top + plot_h], fill=(70, 110, 180))
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = left + frac * plot_w
        draw.line([(x, top + plot_h), (x, top + plot_h + 4)], fill="black")
        draw.text((x - 10, top + plot_h + 8), f"{int(frac * 100)}%", fill="black", font=font)
    for frac in (0.0, 0.5, 1.0):
        y = top + plot_h - frac * plot_h
        draw.text((5, y - 6), str(round(frac * peak)), fill="black", font=font)
    draw.text((left + plot_w // 2 - 80, height - 18), "attack success rate", fill="black", font=font)
    draw.text((5, top - 24), "backgrounds", fill="black", font=font)
    return canvas
