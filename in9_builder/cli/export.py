"""``in9-build export``: a Hub-ready dataset folder (``in9_builder.export.export``) from any source."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from ..classes import CONFIGS
from ..errors import In9Error, flag_names
from ..sources import source_names
from .info import print_summary

# Flags that are source parameters (they go into source_kwargs when given).
SOURCE_FLAGS = ("per_class", "size", "train_per_class", "scene_seed")


def add_parser(subparsers) -> argparse.ArgumentParser:
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
        "--seed",
        type=int,
        default=None,
        help="seeded edition: the mixed variants' background draws; omit for the official edition",
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
    parser.add_argument("--scene-seed", type=int, help="synthetic: the scenes' seed (default 0)")
    parser.add_argument(
        "--source-arg", action="append", default=[], metavar="KEY=VALUE", help="any other source parameter"
    )
    parser.add_argument("--cache-dir", help="datasets cache for downloads and extraction")
    parser.set_defaults(func=run, flags=flag_names(parser))
    return parser


def comma_list(values: Sequence[str] | None) -> list[str] | None:
    """Both ``--variants original mixed_rand`` and ``--variants original,mixed_rand``; None when absent."""
    if not values:
        return None
    return [v for value in values for v in value.split(",") if v]


def source_args(pairs: Sequence[str]) -> dict:
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


def run(args: argparse.Namespace) -> int:
    from ..export import export  # imports datasets: keep `in9-build --help` quick

    source_kwargs = source_args(args.source_arg)
    for name in SOURCE_FLAGS:
        value = getattr(args, name)
        if value is not None:
            source_kwargs[name] = value
    out = export(
        args.source,
        args.out,
        seed=args.seed,
        variants=comma_list(args.variants),
        data_dir=args.data_dir,
        source_kwargs=source_kwargs,
        num_proc=args.num_proc,
        overwrite=args.overwrite,
        image_format=args.image_format,
        push_to_hub=args.push_to_hub,
        splits=comma_list(args.splits),
        cache_dir=args.cache_dir,
    )
    print_summary(out)
    return 0
