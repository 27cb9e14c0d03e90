"""The leaderboard page: ``leaderboard.md`` and a self-contained ``index.html`` (inline CSS, JS and SVG; no
network, works from ``file://``). Pure rendering: rows in, text out; the same rows give the same bytes."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from . import TEMPLATES


@dataclass(frozen=True)
class Column:
    key: str
    header: str  # short, so that every table fits a 1400 px window
    type: str  # "text" | "num"; "num" columns sort descending first
    title: str = ""  # the header's tooltip: what the short header means
    wrap: bool = False  # long free text (names, references) wraps; codes and numbers never do


# What a short header means, as the header's tooltip; shared by both tables.
MEANINGS = {
    "original": "accuracy in % on the unmodified images",
    "mixed_same": "accuracy in %, foregrounds on backgrounds of the same class",
    "mixed_rand": "accuracy in %, foregrounds on backgrounds of a random class",
    "only_bg_t": "accuracy in % on the background alone (the object's box tiled over)",
    "challenge_accuracy": "share of foregrounds that no Only-BG-T background flips (chance 11.1)",
    "label_mode": "how the model's outputs become one of the 9 classes",
}
REPRODUCED_COLUMNS: tuple[Column, ...] = (
    Column(
        "model",
        "Model",
        "text",
        "a Hub id, or a local folder's name (its path in the cell's tooltip)",
        wrap=True,
    ),
    Column("revision", "Revision", "text", "the Hub commit scored (the full sha in its tooltip)"),
    Column("params", "Params", "num", "parameter count"),
    Column("original", "Original", "num", MEANINGS["original"]),
    Column("mixed_same", "Mixed-Same", "num", MEANINGS["mixed_same"]),
    Column("mixed_rand", "Mixed-Rand", "num", MEANINGS["mixed_rand"]),
    Column(
        "bg_gap",
        "BG-gap [95\u00a0%\u00a0CI]",  # no-break spaces: the header wraps after "BG-gap" only
        "num",
        "Mixed-Same − Mixed-Rand in points (positive = relies on backgrounds); paired bootstrap 95 % CI",
    ),
    Column("only_bg_t", "Only-BG-T", "num", MEANINGS["only_bg_t"]),
    Column("challenge_accuracy", "Challenge", "num", MEANINGS["challenge_accuracy"]),
    Column("label_mode", "Label mode", "text", MEANINGS["label_mode"]),
    Column("preprocess", "Preprocess", "text", "the preprocessing protocol (in9-eval --preprocess)"),
    Column("precision", "Precision", "text", "mixed precision (no: float32)"),
)
# Shown right after the headline column they summarise, only in a table where some row has them: the
# headline stays the submission's own data's number, the seeds are other background draws beside it.
SEED_COLUMNS: dict[str, Column] = {
    "mixed_rand": Column(
        "mixed_rand_seeds",
        "Mixed-Rand over seeds",
        "num",
        "mean ± sample std of Mixed-Rand over the background draws in metrics.seeds",
    ),
    "bg_gap": Column(
        "bg_gap_seeds",
        "BG-gap over seeds",
        "num",
        "mean ± sample std of the BG-gap over the background draws in metrics.seeds",
    ),
}
REPORTED_COLUMNS: tuple[Column, ...] = (
    Column("model", "Model", "text", wrap=True),
    Column("weights", "Weights", "text", "the checkpoint the publication scored", True),
    Column("train_data", "Train data", "text"),
    Column("original", "Original", "num", MEANINGS["original"]),
    Column("mixed_same", "Mixed-Same", "num", MEANINGS["mixed_same"]),
    Column("mixed_rand", "Mixed-Rand", "num", MEANINGS["mixed_rand"]),
    Column("bg_gap", "BG-gap", "num", "Mixed-Same − Mixed-Rand in points, as printed"),
    Column("only_bg_t", "Only-BG-T", "num", MEANINGS["only_bg_t"]),
    Column("challenge_accuracy", "Challenge", "num", MEANINGS["challenge_accuracy"]),
    Column("label_mode", "Label mode", "text", MEANINGS["label_mode"]),
    Column(
        "source_name",
        "Source",
        "text",
        "where the numbers were printed (the full reference in its tooltip)",
        wrap=True,
    ),
)
# edition_label() of the release's official edition (evaluator.leaderboard.registry; a test keeps them
# equal): the data every published number was measured on, so the only scatter panel they are drawn in.
RELEASE_EDITION = "release official"
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


def seed_text(row: Mapping[str, Any], metric: str) -> str | None:
    """``mean ± std (n seeds)`` of one metric of a row's seed summary; None where it has none."""
    parts = _seed_parts(row, metric)
    return None if parts is None else " ".join(parts)


