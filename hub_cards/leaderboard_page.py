"""The leaderboard page: ``leaderboard.md`` and a self-contained ``index.html`` (inline CSS, JS and SVG; no
network, works from ``file://``). Pure rendering: rows in, text out; the same rows give the same bytes."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import groupby
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from . import TEMPLATES

# (key, header, type) of the reproduced table; "num" columns sort descending first.
REPRODUCED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("model", "Model", "text"),
    ("revision", "Revision", "text"),
    ("params", "Params", "num"),
    ("original", "Original", "num"),
    ("mixed_same", "Mixed-Same", "num"),
    ("mixed_rand", "Mixed-Rand", "num"),
    ("bg_gap", "BG-gap (95 % CI)", "num"),
    ("only_bg_t", "Only-BG-T", "num"),
    ("challenge_accuracy", "Challenge", "num"),
    ("label_mode", "Label mode", "text"),
    ("preprocess", "Preprocess", "text"),
    ("precision", "Precision", "text"),
)
REPORTED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("model", "Model", "text"),
    ("weights", "Weights", "text"),
    ("train_data", "Train data", "text"),
    ("original", "Original", "num"),
    ("mixed_same", "Mixed-Same", "num"),
    ("mixed_rand", "Mixed-Rand", "num"),
    ("bg_gap", "BG-gap", "num"),
    ("only_bg_t", "Only-BG-T", "num"),
    ("challenge_accuracy", "Challenge", "num"),
    ("label_mode", "Label mode", "text"),
    ("source_name", "Source", "text"),
)
CHANCE = 100.0 / 9  # a constant predictor's accuracy and challenge accuracy on a balanced set


def _pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _params(value: int | None) -> str:
    if not value:
        return "–"
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.1f}{unit}"
    return str(value)


def _cell(row: Mapping[str, Any], key: str, reported: bool) -> dict[str, str]:
    """Display text and sort value of one cell."""
    value = row.get(key)
    if key == "params":
        return {"text": _params(value), "sort": "" if not value else str(value)}
    if key == "bg_gap" and not reported and value is not None and row.get("bg_gap_ci"):
        lo, hi = row["bg_gap_ci"]
        return {"text": f"{value:.1f} [{lo:.1f}, {hi:.1f}]", "sort": repr(value)}
    if key == "revision":
        return {"text": row.get("revision_short", value), "sort": str(value), "title": str(value)}
    if isinstance(value, float):
        text = str(value) if reported else _pct(value)
        return {"text": text, "sort": repr(value)}
    return {"text": "–" if value is None else str(value), "sort": "" if value is None else str(value)}


def _table(rows: Sequence[Mapping[str, Any]], columns, reported: bool) -> dict[str, Any]:
    return {
        "columns": [{"key": k, "header": h, "type": t} for k, h, t in columns],
        "rows": [{"cells": [_cell(r, k, reported) for k, _, _ in columns], "row": r} for r in rows],
    }


# ----------------------------------------------------------------------------------------------------
# Plots (SVG built here, inline in the page)


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    step = (hi - lo) / n
    magnitude = 10 ** math.floor(math.log10(step)) if step > 0 else 1
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= step), default=step)
    start = math.ceil(lo / step) * step
    return [round(start + i * step, 6) for i in range(int((hi - start) / step + 1e-9) + 1)]


def scatter_svg(reproduced: Sequence[Mapping[str, Any]], reported: Sequence[Mapping[str, Any]]) -> str:
    """BG-gap (y) against Original accuracy (x): the paper's "more accurate models rely on backgrounds
    less" view."""
    points = [
        ("reproduced", r) for r in reproduced if r.get("original") is not None and r.get("bg_gap") is not None
    ]
    points += [
        ("reported", r) for r in reported if r.get("original") is not None and r.get("bg_gap") is not None
    ]
    width, height, left, right, top, bottom = 640, 400, 56, 90, 16, 44
    xs = [p["original"] for _, p in points] or [0.0, 100.0]
    ys = [p["bg_gap"] for _, p in points] + [lo for _, p in points for lo in (p.get("bg_gap_ci") or [])] or [
        0.0
    ]
    x_lo, x_hi = max(0.0, math.floor(min(xs) - 2)), min(100.0, math.ceil(max(xs) + 2))
    y_lo, y_hi = math.floor(min(0.0, min(ys)) - 1), math.ceil(max(ys) + 1)
    if x_hi <= x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1

    def sx(x: float) -> float:
        return left + (x - x_lo) / (x_hi - x_lo) * (width - left - right)

    def sy(y: float) -> float:
        return top + (y_hi - y) / (y_hi - y_lo) * (height - top - bottom)

    out = [
        f'<svg id="scatter" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="BG-gap against Original accuracy">'
    ]
    for t in _ticks(x_lo, x_hi):
        out.append(
            f'<line class="grid" x1="{sx(t):.1f}" y1="{top}" x2="{sx(t):.1f}" y2="{height - bottom}"/>'
            f'<text class="tick" x="{sx(t):.1f}" y="{height - bottom + 16}" text-anchor="middle">{t:g}</text>'
        )
    for t in _ticks(y_lo, y_hi):
        out.append(
            f'<line class="grid" x1="{left}" y1="{sy(t):.1f}" x2="{width - right}" y2="{sy(t):.1f}"/>'
            f'<text class="tick" x="{left - 6}" y="{sy(t) + 4:.1f}" text-anchor="end">{t:g}</text>'
        )
    out.append(f'<line class="axis" x1="{left}" y1="{sy(0):.1f}" x2="{width - right}" y2="{sy(0):.1f}"/>')
    out.append(
        f'<text class="label" x="{(left + width - right) / 2}" y="{height - 8}" text-anchor="middle">'
        "Original accuracy (%)</text>"
    )
    out.append(
        f'<text class="label" transform="translate(14 {(top + height - bottom) / 2}) rotate(-90)" '
        'text-anchor="middle">BG-gap: Mixed-Same − Mixed-Rand (points)</text>'
    )
    for kind, p in points:
        x, y = sx(p["original"]), sy(p["bg_gap"])
        name = _escape(f"{p['model']}: Original {p['original']:.1f}, BG-gap {p['bg_gap']:.1f} ({kind})")
        if kind == "reported":
            out.append(
                f'<rect class="pt reported" x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8">'
                f"<title>{name}</title></rect>"
            )
            continue
        if p.get("bg_gap_ci"):
            lo, hi = p["bg_gap_ci"]
            out.append(f'<line class="ci" x1="{x:.1f}" y1="{sy(lo):.1f}" x2="{x:.1f}" y2="{sy(hi):.1f}"/>')
        out.append(
            f'<circle class="pt reproduced" cx="{x:.1f}" cy="{y:.1f}" r="5"><title>{name}</title></circle>'
            f'<text class="pt-label" x="{x + 7:.1f}" y="{y - 6:.1f}">{_escape(_short_name(p["model"]))}'
            "</text>"
        )
    lx = left + 14
    out.append(
        f'<circle class="pt reproduced" cx="{lx}" cy="{top + 10}" r="5"/>'
        f'<text class="legend" x="{lx + 10}" y="{top + 14}">reproduced (95 % CI)</text>'
        f'<rect class="pt reported" x="{lx - 4}" y="{top + 24}" width="8" height="8"/>'
        f'<text class="legend" x="{lx + 10}" y="{top + 32}">reported in papers</text>'
    )
    out.append("</svg>")
    return "".join(out)


