"""``in9-leaderboard plots``: the figures of a set of results, as PNG and PDF files for a paper.

One file per figure and data edition, because numbers on different data are never drawn in one panel:

- ``bg_gap_vs_original-<edition>``: BG-gap against Original accuracy, one labelled point per model, the
  BG-gap's 95 % bootstrap CI as error bars (the paper's "more accurate models rely on backgrounds less");
- ``accuracy_per_variant-<edition>``: accuracy on each of the 8 variants (the paper's order), one series per
  model (the layout of the paper's Figure 5);
- ``challenge_accuracy-<edition>``: challenge accuracy per model, only models that ran the challenge.

``<edition>`` is :func:`~evaluator.leaderboard.registry.edition_label` as a slug (``release-official``,
``synthetic-seeded-seed-0``). The published numbers (:func:`hub_cards.published_rows`, measured on the release
test data) are drawn, hollow or hatched and labelled "reported (paper)", only in the figures of the official
release edition. Where results.json has ``metrics.seeds``, thick translucent bars show the mean ± std over the
background seeds (BG-gap in the first figure, the mixed variants in the second).

matplotlib is optional (``pip install 'in9-bench[plots]'``) and imported only when figures are drawn; the
figures are drawn on ``matplotlib.figure.Figure`` with the Agg canvas, never pyplot, so the caller's backend
and global matplotlib state are left alone.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from evaluator.leaderboard.registry import edition_label
from evaluator.leaderboard.table import read_documents, table_row
from hub_cards import CONFIG_TITLES, published_rows
from in9_builder.atomic import atomic_write
from in9_builder.classes import IMAGE_VARIANTS, MIXED_VARIANTS
from in9_builder.errors import In9Error

FIGURES = ("bg_gap_vs_original", "accuracy_per_variant", "challenge_accuracy")
FORMATS = ("png", "pdf")
# The edition the published numbers were measured on: the release test data, byte for byte.
OFFICIAL_EDITION = edition_label({"source": "release", "edition": "official", "seed": None})
INSTALL_HINT = "the figures need matplotlib, which is not installed: pip install 'in9-bench[plots]'"
REPORTED = "reported (paper)"
CHANCE = 100.0 / 9  # a constant predictor's accuracy and challenge accuracy on the balanced test set
DPI = 200


@dataclass
class Series:
    """One model in the figures of one edition, in percent."""

    label: str
    reported: bool
    accuracy: dict[str, float]
    bg_gap: float | None = None
    bg_gap_ci: tuple[float, float] | None = None
    challenge: float | None = None
    seeds: dict[str, tuple[float, float | None]] = field(default_factory=dict)  # name -> (mean, std|None)
    color: Any = None


@dataclass
class PlotReport:
    figures: list[dict[str, Any]]  # per figure file pair: figure, edition, files, models, reported, seeds
    notes: list[str]  # the figures not drawn, and why


def edition_slug(edition: str) -> str:
    """An edition as a file-name part: ``synthetic seeded seed=0`` -> ``synthetic-seeded-seed-0``."""
    return re.sub(r"[^a-z0-9]+", "-", edition.lower()).strip("-") or "unknown"


def _matplotlib() -> SimpleNamespace:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch
    except ImportError:
        raise In9Error(INSTALL_HINT) from None
    return SimpleNamespace(Figure=Figure, Canvas=FigureCanvasAgg, Line2D=Line2D, Patch=Patch)


def _pct(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return 100.0 * float(value)


def reproduced_series(row: Mapping[str, Any]) -> Series:
    """A table row (fractions) as a series (percent)."""
    low, high = _pct(row["bg_gap_ci95_low"]), _pct(row["bg_gap_ci95_high"])
    seeds = {}
    for name in (*MIXED_VARIANTS, "bg_gap"):
        mean = _pct(row[f"{name}_seed_mean"])
        if mean is not None:
            seeds[name] = (mean, _pct(row[f"{name}_seed_std"]))
    return Series(
        label=str(row["model"] or "unknown").rstrip("/").split("/")[-1],
        reported=False,
        accuracy={v: a for v in IMAGE_VARIANTS if (a := _pct(row[v])) is not None},
        bg_gap=_pct(row["bg_gap"]),
        bg_gap_ci=None if low is None or high is None else (low, high),
        challenge=_pct(row["challenge_accuracy"]),
        seeds=seeds,
    )


def reported_series() -> list[Series]:
    """The published numbers (already in percent, as printed); a model published by two sources gets the
    source as a suffix (two ResNet-50 rows are two measurements, not one model twice)."""
    rows = published_rows()
    names = [str(row["model"]) for row in rows]
    out = []
    for name, row in zip(names, rows, strict=True):
        out.append(
            Series(
                label=name if names.count(name) == 1 else f"{name} [{row['source']}]",
                reported=True,
                accuracy={v: float(row[v]) for v in IMAGE_VARIANTS if row.get(v) is not None},
                bg_gap=row.get("bg_gap"),
                challenge=row.get("challenge_accuracy"),
            )
        )
    return out


def _disambiguate(rows: Sequence[Mapping[str, Any]], series: Sequence[Series]) -> None:
    """Two results of one model in an edition get what differs as a suffix (the protocol, else the revision,
    else the results.json path), so every label names one results.json."""
    suffixes = (
        lambda r: ", ".join(str(r[k]) for k in ("preprocess", "label_mode", "precision") if r[k] is not None),
        lambda r: str(r["revision"] or "unpinned").removeprefix("sha256:")[:8],
        lambda r: str(r["path"]),
    )
    base = [s.label for s in series]
    for suffix in suffixes:
        labels = [s.label for s in series]
        clash = {label for label in labels if labels.count(label) > 1}
        if not clash:
            return
        for r, s, b in zip(rows, series, base, strict=True):
            if s.label in clash:
                s.label = f"{b} [{suffix(r)}]"


def _colors(series: Sequence[Series]) -> None:
    """One colour per model, the same in the three figures of an edition: the reproduced models take tab10
    (tab20's saturated half) first, the reported ones tab20 (drawn hollow or hatched, never mistaken for a
    reproduced model of the same hue). Fixed colours: the caller's style does not change a paper figure."""
    reproduced = [s for s in series if not s.reported]
    for i, s in enumerate(reproduced):
        s.color = _tab20(2 * i if len(reproduced) <= 10 else i)
    for i, s in enumerate(s for s in series if s.reported):
        s.color = _tab20(i)