def _seed_parts(row: Mapping[str, Any], metric: str) -> tuple[str, str] | None:
    seeds = row.get("seeds") or {}
    stat = seeds.get(metric)
    if stat is None:
        return None
    n = seeds.get("n", 0)
    spread = "" if stat.get("std") is None else f" ± {stat['std']:.1f}"  # one seed: no sample std
    return f"{stat['mean']:.1f}{spread}", f"({n} seed{'' if n == 1 else 's'})"


def _seed_cell(row: Mapping[str, Any], metric: str) -> dict[str, Any]:
    parts = _seed_parts(row, metric)
    if parts is None:
        return {"text": "–", "sort": ""}
    seeds = ", ".join(str(s) for s in row["seeds"].get("seeds", []))
    return {
        "text": " ".join(parts),
        "parts": parts,  # the page breaks a narrow cell between them, never inside one
        "sort": repr(row["seeds"][metric]["mean"]),
        "title": f"background-draw seeds {seeds}",
    }


def _model_cell(row: Mapping[str, Any], reported: bool) -> dict[str, Any]:
    name = row.get("model_name") or row["model"]
    cell = {"text": str(name), "sort": str(name)}
    if reported:
        cell["badge"] = "reported"
    elif row.get("local"):
        cell |= {"title": f"local folder {row['model']}", "badge": "local"}
    return cell


def _cell(row: Mapping[str, Any], key: str, reported: bool) -> dict[str, Any]:
    """One cell: display ``text``, ``sort`` value, optional ``title`` (tooltip), ``sub`` (a second, smaller
    line on the page; after the text in markdown) and ``badge``."""
    value = row.get(key)
    if key == "model":
        return _model_cell(row, reported)
    if key.endswith("_seeds"):
        return _seed_cell(row, key.removesuffix("_seeds"))
    if key == "params":
        return {"text": _params(value), "sort": "" if not value else str(value)}
    if key == "bg_gap" and not reported and value is not None and row.get("bg_gap_ci"):
        lo, hi = row["bg_gap_ci"]
        return {"text": _pct(value), "sort": repr(value), "sub": f"[{lo:.1f}, {hi:.1f}]"}
    if key == "revision":
        return {"text": row.get("revision_short", value), "sort": str(value), "title": str(value)}
    if key == "source_name":
        return {"text": row.get("source_short") or str(value), "sort": str(value), "title": str(value)}
    if isinstance(value, float):
        text = str(value) if reported else _pct(value)
        return {"text": text, "sort": repr(value)}
    return {"text": "–" if value is None else str(value), "sort": "" if value is None else str(value)}


def reproduced_columns(rows: Sequence[Mapping[str, Any]]) -> tuple[Column, ...]:
    """The reproduced table's columns: the seed columns only where some row has a seed summary."""
    if not any(r.get("seeds") for r in rows):
        return REPRODUCED_COLUMNS
    return tuple(c for col in REPRODUCED_COLUMNS for c in (col, SEED_COLUMNS.get(col.key)) if c is not None)


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], reported: bool) -> dict[str, Any]:
    return {
        "columns": columns,
        "rows": [{"cells": [_cell(r, c.key, reported) for c in columns], "row": r} for r in rows],
    }


# ----------------------------------------------------------------------------------------------------
# Plots (SVG built here, inline in the page)


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    step = (hi - lo) / n
    magnitude = 10 ** math.floor(math.log10(step)) if step > 0 else 1
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= step), default=step)
    start = math.ceil(lo / step) * step
    return [round(start + i * step, 6) for i in range(int((hi - start) / step + 1e-9) + 1)]


def _plotted(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in rows if r.get("original") is not None and r.get("bg_gap") is not None]


def scatter_panels(rows: Sequence[Mapping[str, Any]], reported: Sequence[Mapping[str, Any]]) -> list[str]:
    """One BG-gap scatter per data edition, in the tables' order: numbers on different data never share
    axes. The published rows were measured on the release, so they are drawn on its official edition's
    panel only (a panel of their own when no reproduced row is on that data)."""
    groups = dict(_groups(rows))
    if _plotted(reported):
        groups.setdefault(RELEASE_EDITION, [])
    return [
        scatter_svg(groups[edition], reported if edition == RELEASE_EDITION else (), edition, index=i + 1)
        for i, edition in enumerate(sorted(groups))
    ]


