"""``in9-build synthetic``: the synthetic source's test split in the exact layout of the original release."""

from __future__ import annotations

import argparse

from ..errors import flag_names
from ..sources.synthetic import SyntheticSource


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "synthetic",
        help="write the synthetic source in the exact layout of the original release (a fake release)",
        description="Write bg_challenge/<variant>/val/<NN_class>/<stem>.JPEG (+ fg_mask .npy) for the "
        "synthetic source, or pack it as backgrounds_challenge_data.tar.gz with --tarball.",
    )
    parser.add_argument("--out", required=True, help="folder to write bg_challenge/ (or the tarball) into")
    parser.add_argument("--per-class", type=int, default=450, help="images per class (default 450)")
    parser.add_argument("--scene-seed", type=int, default=0, help="the scenes' seed (default 0)")
    parser.add_argument(
        "--seed", type=int, default=0, help="the mixed variants' background draws (default 0)"
    )
    parser.add_argument("--size", type=int, default=224, help="image side in pixels (default 224)")
    parser.add_argument("--bg-correlation", type=float, default=0.9, help="P(background matches class)")
    parser.add_argument("--tarball", action="store_true", help="pack as backgrounds_challenge_data.tar.gz")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing bg_challenge/ or tarball"
    )
    parser.set_defaults(func=run, flags=flag_names(parser))
    return parser


def run(args: argparse.Namespace) -> int:
    source = SyntheticSource(
        per_class=args.per_class,
        size=args.size,
        scene_seed=args.scene_seed,
        bg_correlation=args.bg_correlation,
    )
    written = source.write_release(args.out, seed=args.seed, tarball=args.tarball, overwrite=args.overwrite)
    print(
        f"wrote {written} ({args.per_class} per class, {args.size}px, scene seed {args.scene_seed}, "
        f"background seed {args.seed})"
    )
    return 0
