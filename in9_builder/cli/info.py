"""``in9-build info DIR``: what an export folder holds, from its ``in9_export.json``."""

from __future__ import annotations

import argparse
import os

from ..errors import flag_names


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("info", help="print what an export folder holds (from in9_export.json)")
    parser.add_argument("export_dir", help="an in9-build export folder")
    parser.set_defaults(func=run, flags=flag_names(parser))
    return parser


def run(args: argparse.Namespace) -> int:
    print_summary(args.export_dir)
    return 0


def print_summary(export_dir: str | os.PathLike) -> None:
    from ..export import read_summary  # the export module imports datasets: keep `in9-build --help` quick

    summary = read_summary(export_dir)
    seed = "official files" if summary["seed"] is None else f"seed {summary['seed']}"
    print(f"{export_dir}: source {summary['source']}, {summary['edition']} edition ({seed})")
    for config, entry in summary["configs"].items():
        rows = ", ".join(f"{split} {count}" for split, count in entry["num_rows"].items())
        print(f"  {config:<11} {rows:<22} {entry['fingerprint'][:19]}...")
