"""What a person reads about one result: the console table printed at the end of a run and ``summary.md``.

Both are made from the same pieces (the run's context, one row per variant, the headline metrics), so the two
never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from in9_builder.classes import CLASS_NAMES, IMAGE_VARIANTS

if TYPE_CHECKING:
    from evaluator.results.schema import Results


def pct(x: float | None) -> str:
    """A share in [0, 1] as a percentage with one decimal; a dash when there is none."""
    return "–" if x is None else f"{100 * x:.1f}"


def summary_rows(results: Results) -> list[tuple[str, str, str, str]]:
    """(variant, accuracy %, 95 % CI, correct/count) per evaluated variant, in the paper's order."""
    acc = results.metrics.get("accuracy", {})
    return [
        (v, pct(a["value"]), f"[{pct(a['ci95'][0])}, {pct(a['ci95'][1])}]", f"{a['correct']}/{a['count']}")
        for v in IMAGE_VARIANTS
        if (a := acc.get(v))
    ]


def headline(results: Results) -> list[tuple[str, str]]:
    """(name, value) of the BG-gap, the background-reliance numbers and the challenge, when measured."""
    m = results.metrics
    lines = []
    if gap := m.get("bg_gap"):
        lines.append(
            (
                "BG-Gap (Mixed-Same − Mixed-Rand)",
                f"{pct(gap['value'])} pp [{pct(gap['ci95'][0])}, {pct(gap['ci95'][1])}], "
                f"{gap['n_pairs']} pairs",
            )
        )
    rel = m.get("bg_reliance", {})
    if "original_minus_only_fg" in rel:
        lines.append(("Original − Only-FG", f"{pct(rel['original_minus_only_fg'])} pp"))
    if "only_bg_t" in rel:
        lines.append(("Only-BG-T (chance 11.1)", f"{pct(rel['only_bg_t'])} %"))
    if ch := m.get("challenge"):
        lines.append(
            (
                "Challenge accuracy",
                f"{pct(ch.get('challenge_accuracy'))} % "
                f"({ch.get('num_foregrounds')} foregrounds, {ch.get('forward_passes')} forward passes)",
            )
        )
        lines.append(("BG-class fooling rate", f"{pct(ch.get('bg_class_fooling_rate'))} %"))
    return lines + seed_lines(m.get("seeds"))


def mean_std_text(entry: dict) -> str:
    """``"58.9 ± 1.2"`` (percent or points); without the ± part for a single seed."""
    std = entry.get("std")
    return pct(entry["mean"]) + ("" if std is None else f" ± {pct(std)}")


def seed_lines(seeds: dict | None) -> list[tuple[str, str]]:
    """(name, "mean ± std") over the background draws of a ``--seeds`` run, per mixed variant and BG-gap."""
    if not seeds:
        return []
    drawn = f"over {len(seeds['seeds'])} draws (seeds {', '.join(str(s) for s in seeds['seeds'])})"
    return [
        (
            f"{'BG-Gap' if name == 'bg_gap' else name} {drawn}",
            mean_std_text(entry) + (" pp" if name == "bg_gap" else " %"),
        )
        for name, entry in seeds["summary"].items()
    ]


def context(results: Results) -> str:
    """Three lines: the model, the protocol and the data a result was made with."""
    model, proto, data = results.model, results.protocol, results.data
    revision = model.get("revision") or "none (local folder or in-memory module)"
    edition = data.get("edition") or "?"
    if data.get("seed") is not None:
        edition += f", seed {data['seed']}"
    limit = f", first {proto['limit']} per class" if proto.get("limit") else ""
    return (
        f"model {model['id']} (revision {revision}; {model['label_space']} head, {model['num_labels']} "
        f"labels)\nprotocol: label mode {proto['label_mode']}, preprocess {proto['preprocess']}, precision "
        f"{proto['precision']}, batch size {proto['batch_size']}{limit}\ndata: {data['source']} ({edition})"
    )


def text_table(rows: Sequence[Sequence[str]], left: int = 1, notes: Sequence[str] | None = None) -> list[str]:
    """A header row, a rule and the rows, columns aligned (the first ``left`` to the left, the rest to the
    right); ``notes`` (one per row, header included) follow each line unaligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for i, row in enumerate(rows):
        cells = [
            c.ljust(w) if j < left else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells + ([notes[i]] if notes else [])).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def console_table(results: Results) -> str:
    """The human summary printed at the end of a run."""
    rows = [("variant", "acc %", "95% CI", "correct")] + summary_rows(results)
    lines = [context(results), "", *text_table(rows), ""]
    lines += [f"{name}: {value}" for name, value in headline(results)]
    return "\n".join(lines)


def summary_markdown(results: Results) -> str:
    """summary.md: the same as the console table, as Markdown, plus per-class accuracy."""
    lines = [
        "# IN-9 results",
        "",
        *(f"- {line}" for line in context(results).splitlines()),
        "",
        "| variant | accuracy % | 95 % CI | correct |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {v} | {a} | {ci} | {c} |" for v, a, ci, c in summary_rows(results)]
    if metrics := headline(results):
        lines += ["", "| metric | value |", "|---|---|"] + [f"| {n} | {v} |" for n, v in metrics]
    acc = results.metrics.get("accuracy", {})
    variants = [v for v in IMAGE_VARIANTS if v in acc]
    if variants:
        lines += [
            "",
            "## Per-class accuracy %",
            "",
            "| class | " + " | ".join(variants) + " |",
            "|---|" + "---:|" * len(variants),
        ]
        for name in CLASS_NAMES:
            cells = [pct(acc[v]["per_class"].get(name)) for v in variants]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    env = results.environment
    lines += [
        "",
        f"Run {results.created_at} on {env.get('device')} × {env.get('num_processes')}; "
        + ", ".join(f"{k} {v}" for k, v in env.get("packages", {}).items() if v)
        + ".",
    ]
    return "\n".join(lines) + "\n"