def _darker(color: Any) -> Any:
    """A label's colour: its marker's, darkened so that the light tab20 hues stay readable as text."""
    if not isinstance(color, tuple):
        return color
    return tuple(0.65 * c for c in color)


def _tab20(i: int) -> tuple[float, float, float]:
    # matplotlib's tab20, inlined so that colour assignment needs no colormap registry lookup.
    hexes = (
        "1f77b4 aec7e8 ff7f0e ffbb78 2ca02c 98df8a d62728 ff9896 9467bd c5b0d5 "
        "8c564b c49c94 e377c2 f7b6d2 7f7f7f c7c7c7 bcbd22 dbdb8d 17becf 9edae5"
    ).split()
    h = hexes[i % 20]
    return tuple(int(h[k : k + 2], 16) / 255 for k in (0, 2, 4))


# ----------------------------------------------------------------------------------------------------
# Label placement: the first candidate offset that overlaps no placed label, no marker and stays inside


def _offsets() -> list[tuple[float, float]]:
    """Candidate label offsets (points), nearest first: 8 directions on growing rings."""
    directions = ((1, 0.5), (1, -1), (-1, 0.5), (-1, -1), (0, 1), (0, -1.4), (1, 1.4), (-1, 1.4))
    return [(r * dx, r * dy) for r in (6, 13, 22, 34, 48, 64, 84, 110) for dx, dy in directions]


@dataclass
class Label:
    x: float
    y: float
    text: str
    color: Any
    size: float
    first: bool  # placed before the others (the reproduced models)