def scatter_svg(
    reproduced: Sequence[Mapping[str, Any]],
    reported: Sequence[Mapping[str, Any]],
    edition: str,
    *,
    index: int = 1,
) -> str:
    """BG-gap (y) against Original accuracy (x) on one data edition: the paper's "more accurate models rely
    on backgrounds less" view. ``reproduced`` rows must all be of ``edition``; ``reported`` rows are drawn
    only on the release's official edition."""
    if any(r["edition"] != edition for r in reproduced):
        raise ValueError(f"scatter of {edition!r} given rows of another edition")
    if reported and edition != RELEASE_EDITION:
        raise ValueError(f"published rows were measured on {RELEASE_EDITION!r}, not on {edition!r}")
    points = [("reproduced", r) for r in _plotted(reproduced)] + [("reported", r) for r in _plotted(reported)]
    box = width, height, left, right, top, bottom = 580, 380, 56, 90, 36, 44
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

    attr = _escape(edition)
    out = [
        f'<svg id="scatter-{index}" class="scatter" data-edition="{attr}" '
        f'xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="BG-gap against Original accuracy, data: {attr}">'
        f'<text class="title" x="{left}" y="16">Data: {attr}</text>',
        _scatter_axes(_ticks(x_lo, x_hi), _ticks(y_lo, y_hi), sx, sy, box),
    ]
    out += [_point(kind, p, sx, sy, attr, width) for kind, p in points]
    out.append(_scatter_legend(left + 14, top, bool(_plotted(reproduced)), bool(_plotted(reported))))
    out.append("</svg>")
    return "".join(out)


def _scatter_axes(x_ticks, y_ticks, sx, sy, box: tuple[int, int, int, int, int, int]) -> str:
    """Grid, ticks, the zero line and the axis labels of a scatter panel."""
    width, height, left, right, top, bottom = box
    out = []
    for t in x_ticks:
        out.append(
            f'<line class="grid" x1="{sx(t):.1f}" y1="{top}" x2="{sx(t):.1f}" y2="{height - bottom}"/>'
            f'<text class="tick" x="{sx(t):.1f}" y="{height - bottom + 16}" text-anchor="middle">{t:g}</text>'
        )
    for t in y_ticks:
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
    return "".join(out)


def _point(kind: str, p: Mapping[str, Any], sx, sy, edition_attr: str, width: int) -> str:
    """One point; ``data-edition`` names the data it was measured on (what the tests check)."""
    x, y = sx(p["original"]), sy(p["bg_gap"])
    name = _escape(f"{p['model']}: Original {p['original']:.1f}, BG-gap {p['bg_gap']:.1f} ({kind})")
    if kind == "reported":
        return (
            f'<rect class="pt reported" data-edition="{edition_attr}" x="{x - 4:.1f}" y="{y - 4:.1f}" '
            f'width="8" height="8"><title>{name}</title></rect>'
        )
    ci = ""
    if p.get("bg_gap_ci"):
        lo, hi = p["bg_gap_ci"]
        ci = f'<line class="ci" x1="{x:.1f}" y1="{sy(lo):.1f}" x2="{x:.1f}" y2="{sy(hi):.1f}"/>'
    label = _clip(_short_name(p["model"]), 26)
    # A point near the right edge is labelled to its left, so that the label stays inside the panel.
    anchor = 'text-anchor="end" ' if x + 7 + 6.5 * len(label) > width else ""
    lx = x - 7 if anchor else x + 7
    return (
        f'{ci}<circle class="pt reproduced" data-edition="{edition_attr}" cx="{x:.1f}" cy="{y:.1f}" r="5">'
        f"<title>{name}</title></circle>"
        f'<text class="pt-label" {anchor}x="{lx:.1f}" y="{y - 6:.1f}">{_escape(label)}</text>'
    )


def _scatter_legend(x: float, top: float, reproduced: bool, reported: bool) -> str:
    """The markers a panel has (``key``, not ``pt``: a legend marker is no point)."""
    out, y = [], top + 10
    if reproduced:
        out.append(
            f'<circle class="key reproduced" cx="{x}" cy="{y}" r="5"/>'
            f'<text class="legend" x="{x + 10}" y="{y + 4}">reproduced (95 % CI)</text>'
        )
        y += 18
    if reported:
        out.append(
            f'<rect class="key reported" x="{x - 4}" y="{y - 4}" width="8" height="8"/>'
            f'<text class="legend" x="{x + 10}" y="{y + 4}">reported in papers (release data)</text>'
        )
    if not (reproduced or reported):
        out.append(f'<text class="legend" x="{x}" y="{y + 4}">no row with both numbers</text>')
    return "".join(out)