def challenge_svg(reproduced: Sequence[Mapping[str, Any]], reported: Sequence[Mapping[str, Any]]) -> str:
    """Challenge accuracy per model as horizontal bars, reproduced first, then reported; chance marked."""
    bars = [("reproduced", r) for r in reproduced if r.get("challenge_accuracy") is not None]
    bars += [("reported", r) for r in reported if r.get("challenge_accuracy") is not None]
    width, left, right, bar, gap, top = 640, 230, 60, 16, 6, 10
    height = top + max(1, len(bars)) * (bar + gap) + 34
    scale = (width - left - right) / 100.0
    out = [
        f'<svg id="challenge" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="Challenge accuracy per model">'
    ]
    for t in (0, 20, 40, 60, 80, 100):
        x = left + t * scale
        out.append(
            f'<line class="grid" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height - 30}"/>'
            f'<text class="tick" x="{x:.1f}" y="{height - 16}" text-anchor="middle">{t}</text>'
        )
    for i, (kind, r) in enumerate(bars):
        y = top + i * (bar + gap)
        value = r["challenge_accuracy"]
        label = f"{r['model']} (reported)" if kind == "reported" else _short_name(r["model"])
        out.append(
            f'<text class="bar-label" x="{left - 6}" y="{y + bar - 4}" text-anchor="end">{_escape(label)}'
            f'</text><rect class="bar {kind}" x="{left}" y="{y}" width="{value * scale:.1f}" '
            f'height="{bar}"><title>{_escape(label)}: {value:.2f} %</title></rect>'
            f'<text class="tick" x="{left + value * scale + 4:.1f}" y="{y + bar - 4}">{value:.1f}</text>'
        )
    if not bars:
        out.append(f'<text class="tick" x="{left}" y="{top + 12}">no challenge results yet</text>')
    x = left + CHANCE * scale
    out.append(
        f'<line class="chance" x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 30}"/>'
        f'<text class="tick" x="{x + 3:.1f}" y="{height - 32}">chance 11.1</text>'
    )
    out.append(
        f'<text class="label" x="{(left + width - right) / 2}" y="{height - 2}" text-anchor="middle">'
        "challenge accuracy (%)</text></svg>"
    )
    return "".join(out)