def _place_labels(fig: Any, ax: Any, labels: Sequence[Label], obstacles: Sequence[tuple]) -> None:
    """Annotate each point greedily (reproduced models first, then left to right) at the first candidate
    offset that overlaps no placed label, no point or error bar in ``obstacles`` (data coordinates) and stays
    inside the axes, else the least overlapping one; labels moved far from their point get a leader line."""
    fig.draw_without_rendering()  # constrained layout first: the positions below are then final
    renderer = fig.canvas.get_renderer()
    inside = ax.get_window_extent(renderer)
    blocked = [ax.transData.transform(point) for point in obstacles]
    placed: list[Box] = []
    points_to_px = fig.dpi / 72
    for label in sorted(labels, key=lambda a: (not a.first, a.x, a.y)):
        probe = _annotate(ax, label, 1, 1, leader=False)  # the text's size: the same at every offset
        size = probe.get_window_extent(renderer)
        probe.remove()
        px, py = ax.transData.transform((label.x, label.y))
        best, best_cost = (0.0, 0.0, None), math.inf
        for dx, dy in _offsets():
            box = _text_box(px + dx * points_to_px, py + dy * points_to_px, size.width, size.height, dx, dy)
            cost = _overlaps(box, placed, blocked, inside)
            if cost < best_cost:
                best, best_cost = (dx, dy, box), cost
            if cost == 0:
                break
        dx, dy, box = best
        leader = math.hypot(dx, dy) > 16
        _annotate(ax, label, dx, dy, leader=leader)
        placed.append(box)
        if leader:  # later labels keep off the line too
            cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
            blocked += [(px + (cx - px) * k / 10, py + (cy - py) * k / 10) for k in range(1, 10)]


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float


def _text_box(x: float, y: float, width: float, height: float, dx: float, dy: float) -> Box:
    """Where a text of that size lands when anchored at (x, y) with :func:`_annotate`'s alignment."""
    x0 = x if dx > 0 else x - width if dx < 0 else x - width / 2
    y0 = y if dy > 0 else y - height if dy < 0 else y - height / 2
    return Box(x0, y0, x0 + width, y0 + height)


def _annotate(ax: Any, label: Label, dx: float, dy: float, *, leader: bool) -> Any:
    ann = ax.annotate(
        label.text,
        (label.x, label.y),
        xytext=(dx, dy),
        textcoords="offset points",
        fontsize=label.size,
        color=label.color,
        ha="left" if dx > 0 else "right" if dx < 0 else "center",
        va="bottom" if dy > 0 else "top" if dy < 0 else "center",
        annotation_clip=False,
        arrowprops=dict(arrowstyle="-", color="0.45", linewidth=0.6, shrinkA=1, shrinkB=4)
        if leader
        else None,
    )
    ann.set_in_layout(False)  # labels never move the axes: the placement above stays valid
    return ann


def _overlaps(box: Box, placed: Sequence[Box], blocked: Sequence[Any], inside: Any) -> float:
    cost = sum(_area(box, other) for other in placed)
    cost += sum(
        150.0 for bx, by in blocked if box.x0 - 3 <= bx <= box.x1 + 3 and box.y0 - 3 <= by <= box.y1 + 3
    )
    outside = box.x0 < inside.x0 or box.x1 > inside.x1 or box.y0 < inside.y0 or box.y1 > inside.y1
    return cost + (1e6 if outside else 0.0)


def _area(a: Any, b: Any) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


# ----------------------------------------------------------------------------------------------------
# The three figures


def _new_figure(mpl: SimpleNamespace, size: tuple[float, float]) -> Any:
    fig = mpl.Figure(figsize=size, dpi=DPI, layout="constrained")
    mpl.Canvas(fig)  # the Agg canvas, attached to this figure only
    return fig


def _seed_bar(ax: Any, x: float, mean: float, std: float | None, color: Any) -> None:
    """Mean ± std over the seeds: a thick translucent bar behind the point, a tick at the mean."""
    yerr = None if std is None else [[std], [std]]
    ax.errorbar(
        [x], [mean], yerr=yerr, fmt="_", markersize=10, color=color, elinewidth=6, alpha=0.35, zorder=1
    )


def _seed_handle(mpl: SimpleNamespace, what: str) -> Any:
    return mpl.Line2D([], [], color="0.4", alpha=0.35, linewidth=6, label=f"{what}: mean ± std over seeds")


def _reported_handle(mpl: SimpleNamespace) -> Any:
    return mpl.Line2D(
        [], [], linestyle="", marker="D", markerfacecolor="none", markeredgecolor="0.35", label=REPORTED
    )


