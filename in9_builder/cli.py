"""``in9-build``: argument parsing and error presentation over the Python API (``in9_builder.export``).

  in9-build synthetic --out DIR [--per-class N] [--seed N] [--tarball]      the fake release layout
  in9-build export --source release|synthetic|imagenet [--data-dir PATH] [--seed N] [--variants ...]
                   --out DIR [--push-to-hub ORG/NAME]                        a Hub-ready dataset folder
  in9-build info DIR                                                         what an export holds

Every subcommand is a module with ``add_parser(subparsers)`` that sets ``func``; optional ones (the toolkit,
which needs OpenCV) are listed in ``OPTIONAL_SUBCOMMANDS`` and skipped when their module is absent.
A user error prints ``error: <message>`` on stderr and exits 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

from .classes import CONFIGS
from .errors import In9Error

OPTIONAL_SUBCOMMANDS: tuple[str, ...] = ("in9_builder.toolkit.cli",)


def _variants(values: Sequence[str] | None) -> list[str] | None:
    # Accept both `--variants original mixed_rand` and `--variants original,mixed_rand`.
    if not values:
        return None
    return [v for value in values for v in value.split(",") if v]


def _source_args(pairs: Sequence[str]) -> dict:
    """``KEY=VALUE`` pairs; values are JSON when they parse (numbers, true/false, null), else strings."""
    kwargs = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise In9Error(f"--source-arg {pair!r}: write KEY=VALUE, e.g. --source-arg bg_correlation=0.8")
        try:
            kwargs[key.replace("-", "_")] = json.loads(raw)
        except json.JSONDecodeError:
            kwargs[key.replace("-", "_")] = raw
    return kwargs


# --- synthetic ----------------------------------------------------------------------------------------------


def add_synthetic_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "synthetic",
        help="write the synthetic source in the exact layout of the original release (a fake release)",
        description="Write bg_challenge/<variant>/val/<NN_class>/<stem>.JPEG (+ fg_mask .npy) for the "
        "synthetic source, or pack it as backgrounds_challenge_data.tar.gz with --tarball.",
    )
    parser.add_argument("--out", required=True, help="folder to write bg_challenge/ (or the tarball) into")
    parser.add_argument("--per-class", type=int, default=450, help="images per class (default 450)")
    parser.add_argument("--seed", type=int, default=0, help="scene and background-draw seed (default 0)")
    parser.add_argument("--size", type=int, default=224, help="image side in pixels (default 224)")
    parser.add_argument("--bg-correlation", type=float, default=0.9, help="P(background matches class)")
    parser.add_argument("--tarball", action="store_true", help="pack as backgrounds_challenge_data.tar.gz")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing bg_challenge/ or tarball"
    )
    parser.set_defaults(func=run_synthetic)
    return parser


def run_synthetic(args: argparse.Namespace) -> int:
    from .sources.synthetic import SyntheticSource

    source = SyntheticSource(
        per_class=args.per_class, size=args.size, seed=args.seed, bg_correlation=args.bg_correlation
    )
    written = source.write_release(args.out, tarball=args.tarball, overwrite=args.overwrite)
    print(f"wrote {written} ({args.per_class} per class, {args.size}px, seed {args.seed})")
    return 0


# --- export -------------------------------------------------------------------------------------------------


def add_export_parser(subparsers) -> argparse.ArgumentParser:
    from .sources import source_names

    parser = subparsers.add_parser(
        "export",
        help="export IN-9 as a Hub-ready dataset folder (parquet per config, README card, fingerprints)",
        description="Write OUT/README.md, OUT/in9_export.json and OUT/<config>/<split>-*.parquet. "
        "From the parent of a folder named in9, load_dataset('in9', '<config>') works offline.",
    )
    parser.add_argument("--source", required=True, choices=source_names(), help="where the scenes come from")
    parser.add_argument(
        "--data-dir", help="release: URL (default: the official tarball), local .tar.gz or extracted folder"
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="seeded edition; omit for the official edition (release files)"
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        metavar="VARIANT",
        help=f"configs to export (default all): {', '.join(CONFIGS)}",
    )
    parser.add_argument(
        "--out", required=True, help="output folder (name it in9 for load_dataset('in9', ...))"
    )
    parser.add_argument("--push-to-hub", metavar="ORG/NAME", help="upload the folder as a Hub dataset repo")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT (atomically)")
    parser.add_argument("--num-proc", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--image-format", choices=("png", "jpeg"), default="png", help="generated images")
    parser.add_argument("--splits", nargs="+", help="splits to export (default: all the source has)")
    parser.add_argument("--per-class", type=int, help="synthetic: images per class; release: expected count")
    parser.add_argument("--size", type=int, help="synthetic: image side in pixels")
    parser.add_argument("--train-per-class", type=int, help="synthetic: train images per class (0 = none)")
    parser.add_argument(
        "--source-arg", action="append", default=[], metavar="KEY=VALUE", help="any other source parameter"
    )
    parser.add_argument("--cache-dir", help="datasets cache for downloads and extraction")
    parser.set_defaults(func=run_export)
    return parser


def run_export(args: argparse.Namespace) -> int:
    from .export import export

    source_kwargs = _source_args(args.source_arg)
    for flag in ("per_class", "size", "train_per_class"):
        value = getattr(args, flag)
        if value is not None:
            source_kwargs[flag] = value
    out = export(
        args.source,
        args.out,
        seed=args.seed,
        variants=_variants(args.variants),
        data_dir=args.data_dir,
        source_kwargs=source_kwargs,
        num_proc=args.num_proc,
        overwrite=args.overwrite,
        image_format=args.image_format,
        push_to_hub=args.push_to_hub,
        splits=_variants(args.splits),
        cache_dir=args.cache_dir,
    )
    print_summary(out)
    return 0


# --- info ---------------------------------------------------------------------------------------------------


def add_info_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("info", help="print what an export folder holds (from in9_export.json)")
    parser.add_argument("export_dir", help="an in9-build export folder")
    parser.set_defaults(func=lambda args: print_summary(args.export_dir) or 0)
    return parser


def print_summary(export_dir) -> None:
    from .export import read_summary

    summary = read_summary(export_dir)
    seed = "official files" if summary["seed"] is None else f"seed {summary['seed']}"
    print(f"{export_dir}: source {summary['source']}, {summary['edition']} edition ({seed})")
    for config, entry in summary["configs"].items():
        rows = ", ".join(f"{split} {count}" for split, count in entry["num_rows"].items())
        print(f"  {config:<11} {rows:<22} {entry['fingerprint'][:19]}...")


# --- entry point --------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="in9-build", description="Build and export the IN-9 datasets.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_synthetic_parser(subparsers)
    add_export_parser(subparsers)
    add_info_parser(subparsers)
    for module_name in OPTIONAL_SUBCOMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue  # an optional part that is absent here (or whose dependency is not installed)
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except In9Error as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: nothing was half-written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
