"""``in9-build toolkit``: IN-9 / IN-9L from an ImageNet tree (the paper's App. A). Parsing and printing only.

One machine:     in9-build toolkit --imagenet DIR --boxes BOXES --out OUT [--layout release]
A cluster array: in9-build toolkit ... --work-dir SHARED --num-shards K --shard-index $TASK_ID (each task)
                 in9-build toolkit ... --work-dir SHARED --merge --out OUT        (once, at the end)
"""

from __future__ import annotations

import argparse
import os

from ..classes import IMAGE_VARIANTS
from ..errors import In9Error, flag_names
from ..release_layout import write_release_layout
from ..sources.imagenet import ImagenetSource
from ..toolkit.balance import format_summary


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "toolkit",
        help="build IN-9 / IN-9L from ImageNet with GrabCut (the paper's toolkit)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--imagenet", required=True, help="ImageNet root folder (holding train/ and val/)")
    parser.add_argument(
        "--boxes",
        required=True,
        help="folder with LOC_train/val_solution.csv, or with the VOC XML folders train/ and val/",
    )
    parser.add_argument("--out", help="output folder (required unless this is one shard of a sharded build)")
    parser.add_argument(
        "--layout",
        choices=("hub", "release"),
        default="hub",
        help="hub: Hub-ready parquet export (default); release: the original release's JPEG folders",
    )
    parser.add_argument(
        "--train-set",
        choices=("in9", "in9l"),
        default="in9",
        help="in9: test + IN-9 train with every variant (default); in9l: IN-9L (original, train only)",
    )
    parser.add_argument("--splits", default="test,train", help="comma-separated: test (ImageNet val), train")
    parser.add_argument("--variants", default=None, help="comma-separated configs (default: all)")
    parser.add_argument("--work-dir", help="segmentation work folder (default: under ~/.cache/in9/toolkit)")
    parser.add_argument("--num-shards", type=int, default=1, help="split the segmentation into K shards")
    parser.add_argument("--shard-index", type=int, default=0, help="the shard this run segments (0..K-1)")
    parser.add_argument(
        "--merge",
        nargs="*",
        metavar="WORK_DIR",
        help="merge finished shards (their work folders; none = --work-dir) and write --out",
    )
    parser.add_argument(
        "--num-proc", type=int, default=os.cpu_count() or 1, help="worker processes (default: all cores)"
    )
    parser.add_argument(
        "--per-class-train", type=int, help="train images kept per class (default: smallest class)"
    )
    parser.add_argument(
        "--per-class-test", type=int, help="test images kept per class (default: smallest class)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="class balancing and the mixed background draws (default 0)"
    )
    parser.add_argument(
        "--image-format", choices=("png", "jpeg"), default="png", help="hub layout image format"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run, flags=flag_names(parser))
    return parser


def _source_kwargs(args: argparse.Namespace) -> dict:
    splits = tuple(s.strip() for s in args.splits.split(",") if s.strip())
    if args.train_set == "in9l":
        splits = ("train",)
    # --merge alone merges the shards in --work-dir (or the default work folder); with folders, those.
    merge = None if args.merge is None else [str(m) for m in args.merge]
    return {
        "data_dir": str(args.imagenet),
        "boxes": str(args.boxes),
        "work_dir": args.work_dir,
        "balance_seed": args.seed,
        "per_class_test": args.per_class_test,
        "per_class_train": args.per_class_train,
        "train_set": args.train_set,
        "splits": splits,
        "num_proc": args.num_proc,
        "merge": merge,
    }


def run(args: argparse.Namespace) -> int:
    kwargs = _source_kwargs(args)
    sharded = args.num_shards > 1 and args.merge is None
    if not sharded and not args.out:
        raise In9Error("--out is required (only a single shard of a --num-shards build runs without it)")
    source = ImagenetSource(**kwargs, progress=not args.quiet)
    if sharded:
        done = source.segment(num_shards=args.num_shards, shard_index=args.shard_index)
        print(
            f"shard {args.shard_index} of {args.num_shards}: {done} chunks segmented into {source.work_dir}; "
            "run --merge when every shard has finished"
        )
        return 0
    summary = source.summary()
    print(format_summary(summary))
    variants = (
        ("original",)
        if args.train_set == "in9l"
        else (tuple(v.strip() for v in args.variants.split(",")) if args.variants else None)
    )
    if args.layout == "release":
        out = write_release_layout(
            source,
            args.out,
            seed=args.seed,
            variants=variants or IMAGE_VARIANTS,
            overwrite=args.overwrite,
            num_proc=args.num_proc,
        )
    else:
        from ..export import export  # imports datasets: keep `in9-build --help` quick

        out = export(
            "imagenet",
            args.out,
            seed=args.seed,
            variants=variants,
            source_kwargs=kwargs,
            num_proc=args.num_proc,
            overwrite=args.overwrite,
            image_format=args.image_format,
        )
    print(f"wrote {out}")
    return 0