def bg_gap_figure(mpl: SimpleNamespace, series: Sequence[Series], edition: str) -> Any:
    """BG-gap against Original accuracy, one labelled point per model."""
    fig = _new_figure(mpl, (7.5, 5.8))
    ax = fig.add_subplot()
    labels, obstacles = [], []
    for s in series:
        x, y = s.accuracy["original"], s.bg_gap
        obstacles.append((x, y))
        if s.reported:
            ax.scatter(
                [x], [y], marker="D", s=28, facecolors="none", edgecolors=s.color, linewidths=1.2, zorder=3
            )
        else:
            _gap_point(ax, s, x, y, obstacles)
        labels.append(Label(x, y, s.label, _darker(s.color), 7 if s.reported else 8, first=not s.reported))
    ax.axhline(0, color="0.6", linewidth=0.8, zorder=0)
    ax.set_xlabel("Original accuracy (%)")
    ax.set_ylabel("BG-gap = Mixed-Same − Mixed-Rand (points)")
    ax.set_title(f"BG-gap vs Original accuracy — data: {edition}", fontsize=10)
    ax.grid(True, color="0.92", zorder=0)
    ax.margins(x=0.12, y=0.15)
    handles = [_ci_handle(ax)]
    if any("bg_gap" in s.seeds for s in series):
        handles.append(_seed_handle(mpl, "BG-gap"))
    if any(s.reported for s in series):
        handles.append(_reported_handle(mpl))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8, frameon=False)
    _place_labels(fig, ax, labels, obstacles)
    return fig


def _gap_point(ax: Any, s: Series, x: float, y: float, obstacles: list[tuple]) -> None:
    """A reproduced model: the point with its CI bar, the seed bar behind; the bars are label obstacles."""
    yerr = None if s.bg_gap_ci is None else [[y - s.bg_gap_ci[0]], [s.bg_gap_ci[1] - y]]
    ax.errorbar(
        [x], [y], yerr=yerr, fmt="o", color=s.color, markersize=6, capsize=3, elinewidth=1.2, zorder=3
    )
    spans = [s.bg_gap_ci] if s.bg_gap_ci else []
    if "bg_gap" in s.seeds:
        mean, std = s.seeds["bg_gap"]
        _seed_bar(ax, x, mean, std, s.color)
        spans.append((mean - (std or 0), mean + (std or 0)))
    for low, high in spans:
        obstacles += [(x, low + (high - low) * k / 8) for k in range(9)]


def _ci_handle(ax: Any) -> Any:
    """A legend entry drawn like the points: a marker with its error bar (an empty errorbar)."""
    return ax.errorbar(
        [],
        [],
        yerr=[],
        fmt="o",
        color="0.15",
        markersize=5,
        capsize=3,
        label="reproduced: BG-gap ± 95 % bootstrap CI",
    )


def variant_figure(mpl: SimpleNamespace, series: Sequence[Series], edition: str) -> Any:
    """Accuracy on each variant, the paper's order on the x axis, one dot series per model."""
    n = len(series)
    entries = n + 2 + any(s.reported for s in series)
    fig = _new_figure(mpl, (10.0, max(4.8, 0.22 * entries / (1 + (entries > 24)) + 1.5)))
    ax = fig.add_subplot()
    width = min(0.8, 0.12 * n)
    offsets = [0.0] if n == 1 else [-width / 2 + width * i / (n - 1) for i in range(n)]
    for s, dx in zip(series, offsets, strict=True):
        xs = [i + dx for i, v in enumerate(IMAGE_VARIANTS) if v in s.accuracy]
        ys = [s.accuracy[v] for v in IMAGE_VARIANTS if v in s.accuracy]
        style = dict(marker="D", markerfacecolor="none", markersize=5) if s.reported else dict(marker="o")
        ax.plot(xs, ys, linestyle="", color=s.color, markeredgewidth=1.2, zorder=3, label=s.label, **style)
        for v, (mean, std) in s.seeds.items():
            if v in MIXED_VARIANTS:
                _seed_bar(ax, IMAGE_VARIANTS.index(v) + dx, mean, std, s.color)
    ax.axhline(CHANCE, color="0.5", linestyle="--", linewidth=0.8, zorder=0)
    ax.text(-0.45, CHANCE + 1, "chance", ha="left", va="bottom", fontsize=7, color="0.4")
    for i in range(1, len(IMAGE_VARIANTS)):
        ax.axvline(i - 0.5, color="0.9", linewidth=0.8, zorder=0)
    ax.set_xticks(range(len(IMAGE_VARIANTS)), [CONFIG_TITLES[v] for v in IMAGE_VARIANTS], fontsize=9)
    ax.set_xlim(-0.5, len(IMAGE_VARIANTS) - 0.5)
    ax.set_ylim(-3, 103)  # a point at 0 or 100 % whole, not cut by the frame
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel("Accuracy (%)")
    ax.set_title(f"Accuracy per IN-9 variant — data: {edition}", fontsize=10)
    ax.grid(True, axis="y", color="0.92", zorder=0)
    handles = _variant_legend(mpl, ax, series)
    ncol = 1 if entries <= 24 else 2
    legend = fig.legend(handles=handles, loc="outside right upper", fontsize=7, frameon=False, ncol=ncol)
    for text in legend.get_texts():
        if text.get_text().endswith(":"):  # the two group headers
            text.set_fontweight("bold")
    return fig


