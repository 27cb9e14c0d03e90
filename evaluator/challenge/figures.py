"""The paper's Figures 3 and 4 for the challenge analysis, drawn with Pillow (no plotting dependency)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from in9_builder.classes import CLASS_NAMES


def _font() -> ImageFont.ImageFont:
    return ImageFont.load_default()


def draw_top_backgrounds(
    pool_images: np.ndarray,
    top: dict[int, list[int]],
    rates: np.ndarray,
    pool_ids: Sequence[str],
    *,
    cell: int = 112,
) -> Image.Image:
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


def draw_histogram(
    counts: np.ndarray, edges: np.ndarray, num_foregrounds: int, *, width: int = 640, height: int = 400
) -> Image.Image:
    """Figure 4: how many backgrounds reach each attack success rate."""
    font = _font()
    left, right, top, bottom = 60, 20, 56, 50
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text(
        (left, 10),
        f"Attack success rate of each background ({num_foregrounds} foregrounds)",
        fill="black",
        font=font,
    )
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
