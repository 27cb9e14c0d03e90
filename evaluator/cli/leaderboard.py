"""``in9-leaderboard``: validate submissions, build the leaderboard page, register canonical fingerprints,
write tables and figures of a folder of results.

Exit codes: 0 all good; 1 some submission was rejected (one line per reason on stderr); 2 a usage or input
error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from evaluator.leaderboard.plots import plot_results
from evaluator.leaderboard.registry import register_export, user_registry_path
from evaluator.leaderboard.site import build_site
from evaluator.leaderboard.table import COLUMNS, write_table
from evaluator.leaderboard.validate import validate_files
from in9_builder.errors import flag_names, run_command

_CANONICAL_HELP = (
    "registry of canonical fingerprints to read (and, for register, to write) instead of the packaged "
    "hub_cards/canonical_fingerprints.json plus the user registry ($IN9_REGISTRY, else "
    "canonical_fingerprints.json in $IN9_CACHE, $XDG_CACHE_HOME/in9 or ~/.cache/in9)"
)


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--canonical", metavar="FILE", dest="registry_path", default=None, help=_CANONICAL_HELP
    )
    parser.add_argument(
        "--data",
        metavar="EXPORT_DIR",
        dest="extra_exports",
        action="append",
        default=[],
        help="also accept the edition of this in9-build export (fingerprints recomputed from its "
        "parquet files); repeatable",
    )
    parser.add_argument(
        "--allow-unpinned",
        action="store_true",
        help="accept local models without a revision (offline runs; never for a public board)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="in9-leaderboard", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    validate = sub.add_parser("validate", help="check results.json submissions")
    validate.add_argument(
        "files", nargs="+", metavar="FILE", help="results.json files or in9-eval output folders"
    )
    _add_data_options(validate)
    build = sub.add_parser("build", help="validate every submission under DIR and write the page")
    build.add_argument(
        "results_dir", metavar="DIR", help="folder holding in9-eval output folders (searched recursively)"
    )
    build.add_argument(
        "--out", metavar="SITE", required=True, help="output folder: index.html, leaderboard.md"
    )
    _add_data_options(build)
    register = sub.add_parser(
        "register", help="add an export's fingerprints to the user registry (or to --canonical FILE)"
    )
    register.add_argument("export_dir", metavar="EXPORT_DIR", help="a folder written by in9-build export")
    register.add_argument(
        "--canonical", metavar="FILE", dest="registry_path", default=None, help=_CANONICAL_HELP
    )
    _add_table_parsers(sub)
    return parser


def _add_table_parsers(sub: argparse._SubParsersAction) -> None:
    results_help = "folder holding results.json files (searched recursively; not validated)"
    table = sub.add_parser("table", help="one row per results.json under DIR, as CSV or markdown")
    table.add_argument("results_dir", metavar="DIR", help=results_help)
    table.add_argument(
        "--out",
        metavar="FILE",
        required=True,
        help="FILE.csv (the stored values, exact fractions) or FILE.md (percentages, one decimal)",
    )
    table.add_argument(
        "--sort",
        metavar="COLUMN",
        default=None,
        help="order the rows by this column (numbers highest first, missing last; default: path order); "
        f"columns: {', '.join(COLUMNS)}",
    )
    plots = sub.add_parser("plots", help="PNG and PDF figures of the results under DIR, one per data edition")
    plots.add_argument("results_dir", metavar="DIR", help=results_help)
    plots.add_argument("--out", metavar="FIGDIR", required=True, help="folder for the figure files")


def _report(subs) -> int:
    bad = 0
    for sub in subs:
        if sub.ok:
            print(f"ok: {sub.path}")
            continue
        bad += 1
        for problem in sub.problems:
            print(problem, file=sys.stderr)
    if bad:
        print(f"{bad} of {len(subs)} submission(s) rejected", file=sys.stderr)
    return 1 if bad else 0


def _validate(args: argparse.Namespace) -> int:
    subs = validate_files(
        args.files,
        registry_path=args.registry_path,
        extra_exports=args.extra_exports,
        allow_unpinned=args.allow_unpinned,
    )
    return _report(subs)


def _build(args: argparse.Namespace) -> int:
    report = build_site(
        args.results_dir,
        args.out,
        registry_path=args.registry_path,
        extra_exports=args.extra_exports,
        allow_unpinned=args.allow_unpinned,
    )
    for sub in report.rejected:
        for problem in sub.problems:
            print(f"rejected: {problem}", file=sys.stderr)
    print(
        f"{len(report.rows)} row(s), {len(report.rejected)} rejected, {len(report.dropped)} duplicate(s) "
        f"replaced: {report.index_html} {report.leaderboard_md}"
    )
    return 0


def _register(args: argparse.Namespace) -> int:
    entry = register_export(args.export_dir, args.registry_path)
    print(
        f"registered {entry['source']} {entry['edition']} seed={entry['seed']}: "
        f"{len(entry['configs'])} config(s) in {args.registry_path or user_registry_path()}"
    )
    return 0


def _table(args: argparse.Namespace) -> int:
    rows = write_table(args.results_dir, args.out, sort=args.sort)
    print(f"{len(rows)} row(s): {args.out}")
    return 0


def _plots(args: argparse.Namespace) -> int:
    report = plot_results(args.results_dir, args.out)
    for figure in report.figures:
        for path in figure["files"]:
            print(path)
    for note in report.notes:
        print(f"note: {note}")
    return 0


COMMANDS = {
    "validate": _validate,
    "build": _build,
    "register": _register,
    "table": _table,
    "plots": _plots,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    return run_command(lambda: COMMANDS[args.command](args), flag_names(parser))


if __name__ == "__main__":
    sys.exit(main())