def _variant_legend(mpl: SimpleNamespace, ax: Any, series: Sequence[Series]) -> list[Any]:
    """Reproduced models, then a "reported (paper)" header and the reported models, then the seed bars."""
    lines = {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}
    blank = {"linestyle": "", "marker": ""}
    handles = [mpl.Line2D([], [], **blank, label="reproduced (results.json):")]
    handles += [lines[s.label] for s in series if not s.reported]
    if any(s.reported for s in series):
        handles += [mpl.Line2D([], [], **blank, label=f"{REPORTED}:")]
        handles += [lines[s.label] for s in series if s.reported]
    if any(v in MIXED_VARIANTS for s in series for v in s.seeds):
        handles.append(_seed_handle(mpl, "mixed variants"))
    return handles


def challenge_figure(mpl: SimpleNamespace, series: Sequence[Series], edition: str) -> Any:
    """Challenge accuracy per model, highest first; the published values hatched."""
    ranked = sorted((s for s in series if s.challenge is not None), key=lambda s: -s.challenge)
    fig = _new_figure(mpl, (7.0, 0.32 * len(ranked) + 1.9))
    ax = fig.add_subplot()
    ys = range(len(ranked))[::-1]
    for y, s in zip(ys, ranked, strict=True):
        style = dict(color="white", edgecolor=s.color, hatch="///") if s.reported else dict(color=s.color)
        ax.barh([y], [s.challenge], height=0.7, linewidth=1, **style)
        ax.annotate(
            f"{s.challenge:.1f}",
            (s.challenge, y),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=7,
        )
    ax.axvline(CHANCE, color="0.4", linestyle="--", linewidth=0.8)
    ax.set_yticks(list(ys), [s.label for s in ranked], fontsize=8)
    ax.set_xlim(0, max(max(s.challenge for s in ranked) * 1.15, CHANCE * 1.5))  # room for the values
    ax.set_xlabel("Challenge accuracy (%): foregrounds no background flips")
    ax.set_title(f"Backgrounds challenge — data: {edition}", fontsize=10)
    ax.grid(True, axis="x", color="0.92", zorder=0)
    ax.set_axisbelow(True)
    handles = [mpl.Patch(color="0.3", label="reproduced (results.json)")]
    if any(s.reported for s in ranked):
        handles.append(mpl.Patch(facecolor="white", edgecolor="0.3", hatch="///", label=REPORTED))
    handles.append(mpl.Line2D([], [], color="0.4", linestyle="--", linewidth=0.8, label="chance (11.1 %)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8, frameon=False)
    return fig


# ----------------------------------------------------------------------------------------------------
# Files


def _save(fig: Any, out: Path, figure: str, edition: str, series: Sequence[Series]) -> dict[str, Any]:
    files = []
    for fmt in FORMATS:
        path = out / f"{figure}-{edition_slug(edition)}.{fmt}"
        # No creation date in the PDF: the same results give the same bytes.
        metadata = {"CreationDate": None} if fmt == "pdf" else {"Software": None}
        atomic_write(path, lambda tmp, fmt=fmt, m=metadata: fig.savefig(tmp, format=fmt, metadata=m))
        files.append(path)
    return {
        "figure": figure,
        "edition": edition,
        "files": files,
        "models": [s.label for s in series if not s.reported],
        "reported": [s.label for s in series if s.reported],
        "seeds": any(s.seeds for s in series if not s.reported),
    }


def _edition_series(edition: str, rows: Sequence[Mapping[str, Any]]) -> list[Series]:
    series = [reproduced_series(r) for r in rows]
    _disambiguate(rows, series)
    if edition == OFFICIAL_EDITION:
        series += reported_series()
    _colors(series)
    return series


def _edition_figures(mpl: SimpleNamespace, out: Path, edition: str, series: list[Series]) -> PlotReport:
    report = PlotReport([], [])
    mine = [s for s in series if not s.reported]
    drawers = (
        (FIGURES[0], bg_gap_figure, lambda s: "original" in s.accuracy and s.bg_gap is not None),
        (FIGURES[1], variant_figure, lambda s: bool(s.accuracy)),
        (FIGURES[2], challenge_figure, lambda s: s.challenge is not None),
    )
    for name, draw, usable in drawers:
        if not any(usable(s) for s in mine):
            why = "ran the challenge" if name == FIGURES[2] else "has the numbers it needs"
            report.notes.append(f"{name}-{edition_slug(edition)}: not drawn, no model on {edition} {why}")
            continue
        drawn = [s for s in series if usable(s)]
        report.figures.append(_save(draw(mpl, drawn, edition), out, name, edition, drawn))
    return report


def data_labels(blocks: Sequence[Mapping[str, Any]]) -> list[str]:
    """What each result's figures are titled and grouped by: its edition, narrowed so that results on
    different data never share a panel. A ``--limit`` run says so; results under one edition label are on the
    same data when they share the fingerprint of some variant (one scored Original, another only the mixed
    variants), and different data (two synthetic exports of other sizes) adds a fingerprint to the label."""
    labels = [
        edition_label(d) + (f", first {d['limit']} per class" if d.get("limit") else "") for d in blocks
    ]
    prints = [
        {(v, (e or {}).get("fingerprint")) for v, e in (d.get("variants") or {}).items()} for d in blocks
    ]
    group = list(range(len(blocks)))  # union-find: results of one label sharing a (variant, fingerprint)

    def root(i: int) -> int:
        while group[i] != i:
            i = group[i]
        return i

    for i in range(len(blocks)):
        for j in range(i):
            if labels[i] == labels[j] and prints[i] & prints[j]:
                group[root(i)] = root(j)
    roots = [root(i) for i in range(len(blocks))]
    groups_per_label: dict[str, set[int]] = {}
    for label, r in zip(labels, roots, strict=True):
        groups_per_label.setdefault(label, set()).add(r)
    return [
        f"{label}, data {_data_tag(blocks, roots, r)}" if len(groups_per_label[label]) > 1 else label
        for label, r in zip(labels, roots, strict=True)
    ]


def _data_tag(blocks: Sequence[Mapping[str, Any]], roots: list[int], root: int) -> str:
    """The first 8 hex digits of the group's Original fingerprint (else its first variant's, paper order)."""
    found = {}
    for block, r in zip(blocks, roots, strict=True):
        if r == root:
            for variant, entry in (block.get("variants") or {}).items():
                found.setdefault(variant, (entry or {}).get("fingerprint") or "")
    first = next((v for v in IMAGE_VARIANTS if v in found), next(iter(found), None))
    return found[first].removeprefix("sha256:")[:8] if first and found[first] else "unknown"


def plot_results(results_dir: str | os.PathLike, out: str | os.PathLike) -> PlotReport:
    """Draw the figures of every results.json under ``results_dir`` into the folder ``out`` (PNG and PDF,
    each written atomically), one file per figure and data edition."""
    mpl = _matplotlib()
    documents = read_documents(results_dir)
    labels = data_labels([d.doc.get("data") or {} for d in documents])
    rows = [
        {**table_row(d, results_dir), "edition": label} for d, label in zip(documents, labels, strict=True)
    ]
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise In9Error(f"out={folder}: is a file; pass a folder for the figures", argument="out")
    report = PlotReport([], [])
    for edition, group in groupby(sorted(rows, key=lambda r: r["edition"]), key=lambda r: r["edition"]):
        group = list(group)
        part = _edition_figures(mpl, folder, edition, _edition_series(edition, group))
        report.figures += part.figures
        report.notes += part.notes
    return report