def _short_name(model_id: str) -> str:
    return str(model_id).rstrip("/").split("/")[-1]


def _escape(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


# ----------------------------------------------------------------------------------------------------
# Page and markdown


def _groups(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[Mapping[str, Any]]]]:
    """Reproduced rows per data edition: numbers on different data are never ranked together."""
    ordered = sorted(rows, key=lambda r: r["edition"])
    return [(edition, list(group)) for edition, group in groupby(ordered, key=lambda r: r["edition"])]


def render_html(
    rows: Sequence[Mapping[str, Any]],
    reported: Sequence[Mapping[str, Any]],
    rejected: Sequence[Any] = (),
    dropped: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The self-contained ``index.html``."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html", "j2"]),
        keep_trailing_newline=True,
    )
    template = env.get_template("leaderboard.html.j2")
    return template.render(
        groups=[(edition, _table(group, REPRODUCED_COLUMNS, False)) for edition, group in _groups(rows)],
        reported=_table(reported, REPORTED_COLUMNS, True),
        scatter=scatter_svg(rows, reported),
        challenge=challenge_svg(rows, reported),
        rejected=[str(p) for sub in rejected for p in sub.problems],
        num_rejected=len(rejected),
        dropped=dropped,
        num_rows=len(rows),
    )


def _md_table(rows: Sequence[Mapping[str, Any]], columns, reported: bool) -> list[str]:
    lines = ["| " + " | ".join(h for _, h, _ in columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append(
            "| " + " | ".join(_cell(r, k, reported)["text"].replace("|", "\\|") for k, _, _ in columns) + " |"
        )
    return lines


def render_markdown(
    rows: Sequence[Mapping[str, Any]],
    reported: Sequence[Mapping[str, Any]],
    rejected: Sequence[Any] = (),
    dropped: Sequence[Mapping[str, Any]] = (),
) -> str:
    """``leaderboard.md``: the same tables as the page."""
    lines = [
        "# IN-9 backgrounds challenge leaderboard",
        "",
        "Accuracies in %; BG-gap = Mixed-Same − Mixed-Rand in points (positive = relies on backgrounds); "
        "challenge accuracy = share of foregrounds that no background flips (chance 11.1).",
        "",
    ]
    lines += ["## Reproduced (validated submissions)", ""]
    if not rows:
        lines += ["No validated submission yet.", ""]
    for edition, group in _groups(rows):
        lines += [f"### Data: {edition}", ""] + _md_table(group, REPRODUCED_COLUMNS, False) + [""]
    if dropped:
        lines += [
            f"{len(dropped)} older duplicate submission(s) (same data, model, revision and protocol) "
            "replaced by the newest.",
            "",
        ]
    lines += [
        "## Reported in publications (not reproduced here)",
        "",
        "Copied as printed; release data, original weights. Not comparable with rows on other data.",
        "",
    ]
    lines += _md_table(reported, REPORTED_COLUMNS, True) + [""]
    if rejected:
        lines += ["## Rejected submissions", ""] + [f"- {p}" for sub in rejected for p in sub.problems] + [""]
    return "\n".join(lines)