def _challenge_bars(
    reproduced: Sequence[Mapping[str, Any]], reported: Sequence[Mapping[str, Any]]
) -> list[tuple[str, list[tuple[str, Mapping[str, Any]]]]]:
    """(edition, [(kind, row)]) with a challenge accuracy, per edition: bars on one data stay together."""
    groups: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for edition, rows in _groups(reproduced):
        groups[edition] = [("reproduced", r) for r in rows if r.get("challenge_accuracy") is not None]
    published = [("reported", r) for r in reported if r.get("challenge_accuracy") is not None]
    if published:
        groups[RELEASE_EDITION] = groups.get(RELEASE_EDITION, []) + published
    return [(edition, bars) for edition, bars in sorted(groups.items()) if bars]


def challenge_svg(reproduced: Sequence[Mapping[str, Any]], reported: Sequence[Mapping[str, Any]]) -> str:
    """Challenge accuracy per model as horizontal bars, grouped by data edition under a heading each
    (reproduced first, then reported on the release's); chance marked."""
    groups = _challenge_bars(reproduced, reported)
    width, left, right, bar, gap, top = 640, 230, 60, 16, 6, 10
    lines = sum(1 + len(bars) for _, bars in groups)
    height = top + max(1, lines) * (bar + gap) + 34
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
    y = top
    for edition, bars in groups:
        out.append(f'<text class="group" x="8" y="{y + bar - 4}">Data: {_escape(edition)}</text>')
        y += bar + gap
        for kind, r in bars:
            out.append(_bar(kind, r, left, y, bar, scale, edition))
            y += bar + gap
    if not groups:
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


def _bar(kind: str, r: Mapping[str, Any], left: float, y: float, bar: int, scale: float, edition: str) -> str:
    value = r["challenge_accuracy"]
    label = f"{r['model']} (reported)" if kind == "reported" else _short_name(r["model"])
    shown = _escape(_clip(label, 36))  # the bar's left margin is 230 px
    return (
        f'<text class="bar-label" x="{left - 6}" y="{y + bar - 4}" text-anchor="end">{shown}'
        f'</text><rect class="bar {kind}" data-edition="{_escape(edition)}" x="{left}" y="{y}" '
        f'width="{value * scale:.1f}" height="{bar}"><title>{_escape(label)}: {value:.2f} %</title></rect>'
        f'<text class="tick" x="{left + value * scale + 4:.1f}" y="{y + bar - 4}">{value:.1f}</text>'
    )


def _clip(text: str, limit: int) -> str:
    """A plot label cut to ``limit`` characters (the full name is in the point's or bar's tooltip)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
        groups=[
            (edition, _table(group, reproduced_columns(group), False)) for edition, group in _groups(rows)
        ],
        reported=_table(reported, REPORTED_COLUMNS, True),
        scatters=scatter_panels(rows, reported),
        challenge=challenge_svg(rows, reported),
        rejected=[str(p) for sub in rejected for p in sub.problems],
        num_rejected=len(rejected),
        dropped=dropped,
        num_rows=len(rows),
        has_seeds=any(r.get("seeds") for r in rows),
    )


def _md_text(row: Mapping[str, Any], column: Column, reported: bool) -> str:
    cell = _cell(row, column.key, reported)
    # The page's second line follows the text; of the badges only "local" (reported rows have their section).
    local = "(local)" if cell.get("badge") == "local" else None
    return " ".join(p for p in (cell["text"], cell.get("sub"), local) if p).replace("|", "\\|")


def _md_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], reported: bool) -> list[str]:
    """A markdown table: a local model by its folder's name (the path stays out of the text a reader gets
    and the build on another machine repeats), the CI after the BG-gap."""
    lines = ["| " + " | ".join(c.header for c in columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(_md_text(r, c, reported) for c in columns) + " |")
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
    if any(r.get("seeds") for r in rows):
        lines += [
            '"… over seeds": mean ± sample std (n seeds) over the background draws a submission also '
            "scored (`metrics.seeds`), beside its headline numbers, which stay those of the table's data.",
            "",
        ]
    if not rows:
        lines += ["No validated submission yet.", ""]
    for edition, group in _groups(rows):
        lines += [f"### Data: {edition}", ""] + _md_table(group, reproduced_columns(group), False) + [""]
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
